"""Harness for tests of the running bot: the real PTB Application of Consulta, polling a
Bot API stand-in over real HTTP on 127.0.0.1, with a real database (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from telegram import Update

import storage
from bot.adapter.app import build_application, serve
from bot.infra.config import Settings
from bot.services.conversation import Conversation
from flows import load
from tests.helpers.botapi import BotApiStandIn
from tests.helpers.updates import callback_update, text_update


def read(replies: list[str]) -> str:
    """The replies as one text, the way the participant reads them: the bot joins short
    replies into one message (flows.prompts.as_messages), so a test of what was said does
    not depend on where one message ends."""
    return "\n\n".join(replies)


class Participant:
    """A simulated person in a private chat: sends texts and presses the buttons it sees."""

    def __init__(self, api: BotApiStandIn, user_id: int, ids: Iterator[int]) -> None:
        self.api, self.user_id, self._ids = api, user_id, ids

    def _received(self) -> int:
        return len(self.api.sent_to(self.user_id))

    async def send(self, text: str) -> list[str]:
        """Send a text and wait until the bot has answered; returns the new texts."""
        return await self.push(text_update(next(self._ids), self.user_id, text))

    async def press(self, label_or_data: str) -> list[str]:
        """Press a button of the newest keyboard, found by its data or its label."""
        message_id, data = self.find_button(label_or_data)
        return await self.push(callback_update(next(self._ids), self.user_id, data,
                                               message_id=message_id))  # fmt: skip

    async def push(self, update: Update) -> list[str]:
        before = self._received()
        self.api.push_update(update)
        await self.api.await_for(lambda: self._received() > before, timeout=10)
        await asyncio.sleep(0.05)  # the rest of the replies of this step
        await self.api.await_for(lambda: self.api.pending_count() == 0, timeout=10)
        return [c.params.get("text", "") for c in self.api.sent_to(self.user_id)[before:]]

    def find_button(self, label_or_data: str) -> tuple[int, str]:
        for call in reversed(self.api.sent_to(self.user_id)):
            markup: dict[str, Any] | None = call.params.get("reply_markup")
            for row in (markup or {}).get("inline_keyboard", []):
                for b in row:
                    if label_or_data in (b["callback_data"], b["text"]):
                        message_id = call.result["message_id"] if isinstance(call.result, dict) \
                            else call.params["message_id"]  # fmt: skip
                        return message_id, b["callback_data"]
        raise AssertionError(f"no button {label_or_data!r} was sent to {self.user_id}")


class RunningBot:
    """Starts and stops the real application; a restart is a new Application on the same
    database, as after a process restart."""

    def __init__(self, api: BotApiStandIn, database_url: str) -> None:
        self.api = api
        self.settings = Settings(
            telegram_bot_token=api.token,
            telegram_base_url=api.base_url,
            database_url=database_url,
            consulta_rate_limit=0,
            _env_file=None,  # type: ignore[call-arg]
        )
        self.engine = storage.make_engine(database_url)
        self.conversation = Conversation(load(), storage.make_sessions(self.engine))
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._ids = iter(range(1, 1_000_000))

    def next_id(self) -> int:
        """A fresh update id, for tests that build updates themselves."""
        return next(self._ids)

    def participant(self, user_id: int) -> Participant:
        return Participant(self.api, user_id, self._ids)

    async def start(self) -> None:
        self._stop = asyncio.Event()
        app = build_application(self.settings, self.conversation)
        self._task = asyncio.create_task(serve(app, self._stop))
        await self.api.await_for(lambda: self.api.calls_of("setMyCommands"), timeout=10)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, timeout=10)
        self._task = None

    async def restart(self) -> None:
        await self.stop()
        self.api.clear_calls()
        await self.start()


async def walk_to_question_1(bot: RunningBot, user_id: int) -> Participant:
    """Consent, profile and question A, leaving the participant at question 1."""
    p = bot.participant(user_id)
    await p.send("/start")
    await p.press("c:y")
    await p.press("Limarí")
    await p.press("Ovalle")
    await p.press("45 a 59")
    await p.press("Prefiero no decirlo")
    await p.press("De acuerdo")
    await p.send("Porque la región ya vive del mundo")
    return p
