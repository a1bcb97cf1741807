"""Typer's group and command classes, with the words its bundled Click prints in English
and marks for no translation ("Usage:", the help option's "Show this message and exit.",
"Did you mean ...?") said in Spanish. Every group of ``consulta`` is a ``Typer`` of this
module, whose groups and commands are these; the words Typer marks for gettext are in
bot.cli.translations.
"""

from __future__ import annotations

import difflib
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from bot.cli.messages import say


class _Spanish:
    """What the group and the commands share: the usage line and the help option."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["options_metavar"] = say("options_metavar")
        super().__init__(*args, **kwargs)

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        pieces = self.collect_usage_pieces(ctx)  # type: ignore[attr-defined]
        formatter.write_usage(ctx.command_path, " ".join(pieces), prefix=say("usage_prefix"))

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.help = say("help_option")
        return option


class Command(_Spanish, TyperCommand):
    """A command of ``consulta``."""


class Group(_Spanish, TyperGroup):
    """``consulta`` and its groups of commands. An unknown command close to a known one is
    answered with the known one's name."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["suggest_commands"] = False  # Typer's suggestion is English; ours is below
        kwargs["subcommand_metavar"] = say("subcommand_metavar")
        super().__init__(*args, **kwargs)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None and not ctx.resilient_parsing:
            close = difflib.get_close_matches(cmd_name, self.list_commands(ctx), n=1)
            if close:
                ctx.fail(say("no_such_command", name=cmd_name, suggestion=close[0]))
        return command


class Typer(typer.Typer):
    """``typer.Typer`` made of ``Group`` and ``Command``: a command added to it later speaks
    Spanish without being told to."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cls=Group, **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", Command)
        return super().command(*args, **kwargs)
