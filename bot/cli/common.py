"""What every command of the command line starts from: the settings, the consultation
file and, for the commands that converse, the migrated database."""

from __future__ import annotations

import typer
from pydantic import ValidationError

import storage
from bot.infra.config import Settings, explain
from bot.services.conversation import Conversation
from flows import Definition, DefinitionError, load


def load_settings() -> Settings:
    """The settings, or exit 2 with one line per bad setting (never its value)."""
    try:
        return Settings()
    except ValidationError as exc:
        typer.echo("\n".join(explain(exc)), err=True)
        raise typer.Exit(2) from None  # no chained traceback: it would show the values


def load_definition(settings: Settings) -> Definition:
    """The consultation file of ``settings``, or exit 1 with where it is wrong."""
    try:
        return load(settings.consulta_file)
    except DefinitionError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc


def open_conversation(settings: Settings, channel: str = "telegram") -> Conversation:
    """A conversation on the migrated database of ``settings``."""
    definition = load_definition(settings)
    storage.upgrade(settings.database_url)
    engine = storage.make_engine(settings.database_url)
    conv = Conversation(
        definition, storage.make_sessions(engine), channel=channel, zone=settings.zone
    )
    conv.remember_version()
    return conv
