"""Prometheus metrics of the running bot, served at ``/metrics`` by ``consulta webhook``.

Module-level, in prometheus_client's default registry (with its process metrics: CPU, RSS,
open files): there is one bot per process, and the counters are touched from modules that
know nothing of the webhook server (bot.adapter.sending counts send retries,
bot.adapter.runtime errors and updates).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

UPDATES = Counter(
    "consulta_updates",
    "Updates handled, by outcome: ok (committed or recognised as a redelivery), failed "
    "(the handler raised; not confirmed, so that Telegram redelivers), gave_up (failed too "
    "often; confirmed so that one poisoned update cannot block the bot).",
    ["outcome"],
)
REJECTED = Counter(
    "consulta_webhook_rejected",
    "Webhook requests refused before processing, by HTTP status (403 wrong or missing "
    "secret, 400 malformed, 413 too large, 415 not JSON, 503 shutting down).",
    ["status"],
)
ERRORS = Counter("consulta_errors", "Errors that reached the application's error handler.")
SEND_RETRIES = Counter(
    "consulta_send_retries",
    "Bot API calls tried again after a RetryAfter or a request surely not carried out "
    "(bot.adapter.sending.with_retries).",
)
IN_FLIGHT = Gauge(
    "consulta_updates_in_flight",
    "Updates received and not yet answered: processed now, or waiting for their turn.",
)
