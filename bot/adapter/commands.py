"""Organisers' commands (/invitar, /avance, /digest, /resumen, /exportar) and the commands
and buttons every participant has besides the conversation (/resultados, /no_avisar).

Each handler checks who asks, calls one service and sends its answer. Each claims its update
id, as the conversation does, so that a batch fetched again is not answered twice.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import CallbackQuery, Update
from telegram.constants import ChatType
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, ContextTypes, filters

from bot.adapter.context import conversation, outbox, results, settings
from bot.services import organisers, reminders, reporting
from flows.events import Reply

log = logging.getLogger(__name__)

Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]
NEW_PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
"""Commands act only when sent, not edited (PTB's CommandHandler also matches edited
messages: an edit is answered by the conversation instead), and only in a private chat (in
a group, an answer would tell everyone who takes part: bot.adapter.handlers.on_group)."""


def private_button(query: CallbackQuery) -> bool:
    """Whether a button was pressed in its presser's own private chat: not in a group, and
    not on a message of another chat (a private chat's id is its user's id)."""
    message = query.message
    return (message is not None and message.chat.type == ChatType.PRIVATE
            and message.chat.id == query.from_user.id)  # fmt: skip


async def acknowledge(query: CallbackQuery, text: str | None = None) -> None:
    """Answer a button press (it stops the button's spinner). A failure changes nothing:
    the spinner stops by itself, and the press still counts."""
    try:
        await query.answer(text)
    except Exception as exc:
        log.info("could not answer callback query: %s", type(exc).__name__)


def once(handler: Handler) -> Handler:
    """``handler``, run only for an update not claimed before. The claim is a transaction of
    its own, taken before the work: for handlers that only read and answer (a reply lost to
    a crash is not repeated). Those that change something claim in the transaction of their
    change (/invitar, /no_avisar)."""

    @functools.wraps(handler)
    async def claimed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if conversation(context).claim(update.update_id):
            await handler(update, context)
        else:
            log.info("update %s already processed; ignored", update.update_id)

    return claimed


async def _reply(update: Update, context: ContextTypes.DEFAULT_TYPE, text: str) -> None:
    assert update.effective_chat is not None
    await outbox(context).send(update.effective_chat.id, [Reply(text)])


def _organiser(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    user = update.effective_user
    return organisers.is_organiser(settings(context), user.id if user else None)


@once
async def _refuse(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A stranger is told politely; nothing changes."""
    await _reply(update, context, conversation(context).definition.messages.organiser_only)


def organisers_only(handler: Handler) -> Handler:
    """``handler`` for the organisers (``organisers.is_organiser``); anyone else is refused."""

    @functools.wraps(handler)
    async def checked(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if _organiser(update, context):
            await handler(update, context)
        else:
            await _refuse(update, context)

    return checked


@organisers_only
async def on_invite(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/invitar <comuna> <nombre>: a personal link for a municipal contact."""
    args = " ".join(context.args or [])
    text = organisers.invite(
        conversation(context), settings(context), args, update.update_id, context.bot.username
    )
    if text is not None:
        await _reply(update, context, text)


@organisers_only
@once
async def on_progress(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/avance: participation per comuna."""
    await _reply(update, context, organisers.progress(conversation(context)))


@organisers_only
@once
async def on_digest(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/digest: the full digest now, to the organiser who asked."""
    digest = await reporting.on_request(conversation(context), settings(context))
    assert update.effective_chat is not None
    await reporting.send(outbox(context), update.effective_chat.id, digest)


@organisers_only
@once
async def on_summary(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/resumen: the digest's text summary alone."""
    digest = await reporting.on_request(conversation(context), settings(context), charts=False)
    await _reply(update, context, reporting.summary_text(digest))


@organisers_only
@once
async def on_export(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/exportar: the full pseudonymous export, as a CSV document."""
    document = await reporting.export(conversation(context), settings(context))
    assert update.effective_chat is not None
    await outbox(context).send_document(update.effective_chat.id, document)


@once
async def on_results(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/resultados, for anyone: the result table so far, small numbers hidden."""
    user = update.effective_user
    if user is None:
        return
    text = await results(context).text(conversation(context), settings(context), str(user.id))
    await _reply(update, context, text)


async def on_stop_reminders(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/no_avisar, /no_recordar or the button on a reminder."""
    user, query = update.effective_user, update.callback_query
    if user is None:
        return
    if query is not None and not private_button(query):
        if conversation(context).claim(update.update_id):
            await acknowledge(query, conversation(context).definition.messages.private_only)
        return
    if query is not None:
        await acknowledge(query)
    text = reminders.stop(conversation(context), str(user.id), update.update_id)
    if text is not None and update.effective_chat is not None:
        await _reply(update, context, text)


def command_handlers() -> list[BaseHandler[Update, ContextTypes.DEFAULT_TYPE, None]]:
    """The handlers of this module, tried before the conversation's."""
    return [
        CommandHandler("invitar", on_invite, filters=NEW_PRIVATE),
        CommandHandler("avance", on_progress, filters=NEW_PRIVATE),
        CommandHandler("digest", on_digest, filters=NEW_PRIVATE),
        CommandHandler("resumen", on_summary, filters=NEW_PRIVATE),
        CommandHandler("exportar", on_export, filters=NEW_PRIVATE),
        CommandHandler("resultados", on_results, filters=NEW_PRIVATE),
        CommandHandler(["no_avisar", "no_recordar"], on_stop_reminders, filters=NEW_PRIVATE),
        CallbackQueryHandler(on_stop_reminders, pattern=f"^{reminders.STOP_DATA}$"),
    ]
