"""Delivering the engine's channel-neutral replies to Telegram.

Texts are sent as plain text (no parse mode): a participant's words are echoed back as data
and can never be read as markup. Long texts are split at line breaks under Telegram's limit.
Network errors are retried with back-off and ``RetryAfter`` is waited out here, by the call
that got it; PTB's rate limiter (bot/adapter/app.py) only paces the sending.

Replies go through the call every PTB method ends in (its HTTP request, rate limiter and
error mapping: ``Forbidden``, ``RetryAfter``, ``NetworkError``... are raised as by
``send_message``), but the answer is not turned into a ``Message``: nothing reads it, and
building one cost more than the engine (``bench/updates.py --profile``).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from telegram import Bot, InputFile, InputMediaPhoto, Message
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut

from bot.infra.metrics import SEND_RETRIES
from bot.services.errors import NotDelivered, Unreachable
from bot.services.outbox import Document, Image
from flows.events import Reply
from flows.prompts import split_text

log = logging.getLogger(__name__)

MAX_MESSAGE = 4096
SEND_ATTEMPTS = 4
T = TypeVar("T")


async def call(bot: Bot, method: str, params: dict[str, Any]) -> object:
    """Call the Bot API ``method`` through PTB; its answer is returned as JSON.

    ``Bot._post`` is what ``send_message`` & co. and the public ``do_api_request`` call (the
    latter warns for methods PTB has, and pytest turns warnings into errors); with an
    ``ExtBot`` it passes the rate limiter. Private, hence tested: tests/bot/test_render.py.
    """
    return await bot._post(method, params)


def keyboard(reply: Reply) -> dict[str, Any] | None:
    """The reply's buttons as a Bot API ``InlineKeyboardMarkup`` (JSON)."""
    if not reply.buttons:
        return None
    rows = [[{"text": b.label, "callback_data": b.data} for b in row] for row in reply.buttons]
    return {"inline_keyboard": rows}


async def with_retries(send: Callable[[], Awaitable[T]]) -> T:
    """Run ``send``, retrying network errors with exponential back-off and waiting out
    ``RetryAfter``; other errors (Forbidden, BadRequest) are raised at once."""
    delay = 0.5
    for attempt in range(1, SEND_ATTEMPTS + 1):
        SEND_RETRIES.inc(attempt > 1)  # /metrics: every try after the first is a retry
        try:
            return await send()
        except RetryAfter as exc:
            wait = exc.retry_after
            seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
            log.warning("Telegram asked to wait %.1f s (attempt %d)", seconds, attempt)
            await asyncio.sleep(seconds)
        except (TimedOut, NetworkError) as exc:
            if isinstance(exc, BadRequest) or attempt == SEND_ATTEMPTS:
                raise
            log.warning("network error sending (%s), retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay *= 2
    return await send()


async def deliver(
    bot: Bot, chat_id: int, replies: Sequence[Reply], pressed: Message | None = None
) -> None:
    """Send ``replies`` in order; a ``replace`` reply edits the message whose button was
    pressed (``pressed``), falling back to a new message if it cannot be edited."""
    for reply in replies:
        markup = keyboard(reply)
        if reply.replace and pressed is not None and len(reply.text) <= MAX_MESSAGE:
            params = {"chat_id": chat_id, "message_id": pressed.message_id, "text": reply.text}
            if markup is not None:
                params["reply_markup"] = markup
            edit = partial(call, bot, "editMessageText", params)
            try:
                await with_retries(edit)
                continue
            except BadRequest as exc:
                if "not modified" in str(exc).lower():
                    continue
                log.info("could not edit message %s (%s); sending anew", pressed.message_id, exc)
        pieces = split_text(reply.text, MAX_MESSAGE)
        for i, piece in enumerate(pieces):
            params = {"chat_id": chat_id, "text": piece}
            if markup is not None and i == len(pieces) - 1:
                params["reply_markup"] = markup
            await with_retries(partial(call, bot, "sendMessage", params))


class TelegramOutbox:
    """bot.services.outbox.Outbox for Telegram: PTB's bot, with retries, and Telegram's
    errors turned into the services' (a blocked bot is ``Unreachable``)."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, chat_id: int, replies: Sequence[Reply]) -> None:
        async with _as_service_errors():
            await deliver(self.bot, chat_id, replies)

    async def send_images(self, chat_id: int, images: Sequence[Image]) -> None:
        media = [InputMediaPhoto(image.png, caption=image.caption) for image in images]
        async with _as_service_errors():
            await with_retries(lambda: self.bot.send_media_group(chat_id, media))

    async def send_document(self, chat_id: int, document: Document) -> None:
        file = InputFile(io.BytesIO(document.data), filename=document.filename)
        caption = document.caption or None
        async with _as_service_errors():
            await with_retries(lambda: self.bot.send_document(chat_id, file, caption=caption))


@contextlib.asynccontextmanager
async def _as_service_errors() -> AsyncIterator[None]:
    try:
        yield
    except Forbidden as exc:
        raise Unreachable(str(exc)) from exc
    except TelegramError as exc:
        raise NotDelivered(str(exc)) from exc
