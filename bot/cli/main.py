"""The ``consulta`` command: run the bot, rehearse in a terminal, check a consultation file,
migrate the database and export answers."""

from __future__ import annotations

import asyncio
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

import storage
from bot.cli.common import load_definition, load_settings, open_conversation
from bot.cli.invite import app as invite_app
from flows import Definition, DefinitionError, load
from flows.events import Button, Choice, Command, Event, Reply, Start, Text

app = typer.Typer(help="Consulta: a public consultation over Telegram.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(invite_app, name="invite")

NO_TOKEN = """\
TELEGRAM_BOT_TOKEN is not set, so the bot cannot connect to Telegram.

  1. In Telegram, talk to @BotFather, send /newbot and follow its questions.
  2. Copy the token it gives you (it looks like 123456789:AAE...).
  3. Put it in a file named .env in this folder:  TELEGRAM_BOT_TOKEN=123456789:AAE...
     (.env.example lists every setting), then run `make run` again.

To try the consultation without Telegram, rehearse it in this terminal:  consulta chat
"""


@app.command()
def run() -> None:
    """Run the bot with long polling (migrates the database first)."""
    settings = load_settings()
    if not settings.telegram_bot_token:
        typer.echo(NO_TOKEN, err=True)
        raise typer.Exit(2)
    from bot.adapter.app import build_application, build_scheduler, serve
    from bot.infra import logs

    logs.configure(settings.consulta_log_format)

    conv = open_conversation(settings)
    typer.echo(
        f"Consultation «{conv.definition.consultation.title}» version {conv.definition.version}"
    )
    application = build_application(settings, conv)
    asyncio.run(serve(application, scheduler_factory=lambda: build_scheduler(settings)))


@app.command()
def webhook() -> None:
    """Run the bot as a webhook server (production): Telegram posts updates over HTTPS
    through a proxy; each is answered once stored. Migrates the database first."""
    from bot.adapter.webhook import ConfigurationError, check_settings

    settings = load_settings()
    if not settings.telegram_bot_token:
        typer.echo(NO_TOKEN, err=True)
        raise typer.Exit(2)
    try:
        check_settings(settings)
    except ConfigurationError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    from bot.infra import logs

    logs.configure(settings.consulta_log_format)
    from bot.adapter.app import build_application, build_scheduler
    from bot.adapter.webhook import serve_webhook

    conv = open_conversation(settings)
    typer.echo(
        f"Consultation «{conv.definition.consultation.title}» version {conv.definition.version}"
    )
    application = build_application(settings, conv)
    asyncio.run(
        serve_webhook(application, settings, scheduler_factory=lambda: build_scheduler(settings))
    )


@app.command()
def check(
    file: Annotated[Path, typer.Argument(help="The consultation file (YAML) to validate.")],
    diagram: Annotated[bool, typer.Option(help="Print the flow as a Mermaid diagram.")] = False,
) -> None:
    """Validate a consultation file and report every problem with its place in the file."""
    try:
        definition = load(file)
    except DefinitionError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    c = definition.consultation
    typer.echo(
        f"OK: {file}: «{c.title}», {len(c.questions)} questions, version {definition.version}"
    )
    if diagram:
        typer.echo(mermaid(definition))


def mermaid(definition: Definition) -> str:
    """The order of the questions as a Mermaid flowchart."""
    c = definition.consultation
    lines = ["flowchart TD", '  consent(["Consentimiento"]) --> profile["Perfil"]']
    previous = "profile"
    for q in c.questions:
        lines.append(f'  {previous} --> {q.id}["{q.number}. {q.title} ({q.kind})"]')
        previous = q.id
    lines.append(f'  {previous} --> summary(["Resumen y gracias"])')
    return "\n".join(lines)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (also done by `consulta run`)."""
    settings = load_settings()
    storage.upgrade(settings.database_url)
    typer.echo(f"Database at the newest schema: {settings.database_url.split('@')[-1]}")


class ExportFormat(StrEnum):
    csv = "csv"
    xlsx = "xlsx"


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", help="File to write.")],
    format: Annotated[
        ExportFormat, typer.Option("--format", help="csv or xlsx.")
    ] = ExportFormat.csv,
) -> None:
    """Export every answer, one row each, participants known only by their random code."""
    from reports.export import answers_frame, write

    settings = load_settings()
    definition = load_definition(settings)
    storage.upgrade(settings.database_url)
    sessions = storage.make_sessions(storage.make_engine(settings.database_url))
    with sessions() as session:
        frame = answers_frame(session, definition, settings.zone)
    write(frame, out, format.value)
    typer.echo(f"Wrote {len(frame)} answers to {out}")


@app.command()
def report(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the digest to.")],
) -> None:
    """Write the digest without Telegram: PNG charts, digest.md, the result table (XLSX, CSV)."""
    from datetime import UTC, datetime

    from reports.digest import build

    settings = load_settings()
    definition = load_definition(settings)
    storage.upgrade(settings.database_url)
    sessions = storage.make_sessions(storage.make_engine(settings.database_url))
    with sessions() as session:
        digest = build(session, definition, since=None, until=datetime.now(UTC),
                       zone=settings.zone)  # fmt: skip
    for path in digest.write(out):
        typer.echo(f"wrote {path}")


@app.command()
def close(
    at: Annotated[
        str | None,
        typer.Option(
            help="Local date and time to close at (e.g. '2026-12-31 23:59'); default now."
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Close the consultation: no more answers, and the running bot sends the final summary
    to every participant who did not opt out (paced under Telegram's limits)."""
    from datetime import datetime

    from bot.services.closing_time import file_closing
    from storage import closing

    settings = load_settings()
    conv = open_conversation(settings)
    now = conv.clock()
    try:
        moment = datetime.fromisoformat(at).replace(tzinfo=settings.zone) if at else now
    except ValueError as exc:
        typer.echo(f"--at: not a date and time: {at!r} (e.g. '2026-12-31 23:59')", err=True)
        raise typer.Exit(2) from exc
    c = conv.definition.consultation
    with conv.sessions() as session:
        already = closing.closes_at(session, c.id)
        due = len(closing.recipients(session, conv.channel))
    if already is not None:
        typer.echo(
            f"«{c.title}» was already closed at {already.astimezone(settings.zone):%Y-%m-%d %H:%M}."
        )
        raise typer.Exit(1)
    local = moment.astimezone(settings.zone)
    when = "now" if at is None else f"at {local:%Y-%m-%d %H:%M} ({settings.consulta_timezone})"
    if not yes:
        typer.confirm(
            f"Close «{c.title}» {when}? No answer will be taken afterwards, and {due} "
            "participants will receive the final summary. This cannot be undone.",
            abort=True,
        )
    with conv.sessions.begin() as session:
        closing.record(session, c.id, moment, now)
    rate = settings.consulta_rate_limit or 30
    typer.echo(
        f"Closed {when}. The running bot (`consulta run` or `consulta webhook`) sends the final "
        f"summary to {due} participants within a minute of the closing, at {rate:g} messages/s "
        f"(about {max(1, round(due / rate / 60))} min)."
    )
    in_file = file_closing(conv.definition, settings.zone)
    if in_file is not None and in_file < moment:
        typer.echo(f"Note: the consultation file closes it earlier, at {in_file:%Y-%m-%d %H:%M}.")


@app.command()
def demo(
    participants: Annotated[int, typer.Option(help="How many people to simulate.")] = 300,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the scratch database and report.")
    ] = Path("demo"),
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same consultation).")] = 0,
) -> None:
    """Simulate a consultation through the real engine in a scratch database, then write
    its report: see what Consulta does before you have a bot token."""
    from bot.cli.demo import run_demo

    stats = run_demo(out, participants, seed=seed)
    typer.echo(f"Simulated {stats.participants} people ({stats.finished} finished, "
               f"{stats.answers} answers); report in {out}/ (open {out}/digest.md)")  # fmt: skip


