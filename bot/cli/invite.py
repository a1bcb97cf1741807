"""``consulta invite``: invite municipal contacts with personal links, list, revoke, reissue.
What it says is in ``bot/cli/messages_es.yaml``; contact files are read by
``bot.cli.contacts``."""

from __future__ import annotations

import asyncio
import csv
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import storage
from bot.cli import spanish
from bot.cli.common import load_definition, load_settings
from bot.cli.contacts import Contact, read_contacts
from bot.cli.messages import say
from bot.infra.config import Settings
from flows import Definition
from flows.matching import fold
from storage import invitations
from storage.models import Invitation

app = spanish.Typer(help=say("invite_help"), no_args_is_help=True)

QR_BOX = 10
"""Pixels per module of the QR code: about 3 cm wide at 300 dpi, easy to scan on paper."""
QR_TEXT_PT = 30


def link(username: str, token: str) -> str:
    return f"https://t.me/{username}?start={token}"


def bot_username(settings: Settings) -> str:
    """``CONSULTA_BOT_USERNAME``, or else asked of the Bot API (``getMe``); exit 2 with what
    to set when neither can be had."""
    if settings.consulta_bot_username:
        return settings.consulta_bot_username.lstrip("@")
    if not settings.telegram_bot_token:
        typer.echo(say("no_username"), err=True)
        raise typer.Exit(2)
    from telegram import Bot

    async def ask() -> str:
        async with Bot(settings.telegram_bot_token, base_url=settings.telegram_base_url) as bot:
            return (await bot.get_me()).username or ""

    return asyncio.run(ask())


