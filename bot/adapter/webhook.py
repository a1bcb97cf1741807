"""``consulta webhook``: Telegram posts each update to us; we answer only once it is stored.

The server is PTB's own (``WebhookServer``, tornado), with our handler subclassing PTB's
``TelegramHandler``. PTB's handler answers 200 as soon as the update is *queued*, so a crash
loses it (the same flaw as its polling ``Updater``, see bot.adapter.polling). Ours processes the
update inside the request (``Application.process_update``) and answers

* 200 once its transaction committed (or it was recognised as a redelivery: updates are
  deduplicated by ``update_id`` in the database, whichever replica gets them);
* 500 if the error handler marked it failed (bot.adapter.polling.FAILED), so that Telegram
  redelivers it; after ``MAX_FAILURES`` attempts in this process it is answered 200 anyway,
  because Telegram delivers in order and one poisoned update would hold back everyone's;
* 403 without the right ``X-Telegram-Bot-Api-Secret-Token`` (compared in constant time,
  before the body is read), 413 for a body over 1 MiB, 415 if it is not JSON, 400 for
  malformed JSON or JSON that is not an update; nothing is processed for any of them.

The same tornado application serves ``/healthz`` (the process answers), ``/readyz`` (the
database answers and its schema is at the newest migration; 503 otherwise, e.g. while
another replica migrates) and ``/metrics`` (Prometheus text format, bot.infra.metrics).

Several replicas may run behind one proxy on one PostgreSQL database: any of them may get
any update. Within a process, one participant's updates are handled one at a time, in
arrival order; across processes the version column of the participant's state row keeps two
replicas from overwriting each other. The scheduler (digests, reminders) runs in one elected
replica (bot.services.leader), exactly as under ``consulta run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable
from http import HTTPStatus
from typing import Any, NoReturn

import prometheus_client
import tornado.web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Engine
from telegram import Update
from telegram.ext import Application, ContextTypes
from telegram.ext._utils.webhookhandler import TelegramHandler, WebhookAppClass, WebhookServer

import storage
from bot.adapter import context as running
from bot.adapter.app import close_conversation, set_commands
from bot.adapter.polling import ALLOWED_UPDATES, FAILED, MAX_FAILURES, kind_of
from bot.infra import logs, metrics
from bot.infra.config import Settings
from bot.services.leader import leadership

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20
"""Bytes. Telegram's updates are a few KiB (a message of 4,096 characters with entities);
anything near a mebibyte is not from Telegram."""
READY_TIMEOUT = 5.0
"""Seconds /readyz waits for the database before answering 503."""
DRAIN_TIMEOUT = 20.0
"""Seconds a stopping process waits for updates in flight to commit before closing."""
RESERVED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
PROCESSING_AT_ONCE = 2
"""Updates processed at the same time in one process; the others wait their turn (answering
Telegram later). The database work of an update blocks the event loop anyway, and more
senders at once only make httpcore scan a longer queue for every request (see
bot.adapter.polling.SENDERS_AT_ONCE): bench/webhook.py --quick, one replica, 32 concurrent posts:
62 updates/s and 14.5 ms of CPU per update without this limit."""

MISSING_SECRET = """\
TELEGRAM_WEBHOOK_SECRET is not set. In webhook mode every request must carry it, so that
nobody but Telegram can post updates to the bot. Make one, e.g.

    python3 -c "import secrets; print(secrets.token_urlsafe(32))"

