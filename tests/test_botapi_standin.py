"""Self-test of the Bot API stand-in (tests/helpers/botapi.py) against a real PTB Bot."""

from __future__ import annotations

import asyncio
import time

import pytest
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    Update,
)
from telegram.error import BadRequest, EndPointNotFound, Forbidden, RetryAfter
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from tests.helpers.botapi import BOT_ID, BOT_USERNAME, BotApiStandIn
from tests.helpers.updates import callback_update, photo_update, text_update

USER = 4242
KEYBOARD = InlineKeyboardMarkup(
    [
        [
            InlineKeyboardButton("Sí", callback_data="q1:yes"),
            InlineKeyboardButton("No", callback_data="q1:no"),
        ]
    ]
)


async def test_get_me_and_send_message_with_keyboard(api: BotApiStandIn, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (BOT_ID, BOT_USERNAME, True)

    first = await bot.send_message(USER, "¿Participas?", reply_markup=KEYBOARD)
    second = await bot.send_message(USER, "Segundo")
    other = await bot.send_message(USER + 1, "Otro chat")
    assert first.reply_markup == KEYBOARD
    assert first.text == "¿Participas?" and first.chat.id == USER and first.from_user.id == BOT_ID
    assert second.message_id == first.message_id + 1 and other.message_id == 1
    assert api.texts_to(USER) == ["¿Participas?", "Segundo"]
    call = api.sent_to(USER)[0]
    assert call.params["chat_id"] == USER
    assert call.params["reply_markup"]["inline_keyboard"][0][1]["callback_data"] == "q1:no"
    assert call.result["message_id"] == first.message_id

    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("noSuchMethod")
    assert api.calls[-1].status == 404


async def test_get_updates_redelivers_until_offset_confirms(api: BotApiStandIn, bot: Bot) -> None:
    api.push_update(text_update(10, USER, "/start"))
    api.push_update(callback_update(11, USER, "q1:yes", message_id=3))
    assert api.push_update(photo_update(0, USER)) == 12  # id 0 means "assign the next one"

    first = await bot.get_updates(timeout=0)
    assert [u.update_id for u in first] == [10, 11, 12]
    assert first[0].message.text == "/start"
    assert first[0].message.entities[0].type == "bot_command"
    assert first[1].callback_query.data == "q1:yes"
    assert first[2].message.photo[-1].width == 1280

    # No new offset sent: everything is delivered again.
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [10, 11, 12]
    # offset=11 confirms update 10 for good.
    assert [u.update_id for u in await bot.get_updates(offset=11, limit=1)] == [11]
    assert api.pending_count() == 2 and api.confirmed_up_to == 11
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [11, 12]
    assert await bot.get_updates(offset=13, timeout=0) == ()
    assert api.pending_count() == 0
    with pytest.raises(ValueError):
        api.push_update(text_update(12, USER, "too old"))


async def test_long_poll_wakes_on_push_and_times_out(api: BotApiStandIn, bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=0.2) == ()
    assert 0.15 < time.monotonic() - started < 1.0

    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.05)
    api.push_update(text_update(1, USER, "hola"))
    started = time.monotonic()
    updates = await poll
    assert time.monotonic() - started < 1.0
    assert [u.message.text for u in updates] == ["hola"]


async def test_callback_answer_and_edits(api: BotApiStandIn, bot: Bot) -> None:
    sent = await bot.send_message(USER, "Pregunta 1", reply_markup=KEYBOARD)
    api.push_update(callback_update(1, USER, "q1:yes", message_id=sent.message_id))
    (update,) = await bot.get_updates()
    assert await bot.answer_callback_query(update.callback_query.id, text="Anotado")
    assert api.calls_of("answerCallbackQuery")[0].params == {
        "callback_query_id": "cbq-1",
        "text": "Anotado",
    }

    edited = await bot.edit_message_text("Pregunta 1: Sí", USER, sent.message_id)
    assert edited.text == "Pregunta 1: Sí" and edited.reply_markup is None
    assert edited.edit_date is not None and edited.message_id == sent.message_id
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("Pregunta 1: Sí", USER, sent.message_id)
    relabelled = await bot.edit_message_reply_markup(USER, sent.message_id, reply_markup=KEYBOARD)
    assert relabelled.reply_markup == KEYBOARD and relabelled.text == "Pregunta 1: Sí"
    assert api.message(USER, sent.message_id)["reply_markup"] == KEYBOARD.to_dict()
    assert api.texts_to(USER) == ["Pregunta 1", "Pregunta 1: Sí"]


async def test_files_are_recorded(api: BotApiStandIn, bot: Bot) -> None:
    doc = await bot.send_document(
        USER, b"id,answer\n1,yes\n", filename="export.csv", caption="Export"
    )
    assert doc.document.file_name == "export.csv" and doc.caption == "Export"
    photo = await bot.send_photo(USER, b"\x89PNG fake")
    assert photo.photo[-1].file_size == 9
    album = await bot.send_media_group(
        USER, [InputMediaDocument(b"a", filename="a.txt"), InputMediaDocument(b"bb", "b.txt")]
    )
    assert [m.document.file_size for m in album] == [1, 2]
    assert len({m.media_group_id for m in album}) == 1

    calls = api.sent_to(USER)
    assert [c.method for c in calls] == ["sendDocument", "sendPhoto", "sendMediaGroup"]
    upload = calls[0].files["document"]
    assert (upload.filename, upload.data) == ("export.csv", b"id,answer\n1,yes\n")
    assert sorted(f.size for f in calls[2].files.values()) == [1, 2]


async def test_flood_control_and_injected_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    # RetryAfter warns about int retry_after unless PTB's timedelta opt-in is set.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    with BotApiStandIn(flood_limit_per_s=3) as api:
        async with Bot(api.token, base_url=api.base_url) as bot:
            for i in range(3):
                await bot.send_message(USER, f"m{i}")
            with pytest.raises(RetryAfter) as caught:
                await bot.send_message(USER, "m3")
            assert caught.value.retry_after.total_seconds() == 1
            assert api.too_many_requests == 1
            assert api.texts_to(USER) == ["m0", "m1", "m2"]
            assert [c.status for c in api.sent_to(USER, include_failed=True)][-1] == 429

    with BotApiStandIn() as api:
        async with Bot(api.token, base_url=api.base_url) as bot:
            api.fail_next(
                "sendMessage", 403, "Forbidden: bot was blocked by the user", chat_id=USER
            )
            await bot.send_message(USER + 1, "a otro")
            with pytest.raises(Forbidden, match="blocked by the user"):
                await bot.send_message(USER, "bloqueado")
            await bot.send_message(USER, "otra vez")
            assert api.texts_to(USER) == ["otra vez"]


async def test_application_polling_round_trip(api: BotApiStandIn) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("¡Hola!", reply_markup=KEYBOARD)

    async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer()
        await query.edit_message_text(f"Elegiste {query.data}")

    app = Application.builder().token(api.token).base_url(api.base_url).build()
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(answer))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        api.push_update(text_update(1, USER, "/start"))
        await api.await_for(lambda: api.texts_to(USER))
        greeting = api.sent_to(USER)[0].result
        api.push_update(callback_update(2, USER, "q1:no", message_id=greeting["message_id"]))
        await api.await_for(lambda: len(api.texts_to(USER)) == 2)
        await app.updater.stop()
        await app.stop()
    assert api.texts_to(USER) == ["¡Hola!", "Elegiste q1:no"]
    assert api.pending_count() == 0 and api.confirmed_up_to == 3