def write_qr(directory: Path, invitation_id: int, lines: list[str], url: str) -> Path:
    """A print-ready PNG: the QR code of ``url`` with ``lines`` (name, comuna, expiry)
    centred under it."""
    import qrcode
    from matplotlib import font_manager
    from PIL import Image, ImageDraw, ImageFont

    directory.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", fold(lines[0])).strip("-")[:40] or "contacto"
    path = directory / f"{invitation_id:04d}-{slug}.png"
    code = qrcode.make(url, box_size=QR_BOX, border=4).get_image().convert("RGB")
    font = ImageFont.truetype(font_manager.findfont("DejaVu Sans"), QR_TEXT_PT)
    step = int(QR_TEXT_PT * 1.5)
    width = max(code.width, *(int(font.getlength(t)) + 4 * QR_BOX for t in lines))
    page = Image.new("RGB", (width, code.height + step * len(lines) + 2 * QR_BOX), "white")
    page.paste(code, ((width - code.width) // 2, 0))
    draw = ImageDraw.Draw(page)
    for i, text in enumerate(lines):
        x = (width - font.getlength(text)) / 2
        draw.text((x, code.height + i * step), text, fill="black", font=font)
    page.save(path, dpi=(300, 300))
    return path


def _context() -> tuple[Settings, Definition, sessionmaker[Session]]:
    settings = load_settings()
    definition = load_definition(settings)
    storage.upgrade(settings.database_url)
    return settings, definition, storage.make_sessions(storage.make_engine(settings.database_url))


def _labels(definition: Definition) -> dict[str, str]:
    return {c.id: c.label for c in definition.consultation.profile.comunas()}


def _expiry(settings: Settings, moment: datetime) -> str:
    return moment.astimezone(settings.zone).strftime("%d-%m-%Y")


@app.command("import", help=say("import_help"))
def import_contacts(
    file: Annotated[Path, typer.Argument(help=say("import_file"), metavar=say("file_metavar"))],
    dry_run: Annotated[bool, typer.Option(help=say("import_dry_run"))] = False,
    qr: Annotated[Path | None, typer.Option(help=say("import_qr"))] = None,
    out: Annotated[Path | None, typer.Option(help=say("import_out"))] = None,
) -> None:
    """Validate every row, then create one invitation per contact and print its link."""
    settings, definition, sessions = _context()
    contacts, problems = read_contacts(file, definition)
    if problems:
        for p in problems:
            typer.echo(say("import_problem", file=file, problem=p), err=True)
        typer.echo(say("import_nothing", count=len(problems)), err=True)
        raise typer.Exit(1)
    labels = _labels(definition)
    with sessions() as session:
        invited = invitations.active_by_contact(session, fold)
    new: list[Contact] = []
    for c in contacts:
        earlier = invited.get(c.key)
        if earlier is None:
            new.append(c)
            continue
        typer.echo(say("import_already", file=file, line=c.line, name=c.name,
                       comuna=labels[c.comuna], id=earlier))  # fmt: skip
    contacts = new
    if dry_run:
        for c in contacts:
            typer.echo(say("import_would", name=c.name, institution=c.institution,
                           comuna=labels[c.comuna]))  # fmt: skip
        typer.echo(say("import_dry_done", count=len(contacts)))
        return
    if not contacts:
        typer.echo(say("import_none_new"))
        return
    username = bot_username(settings)  # before anything is stored: no link may be lost
    now = datetime.now(UTC)
    ttl = timedelta(days=settings.consulta_invite_days)
    expires = _expiry(settings, now + ttl)
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
            caption = [c.name, labels[c.comuna], say("qr_caption_expiry", expires=expires)]
            write_qr(qr, invitation_id, caption, url)
    if out is not None:
        with out.open("w", encoding="utf-8-sig", newline="") as f:
            writer = csv.writer(f, delimiter=";")
            writer.writerow(say("links_header").split(";"))
            for invitation_id, c, url in rows:
                writer.writerow([invitation_id, c.name, c.institution, labels[c.comuna],
                                 c.contact or "", url])  # fmt: skip
    typer.echo(say("import_done", count=len(rows), expires=expires))


@app.command("list", help=say("list_help"))
def list_invitations() -> None:
    """Who is invited, who joined, who finished; then a summary per comuna that names the
    comunas without any contact."""
    _, definition, sessions = _context()
    labels = _labels(definition)
    profile = definition.consultation.profile
    comunas = [c.id for c in profile.comunas() if c.id != profile.outside.id]
    summary = {c: [0, 0, 0] for c in comunas}
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
            where, word = labels.get(inv.comuna, inv.comuna), say("status_" + status)
            typer.echo(f"{inv.id}\t{where}\t{word}\t{inv.name} ({inv.institution}){contact}")
            if status != "revoked":
                counts = summary.setdefault(inv.comuna, [0, 0, 0])
                counts[0] += 1
                counts[1] += status in ("joined", "finished")
                counts[2] += status == "finished"
    typer.echo(say("list_count", count=len(rows)))
    typer.echo("")
    typer.echo(say("list_summary"))
    for comuna, (invited, joined, finished) in summary.items():
        typer.echo(say("list_summary_line", comuna=labels.get(comuna, comuna), invited=invited,
                       joined=joined, finished=finished))  # fmt: skip
    silent = [labels[c] for c in comunas if summary[c][0] == 0]
    if silent:
        typer.echo(say("list_silent", comunas=", ".join(silent)))
    else:
        typer.echo(say("list_all_covered"))


@app.command(help=say("revoke_help"))
def revoke(invitation_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Revoke an invitation: its link stops working."""
    _, _, sessions = _context()
    with sessions.begin() as session:
        invitation = invitations.revoke(session, invitation_id, datetime.now(UTC))
        name = invitation.name if invitation else ""
    if invitation is None:
        typer.echo(say("revoke_none", id=invitation_id), err=True)
        raise typer.Exit(1)
    typer.echo(say("revoke_done", id=invitation_id, name=name))


@app.command(help=say("reissue_help"))
def reissue(
    invitation_id: Annotated[int, typer.Argument(metavar="ID")],
    qr: Annotated[Path | None, typer.Option(help=say("reissue_qr"))] = None,
    revoked: Annotated[bool, typer.Option("--revoked", help=say("reissue_revoked_option"))] = False,
) -> None:
    """A new link for the same contact; the old link stops working. Everything that could
    stop it (no bot username, no such invitation, a revoked one) is checked before the
    token changes, and the new link is always printed."""
    settings, definition, sessions = _context()
    username = bot_username(settings)
    now = datetime.now(UTC)
    with sessions.begin() as session:
        found = session.get(Invitation, invitation_id)
        if found is None:
            typer.echo(say("reissue_none", id=invitation_id), err=True)
            raise typer.Exit(1)
        if found.revoked_at is not None and not revoked:
            typer.echo(say("reissue_revoked", id=invitation_id, name=found.name), err=True)
            raise typer.Exit(1)
        result = invitations.reissue(
            session, invitation_id, now, timedelta(days=settings.consulta_invite_days)
        )
        assert result is not None  # found above, in this transaction
        invitation, token = result
        name, comuna, expires_at = invitation.name, invitation.comuna, invitation.expires_at
    url = link(username, token)
    expires = _expiry(settings, expires_at)
    typer.echo(say("reissue_done", id=invitation_id, name=name, link=url))
    typer.echo(say("reissue_note", expires=expires))
    if qr is not None:
        label = _labels(definition).get(comuna, comuna)
        write_qr(qr, invitation_id, [name, label, say("qr_caption_expiry", expires=expires)], url)