and put it in .env (TELEGRAM_WEBHOOK_SECRET=...) or the environment of every replica.
"""


class ConfigurationError(ValueError):
    """A setting that webhook mode needs is missing or wrong (the message says which)."""


def check_settings(settings: Settings) -> None:
    """Refuse to start without what webhook mode needs, with a message that says why."""
    if not settings.telegram_webhook_secret:
        raise ConfigurationError(MISSING_SECRET)
    if settings.consulta_webhook_path.rstrip("/") in RESERVED_PATHS:
        raise ConfigurationError(
            f"CONSULTA_WEBHOOK_PATH={settings.consulta_webhook_path} is taken by the "
            "health and metrics endpoints; choose another (default /telegram)."
        )


class Turns:
    """One participant's updates one at a time, in the order they arrived: Telegram may
    post several concurrently (``max_connections``), and polling also keeps each sender's
    updates in order (bot.adapter.polling.process_batch)."""

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
                del self._locks[key]  # no memory kept per participant between updates
            else:
                self._locks[key] = (lock, users - 1)


class Webhook:
    """What the request handlers share: the application, the readiness check, counters."""

    def __init__(self, app: Application, settings: Settings, engine: Engine) -> None:
        self.app, self.settings, self.engine = app, settings, engine
        self.secret = settings.telegram_webhook_secret.encode()
        self.turns = Turns()
        self.gate = asyncio.Semaphore(PROCESSING_AT_ONCE)
        self.attempts: dict[int, int] = {}
        self.in_flight = 0
        self.draining = False

    async def process(self, update: Update) -> str:
        """Process ``update`` to the end; its outcome: ok, failed or gave_up."""
        started = time.perf_counter()
        self.in_flight += 1
        metrics.IN_FLIGHT.inc()
        failed: set[int] = self.app.bot_data.setdefault(FAILED, set())
        user = update.effective_user
        try:
            key = user.id if user else ("update", update.update_id)
            # the turn first: a participant waiting for their previous update holds no slot
            async with self.turns.turn(key), self.gate:
                await self.app.process_update(update)
        except Exception:  # PTB routes handler errors to on_error; this is anything else
            log.exception("update %s could not be processed", update.update_id)
            failed.add(update.update_id)
        finally:
            self.in_flight -= 1
            metrics.IN_FLIGHT.dec()
        outcome = "ok"
        if update.update_id in failed:
            failed.discard(update.update_id)
            tries = self.attempts.get(update.update_id, 0) + 1
            if tries >= MAX_FAILURES:
                log.error("giving up on update %s after %d attempts", update.update_id, tries)
                self.attempts.pop(update.update_id, None)
                outcome = "gave_up"
            else:
                self.attempts[update.update_id] = tries
                outcome = "failed"
        else:
            self.attempts.pop(update.update_id, None)
        metrics.UPDATES.labels(outcome).inc()
        logs.processed(update.update_id, kind_of(update), outcome, started)
        return outcome

    def ready(self) -> bool:
        """The database answers and is at the newest migration (blocking: run in a thread)."""
        return storage.at_head(self.engine)


@tornado.web.stream_request_body
class UpdateHandler(TelegramHandler):
    """POST <CONSULTA_WEBHOOK_PATH>: one update from Telegram. PTB's handler, checked
    before the body is read (streamed, so an oversized body is refused from its headers)
    and processed before answering."""

    hook: Webhook
    body: bytearray

    def initialize(self, hook: Webhook) -> None:  # type: ignore[override]
        super().initialize(
            hook.app.bot, hook.app.update_queue, hook.settings.telegram_webhook_secret
        )
        self.hook = hook
        self.body = bytearray()

    def prepare(self) -> None:
        if self.hook.draining:  # stopping: Telegram retries, another replica answers
            self._refuse(HTTPStatus.SERVICE_UNAVAILABLE, "shutting down")
        token = self.request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(token.encode(), self.hook.secret):
            self._refuse(HTTPStatus.FORBIDDEN, "missing or wrong secret token")
        length = self.request.headers.get("Content-Length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body over 1 MiB")
        content_type = self.request.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type.lower() != "application/json":
            self._refuse(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "expected application/json")

    def data_received(self, chunk: bytes) -> None:
        if self._finished:  # refused already: tornado discards the rest
            return
        self.body += chunk
        if len(self.body) > MAX_BODY:  # chunked: no Content-Length to refuse it by
            self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body over 1 MiB")

    async def post(self) -> None:
        try:
            data = json.loads(bytes(self.body))
        except ValueError:  # UnicodeDecodeError included
            self._refuse(HTTPStatus.BAD_REQUEST, "malformed JSON")
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            self._refuse(HTTPStatus.BAD_REQUEST, "not an update")
        try:
            update = Update.de_json(data, self.hook.app.bot)
        except Exception:
            log.warning("refused update %s that PTB cannot read", data["update_id"])
            self._refuse(HTTPStatus.BAD_REQUEST, "not an update")
        outcome = await self.hook.process(update)
        # 500: Telegram posts it again later (deduplicated by update_id when it does).
        self.set_status(HTTPStatus.INTERNAL_SERVER_ERROR if outcome == "failed" else HTTPStatus.OK)
        self.finish()

    def _refuse(self, status: HTTPStatus, reason: str) -> NoReturn:
        metrics.REJECTED.labels(str(status.value)).inc()
        raise tornado.web.HTTPError(status, reason=reason)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish({"ok": False, "error": self._reason})


class HealthHandler(tornado.web.RequestHandler):
    """GET /healthz: the process and its event loop answer."""

    def get(self) -> None:
        self.finish({"ok": True})


class ReadyHandler(tornado.web.RequestHandler):
    """GET /readyz: the database answers and its schema is at head; 503 otherwise, so a
    load balancer sends no updates to a replica that cannot store them."""

    hook: Webhook

    def initialize(self, hook: Webhook) -> None:
        self.hook = hook

    async def get(self) -> None:
        try:
            ready = await asyncio.wait_for(asyncio.to_thread(self.hook.ready), READY_TIMEOUT)
            problem = "" if ready else "database schema is not at the newest migration"
        except Exception as exc:
            ready, problem = False, f"database unreachable: {type(exc).__name__}"
        if self.hook.draining:
            ready, problem = False, "shutting down"
        self.set_status(HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE)
        self.finish({"ok": ready, **({"error": problem} if problem else {})})


class MetricsHandler(tornado.web.RequestHandler):
    """GET /metrics: Prometheus text format."""

    def get(self) -> None:
        self.set_header("Content-Type", prometheus_client.CONTENT_TYPE_LATEST)
        self.finish(prometheus_client.generate_latest())


class WebhookApp(WebhookAppClass):
    """PTB's webhook application class with our handlers (PTB's ``__init__`` would mount
    its own, queue-only handler)."""

    def __init__(self, hook: Webhook) -> None:
        path = hook.settings.consulta_webhook_path.rstrip("/") or "/"
        self.shared_objects = {"hook": hook}
        tornado.web.Application.__init__(
            self,
            [
                (rf"{path}/?", UpdateHandler, {"hook": hook}),
                (r"/healthz", HealthHandler),
                (r"/readyz", ReadyHandler, {"hook": hook}),
                (r"/metrics", MetricsHandler),
            ],
        )


async def count_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A second error handler (PTB calls every one): count errors for /metrics."""
    metrics.ERRORS.inc()


