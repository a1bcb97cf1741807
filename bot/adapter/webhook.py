"""``consulta webhook``: Telegram posts each update to us; we answer only once it is applied.

The server is aiohttp's (``aiohttp.web``). PTB's own webhook server answers 200 as soon as an
update is *queued*, so a crash loses it (the same flaw as its polling ``Updater``, see
bot.adapter.polling). Ours processes the update inside the request
(bot.adapter.runtime.Updates) and answers

* 200 once its transaction committed (or it was recognised as a redelivery: updates are
  deduplicated by ``update_id`` in the database, whichever replica gets them), or once it
  is given up on after ``runtime.MAX_FAILURES`` failed attempts in this process (Telegram
  delivers in order, and one poisoned update would hold back everyone's);
* 500 if it failed, so that Telegram posts it again;
* 403 without the right ``X-Telegram-Bot-Api-Secret-Token`` (compared in constant time,
  before the body is read); 413 for a body over 1 MiB, by its ``Content-Length`` or, when
  chunked, as soon as the bytes read pass the limit; 415 if it is not JSON; 400 for
  malformed JSON (nested too deep included) or JSON that is not an update; 503 while
  shutting down. Nothing is processed for any of them.

The same server answers ``/healthz`` (the process answers), ``/readyz`` (the database
answers and its schema is at the newest migration; 503 otherwise, e.g. while another
replica migrates) and ``/metrics`` (Prometheus text format, bot.infra.metrics).

Several replicas may run behind one proxy on one PostgreSQL database: any of them may get
any update. Within a process, one participant's updates are handled one at a time, in
arrival order; across processes the version column of the participant's state row keeps two
replicas from overwriting each other. On SIGTERM a replica refuses new updates (503: Telegram
retries, and reaches another replica) and lets those in flight commit and answer first.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import prometheus_client
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Engine
from telegram import Update
from telegram.ext import Application

import storage
from bot.adapter import runtime
from bot.infra import metrics
from bot.infra.config import Settings

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20
"""Bytes. Telegram's updates are a few KiB (a message of 4,096 characters with entities);
anything near a mebibyte is not from Telegram."""
READY_TIMEOUT = 5.0
"""Seconds /readyz waits for the database before answering 503."""
DRAIN_TIMEOUT = 20.0
"""Seconds a stopping process waits for updates in flight to commit before closing."""
RESERVED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_ID = 1 << 53
"""Telegram's identifiers fit in 52 bits (Bot API: "at most 52 significant bits")."""

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


def is_update(data: object) -> bool:
    """Whether ``data`` has the shape of a Telegram update in the fields the handlers rely on
    (ids are integers, texts strings...): PTB reads almost anything without checking types,
    and a forged body must be refused (400), not fail in a handler (500, posted again)."""
    if not isinstance(data, dict) or not _is_id(data.get("update_id"), low=0):
        return False
    messages = [data.get(k) for k in ("message", "edited_message")]
    query = data.get("callback_query")
    return all(m is None or _is_message(m) for m in messages) and (
        query is None or _is_callback_query(query)
    )


def _is_id(value: object, low: int = -MAX_ID) -> bool:
    return type(value) is int and low <= value < MAX_ID


def _is_user(user: object) -> bool:
    return (
        isinstance(user, dict)
        and _is_id(user.get("id"))
        and type(user.get("is_bot")) is bool
        and isinstance(user.get("first_name"), str)
    )


def _is_message(message: object) -> bool:
    if not isinstance(message, dict):
        return False
    chat, sender = message.get("chat"), message.get("from")
    return (
        _is_id(message.get("message_id"))
        and _is_id(message.get("date"), low=0)
        and isinstance(chat, dict)
        and _is_id(chat.get("id"))
        and isinstance(chat.get("type"), str)
        and (sender is None or _is_user(sender))
        and _is_text(message, "text", "entities")
        and _is_text(message, "caption", "caption_entities")
    )


def _is_text(message: dict[str, Any], text: str, entities: str) -> bool:
    """A text is a string; its entities (how commands are found) come only with a text."""
    found = message.get(entities, [])
    if found and text not in message:
        return False
    return isinstance(message.get(text, ""), str) and _are_entities(found)


def _are_entities(entities: object) -> bool:
    return isinstance(entities, list) and all(
        isinstance(e, dict)
        and isinstance(e.get("type"), str)
        and _is_id(e.get("offset"), low=0)
        and _is_id(e.get("length"), low=0)
        for e in entities
    )


def _is_callback_query(query: object) -> bool:
    if not isinstance(query, dict):
        return False
    message = query.get("message")
    return (
        isinstance(query.get("id"), str)
        and _is_user(query.get("from"))
        and isinstance(query.get("data", ""), str)
        and (message is None or _is_message(message))
    )


