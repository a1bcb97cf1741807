"""bot.adapter.sending sends replies through PTB's private ``Bot._post`` (no ``Message`` built
from the answer): it must still raise PTB's exceptions, pass the rate limiter and send what
``send_message``/``edit_message_text`` would."""

from __future__ import annotations

import pytest
from telegram import Bot, Message
from telegram.error import BadRequest, Forbidden, RetryAfter
from telegram.ext import AIORateLimiter, ExtBot

from bot.adapter.sending import call, deliver
from flows.events import Button, Reply
from tests.helpers.botapi import BotApiStandIn

USER = 4242


async def test_replies_with_keyboard_and_edit(api: BotApiStandIn, bot: Bot) -> None:
    buttons = ((Button("Sí", "ag:y"), Button("No", "ag:n")),)
    await deliver(bot, USER, [Reply("¿De acuerdo?", buttons=buttons), Reply("Segundo")])
    first, second = api.sent_to(USER)
    assert (first.method, first.params["text"]) == ("sendMessage", "¿De acuerdo?")
    assert first.params["reply_markup"]["inline_keyboard"][0][1] == {
        "text": "No",
        "callback_data": "ag:n",
    }
    assert "reply_markup" not in second.params and "parse_mode" not in second.params
    pressed = Message.de_json(first.result, bot)
    assert pressed is not None
    await deliver(bot, USER, [Reply("Anotado", replace=True)], pressed)
    assert api.message(USER, pressed.message_id)["text"] == "Anotado"  # type: ignore[index]
    assert len(api.sent_to(USER)) == 3


async def test_errors_are_ptb_exceptions(api: BotApiStandIn, bot: Bot) -> None:
    api.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user", chat_id=USER)
    with pytest.raises(Forbidden, match="blocked"):
        await call(bot, "sendMessage", {"chat_id": USER, "text": "x"})
    api.fail_next("editMessageText", 400, "Bad Request: message is not modified")
    with pytest.raises(BadRequest, match="not modified"):
        await call(bot, "editMessageText", {"chat_id": USER, "message_id": 1, "text": "x"})


async def test_retry_after_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    with BotApiStandIn(flood_limit_per_s=1) as api:
        async with Bot(api.token, base_url=api.base_url) as bot:
            await call(bot, "sendMessage", {"chat_id": USER, "text": "a"})
            with pytest.raises(RetryAfter):
                await call(bot, "sendMessage", {"chat_id": USER, "text": "b"})


async def test_the_rate_limiter_applies(api: BotApiStandIn) -> None:
    seen: list[str] = []

    class Counting(AIORateLimiter):
        async def process_request(self, callback, args, kwargs, endpoint, data, rate_limit_args):  # type: ignore[no-untyped-def, override]
            seen.append(endpoint)
            return await super().process_request(
                callback, args, kwargs, endpoint, data, rate_limit_args
            )

    async with ExtBot(api.token, base_url=api.base_url, rate_limiter=Counting()) as bot:
        await deliver(bot, USER, [Reply("hola")])
        await call(bot, "answerCallbackQuery", {"callback_query_id": "1"})
    assert seen[-2:] == ["sendMessage", "answerCallbackQuery"]