async def serve_webhook(
    app: Application,
    settings: Settings,
    stop: asyncio.Event | None = None,
    scheduler_factory: Callable[[], AsyncIOScheduler] | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Serve updates posted by Telegram until SIGINT/SIGTERM (or ``stop``); with a
    ``scheduler_factory``, run the scheduler whenever this replica leads (bot.services.leader), as
    bot.adapter.app.serve does. ``ready`` is set once the server listens."""
    check_settings(settings)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    app.add_error_handler(count_error)
    engine = storage.make_engine(settings.database_url)  # for /readyz: one connection at most
    hook = Webhook(app, settings, engine)
    server = WebhookServer(settings.consulta_webhook_listen, settings.consulta_webhook_port,
                           WebhookApp(hook), None)  # fmt: skip
    try:
        async with app:
            await set_commands(app)
            if settings.consulta_webhook_url:
                await app.bot.set_webhook(
                    settings.consulta_webhook_url,
                    secret_token=settings.telegram_webhook_secret,
                    allowed_updates=ALLOWED_UPDATES,
                )
                log.info("webhook registered: %s", settings.consulta_webhook_url)
            await app.start()
            try:
                async with contextlib.AsyncExitStack() as scheduled:
                    if scheduler_factory is not None:  # as bot.adapter.app.serve
                        await scheduled.enter_async_context(
                            leadership(running.outbox(app), running.conversation(app),
                                       settings, scheduler_factory)
                        )  # fmt: skip
                    await server.serve_forever()
                    log.info("webhook as @%s on http://%s:%s%s", app.bot.username,
                             settings.consulta_webhook_listen, settings.consulta_webhook_port,
                             settings.consulta_webhook_path)  # fmt: skip
                    if ready is not None:
                        ready.set()
                    await stop.wait()
                    await drain(hook)
                    await server.shutdown()
            finally:
                if server.is_running:
                    await server.shutdown()
                await app.stop()
                await close_conversation(app)
    finally:
        engine.dispose()


async def drain(hook: Webhook) -> None:
    """Refuse new updates (503: Telegram retries, and reaches another replica) and let the
    ones in flight commit and answer, so that a restart costs no redelivery."""
    hook.draining = True
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while hook.in_flight and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
