"""Invited municipal contacts and organiser commands, through the real PTB Application, real
HTTP to the Bot API stand-in and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

import storage
from bot.services.conversation import Conversation
from flows import load
from flows.definition import Messages
from flows.events import Choice
from reports.export import answers_frame
from storage import invitations
from storage.models import Invitation, Participant, ProcessedUpdate
from tests.helpers import harness
from tests.helpers.harness import RunningBot, read
from tests.helpers.updates import text_update

ORGANISER = 9001
STRANGER = 3001
LINK = re.compile(r"https://t\.me/consulta_test_bot\?start=([A-Za-z0-9_-]{22,64})")
COMUNAS = [
    "La Serena", "Coquimbo", "Andacollo", "La Higuera", "Paihuano", "Vicuña", "Ovalle",
    "Combarbalá", "Monte Patria", "Punitaqui", "Río Hurtado", "Illapel", "Canela", "Los Vilos",
    "Salamanca",
]  # fmt: skip


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def messages(bot: RunningBot) -> Messages:
    return bot.conversation.definition.messages


def invite(
    bot: RunningBot,
    name: str = "Ana Rojas",
    comuna: str = "ovalle",
    *,
    now: datetime | None = None,
) -> tuple[int, str]:
    label = next(
        c.label for c in bot.conversation.definition.consultation.profile.comunas()
        if c.id == comuna
    )  # fmt: skip
    with bot.conversation.sessions.begin() as s:
        invitation, token = invitations.create(
            s, name=name, institution=f"Municipalidad de {label}", comuna=comuna, contact=None,
            now=now or bot.conversation.clock(),
        )  # fmt: skip
        return invitation.id, token


def invitation(bot: RunningBot, invitation_id: int) -> Invitation:
    with bot.conversation.sessions() as s:
        row = s.get(Invitation, invitation_id)
        assert row is not None
        return row


def participant(bot: RunningBot, user_id: int) -> Participant | None:
    with bot.conversation.sessions() as s:
        return s.scalars(
            select(Participant)
            .where(Participant.external_id == str(user_id))
            .options(selectinload(Participant.answers))
        ).one_or_none()


def count(bot: RunningBot, model: type) -> int:
    with bot.conversation.sessions() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def consent_buttons(bot: RunningBot, user_id: int) -> list[str]:
    markup = bot.api.sent_to(user_id)[-1].params["reply_markup"]
    return [b["callback_data"] for row in markup["inline_keyboard"] for b in row]


async def as_organisers(bot: RunningBot, *ids: int) -> None:
    bot.settings = bot.settings.model_copy(update={"consulta_organisers": frozenset(ids)})
    await bot.restart()


async def test_an_invited_contact_answers_for_their_comuna(running: RunningBot) -> None:
    inv_id, token = invite(running, "Ana Rojas", "ovalle")
    defn = running.conversation.definition
    p = running.participant(2001)
    replies = await p.send(f"/start {token}")
    assert replies[0].startswith("Bienvenido/a, Ana Rojas, de Municipalidad de Ovalle (Ovalle).")
    assert replies[-1] == defn.consultation.consent  # the same consent as everyone
    assert consent_buttons(running, 2001) == [f"c:y:{token}", "c:n"]
    assert participant(running, 2001) is None  # nothing stored before consent

    replies = await p.press("Sí, acepto participar")
    assert replies[0].startswith(messages(running).consent_thanks_municipal)
    assert "\n\nPregunta A" in read(replies)
    await p.press("De acuerdo")
    await p.send("Ovalle exporta al mundo")
    await p.send("Un puerto seco en Ovalle")  # question 1: a desirable change
    await p.press("Producción")
    await p.press("Siguiente pregunta ➡️")
    for _ in range(3):  # questions 2 to 4
        await p.send("/omitir")
    await p.press("1. «Un puerto seco en Ovalle» (Pro…")  # question 5: the change is possible
    await p.press("Listo ✔️")
    replies = await p.press("Omitir ⏭")
    assert "Muchas gracias" in replies[-1]
    texts = running.api.texts_to(2001)
    assert not any(messages(running).ask_province in t for t in texts)  # no profile questions
    assert not any(messages(running).ask_age_band in t for t in texts)

    row = participant(running, 2001)
    assert row is not None and row.finished_at is not None
    assert (row.role, row.comuna, row.age_band, row.gender) == ("municipal", "ovalle", None, None)
    inv = invitation(running, inv_id)
    assert (inv.claimed_by, inv.participant_id) == ("2001", row.id)
    with running.conversation.sessions() as s:
        frame = answers_frame(s, defn, running.settings.zone)
    assert len(frame) == 3
    assert set(frame["role"]) == {"municipal"} and set(frame["comuna"]) == {"Ovalle"}
    assert "Un puerto seco en Ovalle" in set(frame["text"])

    replies = await p.send(f"/start {token}")  # their own link again: welcome back
    assert replies[0].startswith(messages(running).welcome_back)
    assert invitation(running, inv_id).claimed_by == "2001"


async def test_a_used_link_offers_the_citizen_flow_to_another_account(
    running: RunningBot,
) -> None:
    inv_id, token = invite(running)
    owner, late, other = (running.participant(u) for u in (2001, 2002, 2003))
    await owner.send(f"/start {token}")
    await late.send(f"/start {token}")  # opened before the owner consented: greeted too
    assert consent_buttons(running, 2002)[0] == f"c:y:{token}"
    await owner.press("Sí, acepto participar")

    # The token is checked again at the consent button: the link is used by now.
    replies = await late.press(f"c:y:{token}")
    assert replies[0].startswith(messages(running).invitation_used)
    assert consent_buttons(running, 2002) == ["c:y", "c:n"]
    assert participant(running, 2002) is None

    replies = await other.send(f"/start {token}")
    assert replies[0].startswith(messages(running).invitation_used)
    assert "Ana Rojas" not in " ".join(replies)
    replies = await other.press("c:y")
    assert messages(running).ask_province in replies[-1]  # a citizen, with the profile
    row = participant(running, 2003)
    assert row is not None and row.role == "citizen"
    assert invitation(running, inv_id).claimed_by == "2001"
    owner_row = participant(running, 2001)
    assert owner_row is not None and owner_row.role == "municipal"


async def test_expired_revoked_and_forged_links_get_a_message_and_the_citizen_flow(
    running: RunningBot,
) -> None:
    clock = Clock(datetime.now(UTC))
    running.conversation.clock = clock
    expired_id, expired = invite(running, "Beto")
    short_id, short = invite(running, "Carla")
    with running.conversation.sessions.begin() as s:
        assert invitations.revoke(s, short_id, clock()) is not None
    clock.at += timedelta(days=30, minutes=1)  # the default validity is 30 days
    m = messages(running)
    cases = [
        (2001, expired, m.invitation_expired),
        (2002, short, m.invitation_revoked),
        (2003, invitations.new_token(), m.invitation_unknown),
        (2004, expired[:-3], m.invitation_unknown),
        (2005, "<b>no</b>" * 10, m.invitation_unknown),
    ]
    for user_id, token, expected in cases:
        p = running.participant(user_id)
        replies = await p.send(f"/start {token}")
        assert replies[0].startswith(expected), user_id
        consultation = running.conversation.definition.consultation
        assert read(replies) == "\n\n".join([expected, consultation.welcome, consultation.consent])
        assert consent_buttons(running, user_id) == ["c:y", "c:n"]
    replies = await running.participant(2001).press("c:y")
    assert m.ask_province in replies[-1]
    assert all(invitation(running, i).claimed_by is None for i in (expired_id, short_id))
    assert count(running, Participant) == 1


async def test_repeated_bad_tokens_are_rate_limited(running: RunningBot) -> None:
    clock = Clock(datetime.now(UTC))
    running.conversation.clock = clock
    inv_id, token = invite(running)
    m = messages(running)
    p = running.participant(2001)
    for _ in range(5):
        replies = await p.send(f"/start {invitations.new_token()}")
        assert replies[0].startswith(m.invitation_unknown)
    replies = await p.send(f"/start {token}")  # even a good one, for a while
    assert replies[0].startswith(m.invitation_throttled)
    assert consent_buttons(running, 2001) == ["c:y", "c:n"]
    assert invitation(running, inv_id).claimed_by is None
    replies = await running.participant(2002).send(f"/start {invitations.new_token()}")
    assert replies[0].startswith(m.invitation_unknown)  # other accounts are not affected

    clock.at += timedelta(minutes=16)
    replies = await p.send(f"/start {token}")
    assert replies[0].startswith("Bienvenido/a, Ana Rojas")
    await p.press("Sí, acepto participar")
    assert invitation(running, inv_id).claimed_by == "2001"


async def test_a_citizen_opening_their_invitation_keeps_their_answers(
    running: RunningBot,
) -> None:
    p = await harness.walk_to_question_1(running, 1001)  # a citizen of Ovalle, question A done
    await p.press("Una relación de cooperación con Perú")
    inv_id, token = invite(running, "Luis Pérez", "coquimbo")
    replies = await p.send(f"/start {token}")
    assert replies[0].startswith(
        messages(running).invitation_upgraded.format(
            name="Luis Pérez", institution="Municipalidad de Coquimbo", comuna="Coquimbo"
        )
    )
    assert "\n\nPregunta 1" in read(replies)  # where they were
    await p.send("Un convenio con Antofagasta")
    row = participant(running, 1001)
    assert row is not None
    assert (row.role, row.comuna, row.age_band) == ("municipal", "coquimbo", "e45_59")
    assert [a.key for a in row.answers] == ["a", "q1.o.peru", "q1.t1"]
    assert row.answers[0].text == "Porque la región ya vive del mundo"
    assert (invitation(running, inv_id).claimed_by, invitation(running, inv_id).participant_id) \
        == ("1001", row.id)  # fmt: skip

    # A citizen still in the profile questions skips the rest of them.
    q = running.participant(1002)
    await q.send("/start")
    await q.press("c:y")
    _, token2 = invite(running, "Marta Díaz", "canela")
    replies = await q.send(f"/start {token2}")
    assert replies[0].startswith("Bienvenido/a, Marta Díaz")
    assert "\n\nPregunta A" in read(replies)
    row2 = participant(running, 1002)
    assert row2 is not None and (row2.role, row2.comuna, row2.stage) == (
        "municipal", "canela", "questions"
    )  # fmt: skip


async def test_a_stranger_cannot_use_organiser_commands(running: RunningBot) -> None:
    await as_organisers(running, ORGANISER)
    stranger = running.participant(STRANGER)
    for command in ("/invitar Ovalle Ana Rojas", "/avance", "/invitar"):
        replies = await stranger.send(command)
        assert replies == [messages(running).organiser_only], command
    assert count(running, Invitation) == 0
    assert count(running, Participant) == 0
    assert count(running, ProcessedUpdate) == 3  # claimed: a redelivery is not answered again


async def test_an_organiser_invites_and_follows_progress(running: RunningBot) -> None:
    await as_organisers(running, ORGANISER)
    org = running.participant(ORGANISER)
    update = text_update(running.next_id(), ORGANISER, "/invitar monte patria Ana Rojas")
    (reply,) = await org.push(update)
    assert "Ana Rojas (Municipalidad de Monte Patria)" in reply
    match = LINK.search(reply)
    assert match is not None, reply
    token = match.group(1)

    # Telegram delivers the same update again after a crash: no second invitation.
    await running.restart()
    running.api.push_update(update, redeliver=True)
    await running.api.await_for(lambda: running.api.pending_count() == 0, timeout=10)
    assert running.api.sent_to(ORGANISER) == []
    with running.conversation.sessions() as s:
        (inv,) = s.scalars(select(Invitation)).all()
        assert (inv.name, inv.comuna, inv.institution) == (
            "Ana Rojas", "monte_patria", "Municipalidad de Monte Patria"
        )  # fmt: skip
        assert invitations.find(s, token) is not None

    assert (await org.send("/invitar"))[0] == messages(running).invite_usage
    assert (await org.send("/invitar Atlántida Ana"))[0].startswith("No reconozco la comuna")
    assert (await org.send("/invitar Ovalle"))[0] == messages(running).invite_usage
    assert count(running, Invitation) == 1

    contact = running.participant(2001)
    replies = await contact.send(f"/start {token}")
    assert replies[0].startswith("Bienvenido/a, Ana Rojas, de Municipalidad de Monte Patria")
    await contact.press("Sí, acepto participar")
    citizen = running.participant(1001)  # a citizen of Ovalle, in the profile questions
    for step in ("/start", "c:y", "Limarí", "Ovalle"):
        await (citizen.send(step) if step.startswith("/") else citizen.press(step))

    (progress,) = await org.send("/avance")
    lines = progress.splitlines()
    for label in COMUNAS:
        assert sum(line.startswith(f"{label}: ") for line in lines) == 1, label
    # people who joined are rounded to base 5 (reports.disclosure); invitations are not
    assert "Monte Patria: 1 / 5 / 0 · 0 / 0" in lines
    assert "Ovalle: 0 / 0 / 0 · 5 / 0" in lines
    assert "Canela: 0 / 0 / 0 · 0 / 0" in lines
    assert "Total: 5 participantes, 0 terminaron. (cifras redondeadas a múltiplos de 5)" in lines


def press_together(
    conv: Conversation, token: str, accounts: list[str], first_update: int
) -> dict[str, list[str]]:
    """Every account presses the invitation's consent button at the same moment."""
    barrier = threading.Barrier(len(accounts))
    replies: dict[str, list[str]] = {}

    def press(who: str, update_id: int) -> None:
        barrier.wait()
        result = conv.apply_sync(who, Choice(f"c:y:{token}"), update_id)
        replies[who] = [r.text for r in result.replies] if result else []

    threads = [
        threading.Thread(target=press, args=(who, first_update + i))
        for i, who in enumerate(accounts)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return replies


def test_two_accounts_pressing_consent_at_once(database_url: str) -> None:
    """Both opened the link, both press its consent button at the same moment: one gets it,
    the other is told the link is used, and nothing of theirs is stored."""
    engine = storage.make_engine(database_url)
    try:
        conv = Conversation(load(), storage.make_sessions(engine))
        m = conv.definition.messages
        for round_ in range(4):
            with conv.sessions.begin() as s:
                inv, token = invitations.create(
                    s, name="Ana", institution="Municipalidad de Ovalle", comuna="ovalle",
                    contact=None, now=conv.clock(),
                )  # fmt: skip
                inv_id = inv.id
            accounts = [f"{round_}01", f"{round_}02"]
            replies = press_together(conv, token, accounts, 10 * round_ + 1)
            with conv.sessions() as s:
                owner = s.get(Invitation, inv_id)
                assert owner is not None and owner.claimed_by in accounts
                query = select(Participant).where(Participant.external_id.in_(accounts))
                stored = {p.external_id: p.role for p in s.scalars(query)}
            (loser,) = [w for w in accounts if w != owner.claimed_by]
            assert stored == {owner.claimed_by: "municipal"}
            assert replies[owner.claimed_by][0] == m.consent_thanks_municipal
            assert replies[loser][0] == m.invitation_used
    finally:
        engine.dispose()
