"""bot.adapter.sending sends replies with PTB's public methods: what they send, the errors
they raise, the rate limiter they pass, and what is sent again (only what Telegram surely
did not carry out)."""

from __future__ import annotations

import socket

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.error import BadRequest, Forbidden, TimedOut
from telegram.ext import AIORateLimiter, ExtBot

from bot.adapter.sending import SEND_ATTEMPTS, deliver, keyboard, with_retries
from bot.adapter.transport import AiohttpRequest, NotApplied
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
    # the same edit again: Telegram's "not modified" is no error, and nothing new is sent
    await deliver(bot, USER, [Reply("Anotado", replace=True)], pressed)
    assert len(api.sent_to(USER)) == 3


async def test_a_keyboard_sent_again_is_sent_whole(api: BotApiStandIn, bot: Bot) -> None:
    """Keyboards are made once and their JSON data kept (``sending._Keyboard``): every
    sending carries the same data as PTB's own serialisation, whoever it goes to."""
    buttons = ((Button("Sí", "ag:y"), Button("No", "ag:n")), (Button("Listo", "ok:q1"),))
    expected = InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in row] for row in buttons]
    ).to_dict()
    for chat in (USER, USER + 1, USER):
        await deliver(bot, chat, [Reply("¿De acuerdo?", buttons=buttons)])
    sent = api.sent_to(USER) + api.sent_to(USER + 1)
    assert [call.params["reply_markup"] for call in sent] == [expected] * 3
    assert keyboard(Reply("x", buttons=buttons)) == InlineKeyboardMarkup.de_json(expected, bot)


async def test_a_long_text_is_split_and_the_keyboard_goes_with_the_last_piece(
    api: BotApiStandIn, bot: Bot
) -> None:
    text = "\n".join(f"Línea {n}: " + "x" * 90 for n in range(100))
    await deliver(bot, USER, [Reply(text, buttons=((Button("Listo", "d:ok"),),))])
    pieces = api.sent_to(USER)
    assert len(pieces) == 3 and "\n".join(p.params["text"] for p in pieces) == text
    assert [("reply_markup" in p.params) for p in pieces] == [False, False, True]


async def test_errors_are_ptb_exceptions(api: BotApiStandIn, bot: Bot) -> None:
    api.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user", chat_id=USER)
    with pytest.raises(Forbidden, match="blocked"):
        await deliver(bot, USER, [Reply("x")])
    api.fail_next("sendMessage", 400, "Bad Request: chat not found", chat_id=USER)
    with pytest.raises(BadRequest, match="Chat not found"):
        await deliver(bot, USER, [Reply("x")])
    assert len(api.sent_to(USER, include_failed=True)) == 2  # neither was sent again


async def test_a_reply_whose_answer_timed_out_is_not_sent_again(api: BotApiStandIn) -> None:
    """Telegram sent it; only its answer came too late. Sending again would repeat it."""
    api.answer_late("sendMessage", 1.0)
    async with Bot(api.token, base_url=api.base_url,
                   request=AiohttpRequest(read_timeout=0.2)) as bot:  # fmt: skip
        with pytest.raises(TimedOut):
            await deliver(bot, USER, [Reply("Gracias por participar")])
    await api.await_for(lambda: api.sent_to(USER))
    assert api.texts_to(USER) == ["Gracias por participar"]


async def test_what_surely_was_not_carried_out_is_sent_again(api: BotApiStandIn, bot: Bot) -> None:
    api.fail_next("sendMessage", 500, "Internal Server Error", chat_id=USER)
    api.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    await deliver(bot, USER, [Reply("hola")])
    assert api.texts_to(USER) == ["hola"]
    assert [c.status for c in api.sent_to(USER, include_failed=True)] == [500, 429, 200]

    with socket.socket() as s:  # a port nobody listens on: the connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    request = AiohttpRequest()
    await request.initialize()
    attempts = 0

    async def send() -> object:
        nonlocal attempts
        attempts += 1
        return await request.post(f"http://127.0.0.1:{port}/bot1:x/sendMessage")

    try:
        with pytest.raises(NotApplied):
            await with_retries(send)
    finally:
        await request.shutdown()
    assert attempts == SEND_ATTEMPTS


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
        await bot.answer_callback_query("1")
    assert seen[-2:] == ["sendMessage", "answerCallbackQuery"]
