"""The throttle of bad invitation tokens lives in the database: replicas share it, a restart
does not reset it, and tries are forgotten once out of the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.services.conversation import Conversation
from flows import load
from flows.events import Start
from storage import invitations
from storage.models import BadToken

ACCOUNT = "2001"


def test_replicas_share_the_throttle_and_a_restart_keeps_it(
    sessions: sessionmaker[Session],
) -> None:
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    defn = load()
    m = defn.messages
    with sessions.begin() as s:
        _, token = invitations.create(s, name="Ana Rojas", institution="Municipalidad de Ovalle",
                                      comuna="ovalle", contact=None, now=now)  # fmt: skip
    one, two = (Conversation(defn, sessions, clock=lambda: now) for _ in range(2))
    for n in range(5):  # alternately on two replicas
        replica = (one, two)[n % 2]
        step = replica.apply_sync(ACCOUNT, Start(invitations.new_token()), update_id=n + 1)
        assert step is not None and step.replies[0].text == m.invitation_unknown

    restarted = Conversation(defn, sessions, clock=lambda: now)
    for replica, update_id in ((one, 10), (two, 11), (restarted, 12)):
        step = replica.apply_sync(ACCOUNT, Start(token), update_id=update_id)
        assert step is not None and step.replies[0].text == m.invitation_throttled

    later = now + restarted.throttle.window + timedelta(seconds=1)
    restarted.clock = lambda: later
    step = restarted.apply_sync(ACCOUNT, Start(token), update_id=13)
    assert step is not None and step.replies[0].text.startswith("Bienvenido/a, Ana Rojas")
    with sessions.begin() as s:
        assert invitations.forget_bad_tokens(s, later - restarted.throttle.window) == 5
        assert s.scalar(select(func.count()).select_from(BadToken)) == 0
