"""The ``consulta`` command: run the bot, rehearse in a terminal, check a consultation file,
migrate the database and export answers. What it says is in ``bot/cli/messages_es.yaml``."""

from __future__ import annotations

import asyncio
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

import storage
from bot.cli import spanish
from bot.cli.common import load_definition, load_settings, open_conversation
from bot.cli.invite import app as invite_app
from bot.cli.messages import say
from bot.infra.config import Settings
from bot.services.conversation import Conversation
from flows import Definition, DefinitionError, Step, load
from flows.events import Button, Choice, Command, Event, Reply, Start, Text
from flows.prompts import as_messages
from storage import rehearsals

app = spanish.Typer(help=say("app_help"), no_args_is_help=True, add_completion=False)
db_app = spanish.Typer(help=say("db_help"), no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(invite_app, name="invite")


@app.command(help=say("run_help"))
def run() -> None:
    """Run the bot with long polling (migrates the database first)."""
    settings = load_settings()
    if not settings.telegram_bot_token:
        typer.echo(say("no_token"), err=True)
        raise typer.Exit(2)
    from bot.adapter.app import build_application, build_scheduler, serve
    from bot.infra import logs

    logs.configure(settings.consulta_log_format)

    conv = open_conversation(settings)
    c = conv.definition.consultation
    typer.echo(say("running", title=c.title, version=conv.definition.version))
    application = build_application(settings, conv)
    asyncio.run(serve(application, scheduler_factory=lambda: build_scheduler(settings)))


@app.command(help=say("webhook_help"))
def webhook() -> None:
    """Run the bot as a webhook server (production): Telegram posts updates over HTTPS
    through a proxy; each is answered once stored. Migrates the database first."""
    from bot.adapter.webhook import ConfigurationError, check_settings

    settings = load_settings()
    if not settings.telegram_bot_token:
        typer.echo(say("no_token"), err=True)
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
    c = conv.definition.consultation
    typer.echo(say("running", title=c.title, version=conv.definition.version))
    application = build_application(settings, conv)
    asyncio.run(
        serve_webhook(application, settings, scheduler_factory=lambda: build_scheduler(settings))
    )


@app.command(help=say("check_help"))
def check(
    file: Annotated[Path, typer.Argument(help=say("check_file"), metavar=say("file_metavar"))],
    diagram: Annotated[bool, typer.Option(help=say("check_diagram"))] = False,
) -> None:
    """Validate a consultation file and report every problem with its place in the file."""
    try:
        definition = load(file)
    except DefinitionError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    c = definition.consultation
    typer.echo(say("check_ok", file=file, title=c.title, questions=len(c.questions),
                   version=definition.version))  # fmt: skip
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


@db_app.command("upgrade", help=say("db_upgrade_help"))
def db_upgrade() -> None:
    """Apply the database migrations (also done by `consulta run`)."""
    settings = load_settings()
    storage.upgrade(settings.database_url)
    typer.echo(say("db_upgraded", where=_where(settings.database_url)))


class ExportFormat(StrEnum):
    csv = "csv"
    xlsx = "xlsx"


def _where(url: str) -> str:
    """A database URL without its credentials, to say which database."""
    return url.split("@")[-1]


@app.command(help=say("export_help"))
def export(
    out: Annotated[Path, typer.Option("--out", help=say("export_out"))],
    format: Annotated[
        ExportFormat | None, typer.Option("--format", help=say("export_format"))
    ] = None,
    include_rehearsals: Annotated[bool, typer.Option(help=say("include_rehearsals"))] = False,
) -> None:
    """Export every answer, one row each, participants known only by their random code."""
    from reports.export import FormatMismatch, answers_frame, format_of, write

    try:
        fmt = format_of(out, format.value if format else None)
    except FormatMismatch as exc:
        suffix = str(exc)
        typer.echo(say("export_mismatch", out=out, suffix=suffix, format=format,
                       out_stem=out.with_suffix("")), err=True)  # fmt: skip
        raise typer.Exit(2) from exc
    settings = load_settings()
    definition = load_definition(settings)
    storage.upgrade(settings.database_url)
    sessions = storage.make_sessions(storage.make_engine(settings.database_url))
    with sessions() as session:
        frame = answers_frame(session, definition, settings.zone, rehearsals=include_rehearsals)
    write(frame, out, fmt, settings.zone)
    typer.echo(say("export_done", rows=len(frame), out=out, format=fmt))


@app.command(help=say("report_help"))
def report(
    out: Annotated[Path, typer.Option("--out", help=say("report_out"))],
    include_rehearsals: Annotated[bool, typer.Option(help=say("include_rehearsals"))] = False,
) -> None:
    """Write the digest without Telegram: PNG charts, digest.md, the result table (XLSX, CSV).
    An empty or unmigrated database is said so, and nothing is written (exit 1)."""
    from datetime import UTC, datetime

    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    from reports import aggregate
    from reports.digest import build

    settings = load_settings()
    definition = load_definition(settings)
    where = _where(settings.database_url)
    engine = storage.make_engine(settings.database_url)
    try:
        migrated = inspect(engine).has_table("participants")
    except SQLAlchemyError as exc:
        typer.echo(say("report_unreachable", where=where, error=type(exc).__name__), err=True)
        raise typer.Exit(1) from exc
    if not migrated:  # a report never creates the tables of a database it did not find
        typer.echo(say("report_unmigrated", where=where), err=True)
        raise typer.Exit(1)
    if not storage.at_head(engine):
        storage.upgrade(settings.database_url)
    sessions = storage.make_sessions(engine)
    with sessions() as session:
        if aggregate.participants(session) == 0:
            typer.echo(say("report_empty", where=where), err=True)
            raise typer.Exit(1)
        digest = build(session, definition, since=None, until=datetime.now(UTC),
                       zone=settings.zone, rehearsals=include_rehearsals)  # fmt: skip
    for path in digest.write(out):
        typer.echo(say("report_written", path=path))


@app.command(help=say("close_help"))
def close(
    at: Annotated[str | None, typer.Option(help=say("close_at"))] = None,
    yes: Annotated[bool, typer.Option("--yes", help=say("close_yes"))] = False,
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
        typer.echo(say("close_bad_at", value=at), err=True)
        raise typer.Exit(2) from exc
    c = conv.definition.consultation
    with conv.sessions() as session:
        already = closing.closes_at(session, c.id)
        due = len(closing.recipients(session, conv.channel))
    if already is not None:
        when = f"{already.astimezone(settings.zone):%d-%m-%Y %H:%M}"
        typer.echo(say("close_already", title=c.title, when=when))
        raise typer.Exit(1)
    local = moment.astimezone(settings.zone)
    when = (
        say("close_now")
        if at is None
        else say("close_at_when", when=f"{local:%d-%m-%Y %H:%M}", zone=settings.consulta_timezone)
    )
    if not yes and not typer.confirm(say("close_confirm", title=c.title, when=when, due=due)):
        typer.echo(say("close_cancelled"), err=True)
        raise typer.Exit(1)
    with conv.sessions.begin() as session:
        closing.record(session, c.id, moment, now)
    rate = settings.consulta_rate_limit or 30
    minutes = max(1, round(due / rate / 60))
    typer.echo(say("close_done", when=when, due=due, rate=f"{rate:g}", minutes=minutes))
    in_file = file_closing(conv.definition, settings.zone)
    if in_file is not None and in_file < moment:
        typer.echo(say("close_file_earlier", when=f"{in_file:%d-%m-%Y %H:%M}"))


@app.command(help=say("demo_help"))
def demo(
    participants: Annotated[int, typer.Option(help=say("demo_participants"))] = 300,
    out: Annotated[Path, typer.Option("--out", help=say("demo_out"))] = Path("demo"),
    seed: Annotated[int, typer.Option(help=say("demo_seed"))] = 0,
) -> None:
    """Simulate a consultation through the real engine in a scratch database, then write
    its report: see what Consulta does before you have a bot token."""
    from bot.cli.demo import DATABASE, run_demo

    typer.echo(say("demo_where", db=out / DATABASE))
    stats = run_demo(out, participants, seed=seed)
    typer.echo(say("demo_done", participants=stats.participants, finished=stats.finished,
                   answers=stats.answers, out=out))  # fmt: skip


@app.command(help=say("chat_help"))
def chat(
    participant: Annotated[str, typer.Option("--as", help=say("chat_as"))] = "ensayo",
    record: Annotated[Path | None, typer.Option(help=say("chat_record"))] = None,
) -> None:
    """Rehearse the consultation in this terminal, with the same engine and database.

    Type a button's number to press it, /comando for a command, anything else as text.
    Input may be piped in; each line is one message. Ctrl-D ends.
    """
    settings = load_settings()
    conv = open_conversation(settings, channel=rehearsals.CHANNEL)
    buttons: list[Button] = []
    buttons = _show(conv.apply_sync(participant, Start()), buttons)
    log_file = record.open("a", encoding="utf-8") if record else None
    for line in sys.stdin if not sys.stdin.isatty() else iter(lambda: input("> "), None):
        line = line.rstrip("\n")
        event = _event(line, buttons)
        if log_file:
            log_file.write(json.dumps({"input": line}, ensure_ascii=False) + "\n")
        answer = _beside_the_conversation(conv, settings, participant, event)
        result = Step(None, (Reply(answer),)) if answer else conv.apply_sync(participant, event)
        buttons = _show(result, buttons)
    if log_file:
        log_file.close()


def _beside_the_conversation(
    conv: Conversation, settings: Settings, participant: str, event: Event
) -> str | None:
    """The commands that the Telegram adapter answers beside the conversation (the ones
    /ayuda lists), answered here with the same services and texts."""
    from bot.services import reminders, reporting

    if not isinstance(event, Command):
        return None
    if event.name == "resultados":
        return asyncio.run(reporting.PublicResults().text(conv, settings, participant))
    if event.name in ("no_avisar", "no_recordar"):
        return reminders.stop(conv, participant)
    return None


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
    for reply in as_messages(replies):  # as the Telegram chat shows them
        typer.echo("\n" + reply.text)
        if reply.buttons:
            buttons = [b for row in reply.buttons for b in row]
            for i, b in enumerate(buttons, 1):
                typer.echo(f"  [{i}] {b.label}")
    return buttons
