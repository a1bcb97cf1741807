"""Long polling that confirms an update to Telegram only after it has been stored.

PTB's own ``Updater`` advances the ``getUpdates`` offset while fetched updates still wait in
its queue, so a ``kill -9`` loses them. Here a batch is processed first (participants in
parallel, each participant's updates in order) and the offset moves only past updates whose
transaction committed; a failed update is fetched again and, being deduplicated by its
``update_id``, applied at most once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Coroutine, Sequence
from typing import Any

from telegram import Update
from telegram.error import NetworkError, RetryAfter, TimedOut
from telegram.ext import Application, ContextTypes

from bot.infra import logs

log = logging.getLogger(__name__)

FAILED = "failed_update_ids"
"""Key in ``bot_data`` of the ids whose handling raised (filled by the error handler)."""
MAX_FAILURES = 5
"""After this many failed attempts an update is confirmed anyway, so one poisoned update
cannot stop the consultation; it is logged as an error each time."""
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
SENDERS_AT_ONCE = 16
"""Participants processed at the same time within a batch. bench/updates.py --quick: on
SQLite 8, 16 and 32 all gave about 900 updates/s (the work is CPU in this process); on
PostgreSQL, where a transaction waits on round trips (then in a worker thread), 8 gave
472, 16 559 and 32 570. Their transactions now share the event loop's pool of
``bot.services.conversation.SERVER_CONNECTIONS``; the rest of the 16 meanwhile send replies. With
httpx it had to be 2: httpcore scanned every open connection for every request."""


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log first; then remember the update as failed, so that it is not confirmed."""
    log.error("error while handling an update", exc_info=context.error)
    if isinstance(update, Update):
        context.application.bot_data.setdefault(FAILED, set()).add(update.update_id)


async def process_batch(app: Application, updates: Sequence[Update]) -> None:
    """Process a batch: different senders concurrently, each sender's updates in order."""
    by_sender: dict[object, list[Update]] = defaultdict(list)
    for u in updates:
        sender = u.effective_user.id if u.effective_user else ("update", u.update_id)
        by_sender[sender].append(u)

    failed: set[int] = app.bot_data.setdefault(FAILED, set())

    gate = asyncio.Semaphore(SENDERS_AT_ONCE)

    async def in_order(group: list[Update]) -> None:
        async with gate:
            for u in group:
                started = time.perf_counter()
                await app.process_update(u)
                outcome = "failed" if u.update_id in failed else "ok"
                logs.processed(u.update_id, kind_of(u), outcome, started)
                if u.update_id in failed:
                    return  # the rest of this sender's updates must wait for this one

    await asyncio.gather(*(in_order(g) for g in by_sender.values()))


async def poll(app: Application, stop: asyncio.Event, *, timeout: int = 25) -> None:
    """Fetch, process and confirm updates until ``stop`` is set."""
    offset: int | None = None
    attempts: dict[int, int] = defaultdict(int)
    delay = 1.0
    while not stop.is_set():
        try:
            fetch = app.bot.get_updates(
                offset=offset, timeout=timeout, allowed_updates=ALLOWED_UPDATES
            )
            updates = await _until_stopped(fetch, stop)
        except RetryAfter as exc:
            await asyncio.sleep(_seconds(exc.retry_after))
            continue
        except (TimedOut, NetworkError) as exc:
            log.warning("getUpdates failed (%s); retrying in %.0f s", exc, delay)
            await _sleep_unless(stop, delay)
            delay = min(delay * 2, 30.0)
            continue
        delay = 1.0
        if not updates:
            continue
        failed: set[int] = app.bot_data.setdefault(FAILED, set())
        failed.clear()
        await process_batch(app, updates)
        for update_id in sorted(failed):
            attempts[update_id] += 1
            if attempts[update_id] >= MAX_FAILURES:
                log.error("giving up on update %s after %d attempts", update_id, MAX_FAILURES)
                failed.discard(update_id)
        # Confirm everything before the first failure; it and what follows come back
        # (those that did commit are then recognised as already processed).
        offset = min(failed) if failed else updates[-1].update_id + 1
        if failed:
            await _sleep_unless(stop, 1.0)  # let a passing fault (database restart) pass
    if offset is not None:
        # Tell Telegram what is stored, so a restart does not fetch it again.
        try:
            await app.bot.get_updates(offset=offset, timeout=0, limit=1)
        except Exception as exc:  # it will only be deduplicated at the next start
            log.info("could not confirm the last offset: %s", exc)


def kind_of(update: Update) -> str:
    """The update's field (message, callback_query...), for logs."""
    for name in ("message", "edited_message", "callback_query"):
        if getattr(update, name, None) is not None:
            return name
    return "other"


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
