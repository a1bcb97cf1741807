"""The errors storage raises for the callers to act on."""

from __future__ import annotations


class StorageError(Exception):
    """Base of the errors of storage/."""


class Conflict(StorageError):
    """Another transaction changed what this one read; run it again on the new state."""


class StaleParticipant(Conflict):
    """The participant's row changed between reading it and saving it (optimistic lock)."""


class InvitationTaken(Conflict):
    """Another account accepted this invitation first (a race between two accounts)."""