class Webhook:
    """The aiohttp request handlers, around the runtime's ``Updates``."""

    def __init__(self, updates: runtime.Updates, settings: Settings, engine: Engine) -> None:
        self.updates, self.settings, self.engine = updates, settings, engine
        self.secret = settings.telegram_webhook_secret.encode()
        self.draining = False

    def web_application(self) -> web.Application:
        """The routes: updates at CONSULTA_WEBHOOK_PATH (with or without a final slash),
        health, readiness and metrics."""
        path = self.settings.consulta_webhook_path.rstrip("/")
        server = web.Application()
        server.router.add_post(path or "/", self.on_update)
        if path:
            server.router.add_post(f"{path}/", self.on_update)
        server.router.add_get("/healthz", self.on_health)
        server.router.add_get("/readyz", self.on_ready)
        server.router.add_get("/metrics", self.on_metrics)
        return server

    async def on_update(self, request: web.Request) -> web.Response:
        """POST: one update from Telegram, checked before its body is read, answered once
        processed."""
        if self.draining:  # stopping: Telegram retries, another replica answers
            return _refuse(HTTPStatus.SERVICE_UNAVAILABLE, "shutting down")
        token = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(token.encode(), self.secret):
            return _refuse(HTTPStatus.FORBIDDEN, "missing or wrong secret token")
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body over 1 MiB")
        if request.content_type.lower() != "application/json":
            return _refuse(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "expected application/json")
        body = await _read(request)
        if body is None:  # chunked: no Content-Length to refuse it by
            return _refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body over 1 MiB")
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):  # UnicodeDecodeError; nested too deep
            return _refuse(HTTPStatus.BAD_REQUEST, "malformed JSON")
        if not is_update(data):
            _log_refused(data, "not the shape of an update")
            return _refuse(HTTPStatus.BAD_REQUEST, "not an update")
        try:
            update = Update.de_json(data, self.updates.app.bot)
        except Exception as exc:  # RecursionError included
            _log_refused(data, type(exc).__name__)
            return _refuse(HTTPStatus.BAD_REQUEST, "not an update")
        outcome = await self.updates.process(update)
        # 500: Telegram posts it again later (deduplicated by update_id when it does).
        failed = outcome == "failed"
        return web.Response(status=HTTPStatus.INTERNAL_SERVER_ERROR if failed else HTTPStatus.OK)

    async def on_health(self, request: web.Request) -> web.Response:
        """GET /healthz: the process and its event loop answer."""
        return web.json_response({"ok": True})

    async def on_ready(self, request: web.Request) -> web.Response:
        """GET /readyz: the database answers and its schema is at head; 503 otherwise, so a
        load balancer sends no updates to a replica that cannot store them."""
        try:
            at_head = storage.at_head
            ready = await asyncio.wait_for(asyncio.to_thread(at_head, self.engine), READY_TIMEOUT)
            problem = "" if ready else "database schema is not at the newest migration"
        except Exception as exc:
            ready, problem = False, f"database unreachable: {type(exc).__name__}"
        if self.draining:
            ready, problem = False, "shutting down"
        status = HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE
        return web.json_response({"ok": ready, **({"error": problem} if problem else {})},
                                 status=status)  # fmt: skip

    async def on_metrics(self, request: web.Request) -> web.Response:
        """GET /metrics: Prometheus text format."""
        headers = {"Content-Type": prometheus_client.CONTENT_TYPE_LATEST}
        return web.Response(body=prometheus_client.generate_latest(), headers=headers)

    async def drain(self) -> None:
        """Refuse new updates (503) and let the ones in flight commit and answer, so that a
        restart costs no redelivery."""
        self.draining = True
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while self.updates.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)


def _log_refused(data: object, why: str) -> None:
    """Log a refused body by its update id alone: its content is people's."""
    update_id = data.get("update_id") if isinstance(data, dict) else None
    shown = update_id if isinstance(update_id, int) and not isinstance(update_id, bool) else "?"
    log.warning("refused update %s (%s)", shown, why)


async def _read(request: web.Request) -> bytes | None:
    """The body, or None as soon as it passes ``MAX_BODY`` (aiohttp then reads and drops the
    rest while the answer goes out, so the client sees the 413)."""
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return bytes(body)


def _refuse(status: HTTPStatus, reason: str) -> web.Response:
    metrics.REJECTED.labels(str(status.value)).inc()
    return web.json_response({"ok": False, "error": reason}, status=status)


async def serve_webhook(
    app: Application,
    settings: Settings,
    stop: asyncio.Event | None = None,
    scheduler_factory: Callable[[], AsyncIOScheduler] | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Serve updates posted by Telegram until SIGINT/SIGTERM (or ``stop``), on the runtime
    of bot.adapter.runtime.run (``scheduler_factory`` as there). ``ready`` is set once the
    server listens."""
    check_settings(settings)
    engine = storage.make_engine(settings.database_url)  # for /readyz: one connection at most

    async def register(app: Application) -> None:
        if settings.consulta_webhook_url:
            await app.bot.set_webhook(
                settings.consulta_webhook_url,
                secret_token=settings.telegram_webhook_secret,
                allowed_updates=runtime.ALLOWED_UPDATES,
            )
            log.info("webhook registered: %s", settings.consulta_webhook_url)

    async def receive(updates: runtime.Updates, stop: asyncio.Event) -> None:
        hook = Webhook(updates, settings, engine)
        server = web.AppRunner(hook.web_application(), handle_signals=False, access_log=None,
                               shutdown_timeout=1.0)  # fmt: skip
        await server.setup()
        try:
            host, port = settings.consulta_webhook_listen, settings.consulta_webhook_port
            await web.TCPSite(server, host, port).start()
            log.info("webhook as @%s on http://%s:%s%s", app.bot.username, host, port,
                     settings.consulta_webhook_path)  # fmt: skip
            if ready is not None:
                ready.set()
            await stop.wait()
            await hook.drain()
        finally:
            await server.cleanup()

    try:
        await runtime.run(app, receive, prepare=register, stop=stop,
                          scheduler_factory=scheduler_factory)  # fmt: skip
    finally:
        engine.dispose()
