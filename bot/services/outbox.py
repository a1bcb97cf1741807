"""The port through which services send messages; the adapter implements it for Telegram
(bot.adapter.sending.TelegramOutbox), tests and rehearsals may implement it otherwise.

An implementation retries what is worth retrying itself and raises
``bot.services.errors.Unreachable`` or ``NotDelivered`` when it gives up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from flows.events import Reply


@dataclass(frozen=True)
class Image:
    """A PNG picture with its caption (a chart of a digest)."""

    png: bytes
    caption: str


@dataclass(frozen=True)
class Document:
    """A file to send (a spreadsheet, an export)."""

    data: bytes
    filename: str
    caption: str = ""


class Outbox(Protocol):
    """Where services send what they have to say to a chat."""

    async def send(self, chat_id: int, replies: Sequence[Reply]) -> None:
        """Send ``replies`` in order, as plain text with their buttons."""

    async def send_images(self, chat_id: int, images: Sequence[Image]) -> None:
        """Send ``images`` as one album (at most 10)."""

    async def send_document(self, chat_id: int, document: Document) -> None:
        """Send ``document`` as a file."""
