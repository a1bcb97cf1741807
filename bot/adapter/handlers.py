"""Participant handlers: each turns a Telegram update into an engine event, applies it in one
transaction (``Conversation.apply``), then sends the replies. Nothing else happens here."""

from __future__ import annotations

import asyncio
import logging

from telegram import Message, Update
from telegram.error import Forbidden
from telegram.ext import (
    Application,
    BaseHandler,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.adapter import context as running
from bot.adapter.commands import acknowledge, command_handlers, once, private_button
from bot.adapter.sending import deliver, with_retries
from bot.infra.config import Settings
from bot.services.conversation import Conversation
from flows.events import Choice, Command, Edited, Event, Start, Text, Unsupported

log = logging.getLogger(__name__)

PRIVATE = filters.ChatType.PRIVATE
UNSUPPORTED_KINDS = (
    "photo", "sticker", "voice", "video", "video_note", "audio", "document", "location",
    "venue", "contact", "animation", "poll", "dice", "game", "story",
)  # fmt: skip


async def on_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A /command in a private chat: /start (with its payload) or any other, known or not."""
    assert update.message and update.message.text
    word, _, args = update.message.text.partition(" ")
    name = word[1:].split("@", 1)[0].lower()
    event: Event = Start(args.strip()) if name == "start" else Command(name, args.strip())
    await _converse(update, context, event)


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A plain text message: an open answer."""
    assert update.message and update.message.text is not None
    await _converse(update, context, Text(update.message.text))


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A button press: acknowledge it to Telegram while applying it.

    The acknowledgement (it stops the button's spinner) goes out beside the transaction
    rather than before it: the first reply then waits for one round trip fewer.
    """
    query = update.callback_query
    assert query is not None
    if not private_button(query):  # a group's, another chat's: nothing changes
        if running.conversation(context).claim(update.update_id):
            await acknowledge(query, running.conversation(context).definition.messages.private_only)
        return
    acknowledged = asyncio.create_task(acknowledge(query))
    try:
        pressed = query.message if isinstance(query.message, Message) else None
        await _converse(update, context, Choice(query.data or ""), pressed=pressed)
    finally:
        await acknowledged


async def on_edited(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An edited message: answers are changed with /revisar, say so."""
    await _converse(update, context, Edited())


async def on_unsupported(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo, sticker, voice note, location, file...: nothing is stored."""
    message = update.message
    kind = next((k for k in UNSUPPORTED_KINDS if message and getattr(message, k, None)), "other")
    await _converse(update, context, Unsupported(kind))


@once
async def on_group(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A command in a group or a channel: it does nothing there; the bot says once (for this
    update) that it works in private chats."""
    message = update.effective_message
    assert message is not None
    text = running.conversation(context).definition.messages.private_only
    username = context.bot.username
    await with_retries(lambda: message.reply_text(f"{text} @{username}" if username else text))


async def _converse(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    event: Event,
    pressed: Message | None = None,
) -> None:
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        return
    conv = running.conversation(context)
    result = await conv.apply(str(user.id), event, update.update_id)
    if result is None:
        log.info("update %s already processed; ignored", update.update_id)
        return
    try:
        await deliver(context.bot, chat.id, result.replies, pressed)
    except Forbidden as exc:
        # Blocked by the user: their state stays; log it once, not on every attempt.
        if conv.mark_unreachable(str(user.id)):
            log.warning("participant unreachable (%s); state kept", exc)


def participant_handlers() -> list[BaseHandler[Update, ContextTypes.DEFAULT_TYPE, None]]:
    """The handlers of participants' messages, in the order they must be tried."""
    return [
        CallbackQueryHandler(on_button),
        MessageHandler(filters.UpdateType.EDITED_MESSAGE & PRIVATE, on_edited),
        MessageHandler(filters.UpdateType.MESSAGE & PRIVATE & filters.COMMAND, on_command),
        MessageHandler(filters.UpdateType.MESSAGE & PRIVATE & filters.TEXT, on_text),
        MessageHandler(filters.UpdateType.MESSAGE & PRIVATE, on_unsupported),
        MessageHandler(filters.UpdateType.MESSAGE & ~PRIVATE & filters.COMMAND, on_group),
        MessageHandler(filters.UpdateType.CHANNEL_POST & filters.COMMAND, on_group),
    ]


def register(application: Application, conv: Conversation, settings: Settings) -> None:
    """All handlers: organisers' and the other commands first, then participants'."""
    running.attach(application, conv, settings)
    application.add_handlers([*command_handlers(), *participant_handlers()])
