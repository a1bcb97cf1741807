"""A simulated consultation, to see what Consulta does before having a bot token
(``consulta demo``).

Simulated people talk to the real engine through ``Conversation.apply_sync``: they press only
buttons that the replies they just received offered, and type plausible answers drawn from
a bank of Spanish texts in recognisable themes (the workshop deck's: agua, energía, el
corredor bioceánico, Perú, salud, becas, turismo, municipios, exportaciones, identidad).
A few of them are municipal contacts who open a personal invitation. Nothing here knows
the order of the steps, so the simulation keeps working when the consultation file
changes. The database then holds what a real consultation would, and ``run_demo`` writes
the organisers' report from it.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import storage
from bot.cli.textbank import (
    AGREEMENT_REASONS,
    COMUNA_POPULATION,
    CONTACT_NAMES,
    ENABLERS,
    THEMES,
    Theme,
)
from bot.services.conversation import Conversation
from flows import Definition, Step, load
from flows import buttons as bt
from flows.events import (
    AnswerRecorded,
    AnswerRemoved,
    Choice,
    ConsentGiven,
    Event,
    Finished,
    Start,
    Text,
)
from flows.matching import fold
from storage import invitations

ZONE = ZoneInfo("America/Santiago")
DATABASE = "demo.db"
"""The simulation's scratch SQLite file, in its output folder: never ``DATABASE_URL``, so that
simulated answers cannot mix with real ones."""
MAX_EVENTS = 400
"""A simulated person gives up after this many events (a guard: it never happens)."""


@dataclass(frozen=True)
class SimulationStats:
    """What a simulation did: people, how many consented and finished, answers stored."""

    participants: int
    consented: int
    finished: int
    answers: int
    """Answers stored at the end (given, minus those the person took back)."""
    contacts: int
    """Of the participants, how many were municipal contacts invited with a personal link."""
    events: int
    start: datetime
    end: datetime
    """The end of the simulated period: every timestamp stored is in [start, end]."""


# --- how people answer ----------------------------------------------------------------------

OUTSIDE_SHARE, PROFILE_SKIP_SHARE, TYPES_COMUNA_SHARE = 0.05, 0.06, 0.08
CONSENT_SHARE, RETURN_SHARE = 0.95, 0.3
AGE_WEIGHTS = {"menos_18": 3, "e18_29": 24, "e30_44": 30, "e45_59": 24, "e60_mas": 13,
               "no_dice": 3, "": 3}  # fmt: skip
GENDER_WEIGHTS = {"mujer": 52, "hombre": 42, "otro": 1.5, "no_dice": 3, "": 1.5}
AGREEMENT_WEIGHTS = {"de_acuerdo": 66, "en_parte": 21, "en_desacuerdo": 6, "no_se": 5, "": 2}
OPTION_WEIGHTS = {
    "q1": {"regiones_vecinas": 3.0, "red_regiones": 1.8, "peru": 1.6, "san_juan": 3.5,
           "henan": 0.8, "herault": 1.0, "municipios": 1.5, "sociedad_civil": 1.8},
    "q2": {"bioceanico": 3.2, "henan": 0.9, "italia": 0.7, "canada": 0.8, "cuba": 0.4,
           "marruecos": 0.3, "desertificacion": 2.0, "agua_herault": 3.0, "energias": 3.0,
           "salud": 2.2, "educacion": 2.4},
}  # fmt: skip
FEASIBILITY = {  # (sí, en parte, no): the near and the concrete look possible by 2020
    ("q1", "regiones_vecinas"): (55, 35, 10), ("q1", "red_regiones"): (20, 35, 45),
    ("q1", "peru"): (15, 30, 55), ("q1", "san_juan"): (45, 40, 15),
    ("q1", "henan"): (15, 30, 55), ("q1", "herault"): (35, 40, 25),
    ("q1", "municipios"): (45, 40, 15), ("q1", "sociedad_civil"): (40, 40, 20),
    ("q2", "bioceanico"): (15, 35, 50), ("q2", "henan"): (15, 30, 55),
    ("q2", "italia"): (15, 35, 50), ("q2", "canada"): (20, 35, 45),
    ("q2", "cuba"): (10, 30, 60), ("q2", "marruecos"): (10, 25, 65),
    ("q2", "desertificacion"): (25, 40, 35), ("q2", "agua_herault"): (40, 40, 20),
    ("q2", "energias"): (50, 35, 15), ("q2", "salud"): (25, 40, 35),
    ("q2", "educacion"): (45, 35, 20),
}  # fmt: skip
DEFAULT_FEASIBILITY = (30, 40, 30)


HOUR_WEIGHTS = (1, 0.5, 0.2, 0.1, 0.1, 0.2, 0.5, 1.5, 3, 4, 4.5, 4.5,
                4, 4.5, 4, 3.5, 3.5, 4, 5, 6, 6.5, 6, 4, 2)  # fmt: skip
"""How active people are at each local hour: evenings most, nights least."""


# --- one simulated person -------------------------------------------------------------------


def _pick(rng: random.Random, weights: Mapping[str, float]) -> str:
    keys = list(weights)
    return rng.choices(keys, [weights[k] for k in keys])[0]


def _casual(rng: random.Random, text: str) -> str:
    """Typed as people type: sometimes all lower case, sometimes with a final stop."""
    if rng.random() < 0.2:
        text = text.lower()
    return text + "." if rng.random() < 0.4 else text


@dataclass
class _Person:
    """One simulated participant: a plan drawn at random, and a policy that reads the
    buttons offered and decides what to do next."""

    external_id: str
    rng: random.Random
    defn: Definition
    consents: bool
    comuna: str  # a comuna id, the 'outside' id, or "" (skips the question)
    quit_at: str | None  # "profile" or a question id: where they stop (None: they finish)
    quit_after: int  # how many actions they still do there
    optimism: float
    pending: Event = field(default_factory=Start)
    intents: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    text_themes: dict[str, Theme] = field(default_factory=dict)
    themes: dict[str, Theme] = field(default_factory=dict)  # answer key → theme
    written: Theme | None = None
    verdict: str = ""
    question: str = ""
    seen: dict[str, bt.ButtonData | None] = field(default_factory=dict)
    judged: set[str] = field(default_factory=set)
    actions_at_quit: int = 0
    returned: bool = False
    finished: bool = False
    events: int = 0

    def react(self, result: Step | None) -> Event | None:
        """The next event after ``result``; None: the person stops (for now)."""
        if result is None or self.finished:
            return None
        if any(isinstance(r, Finished) for r in result.records):
            self.finished = True
            return None
        offered = [b.data for reply in result.replies for row in reply.buttons for b in row]
        state = result.state
        if state is None:  # before consent: nothing is stored yet
            return self._choose("", "", offered)
        place = "profile" if state.stage == "profile" else state.question
        if place is not None and place == self.quit_at:
            self.actions_at_quit += 1
            if self.actions_at_quit > self.quit_after:
                return None
        elif self.actions_at_quit:  # left the place sooner than planned: stop right here
            return None
        return self._choose(state.step, state.question or "", offered)

    def come_back(self) -> Event:
        """Back days later: from now on they go to the end, most of them."""
        self.returned = True
        if self.rng.random() < 0.8:
            self.quit_at = None
        self.actions_at_quit = 0
        return Start()

    def _choose(self, step: str, question: str, offered: list[str]) -> Event | None:
        rng = self.rng
        pressed = {data: bt.decode(data) for data in offered}
        if question != self.question:  # the buttons of a question stay valid while there
            self.question, self.seen = question, {}
        self.seen.update(pressed)
        skip = next((d for d, b in pressed.items() if isinstance(b, bt.Skip)), None)
        consent = [d for d, b in pressed.items() if isinstance(b, bt.Consent)]
        if consent:  # the yes button first; it carries the invitation's token, if any
            yes, no = consent[0], consent[-1]
            return Choice(yes if self.consents or len(consent) < 2 else no)
        if step in ("province", "comuna"):
            return self._profile_place(pressed, skip)
        if any(isinstance(b, bt.AgeBand) for b in pressed.values()):
            bands = {d: AGE_WEIGHTS.get(b.option, 5.0) for d, b in pressed.items()
                     if isinstance(b, bt.AgeBand)}  # fmt: skip
            return self._pick_or_skip(bands, AGE_WEIGHTS.get("", 0.0), skip)
        if any(isinstance(b, bt.Gender) for b in pressed.values()):
            genders = {d: GENDER_WEIGHTS.get(b.option, 5.0) for d, b in pressed.items()
                       if isinstance(b, bt.Gender)}  # fmt: skip
            return self._pick_or_skip(genders, GENDER_WEIGHTS.get("", 0.0), skip)
        if any(isinstance(b, bt.Agree) for b in pressed.values()):
            return self._agreement(pressed, skip)
        if step == "reason_check":
            return Choice(next(d for d, b in pressed.items() if isinstance(b, bt.ReasonStill)))
        if step == "reason":
            texts = AGREEMENT_REASONS.get(self.verdict, ())
            if texts and rng.random() < (0.35 if self.verdict != "de_acuerdo" else 0.2):
                return Text(_casual(rng, rng.choice(texts)))
            return Choice(skip) if skip else None
        if step == "confirm":  # "¿Guardar … como un cambio nuevo?": yes, it was meant
            save = (d for d, b in pressed.items() if isinstance(b, bt.SaveText) and b.save)
            return Choice(next(save))
        if step == "system":
            return self._system(pressed, skip, question)
        if step == "ask":
            return self._desirable(question)
        if step == "judge":
            return self._judge(pressed)
        if step == "enabler":
            chance = 0.3 if self.verdict == "si" else 0.08
            if rng.random() < chance:
                return Text(_casual(rng, rng.choice(ENABLERS)))
            return Choice(skip) if skip else None
        return Choice(skip) if skip else None

    def _pick_or_skip(
        self, choices: dict[str, float], skip_weight: float, skip: str | None
    ) -> Event | None:
        if skip:
            choices[skip] = skip_weight
        return Choice(_pick(self.rng, choices))

    def _profile_place(
        self, pressed: Mapping[str, bt.ButtonData | None], skip: str | None
    ) -> Event | None:
        profile = self.defn.consultation.profile
        province = profile.province_of(self.comuna)
        wanted = bt.Comuna(self.comuna).encode() if self.comuna else ""
        if wanted in pressed:
            return Choice(wanted)
        to_province = bt.Province(province.id).encode() if province is not None else ""
        if province is not None and to_province in pressed:
            if self.rng.random() < TYPES_COMUNA_SHARE:  # types it instead of tapping twice
                label = next(c.label for c in province.comunas if c.id == self.comuna)
                return Text(self.rng.choice((label, label.lower(), fold(label))))
            return Choice(to_province)
        return Choice(skip) if skip else None

    def _agreement(self, pressed: Mapping[str, bt.ButtonData | None], skip: str | None) -> Event:
        choices = {d: AGREEMENT_WEIGHTS.get(b.option, 3.0) for d, b in pressed.items()
                   if isinstance(b, bt.Agree)}  # fmt: skip
        if skip:
            choices[skip] = AGREEMENT_WEIGHTS[""]
        data = _pick(self.rng, choices)
        button = bt.decode(data)
        self.verdict = button.option if isinstance(button, bt.Agree) else ""
        return Choice(data)

    def _desirable(self, question: str) -> Event | None:
        """At a desirable question: options to toggle, changes to write, then the next."""
        if question not in self.intents:
            self.intents[question] = self._plan(question)
        intents = self.intents[question]
        while intents and intents[0][0] == "toggle" and intents[0][1] not in self.seen:
            intents.pop(0)  # the option is gone (another file version): never mind
        if intents and intents[0][0] == "toggle":
            return Choice(intents.pop(0)[1])
        if intents:  # a change of their own, typed right at the question
            text = intents.pop(0)[1]
            self.written = self.text_themes.get(text)
            return Text(text)
        return Choice(bt.Next(question).encode())

    def _plan(self, question: str) -> list[tuple[str, str]]:
        """What this person will do at a desirable question: options to toggle (0–3, with
        the popular ones more likely) and changes to write (0–2)."""
        rng = self.rng
        options = [d for d, b in self.seen.items() if isinstance(b, bt.Toggle)]
        weights = OPTION_WEIGHTS.get(question, {})
        toggles: list[tuple[str, str]] = []
        k = min(len(options), rng.choices((0, 1, 2, 3), (15, 30, 35, 20))[0])
        pool = {d: weights.get(d.rsplit(":", 1)[1], 1.0) for d in options}
        for _ in range(k):
            chosen = _pick(rng, pool)
            del pool[chosen]
            toggles.append(("toggle", chosen))
        if pool and toggles and rng.random() < 0.06:  # changes their mind about one
            other = _pick(rng, pool)
            toggles[1:1] = [("toggle", other), ("toggle", other)]
        n = rng.choices((0, 1, 2), (65, 28, 7) if options else (40, 45, 15))[0]
        writes: list[tuple[str, str]] = []
        for _ in range(n):
            theme = rng.choices(THEMES, [t.where.get(question, 0.3) for t in THEMES])[0]
            text = _casual(rng, rng.choice(theme.texts))
            self.text_themes[text] = theme
            writes.append(("write", text))
        return writes + toggles if rng.random() < 0.2 else toggles + writes

    def _system(
        self, pressed: Mapping[str, bt.ButtonData | None], skip: str | None, question: str
    ) -> Event | None:
        """Tag the change just written with a system of the regional strategy, mostly."""
        rng = self.rng
        systems = {d: b for d, b in pressed.items() if isinstance(b, bt.System)}
        key = next(iter(systems.values())).key
        theme = self.written
        if theme is not None:
            self.themes[key] = theme  # for judging it at the feasibility question
        if skip and rng.random() < 0.15:
            if self.intents.get(question):  # types the next change without tagging this one
                return self._desirable(question)
            return Choice(skip)
        wanted = bt.System(key, theme.system).encode() if theme else ""
        return Choice(wanted if wanted in systems and rng.random() < 0.85 else
                      rng.choice(list(systems)))  # fmt: skip

    def _judge(self, pressed: Mapping[str, bt.ButtonData | None]) -> Event | None:
        """Mark the changes that look possible, one tap each, then «Listo»."""
        rng = self.rng
        for data, button in pressed.items():
            if not isinstance(button, bt.Judge) or button.key in self.judged:
                continue
            self.judged.add(button.key)
            question, _, rest = button.key.partition(".")
            option = rest[2:] if rest.startswith("o.") else None
            prior = FEASIBILITY.get((question, option or ""), DEFAULT_FEASIBILITY)
            theme = self.themes.get(button.key)
            if option is None and theme is not None:
                prior = theme.feasible
            si, parte, no = prior
            possible = (si * self.optimism + parte / 2) / (si * self.optimism + parte + no)
            if button.option == "si" and rng.random() < possible:
                self.verdict = "si"
                return Choice(data)
        done = next(d for d, b in pressed.items() if isinstance(b, bt.Done))
        return Choice(done)


# --- the simulation ---------------------------------------------------------------------------


def simulate(
    conv: Conversation,
    participants: int,
    *,
    seed: int = 0,
    start: datetime,
    days: float = 10,
    contacts: int | None = None,
) -> SimulationStats:
    """Run ``participants`` simulated people through ``conv``, spread over ``days`` from
    ``start`` (more at the launch and in the evenings, local time), and return the counts.

    ``contacts`` of them (by default one in 25, at most one per comuna) are municipal
    contacts: an invitation is created for each, and they open their personal link.

    Everyone's events are applied in time order, one transaction each, with the
    conversation's clock set to the simulated moment (``conv`` itself is not changed).
    The same seed gives the same people and the same answers. Run it on an empty database:
    the people are ``demo<seed>-<n>`` in ``conv``'s channel.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if participants < 0 or days <= 0:
        raise ValueError("participants must be >= 0 and days > 0")
    start = start.astimezone(UTC)
    end = start + timedelta(days=days)
    now = start

    def clock() -> datetime:
        return now

    sim = dataclasses.replace(conv, clock=clock)
    master = random.Random(seed)
    places = _place_weights(conv.definition)
    people = [
        _draw_person(
            conv.definition, random.Random(master.getrandbits(64)), places, f"demo{seed}-{i}"
        )
        for i in range(participants)
    ]
    if contacts is None:
        contacts = participants // 25
    contacts = _invite(sim, master, people[:contacts], start, days)
    queue = [(_first_moment(p.rng, start, days), i) for i, p in enumerate(people)]
    heapq.heapify(queue)
    consented = finished = answers = events = 0
    while queue:
        now, i = heapq.heappop(queue)
        person = people[i]
        result = sim.apply_sync(person.external_id, person.pending)
        events += 1
        person.events += 1
        for record in result.records if result else ():
            consented += isinstance(record, ConsentGiven)
            finished += isinstance(record, Finished)
            answers += isinstance(record, AnswerRecorded) and record.previous is None
            answers -= isinstance(record, AnswerRemoved)
        following = person.react(result) if person.events < MAX_EVENTS else None
        moment = now + _pause(person.rng, result, following)
        if following is None and person.consents and not person.finished:
            back = now + timedelta(days=person.rng.uniform(0.3, 3))
            if not person.returned and back < end and person.rng.random() < RETURN_SHARE:
                following, moment = person.come_back(), back
        if following is not None:
            person.pending = following
            heapq.heappush(queue, (min(moment, end), i))
    return SimulationStats(participants, consented, finished, answers, contacts, events, start, end)


