"""Long polling that confirms an update to Telegram only after it has been applied.

PTB's own ``Updater`` advances the ``getUpdates`` offset while fetched updates still wait in
its queue, so a ``kill -9`` loses them. Here a batch is processed first (senders in
parallel, each sender's updates in order, by bot.adapter.runtime.Updates) and the offset
moves only past updates that are done: applied, or given up on after
``runtime.MAX_FAILURES`` attempts. A failed update and the later updates of its sender,
which wait for it, are fetched again; being deduplicated by their ``update_id``, those that
did commit are applied at most once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Coroutine, Sequence
from typing import Any

from telegram import Update
from telegram.error import NetworkError, RetryAfter, TimedOut
from telegram.ext import Application

from bot.adapter.runtime import ALLOWED_UPDATES, Updates

log = logging.getLogger(__name__)

RETRY_PAUSE = 1.0
"""Seconds before a batch with a failed update is fetched again: a passing fault (a
database restart) passes meanwhile."""


async def process_batch(updates: Updates, batch: Sequence[Update]) -> set[int]:
    """Process ``batch``: different senders concurrently, each sender's updates in order,
    stopping at a sender's failed update (the later ones wait for it). Returns the ids of
    the updates that are done (applied or given up on)."""
    by_sender: dict[object, list[Update]] = defaultdict(list)
    for u in batch:
        sender = u.effective_user.id if u.effective_user else ("update", u.update_id)
        by_sender[sender].append(u)
    done: set[int] = set()

    async def in_order(group: list[Update]) -> None:
        for u in group:
            if await updates.process(u) == "failed":
                return
            done.add(u.update_id)

    await asyncio.gather(*(in_order(g) for g in by_sender.values()))
    return done


def next_offset(batch: Sequence[Update], done: set[int]) -> int:
    """The ``getUpdates`` offset that confirms the done updates of ``batch`` and no other:
    the first update not done (it and all after it come back), or past the batch."""
    waiting = [u.update_id for u in batch if u.update_id not in done]
    return min(waiting) if waiting else batch[-1].update_id + 1


async def poll(app: Application, updates: Updates, stop: asyncio.Event, *,
               timeout: int = 25) -> None:  # fmt: skip
    """Fetch, process and confirm updates until ``stop`` is set."""
    offset: int | None = None
    delay = 1.0
    while not stop.is_set():
        try:
            fetch = app.bot.get_updates(
                offset=offset, timeout=timeout, allowed_updates=ALLOWED_UPDATES
            )
            batch = await _until_stopped(fetch, stop)
        except RetryAfter as exc:
            await asyncio.sleep(_seconds(exc.retry_after))
            continue
        except (TimedOut, NetworkError) as exc:
            log.warning("getUpdates failed (%s); retrying in %.0f s", exc, delay)
            await _sleep_unless(stop, delay)
            delay = min(delay * 2, 30.0)
            continue
        delay = 1.0
        if not batch:
            continue
        done = await process_batch(updates, batch)
        offset = next_offset(batch, done)
        if len(done) < len(batch):
            await _sleep_unless(stop, RETRY_PAUSE)
    if offset is not None:
        # Tell Telegram what is stored, so a restart does not fetch it again.
        try:
            await app.bot.get_updates(offset=offset, timeout=0, limit=1)
        except Exception as exc:  # it will only be deduplicated at the next start
            log.info("could not confirm the last offset: %s", exc)


def _seconds(value: object) -> float:
    return value.total_seconds() if hasattr(value, "total_seconds") else float(value)  # type: ignore[arg-type]


async def _until_stopped(
    fetch: Coroutine[Any, Any, tuple[Update, ...]], stop: asyncio.Event
) -> tuple[Update, ...]:
    task = asyncio.ensure_future(fetch)
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if task not in done:
        task.cancel()
        return ()
    return tuple(task.result())


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