@app.command()
def chat(
    participant: Annotated[
        str, typer.Option("--as", help="Rehearsal participant's name.")
    ] = "ensayo",
    record: Annotated[
        Path | None, typer.Option(help="Append the inputs to this file (JSON lines).")
    ] = None,
) -> None:
    """Rehearse the consultation in this terminal, with the same engine and database.

    Type a button's number to press it, /comando for a command, anything else as text.
    Input may be piped in; each line is one message. Ctrl-D ends.
    """
    settings = load_settings()
    conv = open_conversation(settings, channel="terminal")
    buttons: list[Button] = []
    buttons = _show(conv.handle(participant, Start()), buttons)
    log_file = record.open("a", encoding="utf-8") if record else None
    for line in sys.stdin if not sys.stdin.isatty() else iter(lambda: input("> "), None):
        line = line.rstrip("\n")
        event = _event(line, buttons)
        if log_file:
            log_file.write(json.dumps({"input": line}, ensure_ascii=False) + "\n")
        buttons = _show(conv.handle(participant, event), buttons)
    if log_file:
        log_file.close()


def _event(line: str, buttons: list[Button]) -> Event:
    if line.isdigit() and 1 <= int(line) <= len(buttons):
        return Choice(buttons[int(line) - 1].data)
    if line.startswith("/"):
        word, _, args = line.partition(" ")
        return Start(args) if word == "/start" else Command(word[1:].lower(), args)
    return Text(line)


def _show(result: object, previous: list[Button]) -> list[Button]:
    replies: tuple[Reply, ...] = getattr(result, "replies", ())
    buttons = previous
    for reply in replies:
        typer.echo("\n" + reply.text)
        if reply.buttons:
            buttons = [b for row in reply.buttons for b in row]
            for i, b in enumerate(buttons, 1):
                typer.echo(f"  [{i}] {b.label}")
    return buttons