def _invite(
    conv: Conversation, rng: random.Random, people: list[_Person], now: datetime, days: float
) -> int:
    """Invite ``people`` as the municipal contacts of comunas drawn at random (one each):
    they start from their personal link. Returns how many were invited."""
    profile = conv.definition.consultation.profile
    comunas = [c for p in profile.provinces for c in p.comunas]
    count = min(len(people), len(comunas), len(CONTACT_NAMES))
    if count == 0:
        return 0
    chosen = rng.sample(comunas, count)
    names = rng.sample(CONTACT_NAMES, count)
    with conv.sessions.begin() as session:
        for person, comuna, name in zip(people, chosen, names, strict=False):
            _, token = invitations.create(
                session, name=name, institution=f"Municipalidad de {comuna.label}",
                comuna=comuna.id, contact=None, now=now, ttl=timedelta(days=days + 30),
            )  # fmt: skip
            person.pending, person.comuna, person.consents = Start(token), comuna.id, True
    return count


def _place_weights(defn: Definition) -> dict[str, float]:
    """Where people say they live: comunas by population (a little flattened, so small
    comunas are heard from now and then), some outside the region, some skip."""
    profile = defn.consultation.profile
    weights = {c.id: COMUNA_POPULATION.get(c.id, 10.0) ** 0.8
               for p in profile.provinces for c in p.comunas}  # fmt: skip
    inside = sum(weights.values()) / (1 - OUTSIDE_SHARE - PROFILE_SKIP_SHARE)
    weights[profile.outside.id] = inside * OUTSIDE_SHARE
    weights[""] = inside * PROFILE_SKIP_SHARE
    return weights


