"""bot.adapter.transport: PTB's requests over aiohttp must reach the Bot API as PTB's own transport
would (JSON parameters, multipart uploads) and fail with PTB's exceptions."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import Forbidden, RetryAfter, TimedOut

from bot.adapter.transport import AiohttpRequest, NotApplied
from tests.helpers.botapi import BotApiStandIn

USER = 4242


@pytest.fixture
async def aio_bot(api: BotApiStandIn) -> AsyncIterator[Bot]:
    async with Bot(api.token, base_url=api.base_url, request=AiohttpRequest()) as bot:
        yield bot


async def test_parameters_arrive_as_sent(api: BotApiStandIn, aio_bot: Bot) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Sí, acepto", callback_data="c:y")]])
    text = "¿Acepta participar? «Región de Coquimbo» — ñandú & 100 %"
    message = await aio_bot.send_message(USER, text, reply_markup=markup)
    (call,) = api.sent_to(USER)
    assert call.params["text"] == text
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "c:y"
    assert message.text == text and message.chat.id == USER  # the answer, parsed by PTB


async def test_uploads_are_multipart(api: BotApiStandIn, aio_bot: Bot) -> None:
    content = bytes(range(256)) * 40
    await aio_bot.send_document(USER, content, filename="resumen.xlsx", caption="Resumen semanal")
    (call,) = api.sent_to(USER)
    assert call.method == "sendDocument" and call.params["caption"] == "Resumen semanal"
    (upload,) = call.files.values()
    assert (upload.filename, upload.data) == ("resumen.xlsx", content)


async def test_api_errors_are_ptb_exceptions(
    api: BotApiStandIn, aio_bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    api.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user", chat_id=USER)
    with pytest.raises(Forbidden, match="blocked"):
        await aio_bot.send_message(USER, "x")
    api.fail_next("sendMessage", 429, "Too Many Requests: retry after 3", retry_after=3)
    with pytest.raises(RetryAfter):
        await aio_bot.send_message(USER, "x")
    api.fail_next("sendMessage", 502, "Bad Gateway")
    with pytest.raises(NotApplied, match="502"):  # Telegram's failure: not carried out
        await aio_bot.send_message(USER, "x")


async def test_a_silent_server_times_out() -> None:
    with socket.socket() as server:  # accepts the connection, never answers
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        request = AiohttpRequest(read_timeout=0.2)
        await request.initialize()
        try:
            with pytest.raises(TimedOut):
                await request.post(f"http://127.0.0.1:{port}/bot1:x/getMe")
        finally:
            await request.shutdown()


async def test_an_unreachable_server_is_a_request_not_applied() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    request = AiohttpRequest()
    await request.initialize()
    try:
        with pytest.raises(NotApplied, match="aiohttp"):  # a NetworkError, for PTB
            await request.post(f"http://127.0.0.1:{port}/bot1:x/getMe")
    finally:
        await request.shutdown()
        await request.shutdown()  # twice is harmless


async def test_unused_before_initialize() -> None:
    with pytest.raises(RuntimeError, match="not initialized"):
        await AiohttpRequest().do_request("http://127.0.0.1:9/x", "POST")
