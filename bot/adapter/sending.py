"""Delivering the engine's channel-neutral replies to Telegram, through PTB's public methods
(``send_message``, ``edit_message_text``...), so its rate limiter and error mapping apply.

Texts are sent as plain text (no parse mode): a participant's words are echoed back as data
and can never be read as markup. Long texts are split at line breaks under Telegram's limit.

A request is sent again only when Telegram surely did not act on it (``with_retries``); a
reply whose fate is unknown (its answer timed out, the connection broke after the request
was written) is not repeated, so a participant never gets a message twice, but may get none:
the conversation's state is stored, and the next message the participant writes shows them
where they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    InputMediaPhoto,
    Message,
)
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from bot.adapter.transport import NotApplied
from bot.infra.metrics import SEND_RETRIES
from bot.services.errors import NotDelivered, Unreachable
from bot.services.outbox import Document, Image
from flows.events import Button, Reply
from flows.prompts import as_messages, split_text

log = logging.getLogger(__name__)

MAX_MESSAGE = 4096
SEND_ATTEMPTS = 4
T = TypeVar("T")


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """The reply's buttons as an inline keyboard."""
    return _markup(reply.buttons) if reply.buttons else None


class _Keyboard(InlineKeyboardMarkup):
    """An inline keyboard that works out its JSON data once.

    PTB walks every button of a keyboard (``to_dict``) each time it is sent; a keyboard of
    ours is made once and sent to every participant (``_markup``), and it is immutable, so
    its data can be too. The dict is shared: PTB only reads it, to encode the request.
    """

    __slots__ = ("_data",)

    def __init__(self, rows: Sequence[Sequence[InlineKeyboardButton]]) -> None:
        super().__init__(rows)
        self._data: dict[str, Any] = super().to_dict()

    def to_dict(self, recursive: bool = True) -> dict[str, Any]:
        return self._data if recursive else super().to_dict(recursive)


@functools.lru_cache(maxsize=512)
def _markup(rows: tuple[tuple[Button, ...], ...]) -> InlineKeyboardMarkup:
    """Made once per keyboard: a consultation shows the same few again and again, and PTB's
    objects cost more to build than to send (they are immutable, so sharing them is safe)."""
    return _Keyboard(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in row] for row in rows]
    )


async def with_retries(send: Callable[[], Awaitable[T]]) -> T:
    """Run ``send``, sending again only what Telegram surely did not act on: a request
    refused with ``RetryAfter`` (429) is sent again once the wait is over, one that never
    left or was answered with a server error (``transport.NotApplied``) after a back-off.
    Any other error is raised at once: ``TimedOut`` and other ``NetworkError``s among them,
    since the request may have been carried out (a message sent twice is worse than one
    lost: see the module's docstring)."""
    delay = 0.5
    for attempt in range(1, SEND_ATTEMPTS):
        SEND_RETRIES.inc(attempt > 1)  # /metrics: every try after the first is a retry
        try:
            return await send()
        except RetryAfter as exc:
            wait = exc.retry_after
            seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
            log.warning("Telegram asked to wait %.1f s (attempt %d)", seconds, attempt)
            await asyncio.sleep(seconds)
        except NotApplied as exc:
            log.warning("not sent (%s), trying again in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay *= 2
    SEND_RETRIES.inc()
    return await send()


async def deliver(
    bot: Bot, chat_id: int, replies: Sequence[Reply], pressed: Message | None = None
) -> None:
    """Send ``replies`` in order, joined into as few messages as read well
    (``flows.prompts.as_messages``); a ``replace`` reply edits the message whose button was
    pressed (``pressed``), falling back to a new message if it cannot be edited."""
    for reply in as_messages(replies):
        markup = keyboard(reply)
        if reply.replace and pressed is not None and len(reply.text) <= MAX_MESSAGE:
            message_id = pressed.message_id
            edit = functools.partial(
                bot.edit_message_text, reply.text, chat_id, message_id, reply_markup=markup
            )
            try:
                await with_retries(edit)
                continue
            except BadRequest as exc:
                if "not modified" in str(exc).lower():
                    continue
                log.info("could not edit message %s (%s); sending anew", message_id, exc)
        pieces = split_text(reply.text, MAX_MESSAGE)
        for i, piece in enumerate(pieces):
            last = markup if i == len(pieces) - 1 else None
            send = functools.partial(bot.send_message, chat_id, piece, reply_markup=last)
            await with_retries(send)


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
