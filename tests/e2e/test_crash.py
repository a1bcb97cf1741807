"""Crash test: the bot as a real process (``python -m bot run``) killed with SIGKILL at
random moments while 100 participants go through the consultation, restarted each time.
Telegram (the stand-in) redelivers what was not confirmed; at the end no answer is lost or
stored twice, and everyone is where an offline run of the same events puts them."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from telegram import Update

import storage
from flows import Definition, State, load, step
from flows.buttons import Consent
from flows.events import Answer, Choice, Command, Event, Start, Text
from storage.models import ProcessedUpdate
from tests.helpers.botapi import BotApiStandIn
from tests.helpers.process import BotProcess
from tests.helpers.updates import callback_update, text_update

PARTICIPANTS = 100
EVENTS = (5, 20)  # events per participant, at random in this range
KILLS = 10
CALLS_BEFORE_KILL = (1, 250)
"""A run is killed after this many API calls (at random in the range): a batch of 100
updates makes about 200, so kills land before, during and after commits, in the first
batch a run fetches or in a later one. The ten budgets together (1,446 with this seed) stay
well under the calls of the whole run (1,204 updates: ~1,400 messages, ~800 button answers,
the polls), so that every kill falls while updates are still in flight."""
SEED = 20261125
TEXTS = (
    "Más intercambio con Argentina",
    "Puerto de Coquimbo abierto al Pacífico",
    "Becas para estudiar en el extranjero",
    "Turismo astronómico en el valle de Elqui",
    "Agua para la agricultura",
)
COMMANDS = ("omitir", "menu", "revisar", "ayuda", "cancelar", "privacidad")


@dataclass
class Script:
    """One participant's events, each valid for the buttons shown before it, and where an
    offline run of them through the engine ends."""

    user_id: int
    events: list[Event] = field(default_factory=list)
    state: State | None = None


def write_script(defn: Definition, user_id: int, rng: random.Random) -> Script:
    """Press the buttons of the latest keyboard mostly, sometimes an older one, write texts
    and commands; the engine, run offline, says what each event does."""
    script = Script(user_id)
    shown: list[str] = []  # every button's data shown so far, the latest keyboard last
    latest: list[str] = []

    def apply(event: Event) -> None:
        nonlocal latest
        script.events.append(event)
        result = step(defn, script.state, event)
        script.state = result.state
        for reply in result.replies:
            if reply.buttons:
                latest = [b.data for row in reply.buttons for b in row]
                shown.extend(latest)

    apply(Start())
    apply(Choice(Consent(True).encode()))
    for n in range(rng.randint(*EVENTS) - 2):
        roll = rng.random()
        if roll < 0.7 and latest:
            apply(Choice(rng.choice(latest)))
        elif roll < 0.75 and shown:
            apply(Choice(rng.choice(shown)))  # an old button: refused, changes nothing
        elif roll < 0.92:
            apply(Text(f"{rng.choice(TEXTS)} ({user_id}.{n})"))
        else:
            apply(Command(rng.choice(COMMANDS)))
    return script


def to_update(update_id: int, user_id: int, event: Event) -> Update:
    if isinstance(event, Choice):  # message ids differ, so that edits change something
        return callback_update(update_id, user_id, event.data, message_id=update_id)
    if isinstance(event, Start):
        return text_update(update_id, user_id, "/start")
    if isinstance(event, Command):
        return text_update(update_id, user_id, f"/{event.name}")
    assert isinstance(event, Text)
    return text_update(update_id, user_id, event.text)


def interleave(scripts: list[Script], rng: random.Random) -> list[Update]:
    """Everyone's updates in one queue, as they would reach Telegram: each participant's in
    order, participants mixed at random."""
    queues = {s.user_id: list(s.events) for s in scripts}
    updates: list[Update] = []
    while queues:
        user_id = rng.choice(list(queues))
        updates.append(to_update(len(updates) + 1, user_id, queues[user_id].pop(0)))
        if not queues[user_id]:
            del queues[user_id]
    return updates


def comparable(answers: tuple[Answer, ...]) -> dict[str, Answer]:
    return {a.key: a for a in answers}


def test_killed_at_random_the_bot_loses_and_repeats_nothing(
    api: BotApiStandIn, database_url: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    defn = load()
    rng = random.Random(SEED)
    scripts = [write_script(defn, 10_000 + i, rng) for i in range(PARTICIPANTS)]
    updates = interleave(scripts, rng)
    for update in updates:
        api.push_update(update)

    bot = BotProcess(api, database_url, tmp_path)
    kills_in_flight = 0
    confirmed_at_kills: list[int] = []
    try:
        for _ in range(KILLS):
            calls = len(api.calls)
            bot.start()
            budget = rng.randint(*CALLS_BEFORE_KILL)
            api.wait_for(lambda c=calls, b=budget: len(api.calls) >= c + b or not bot.running(),
                         timeout=60)  # fmt: skip
            assert bot.running(), bot.tail()
            kills_in_flight += api.pending_count() > 0
            bot.kill()
            confirmed_at_kills.append(api.confirmed_up_to)
        bot.start()  # the last run finishes the queue and stops cleanly
        api.wait_for(lambda: api.pending_count() == 0 or not bot.running(), timeout=120)
        assert bot.running(), bot.tail()
        assert bot.stop() == 0, bot.tail()
    finally:
        bot.kill()
    assert kills_in_flight == KILLS  # every kill found updates still unconfirmed
    assert len(set(confirmed_at_kills)) > 1  # not all in the same batch

    # Telegram redelivered: some updates were fetched more than once
    fetched = [u["update_id"] for c in api.calls_of("getUpdates") if c.ok for u in c.result]
    assert set(fetched) == {u.update_id for u in updates}
    assert len(fetched) > len(updates)

    engine = storage.make_engine(database_url)
    try:
        with storage.make_sessions(engine)() as session:
            claimed = session.scalars(select(ProcessedUpdate.update_id)).all()
            assert sorted(claimed) == [u.update_id for u in updates]  # each applied once
            for script in scripts:
                stored = storage.load(session, "telegram", str(script.user_id)).state
                assert stored is not None and script.state is not None
                # same answers, none lost, none twice (a repeated text would add a change)
                assert comparable(stored.answers) == comparable(script.state.answers), (
                    script.user_id
                )
                assert len(stored.answers) == len(script.state.answers)
                assert stored.to_dict() == script.state.to_dict(), script.user_id
    finally:
        engine.dispose()
    print(f"{len(updates)} updates, {len(fetched) - len(updates)} redelivered, {KILLS} kills, "
          f"{time.monotonic() - started:.1f} s")  # fmt: skip
