"""What the handlers find in ``application.bot_data``: the conversation, the settings, the
outbox and the public results, put there once by bot.adapter.app.build_application."""

from __future__ import annotations

from dataclasses import dataclass

from telegram.ext import Application, ContextTypes

from bot.adapter.sending import TelegramOutbox
from bot.infra.config import Settings
from bot.services.conversation import Conversation
from bot.services.reporting import PublicResults

_KEY = "consulta"
Source = Application | ContextTypes.DEFAULT_TYPE


@dataclass(frozen=True)
class _Running:
    conversation: Conversation
    settings: Settings
    outbox: TelegramOutbox
    results: PublicResults


def attach(app: Application, conv: Conversation, settings: Settings) -> None:
    """Put the running objects where the handlers look for them."""
    app.bot_data[_KEY] = _Running(conv, settings, TelegramOutbox(app.bot), PublicResults())


def _running(source: Source) -> _Running:
    app = source if isinstance(source, Application) else source.application
    found = app.bot_data[_KEY]
    assert isinstance(found, _Running)
    return found


def conversation(source: Source) -> Conversation:
    return _running(source).conversation


def settings(source: Source) -> Settings:
    return _running(source).settings


def outbox(source: Source) -> TelegramOutbox:
    return _running(source).outbox


def results(source: Source) -> PublicResults:
    return _running(source).results
