"""Disclosure control: an attacker who subtracts every published total from its parts, on
random databases, never gets a count of 1 to 4 people."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from itertools import chain
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

import storage
from bot.services.conversation import Conversation
from bot.services.organisers import progress
from flows import load
from reports import digest, disclosure
from storage.models import Participant

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_rounding() -> None:
    assert [disclosure.people(n) for n in (0, 1, 2, 4, 7, 8, 12, 13, 58, 55, 72, 71)] == [
        0, 5, 5, 5, 5, 10, 10, 15, 60, 55, 70, 70,
    ]  # fmt: skip
    assert disclosure.share(3, 4) is None  # fewer than 5 people: no share
    assert disclosure.share(8, 10) == 10 / (10 + 5)  # from rounded parts only
    assert disclosure.percent(8, 10) == "67%"


def populate(engine: Engine, seed: int) -> None:
    """20–150 consenting people, spread unevenly so that some comunas have 1–4, with ages,
    genders and roles drawn at random (some not given)."""
    rng = random.Random(seed)
    p = load().consultation.profile
    places = [c.id for c in p.comunas()] + [None]
    weights = [rng.choice((0, 0.2, 1, 3, 8)) for _ in places]
    ages = [o.id for o in p.age_bands] + [None]
    genders = [o.id for o in p.genders] + [None]
    with storage.make_sessions(engine).begin() as s:
        for i in range(rng.randint(20, 150)):
            s.add(Participant(
                channel="t", external_id=str(i), code=f"P{i:07d}", stage="done",
                role="municipal" if rng.random() < 0.1 else "citizen",
                comuna=rng.choices(places, [w + 0.01 for w in weights])[0],
                age_band=rng.choice(ages), gender=rng.choice(genders), state={},
                consented_at=T0, finished_at=T0 if rng.random() < 0.6 else None,
                created_at=T0, updated_at=T0,
            ))  # fmt: skip


def number(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    assert found is not None, (pattern, text)
    return int(found.group(1))


def relations(d: digest.Digest, avance: str) -> list[tuple[int, list[int]]]:
    """Every published total with the published parts it is the sum of (in truth)."""
    chart = d.participation
    region = number(r"· (\d+) participantes", d.period)
    found = [
        (region, [*chart["citizens"], *chart["municipal"]]),
        (number(r"\((\d+) contactos municipales\)", d.summary), list(chart["municipal"])),
        (number(r"terminaron: (\d+)", d.summary), list(chart["finished"])),
        (number(r"Total: (\d+) participantes", avance), [*chart["citizens"], *chart["municipal"]]),
    ]
    joined = {}
    for line in avance.splitlines():
        m = re.match(r"(.+): \d+ / (\d+) / \d+ · (\d+) / \d+$", line)
        if m:
            joined[m.group(1)] = int(m.group(3))
    rows = {name: table.set_index("Comuna") for name, table in d.profile.items()}
    for place in chart.index:
        total = int(chart.loc[place, "citizens"] + chart.loc[place, "municipal"])
        if place in joined:  # /avance and the chart count the same citizens
            found.append((joined[place], [int(chart.loc[place, "citizens"])]))
        for table in rows.values():
            if place in table.index:
                cells = [int(v) for v in table.loc[place]]
                found.append((total, cells))
                # the same people by the other variable: a partition of the same total
                other = [t for t in rows.values() if t is not table and place in t.index]
                found += [(sum(int(v) for v in t.loc[place]), cells) for t in other]
    return found


@pytest.mark.parametrize("seed", range(8))
def test_subtracting_published_totals_never_gives_1_to_4(engine: Engine, seed: int) -> None:
    populate(engine, seed)
    definition = load()
    sessions = storage.make_sessions(engine)
    conv = Conversation(definition, sessions, clock=lambda: T0 + timedelta(hours=1))
    with sessions() as s:
        d = digest.build(s, definition, since=None, until=T0 + timedelta(hours=1),
                         zone=ZoneInfo("America/Santiago"), charts=False)  # fmt: skip
    avance = progress(conv)
    published = relations(d, avance)
    assert published  # the attacker has something to work with
    for total, parts in published:
        for j in range(len(parts)):
            derived = total - sum(parts[:j]) - sum(parts[j + 1 :])
            assert derived not in (1, 2, 3, 4), (total, parts, j)
    every = chain.from_iterable([t, *ps] for t, ps in published)
    assert all(n % disclosure.BASE == 0 for n in every)
