"""The errors services raise or expect from the ports they are handed."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the errors of bot.services."""


class Unreachable(ServiceError):
    """The recipient cannot be written to any more (blocked the bot, deleted the account)."""


class NotDelivered(ServiceError):
    """A message could not be delivered, even after the outbox's retries."""
