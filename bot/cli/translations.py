"""Spanish for the words Typer prints itself (panel titles "Options", "Arguments",
"[required]", "[default: ...]", its error hints). Typer marks them for gettext in its
default ``messages`` domain, so a catalogue of that domain translates them:
``locale/es/LC_MESSAGES/messages.po`` is the source, and ``messages.mo`` beside it is
compiled from it by ``python -m bot.cli.translations`` (a test checks that the two agree).
The Click that Typer bundles marks none of its words: those of the help pages and the
suggestion for a mistyped command are set through Typer's classes (bot.cli.spanish); its
errors for a wrong option or value ("No such option", "Invalid value") stay English.
"""

from __future__ import annotations

import ast
import gettext
import os
import struct
from pathlib import Path

LOCALE = Path(__file__).with_name("locale")
PO = LOCALE / "es" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")

Catalogue = dict[str, list[str]]
"""msgid (with ``\\0`` and the plural msgid, for plural entries) → its translations."""


def install() -> None:
    """Make Click and Typer speak Spanish in this process. Call it before they are imported:
    Typer reads some of its words (panel titles) at import."""
    os.environ["LANGUAGE"] = "es"  # gettext's own variable: the command line is Spanish only
    gettext.bindtextdomain("messages", str(LOCALE))


def parse(po: str) -> Catalogue:
    """The entries of a ``.po`` file (msgid, msgid_plural, msgstr and msgstr[n]; strings
    may continue on the next lines; comments and untranslated entries are skipped)."""
    entries: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for raw in [*po.splitlines(), ""]:
        line = raw.strip()
        if not line or line.startswith("#"):
            if current:
                entries.append(current)
                current = {}
            continue
        if line.startswith('"'):
            current[key] += ast.literal_eval(line)
            continue
        key, _, value = line.partition(" ")
        current[key] = ast.literal_eval(value)
    catalogue: Catalogue = {}
    for entry in entries:
        msgid = entry["msgid"]
        if "msgid_plural" in entry:
            msgid += "\0" + entry["msgid_plural"]
        forms = [entry[k] for k in sorted(entry) if k.startswith("msgstr")]
        if all(forms) or msgid == "":
            catalogue[msgid] = forms
    return catalogue


def compile_mo(catalogue: Catalogue) -> bytes:
    """The GNU ``.mo`` form of ``catalogue`` (what ``msgfmt`` writes, without a hash table)."""
    ids = sorted(catalogue, key=lambda m: m.encode("utf-8"))
    originals = [m.encode("utf-8") for m in ids]
    translations = ["\0".join(catalogue[m]).encode("utf-8") for m in ids]
    header = 7 * 4
    tables = header + 2 * 8 * len(ids)
    offsets: list[int] = []
    data = b""
    for blob in [*originals, *translations]:
        offsets += [len(blob), tables + len(data)]
        data += blob + b"\0"
    index = struct.pack("<7I", 0x950412DE, 0, len(ids), header, header + 8 * len(ids), 0, 0)
    return index + struct.pack(f"<{len(offsets)}I", *offsets) + data


if __name__ == "__main__":
    MO.write_bytes(compile_mo(parse(PO.read_text(encoding="utf-8"))))
    print(f"{MO} written")
