"""Organisers' commands (/invitar, /avance, /digest, /resumen, /exportar) and the commands
and buttons every participant has besides the conversation (/resultados, /no_avisar).

Each handler checks who asks, calls one service and sends its answer.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, ContextTypes, filters

from bot.adapter.context import conversation, outbox, settings
from bot.services import digests, organisers, reminders
from flows.events import Reply

PRIVATE = filters.ChatType.PRIVATE


async def _reply(update: Update, context: ContextTypes.DEFAULT_TYPE, text: str) -> None:
    assert update.effective_chat is not None
    await outbox(context).send(update.effective_chat.id, [Reply(text)])


async def _allowed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """Whether the sender is an organiser; a stranger is told politely, nothing changes."""
    user = update.effective_user
    if organisers.is_organiser(settings(context), user.id if user else None):
        return True
    await _reply(update, context, conversation(context).definition.messages.organiser_only)
    return False


async def on_invite(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/invitar <comuna> <nombre>: a personal link for a municipal contact."""
    if not await _allowed(update, context):
        return
    args = " ".join(context.args or [])
    text = organisers.invite(
        conversation(context), settings(context), args, update.update_id, context.bot.username
    )
    if text is not None:
        await _reply(update, context, text)


async def on_progress(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/avance: participation per comuna."""
    if await _allowed(update, context):
        await _reply(update, context, organisers.progress(conversation(context)))


async def on_digest(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/digest: the full digest now, to the organiser who asked."""
    if not await _allowed(update, context):
        return
    digest = await digests.on_request(conversation(context), settings(context))
    assert update.effective_chat is not None
    await digests.send(outbox(context), update.effective_chat.id, digest)


async def on_summary(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/resumen: the digest's text summary alone."""
    if not await _allowed(update, context):
        return
    digest = await digests.on_request(conversation(context), settings(context), charts=False)
    await _reply(update, context, digests.summary_text(digest))


async def on_export(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/exportar: the full pseudonymous export, as a CSV document."""
    if not await _allowed(update, context):
        return
    document = await digests.export(conversation(context), settings(context))
    assert update.effective_chat is not None
    await outbox(context).send_document(update.effective_chat.id, document)


async def on_results(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/resultados, for anyone: the result table so far, small numbers hidden."""
    text = await digests.results_text(conversation(context), settings(context))
    await _reply(update, context, text)


async def on_stop_reminders(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/no_avisar, /no_recordar or the button on a reminder."""
    user = update.effective_user
    if user is None:
        return
    if update.callback_query is not None:
        await update.callback_query.answer()
    text = reminders.stop(conversation(context), str(user.id))
    if update.effective_chat is not None:
        await _reply(update, context, text)


def command_handlers() -> list[BaseHandler[Update, ContextTypes.DEFAULT_TYPE, None]]:
    """The handlers of this module, tried before the conversation's."""
    return [
        CommandHandler("invitar", on_invite, filters=PRIVATE),
        CommandHandler("avance", on_progress, filters=PRIVATE),
        CommandHandler("digest", on_digest, filters=PRIVATE),
        CommandHandler("resumen", on_summary, filters=PRIVATE),
        CommandHandler("exportar", on_export, filters=PRIVATE),
        CommandHandler("resultados", on_results, filters=PRIVATE),
        CommandHandler(["no_avisar", "no_recordar"], on_stop_reminders),
        CallbackQueryHandler(on_stop_reminders, pattern=f"^{reminders.STOP_DATA}$"),
    ]
