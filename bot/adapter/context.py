"""What the handlers find in ``application.bot_data``: the conversation, the settings and
the outbox, put there once by bot.adapter.app.build_application."""

from __future__ import annotations

from telegram.ext import Application, ContextTypes

from bot.adapter.sending import TelegramOutbox
from bot.infra.config import Settings
from bot.services.conversation import Conversation

_CONVERSATION, _SETTINGS, _OUTBOX = "conversation", "settings", "outbox"


def attach(app: Application, conv: Conversation, settings: Settings) -> None:
    """Put the running objects where the handlers look for them."""
    app.bot_data.update({_CONVERSATION: conv, _SETTINGS: settings,
                         _OUTBOX: TelegramOutbox(app.bot)})  # fmt: skip


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
