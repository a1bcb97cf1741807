"""Contact lists as municipal secretaries have them: a CSV saved by Excel in Spanish
(Windows-1252 or Latin-1, ';'), or as "CSV UTF-8" (with a BOM, ','), CRLF line ends, blank
rows; comunas written as people write them.

Problems are sentences for the organiser (``bot/cli/messages_es.yaml``), one per line of
the file, never a traceback.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from charset_normalizer import from_bytes
from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein

from bot.cli.messages import say
from flows import Definition
from flows.matching import fold
from flows.schema import Profile

HEADERS = {
    "name": ("name", "nombre", "nombre completo"),
    "institution": ("institution", "role", "institucion", "cargo", "role/institution",
                    "cargo o institucion"),
    "comuna": ("comuna",),
    "contact": ("contact", "email", "phone", "correo", "telefono", "contacto", "e-mail"),
}  # fmt: skip
"""Accepted titles of each column (folded: case and accents aside)."""
TITLES = {"name": "nombre", "institution": "cargo", "comuna": "comuna"}
"""The title to write for each required column."""
DELIMITERS = (";", ",", "\t")
SUGGEST_SCORE = 70
"""Least rapidfuzz WRatio (0–100) for a comuna to be suggested."""


@dataclass(frozen=True)
class Contact:
    line: int
    name: str
    institution: str
    comuna: str
    contact: str | None

    @property
    def key(self) -> tuple[str, str]:
        """Who this is, for finding the same person twice: name (accents and case aside)
        and comuna."""
        return fold(self.name), self.comuna


class Unreadable(ValueError):
    """The file is not text (an .xlsx, an image) or cannot be read."""


def decode(data: bytes) -> str:
    """The text of a CSV file: UTF-8 (with or without BOM), else what Excel in Spanish
    writes (Windows-1252, of which Latin-1's letters are a part), else the encoding
    charset-normalizer finds (UTF-16 from "Texto Unicode")."""
    if data.startswith(b"PK\x03\x04"):  # a zip: an .xlsx saved under a .csv name
        raise Unreadable("xlsx")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    if b"\x00" not in data:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")
    best = from_bytes(data).best()
    if best is None:
        raise Unreadable("binary")
    return str(best)


def _delimiter(header: str) -> str:
    """The separator of the header line: the most frequent of ';', ',' and tab (a file of
    one column has none: ',')."""
    return max(DELIMITERS, key=lambda d: (header.count(d), d == ","))


def find_comuna(profile: Profile, text: str) -> tuple[str | None, list[str]]:
    """The comuna named by ``text`` (not 'outside'), and the closest names when none is.

    Exact names and ids match as the bot matches them; a name one letter away from exactly
    one comuna is accepted too (the workshop deck spells "Paiguano" for Paihuano)."""
    comunas = [c for c in profile.comunas() if c.id != profile.outside.id]
    found = profile.find_comuna(text)
    if found is not None and found != profile.outside.id:
        return found, []
    wanted = fold(text)
    near = [c for c in comunas if Levenshtein.distance(wanted, fold(c.label)) <= 1]
    if wanted and len(near) == 1:
        return near[0].id, []
    labels = {fold(c.label): c.label for c in comunas}
    close = process.extract(wanted, list(labels), scorer=fuzz.WRatio, limit=3,
                            score_cutoff=SUGGEST_SCORE)  # fmt: skip
    return None, [labels[name] for name, _, _ in close]


def read_contacts(path: Path, definition: Definition) -> tuple[list[Contact], list[str]]:
    """Every non-blank row of the file as a contact, and every problem as a sentence."""
    try:
        text = decode(path.read_bytes())
    except (OSError, Unreadable):
        return [], [say("read_unreadable", file=path)]
    lines = text.splitlines()
    if not lines:
        return [], [say("read_no_contacts")]
    reader = csv.reader(lines, delimiter=_delimiter(lines[0]))
    header = next(reader)
    columns = {fold(c): i for i, c in enumerate(header)}
    found = {key: next((columns[fold(a)] for a in names if fold(a) in columns), None)
             for key, names in HEADERS.items()}  # fmt: skip
    missing = [k for k in ("name", "institution", "comuna") if found[k] is None]
    if missing:
        names = ", ".join(TITLES[k] for k in missing)
        return [], [say("read_missing", missing=names, have=", ".join(header))]
    contacts: list[Contact] = []
    problems: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    profile = definition.consultation.profile
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue  # a blank row (";;;" from Excel)

        def cell(key: str, row: list[str] = row) -> str:
            i = found[key]
            return row[i].strip() if i is not None and i < len(row) else ""

        name, institution, comuna_text = cell("name"), cell("institution"), cell("comuna")
        if not name:
            problems.append(say("read_empty_name", line=line))
        if not institution:
            problems.append(say("read_empty_institution", line=line))
        comuna, suggestions = find_comuna(profile, comuna_text)
        if comuna is None:
            problem = say("read_unknown_comuna", line=line, comuna=comuna_text)
            if suggestions:
                names = " o ".join(f"«{s}»" for s in suggestions)
                problem += say("read_did_you_mean", names=names)
            problems.append(problem)
        contact = Contact(line, name, institution, comuna or "", cell("contact") or None)
        if name and comuna and contact.key in seen:
            problems.append(say("read_duplicate", line=line, first=seen[contact.key], name=name,
                                comuna=comuna_text))  # fmt: skip
        seen.setdefault(contact.key, line)
        contacts.append(contact)
    if not contacts and not problems:
        problems.append(say("read_no_contacts"))
    return contacts, problems