def _draw_person(
    defn: Definition, rng: random.Random, places: dict[str, float], external_id: str
) -> _Person:
    stops = ["profile"] + [q.id for q in defn.consultation.questions]
    quit_at = None
    if rng.random() < 0.46:  # with those who come back later and finish: 65% finish
        weights = [0.6] + [1.0 / (1 + 0.3 * i) for i in range(len(stops) - 1)]
        quit_at = rng.choices(stops, weights)[0]
    return _Person(
        external_id=external_id,
        rng=rng,
        defn=defn,
        consents=rng.random() < CONSENT_SHARE,
        comuna=_pick(rng, places),
        quit_at=quit_at,
        quit_after=rng.randint(0, 3),
        optimism=math.exp(rng.gauss(0, 0.4)),
    )


def _first_moment(rng: random.Random, start: datetime, days: float) -> datetime:
    """When someone opens the bot: more in the first days after the launch, and in the
    evening rather than at night (local time)."""
    span = days * 86400
    usable = span - min(span * 0.1, 3600)  # leave time to answer before the end
    top = max(HOUR_WEIGHTS) * 2.5
    while True:
        offset = rng.uniform(0, usable)
        moment = start + timedelta(seconds=offset)
        launch = 1 + 1.5 * math.exp(-offset / 86400 / 1.5)
        if rng.random() * top < HOUR_WEIGHTS[moment.astimezone(ZONE).hour] * launch:
            return moment


