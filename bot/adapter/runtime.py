"""One runtime for both ways of receiving updates, long polling (bot.adapter.polling) and
the webhook server (bot.adapter.webhook): the application's lifecycle, the signals that stop
it, the scheduler's leadership, and how an update is processed and accounted for.

An update is processed by ``Updates.process``: one sender's updates one at a time, in the
order they arrived; at most ``CONCURRENCY`` updates at once. Its outcome is

* ``ok``: its transaction committed (or it was recognised as a redelivery);
* ``failed``: a handler raised; the receiver does not confirm it, so Telegram sends it again
  (polling fetches it again, the webhook answers 500);
* ``gave_up``: it failed ``MAX_FAILURES`` times in this process; it is confirmed anyway, so
  that one poisoned update cannot hold back everyone's, and logged with its id and kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from telegram import BotCommand, Update
from telegram.ext import Application, ContextTypes

from bot.adapter import context as running
from bot.infra import logs, metrics
from bot.services import reminders
from bot.services.leader import leadership

__all__ = [
    "ALLOWED_UPDATES", "CONCURRENCY", "MAX_FAILURES", "Updates", "kind_of", "on_error", "run",
    "set_commands",
]  # fmt: skip

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
CONCURRENCY = 16
"""Updates processed at once by one process, polling and webhook alike. An update's work is
CPU in this process (the engine, PTB's objects) and waiting: for its transaction (on
PostgreSQL at most ``bot.services.conversation.SERVER_CONNECTIONS`` at once, the others queue
for a connection) and for its replies. 16 keeps the pool busy while as many again send;
more only lengthens the queues. Chosen with bench/updates.py and bench/webhook.py."""
MAX_FAILURES = 5
"""Failed attempts at one update after which it is given up on (confirmed and logged)."""
MENU_COMMANDS = (
    "start", "menu", "revisar", "omitir", "cancelar", "privacidad", "resultados", "borrar", "ayuda",
)  # fmt: skip
_FAILED = "failed_update_ids"
"""Key in ``bot_data`` of the ids whose handling raised (filled by ``on_error``)."""


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log first; then count the error and remember the update as failed (not confirmed)."""
    log.error("error while handling an update", exc_info=context.error)
    metrics.ERRORS.inc()
    if isinstance(update, Update):
        context.application.bot_data.setdefault(_FAILED, set()).add(update.update_id)


def kind_of(update: Update) -> str:
    """The update's field (message, callback_query...), for logs."""
    for name in ALLOWED_UPDATES:
        if getattr(update, name, None) is not None:
            return name
    return "other"


class Turns:
    """One sender's updates one at a time, in the order they arrived: Telegram may post
    several at once to the webhook, and a polled batch may hold several of one sender."""

    def __init__(self) -> None:
        self._locks: dict[object, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def turn(self, key: object) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:  # asyncio.Lock is fair: waiters go in arrival order
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]  # no memory kept per sender between updates
            else:
                self._locks[key] = (lock, users - 1)


class Updates:
    """Processes the updates of ``app`` and keeps count of their failures (see the module's
    docstring); ``in_flight`` is how many are being processed or waiting for their turn."""

    def __init__(self, app: Application) -> None:
        self.app = app
        self.in_flight = 0
        self._turns = Turns()
        self._gate = asyncio.Semaphore(CONCURRENCY)
        self._attempts: dict[int, int] = {}

    async def process(self, update: Update) -> str:
        """Process ``update`` to the end; its outcome: ok, failed or gave_up."""
        started = time.perf_counter()
        failed: set[int] = self.app.bot_data.setdefault(_FAILED, set())
        user = update.effective_user
        self.in_flight += 1
        metrics.IN_FLIGHT.inc()
        try:
            # the turn first: a sender waiting for their previous update holds no slot
            key = user.id if user else ("update", update.update_id)
            async with self._turns.turn(key), self._gate:
                await self.app.process_update(update)
        except Exception:  # PTB routes handler errors to on_error; this is anything else
            log.exception("update %s could not be processed", update.update_id)
            failed.add(update.update_id)
        finally:
            self.in_flight -= 1
            metrics.IN_FLIGHT.dec()
        outcome = self._account(update, update.update_id in failed)
        failed.discard(update.update_id)
        metrics.UPDATES.labels(outcome).inc()
        logs.processed(update.update_id, kind_of(update), outcome, started)
        return outcome

    def _account(self, update: Update, failed: bool) -> str:
        if not failed:
            self._attempts.pop(update.update_id, None)
            return "ok"
        tries = self._attempts.pop(update.update_id, 0) + 1
        if tries < MAX_FAILURES:
            self._attempts[update.update_id] = tries
            return "failed"
        # Only the id and kind: the update itself holds who sent it and what they wrote.
        log.error("gave up on update %s (%s) after %d failed attempts; confirmed unapplied",
                  update.update_id, kind_of(update), tries)  # fmt: skip
        return "gave_up"


async def set_commands(app: Application) -> None:
    """Fill Telegram's command menu from the message catalogue."""
    descriptions = running.conversation(app).definition.messages.commands
    commands = [BotCommand(name, descriptions.get(name, name)) for name in MENU_COMMANDS]
    await app.bot.set_my_commands(commands)


Receiver = Callable[[Updates, asyncio.Event], Awaitable[None]]
"""Receives updates and hands each to ``Updates.process`` until the event is set."""


async def run(
    app: Application,
    receive: Receiver,
    *,
    prepare: Callable[[Application], Awaitable[object]] | None = None,
    stop: asyncio.Event | None = None,
    scheduler_factory: Callable[[], AsyncIOScheduler] | None = None,
    policy: reminders.Policy | None = None,
) -> None:
    """Run ``app`` until SIGINT/SIGTERM (or ``stop``): initialise it, fill the command menu,
    ``prepare`` (e.g. register the webhook), then ``receive`` updates. With a
    ``scheduler_factory``, reminders and digests run on a scheduler it makes whenever this
    process leads the replicas (bot.services.leader). On the way out the application stops
    and the conversation's database connections are closed (PTB calls no shutdown hook
    outside its own run_polling/run_webhook)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    async with app:
        await set_commands(app)
        if prepare is not None:
            await prepare(app)
        await app.start()
        try:
            async with contextlib.AsyncExitStack() as scheduled:
                if scheduler_factory is not None:
                    await scheduled.enter_async_context(
                        leadership(running.outbox(app), running.conversation(app),
                                   running.settings(app), scheduler_factory, policy=policy)
                    )  # fmt: skip
                await receive(Updates(app), stop)
        finally:
            await app.stop()
            await running.conversation(app).aclose()
