"""The running bot: the PTB ``Application`` wired to the conversation, and its lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from telegram import BotCommand
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder

from bot.adapter import context as running
from bot.adapter import handlers
from bot.adapter.polling import SENDERS_AT_ONCE, on_error, poll
from bot.adapter.transport import AiohttpRequest
from bot.infra.config import Settings
from bot.services import reminders
from bot.services.conversation import Conversation
from bot.services.leader import build_scheduler, leadership

__all__ = [
    "build_application", "build_scheduler", "close_conversation", "serve", "set_commands",
]  # fmt: skip

log = logging.getLogger(__name__)

MENU_COMMANDS = (
    "start", "menu", "revisar", "omitir", "cancelar", "privacidad", "resultados", "borrar", "ayuda",
)  # fmt: skip
CONCURRENT_UPDATES = 64


def build_application(settings: Settings, conv: Conversation) -> Application:
    """A PTB application for ``settings`` whose handlers drive ``conv``."""
    builder: ApplicationBuilder = (
        Application.builder()
        .token(settings.telegram_bot_token)
        .base_url(settings.telegram_base_url)
        .updater(None)  # Consulta polls itself: see bot.adapter.polling
        .concurrent_updates(CONCURRENT_UPDATES)
        .request(AiohttpRequest(pool_size=2 * SENDERS_AT_ONCE))  # room for broadcasts beside
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
    app.add_error_handler(on_error)
    return app


async def set_commands(app: Application) -> None:
    """Fill Telegram's command menu from the message catalogue."""
    conv = running.conversation(app)
    descriptions = conv.definition.messages.commands
    commands = [BotCommand(name, descriptions.get(name, name)) for name in MENU_COMMANDS]
    await app.bot.set_my_commands(commands)


async def serve(
    app: Application,
    stop: asyncio.Event | None = None,
    scheduler_factory: Callable[[], AsyncIOScheduler] | None = None,
    policy: reminders.Policy | None = None,
) -> None:
    """Run the bot until SIGINT/SIGTERM (or ``stop``) with Consulta's own long polling
    (bot.adapter.polling: an update is confirmed to Telegram only once stored; PTB's Updater, which
    confirms before handlers commit, is disabled). With a ``scheduler_factory`` (e.g.
    ``lambda: build_scheduler(settings)``), reminders and digests run on a scheduler it
    makes, whenever this process leads the replicas (bot.services.leader)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    async with app:
        await app.bot.delete_webhook()
        await set_commands(app)
        await app.start()
        log.info("polling as @%s", app.bot.username)
        try:
            async with contextlib.AsyncExitStack() as scheduled:
                if scheduler_factory is not None:
                    await scheduled.enter_async_context(
                        leadership(running.outbox(app), running.conversation(app),
                                   running.settings(app), scheduler_factory, policy=policy)
                    )  # fmt: skip
                await poll(app, stop)
        finally:
            await app.stop()
            await close_conversation(app)


async def close_conversation(app: Application) -> None:
    """Close the database connections that the conversation opened on this event loop
    (PTB calls no shutdown hook outside its own run_polling/run_webhook)."""
    await running.conversation(app).aclose()