def _pause(rng: random.Random, result: Step | None, following: Event | None) -> timedelta:
    """Time to read the replies, then to tap or type."""
    read = sum(len(r.text) for r in result.replies) if result else 0
    seconds = read / rng.uniform(15, 40) + rng.uniform(1.5, 6)
    if isinstance(following, Text):
        seconds += len(following.text) / rng.uniform(2, 5)
    return timedelta(seconds=min(seconds, 600))


def run_demo(
    out: Path,
    participants: int,
    *,
    seed: int = 0,
    database_url: str | None = None,
    definition: Definition | None = None,
    start: datetime | None = None,
    days: float = 10,
) -> SimulationStats:
    """Simulate a consultation in a scratch database and write its report to ``out``.

    The database is ``out/demo.db`` (replaced if it exists) unless ``database_url`` is
    given; it is migrated first. The simulated period ends now (``start`` moves it).
    """
    definition = definition or load()
    if database_url is None:
        out.mkdir(parents=True, exist_ok=True)
        db = out / DATABASE
        for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            stale.unlink(missing_ok=True)
        database_url = f"sqlite:///{db}"
    if start is None:
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        start = hour - timedelta(days=days)
    storage.upgrade(database_url)
    engine = storage.make_engine(database_url)
    try:
        first = start
        conv = Conversation(
            definition, storage.make_sessions(engine), clock=lambda: first, channel="demo"
        )
        conv.remember_version()
        stats = simulate(conv, participants, seed=seed, start=start, days=days)
        from reports import digest

        with conv.sessions() as session:
            report = digest.build(session, definition, since=None, until=stats.end, zone=ZONE)
        report.write(out)
    finally:
        engine.dispose()
    return stats
