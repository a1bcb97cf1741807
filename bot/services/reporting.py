"""Reporting: the digest scheduled to every organiser, what organisers ask for (/digest,
/resumen, /exportar), and the participants' /resultados. ``reports.digest`` builds a
digest's content; this module decides when, for whom, and sends it.

A scheduled digest is claimed in the database for its period before it is sent, so a
period is never sent twice, even after a restart or with two schedulers; a run missed
while the bot was down happens once at start (APScheduler's coalesce).
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger

import storage
from bot.infra.config import Settings
from bot.services import jobs
from bot.services.conversation import Conversation, utcnow
from bot.services.outbox import Document, Image, Outbox
from flows.events import Reply
from reports.texts import text

if TYPE_CHECKING:  # reports' analysis brings pandas and matplotlib: loaded for a digest
    from reports.digest import Digest

log = logging.getLogger(__name__)

JOB_ID = "consulta-digest"
MIN_FINISHED_FOR_RESULTS = 20
RESULTS_EVERY = timedelta(seconds=30)
"""How often one account may ask for /resultados."""


LOOKBACKS = (timedelta(minutes=1), timedelta(hours=1), timedelta(days=2), timedelta(days=32),
             timedelta(days=400))  # fmt: skip
"""How far back the last firing is looked for, shortest first: walking 32 days of a
schedule every few seconds would take a million steps."""


def period_of(trigger: CronTrigger, now: datetime) -> datetime:
    """The most recent time the schedule fired at or before ``now`` (the period's key)."""
    for lookback in LOOKBACKS:
        moment = trigger.get_next_fire_time(None, now - lookback)
        last = None
        while moment is not None and moment <= now:
            last = moment
            moment = trigger.get_next_fire_time(moment, moment + timedelta(seconds=1))
        if last is not None:
            return last
    raise ValueError(f"the schedule {trigger} did not fire in the last {LOOKBACKS[-1]}")


def period_key(settings: Settings, period: datetime) -> str:
    """The period's key in DigestRun: local time to the minute, to the second when the
    schedule has seconds (two periods may then share a minute)."""
    seconds = len(settings.consulta_digest_cron.split()) == 6
    return period.astimezone(settings.zone).strftime(
        "%Y-%m-%dT%H:%M:%S" if seconds else "%Y-%m-%dT%H:%M"
    )


def build(conv: Conversation, settings: Settings, *, since: datetime | None, until: datetime,
          charts: bool = True) -> Digest:  # fmt: skip
    from reports import digest

    with conv.sessions() as session:
        return digest.build(session, conv.definition, since=since, until=until,
                             zone=settings.zone, charts=charts)  # fmt: skip


async def send(outbox: Outbox, chat_id: int, digest: Digest) -> None:
    """Text summary, the charts as one album, and the result table as an XLSX document."""
    if not digest.has_news:
        await outbox.send(chat_id, [Reply(text("no_news", period=digest.period))])
        return
    await outbox.send(chat_id, [Reply(summary_text(digest))])
    images = [Image(img.png, img.caption) for img in digest.images[:10]]
    if images:
        await outbox.send_images(chat_id, images)
    await outbox.send_document(
        chat_id,
        Document(digest.xlsx(), filename=f"{digest.table_file}.xlsx", caption=digest.period),
    )


async def scheduled(outbox: Outbox, conv: Conversation, settings: Settings,
                    now: datetime | None = None) -> bool:  # fmt: skip
    """The scheduled digest for the period ``now`` falls in; False if already sent."""
    now = now or conv.clock()
    key = period_key(settings, period_of(settings.digest_trigger(), now))
    with conv.sessions.begin() as session:
        previous = storage.repository.last_digest(session)
        since = previous.until if previous else None
        if not storage.repository.claim_digest(session, key, now, now):
            log.info("digest %s already sent", key)
            return False
    digest = await asyncio.to_thread(build, conv, settings, since=since, until=now)
    delivered = 0
    for organiser in sorted(settings.consulta_organisers):
        try:
            await send(outbox, organiser, digest)
            delivered += 1
        except Exception:  # one organiser's failure must not stop the others
            log.exception("could not deliver digest %s to an organiser", key)
    # which process sent which period: with replicas, the log says who led when
    log.info("digest %s sent to %d organisers", key, delivered)
    return True


def schedule(scheduler: BaseScheduler, outbox: Outbox, conv: Conversation,
             settings: Settings) -> None:  # fmt: skip
    """Add the digest job to a persistent scheduler, on ``CONSULTA_DIGEST_CRON``."""
    jobs.add(scheduler, JOB_ID, lambda: scheduled(outbox, conv, settings),
             settings.digest_trigger())  # fmt: skip


async def on_request(conv: Conversation, settings: Settings, *, charts: bool = True
                     ) -> Digest:  # fmt: skip
    """The full digest up to now (not a scheduled period), for an organiser who asked."""
    return await asyncio.to_thread(build, conv, settings, since=None, until=utcnow(),
                                   charts=charts)  # fmt: skip


def summary_text(digest: Digest) -> str:
    """The digest's text: title, period and summary (sent with the charts, and for /resumen)."""
    return f"{digest.title}\n{digest.period}\n\n{digest.summary}"


async def export(conv: Conversation, settings: Settings) -> Document:
    """The full pseudonymous export, as a CSV document."""

    def frame_bytes() -> bytes:
        from reports import spreadsheet
        from reports.export import answers_frame, for_people

        with conv.sessions() as session:
            frame = answers_frame(session, conv.definition, settings.zone)
        return spreadsheet.csv(for_people(frame, settings.zone))

    data = await asyncio.to_thread(frame_bytes)
    name = f"consulta-{utcnow().astimezone(settings.zone):%Y%m%d-%H%M}.csv"
    return Document(data, filename=name)


@dataclass
class PublicResults:
    """/resultados, for anyone: the result table so far, once enough people finished;
    themes by their words only, no verbatim free text, small numbers hidden.

    Grouping every free text into themes costs seconds of CPU, and anyone may ask: the text
    is built once per state of the consultation (how many finished, whether it closed) and
    served from here until that changes, one build at a time; and each account may see it
    once per ``every``. Per process: replicas build it once each."""

    min_finished: int = MIN_FINISHED_FOR_RESULTS
    every: timedelta = RESULTS_EVERY
    builds: int = 0
    """How many times the results were built (tests watch it)."""
    _cached: tuple[tuple[int, datetime | None], str] | None = None
    _asked: dict[str, datetime] = field(default_factory=dict)
    _building: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def text(self, conv: Conversation, settings: Settings, account: str) -> str:
        m = conv.definition.messages
        now = conv.clock()
        finished = _finished(conv)
        with conv.sessions() as session:
            closed = conv.closing.closed(session, now)
        if finished < self.min_finished and closed is None:  # two counts: not limited
            return m.results_not_yet.format(needed=self.min_finished, finished=finished)
        last = self._asked.get(account)
        if last is not None and now - last < self.every:
            wait = math.ceil((self.every - (now - last)).total_seconds())
            return m.results_too_soon.format(seconds=wait)
        self._forget_before(now - self.every)
        self._asked[account] = now
        key = (finished, closed)
        async with self._building:  # the others wait for the one build, then read it
            if self._cached is None or self._cached[0] != key:
                digest = await on_request(conv, settings, charts=False)
                self.builds += 1
                self._cached = key, m.results_header + "\n\n" + public_results(conv, digest)
            return self._cached[1]

    def _forget_before(self, moment: datetime) -> None:
        """Accounts that asked before ``moment`` may ask again: no need to remember them."""
        if len(self._asked) > 1000:
            self._asked = {a: t for a, t in self._asked.items() if t >= moment}


def public_results(conv: Conversation, digest: Digest) -> str:
    """What any participant may read: the summary and the result table, nothing resting on
    fewer than 5 people (``reports.disclosure``), every count rounded to base 5."""
    m = conv.definition.messages
    rows = []
    for number, desirable, possible in digest.public_table.itertuples(index=False):
        # one change per line in the table's cells: indented under the question's number
        listed = str(desirable).replace("\n", "\n   ")
        also = ""
        if possible not in ("", "—"):
            also = f"\n   {m.summary_possible}:\n   " + str(possible).replace("\n", "\n   ")
        rows.append(f"{number} · {listed}{also}")
    return "\n\n".join([digest.public_summary, *rows])


def _finished(conv: Conversation) -> int:
    from sqlalchemy import func, select

    from storage.models import Participant
    from storage.rehearsals import participants_counted

    with conv.sessions() as session:
        counted = select(func.count(Participant.finished_at)).where(participants_counted())
        return int(session.scalar(counted) or 0)
