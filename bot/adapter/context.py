"""What the handlers find in ``application.bot_data``: the conversation, the settings and
the outbox, put there once by bot.adapter.app.build_application."""

from __future__ import annotations

from telegram.ext import Application, ContextTypes

from bot.adapter.sending import TelegramOutbox
from bot.infra.config import Settings
from bot.services.conversation import Conversation
from bot.services.digests import PublicResults

_CONVERSATION, _SETTINGS, _OUTBOX, _RESULTS = "conversation", "settings", "outbox", "results"


def attach(app: Application, conv: Conversation, settings: Settings) -> None:
    """Put the running objects where the handlers look for them."""
    app.bot_data.update({_CONVERSATION: conv, _SETTINGS: settings,
                         _OUTBOX: TelegramOutbox(app.bot),
                         _RESULTS: PublicResults()})  # fmt: skip


def _data(source: Application | ContextTypes.DEFAULT_TYPE) -> dict:
    app = source if isinstance(source, Application) else source.application
    return app.bot_data


def conversation(source: Application | ContextTypes.DEFAULT_TYPE) -> Conversation:
    conv = _data(source)[_CONVERSATION]
    assert isinstance(conv, Conversation)
    return conv


def settings(source: Application | ContextTypes.DEFAULT_TYPE) -> Settings:
    found = _data(source)[_SETTINGS]
    assert isinstance(found, Settings)
    return found


def outbox(source: Application | ContextTypes.DEFAULT_TYPE) -> TelegramOutbox:
    found = _data(source)[_OUTBOX]
    assert isinstance(found, TelegramOutbox)
    return found


def results(source: Application | ContextTypes.DEFAULT_TYPE) -> PublicResults:
    found = _data(source)[_RESULTS]
    assert isinstance(found, PublicResults)
    return found
