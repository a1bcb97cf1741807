"""The errors storage raises for the callers to act on."""

from __future__ import annotations


class StorageError(Exception):
    """Base of the errors of storage/."""


class Conflict(StorageError):
    """Another transaction changed what this one read; run it again on the new state."""


class StaleParticipant(Conflict):
    """The participant's row changed between reading it and saving it (optimistic lock)."""


class ParticipantStored(Conflict):
    """A participant this transaction found absent was stored meanwhile by another (two
    replicas applying one new person's first updates), or the random code it drew was."""


class InvitationTaken(Conflict):
    """Another account accepted this invitation first (a race between two accounts)."""
