"""``consulta invite``: invite municipal contacts with personal links, list, revoke, reissue."""

from __future__ import annotations

import asyncio
import csv
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session, sessionmaker

import storage
from bot.cli.common import load_definition, load_settings
from bot.infra.config import Settings
from flows import Definition
from flows.schema import fold
from storage import invitations

app = typer.Typer(help="Invitations of municipal contacts.", no_args_is_help=True)

HEADERS = {
    "name": ("name", "nombre"),
    "institution": (
        "institution",
        "role",
        "institución",
        "institucion",
        "cargo",
        "role/institution",
    ),
    "comuna": ("comuna",),
    "contact": ("contact", "email", "phone", "correo", "teléfono", "telefono", "contacto"),
}


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


def read_contacts(path: Path, definition: Definition) -> tuple[list[Contact], list[str]]:
    """Every row of the CSV as a contact, and every problem as ``line N: ...``."""
    problems: list[str] = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [f"{path}: cannot read: {exc}"]
    dialect = csv.Sniffer().sniff(text.splitlines()[0] if text else ",", delimiters=",;\t")
    reader = csv.DictReader(text.splitlines(), dialect=dialect)
    columns = {fold(c): c for c in reader.fieldnames or []}
    found = {
        key: next((columns[a] for a in names if a in columns), None)
        for key, names in HEADERS.items()
    }
    missing = [k for k in ("name", "institution", "comuna") if found[k] is None]
    if missing:
        return [], [f"line 1: missing column(s): {', '.join(missing)} (have: {reader.fieldnames})"]
    contacts: list[Contact] = []
    seen: dict[tuple[str, str], int] = {}
    profile = definition.consultation.profile
    for row in reader:
        line = reader.line_num

        def cell(key: str, row: dict[str, str] = row) -> str:
            column = found[key]
            return (row.get(column) or "").strip() if column else ""

        name, institution, comuna_text = cell("name"), cell("institution"), cell("comuna")
        if not name:
            problems.append(f"line {line}: empty name")
        if not institution:
            problems.append(f"line {line}: empty role/institution")
        comuna = profile.find_comuna(comuna_text)
        if comuna is None or comuna == profile.outside.id:
            problems.append(f"line {line}: unknown comuna {comuna_text!r}")
        contact = Contact(line, name, institution, comuna or "", cell("contact") or None)
        if name and contact.key in seen:
            problems.append(
                f"line {line}: duplicate of line {seen[contact.key]} ({name}, {comuna_text})"
            )
        seen.setdefault(contact.key, line)
        contacts.append(contact)
    if not contacts and not problems:
        problems.append("the file has no contacts")
    return contacts, problems


def link(username: str, token: str) -> str:
    return f"https://t.me/{username}?start={token}"


def bot_username(settings: Settings) -> str:
    """``CONSULTA_BOT_USERNAME``, or else asked of the Bot API (``getMe``)."""
    if settings.consulta_bot_username:
        return settings.consulta_bot_username.lstrip("@")
    if not settings.telegram_bot_token:
        typer.echo(
            "Set CONSULTA_BOT_USERNAME (the bot's @username) or TELEGRAM_BOT_TOKEN to build links.",
            err=True,
        )
        raise typer.Exit(2)
    from telegram import Bot

    async def ask() -> str:
        async with Bot(settings.telegram_bot_token, base_url=settings.telegram_base_url) as bot:
            return (await bot.get_me()).username or ""

    return asyncio.run(ask())


def write_qr(directory: Path, invitation_id: int, name: str, url: str) -> Path:
    import qrcode

    directory.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", fold(name)).strip("-")[:40] or "contacto"
    path = directory / f"{invitation_id:04d}-{slug}.png"
    qrcode.make(url, box_size=10, border=4).save(path)
    return path


def _context() -> tuple[Settings, Definition, sessionmaker[Session]]:

    settings = load_settings()
    definition = load_definition(settings)
    storage.upgrade(settings.database_url)
    return settings, definition, storage.make_sessions(storage.make_engine(settings.database_url))


