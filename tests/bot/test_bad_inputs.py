"""Bad inputs at the adapter level: the real Application polling the Bot API stand-in over
HTTP, on a real database (SQLite and PostgreSQL). Each gets a clear answer in one message,
and what is stored does not change (a dump of every table, before and after)."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select
from telegram import Update

from flows.definition import Messages
from storage.models import BadToken, Base, Invitation, Participant, ProcessedUpdate
from tests.helpers.harness import RunningBot, read, walk_to_question_1
from tests.helpers.updates import (
    callback_update,
    channel_post_update,
    contact_update,
    document_update,
    location_update,
    photo_update,
    poll_update,
    sticker_update,
    text_update,
    voice_update,
)

USER, OTHER, ORGANISER = 2001, 2002, 9001
COUNTED = {ProcessedUpdate.__tablename__, BadToken.__tablename__}
"""What bad inputs add to by design: the claims of their update ids, and a bad invitation
token tried (``/start`` with a payload that opens nothing), which the throttle counts."""
UNCHANGING = [t for t in Base.metadata.sorted_tables if t.name not in COUNTED]


def dump(bot: RunningBot) -> dict[str, list[tuple[Any, ...]]]:
    with bot.engine.connect() as conn:
        return {t.name: sorted(map(tuple, conn.execute(select(t))), key=repr) for t in UNCHANGING}


def messages(bot: RunningBot) -> Messages:
    return bot.conversation.definition.messages


async def settle(bot: RunningBot, timeout: float = 10) -> None:
    """Wait until every pushed update is confirmed (applied) and its replies are out."""
    await bot.api.await_for(lambda: bot.api.pending_count() == 0, timeout=timeout)
    await asyncio.sleep(0.1)


async def answers(bot: RunningBot, update: Update, chat_id: int) -> list[str]:
    """Push ``update``; the texts the bot then sent to ``chat_id``."""
    before = len(bot.api.sent_to(chat_id))
    bot.api.push_update(update)
    await settle(bot)
    return [c.params.get("text", "") for c in bot.api.sent_to(chat_id)[before:]]


async def as_organisers(bot: RunningBot, *ids: int) -> None:
    bot.settings = bot.settings.model_copy(update={"consulta_organisers": frozenset(ids)})
    await bot.restart()


async def test_each_bad_input_is_answered_and_changes_nothing(running: RunningBot) -> None:
    m = messages(running)
    p = await walk_to_question_1(running, USER)
    stale_message, _ = p.find_button("c:y")  # the consent message, answered long ago
    before = dump(running)
    new = running.next_id

    for media in (photo_update, sticker_update, voice_update, location_update,
                  document_update, contact_update, poll_update):  # fmt: skip
        replies = await answers(running, media(new(), USER), USER)
        assert replies[0] == m.unsupported, media.__name__
    replies = await answers(running, text_update(new(), USER, "x" * 5000), USER)
    assert replies == [m.text_too_long.format(length=5000, limit=1000)]
    replies = await answers(running, text_update(new(), USER, "/borrar", edited=True), USER)
    assert replies == [m.edited]
    replies = await answers(running, text_update(new(), USER, "/zzz"), USER)
    assert replies == [m.unknown_command.format(name="zzz")]
    for data in ("zz:nothing", "c:y"):  # forged; one that was valid on an old message
        replies = await answers(
            running, callback_update(new(), USER, data, message_id=stale_message), USER
        )
        assert replies[0] == m.stale_button, data
    replies = await answers(running, text_update(new(), USER, "/start " + "A" * 200), USER)
    assert replies[0].startswith(m.invitation_unknown) and m.welcome_back in read(replies)

    group = -USER
    replies = await answers(running, text_update(new(), USER, "/borrar", chat_type="group"),
                            group)  # fmt: skip
    assert len(replies) == 1 and replies[0].startswith(m.private_only)
    channel = -(10**12) - 1
    replies = await answers(running, channel_post_update(new(), "/start"), channel)
    assert len(replies) == 1 and replies[0].startswith(m.private_only)

    # A press that claims to be on a message of another person's chat: nobody gets anything.
    forged = callback_update(new(), OTHER, "q1.w", message_id=stale_message).to_dict()
    forged["callback_query"]["message"]["chat"]["id"] = USER
    sent_before = len(running.api.sent_to(USER)), len(running.api.sent_to(OTHER))
    running.api.push_update(forged)
    await settle(running)
    assert (len(running.api.sent_to(USER)), len(running.api.sent_to(OTHER))) == sent_before
    answered = running.api.calls_of("answerCallbackQuery")[-1].params
    assert answered["callback_query_id"] == f"cbq-{forged['update_id']}"
    assert answered["text"] == m.private_only

    assert dump(running) == before
    with running.conversation.sessions() as s:
        assert len(s.scalars(select(BadToken.id)).all()) == 1  # the 200-character payload


async def test_an_edited_command_never_acts(running: RunningBot) -> None:
    await as_organisers(running, ORGANISER)
    m = messages(running)
    new = running.next_id
    edited = text_update(new(), ORGANISER, "/invitar Ovalle Ana Rojas", edited=True)
    assert await answers(running, edited, ORGANISER) == [m.consent_required]  # not a link
    p = await walk_to_question_1(running, USER)
    edited = text_update(new(), USER, "/no_avisar", edited=True)
    assert await answers(running, edited, USER) == [m.edited]
    with running.conversation.sessions() as s:
        assert s.scalars(select(Participant.notices_opt_out_at)).all() == [None]
    assert await p.send("/no_avisar") == [m.reminders_stopped]
    with running.conversation.sessions() as s:
        assert s.scalars(select(Invitation)).all() == []
    # The same, sent rather than edited, acts.
    replies = await answers(running, text_update(new(), ORGANISER, "/invitar Ovalle Ana Rojas"),
                            ORGANISER)  # fmt: skip
    assert replies[0].startswith("Invitación 1 para Ana Rojas")


async def test_commands_and_buttons_act_only_in_private_chats(running: RunningBot) -> None:
    m = messages(running)
    p = await walk_to_question_1(running, USER)
    new = running.next_id
    group = -USER
    replies = await answers(running, text_update(new(), USER, "/no_avisar", chat_type="group"),
                            group)  # fmt: skip
    assert len(replies) == 1 and replies[0].startswith(m.private_only)
    press = callback_update(new(), USER, "nr").to_dict()  # the reminder's button, in a group
    press["callback_query"]["message"]["chat"] = {"id": group, "type": "group", "title": "G"}
    running.api.push_update(press)
    await settle(running)
    assert running.api.calls_of("answerCallbackQuery")[-1].params["text"] == m.private_only
    with running.conversation.sessions() as s:
        row = s.scalars(select(Participant)).one()
        assert row.notices_opt_out_at is None
    assert running.api.texts_to(USER)[-1] != m.reminders_stopped
    replies = await p.send("/no_avisar")  # in private, it acts
    assert replies == [m.reminders_stopped]


async def test_a_batch_fetched_again_answers_no_command_twice(running: RunningBot) -> None:
    await as_organisers(running, ORGANISER)
    m = messages(running)
    new = running.next_id
    commands = [
        (ORGANISER, "/avance"), (ORGANISER, "/resumen"), (ORGANISER, "/exportar"),
        (ORGANISER, "/digest"), (USER, "/resultados"), (USER, "/no_avisar"), (OTHER, "/avance"),
    ]  # fmt: skip
    updates = [text_update(new(), user, text) for user, text in commands]
    for update in updates:
        running.api.push_update(update)
    await settle(running, timeout=120)  # two digests, charts and themes: seconds of CPU
    first = {uid: len(running.api.sent_to(uid)) for uid in (ORGANISER, USER, OTHER)}
    assert first[USER] == 2 and first[OTHER] == 1
    assert running.api.texts_to(OTHER) == [m.organiser_only]

    await running.stop()  # a new process is given the same batch again
    for update in updates:
        running.api.push_update(update, redeliver=True)
    await running.start()
    await settle(running, timeout=120)  # two digests, charts and themes: seconds of CPU
    assert {uid: len(running.api.sent_to(uid)) for uid in (ORGANISER, USER, OTHER)} == first
