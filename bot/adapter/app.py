"""The running bot: the PTB ``Application`` wired to the conversation, and ``serve``, which
runs it with long polling (``consulta run``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder

from bot.adapter import handlers, runtime
from bot.adapter.polling import poll
from bot.adapter.transport import AiohttpRequest
from bot.infra.config import Settings
from bot.services import reminders
from bot.services.conversation import Conversation
from bot.services.leader import build_scheduler

__all__ = ["build_application", "build_scheduler", "serve"]

log = logging.getLogger(__name__)


def build_application(settings: Settings, conv: Conversation) -> Application:
    """A PTB application for ``settings`` whose handlers drive ``conv``."""
    builder: ApplicationBuilder = (
        Application.builder()
        .token(settings.telegram_bot_token)
        .base_url(settings.telegram_base_url)
        .updater(None)  # Consulta receives updates itself: see bot.adapter.runtime
        .request(AiohttpRequest(pool_size=2 * runtime.CONCURRENCY))  # room for broadcasts beside
        .get_updates_request(AiohttpRequest(pool_size=1, read_timeout=5.0))
    )
    if settings.consulta_rate_limit > 0:
        # One message every 1/rate s, never a burst: with overall_max_rate=rate, aiolimiter's
        # bucket lets `rate` through at once and then `rate` per second (twice the limit in
        # the first second). RetryAfter is waited out by the call that got it
        # (bot.adapter.sending.with_retries): PTB's own retries pause every call, but its limiter
        # keeps granting meanwhile and releases them all at once, so one 429 brings the next
        # (bench/broadcast.py, 5,000 reminders: 68% of the limit and 926 429s with PTB's
        # retries, 97% and none after the first second without).
        limiter = AIORateLimiter(
            overall_max_rate=1,
            overall_time_period=1 / settings.consulta_rate_limit,
            max_retries=0,
        )
        builder = builder.rate_limiter(limiter)
    app = builder.build()
    handlers.register(app, conv, settings)
    app.add_error_handler(runtime.on_error)
    return app


async def serve(
    app: Application,
    stop: asyncio.Event | None = None,
    scheduler_factory: Callable[[], AsyncIOScheduler] | None = None,
    policy: reminders.Policy | None = None,
) -> None:
    """Run the bot with Consulta's own long polling (bot.adapter.polling: an update is
    confirmed to Telegram only once applied; PTB's Updater, which confirms before handlers
    commit, is disabled) until SIGINT/SIGTERM or ``stop``; see bot.adapter.runtime.run for
    ``scheduler_factory`` (e.g. ``lambda: build_scheduler(settings)``) and ``policy``."""

    async def receive(updates: runtime.Updates, stop: asyncio.Event) -> None:
        log.info("polling as @%s", app.bot.username)
        await poll(app, updates, stop)

    await runtime.run(app, receive, prepare=_without_webhook, stop=stop,
                      scheduler_factory=scheduler_factory, policy=policy)  # fmt: skip


async def _without_webhook(app: Application) -> None:
    """Polling and a webhook exclude each other: Telegram refuses getUpdates while one is set."""
    await app.bot.delete_webhook()