@app.command("import")
def import_contacts(
    file: Annotated[Path, typer.Argument(help="CSV: name, role/institution, comuna, contact")],
    dry_run: Annotated[bool, typer.Option(help="Check and show, import nothing.")] = False,
    qr: Annotated[Path | None, typer.Option(help="Write a QR code PNG per contact here.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the links to this CSV.")] = None,
) -> None:
    """Validate every row, then create one invitation per contact and print its link."""
    settings, definition, sessions = _context()
    contacts, problems = read_contacts(file, definition)
    if problems:
        for p in problems:
            typer.echo(f"{file}: {p}", err=True)
        typer.echo(f"Nothing imported: {len(problems)} problem(s).", err=True)
        raise typer.Exit(1)
    labels = {c.id: c.label for c in definition.consultation.profile.comunas()}
    with sessions() as session:
        invited = invitations.active_by_contact(session, fold)
    new: list[Contact] = []
    for c in contacts:
        earlier = invited.get(c.key)
        if earlier is None:
            new.append(c)
            continue
        typer.echo(
            f"{file}: line {c.line}: {c.name} ({labels[c.comuna]}) is already invited "
            f"(id {earlier}); skipped. A new link: consulta invite reissue {earlier}"
        )
    contacts = new
    if dry_run:
        for c in contacts:
            typer.echo(f"would invite: {c.name} ({c.institution}), {labels[c.comuna]}")
        typer.echo(f"{len(contacts)} new contact(s) valid; nothing imported (--dry-run).")
        return
    if not contacts:
        typer.echo("Nothing to import: every contact in the file is already invited.")
        return
    username = bot_username(settings)  # before anything is stored: no link may be lost
    now = datetime.now(UTC)
    ttl = timedelta(days=settings.consulta_invite_days)
    rows = []
    with sessions.begin() as session:
        for c in contacts:
            invitation, token = invitations.create(
                session, name=c.name, institution=c.institution, comuna=c.comuna,
                contact=c.contact, now=now, ttl=ttl,
            )  # fmt: skip
            rows.append((invitation.id, c, link(username, token)))
    for invitation_id, c, url in rows:
        typer.echo(f"{invitation_id}\t{c.name}\t{labels[c.comuna]}\t{url}")
        if qr is not None:
            write_qr(qr, invitation_id, c.name, url)
    if out is not None:
        with out.open("w", encoding="utf-8-sig", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "name", "institution", "comuna", "contact", "link"])
            for invitation_id, c, url in rows:
                writer.writerow([invitation_id, c.name, c.institution, labels[c.comuna],
                                 c.contact or "", url])  # fmt: skip
    expires = (now + ttl).astimezone(settings.zone).strftime("%Y-%m-%d")
    typer.echo(f"Invited {len(rows)} contact(s); links valid until {expires}.")


@app.command("list")
def list_invitations() -> None:
    """Who is invited, who joined, who finished, by comuna."""
    from sqlalchemy import select

    from storage.models import Invitation

    _, definition, sessions = _context()
    labels = {c.id: c.label for c in definition.consultation.profile.comunas()}
    now = datetime.now(UTC)
    with sessions() as session:
        rows = session.scalars(select(Invitation).order_by(Invitation.comuna, Invitation.id)).all()
        for inv in rows:
            p = inv.participant
            status = (
                "revoked" if inv.revoked_at else
                "finished" if p and p.finished_at else
                "joined" if p and p.consented_at else
                "expired" if invitations.check(inv, "", now) == "expired" else
                "invited"
            )  # fmt: skip
            contact = f" <{inv.contact}>" if inv.contact else ""
            typer.echo(f"{inv.id}\t{labels.get(inv.comuna, inv.comuna)}\t{status}\t"
                       f"{inv.name} ({inv.institution}){contact}")  # fmt: skip
        typer.echo(f"{len(rows)} invitation(s).")


@app.command()
def revoke(invitation_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Revoke an invitation: its link stops working."""
    _, _, sessions = _context()
    with sessions.begin() as session:
        invitation = invitations.revoke(session, invitation_id, datetime.now(UTC))
    if invitation is None:
        typer.echo(f"No invitation {invitation_id}.", err=True)
        raise typer.Exit(1)
    typer.echo(f"Revoked invitation {invitation_id} ({invitation.name}).")


@app.command()
def reissue(
    invitation_id: Annotated[int, typer.Argument(metavar="ID")],
    qr: Annotated[Path | None, typer.Option(help="Write its QR code PNG here.")] = None,
) -> None:
    """A new link for the same contact; the old link stops working."""
    settings, _, sessions = _context()
    with sessions.begin() as session:
        result = invitations.reissue(
            session, invitation_id, datetime.now(UTC), timedelta(days=settings.consulta_invite_days)
        )
        if result is None:
            typer.echo(f"No invitation {invitation_id}.", err=True)
            raise typer.Exit(1)
        invitation, token = result
        name = invitation.name
    url = link(bot_username(settings), token)
    typer.echo(f"{invitation_id}\t{name}\t{url}")
    if qr is not None:
        write_qr(qr, invitation_id, name, url)
