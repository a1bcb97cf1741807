"""The Bot API stand-in of the tests, with what a benchmark needs on top.

:class:`BenchStandIn` is ``tests.helpers.botapi.BotApiStandIn`` (real HTTP on 127.0.0.1,
tornado on its own thread and event loop) plus:

* :meth:`~BenchStandIn.push_many`: queue thousands of updates at once. The test helper's
  ``push_update`` checks every pending update for a duplicate id, which is quadratic: 20,000
  pushes would cost the stand-in seconds while the bot is being timed.
* counters kept as calls arrive (``replies``, ``get_updates_calls``), so that waiting for
  "all replies received" does not copy the list of recorded calls every few milliseconds;
* :meth:`~BenchStandIn.push_paced`: push updates at given offsets from the stand-in's own event
  loop, and measure each one's latency: from the push to the arrival of the first reply
  message (``sendMessage``/``editMessageText``...) to its chat. Pushes and arrivals are both
  ``time.monotonic()`` readings in this process, so the bot's clock plays no part.

Replies are matched to updates per chat, in order: each paced update comes with the number of
replies it must produce, so the first reply after an update's last one belongs to the next
update of that chat, even when the bot falls behind and several are in flight.

It reaches into a few private attributes of its base class (the pending queue, its lock, the
event loop); they are named here and nowhere else in ``bench/``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.helpers.botapi import SEND_METHODS, BotApiStandIn, UploadedFile

JSONDict = dict[str, Any]
_REPLY_METHODS = frozenset(m.lower() for m in SEND_METHODS)


@dataclass
class PacedResult:
    """What :meth:`BenchStandIn.push_paced` observed."""

    latencies: list[float] = field(default_factory=list)
    """Seconds from push to first reply, one per answered update."""
    pushed: int = 0
    first_push: float = 0.0
    last_push: float = 0.0

    @property
    def offered_per_s(self) -> float:
        span = self.last_push - self.first_push
        return (self.pushed - 1) / span if self.pushed > 1 and span > 0 else 0.0


@dataclass
class _InFlight:
    pushed: float
    replies_left: int
    answered: bool = False


def chat_of(update: JSONDict) -> str:
    """The chat an update comes from (as a string, the way ``chat_id`` is compared)."""
    message = update.get("message") or update.get("edited_message")
    if message is None and "callback_query" in update:
        message = update["callback_query"].get("message")
        if message is None:
            return str(update["callback_query"]["from"]["id"])
    return str(message["chat"]["id"]) if message else ""


class BenchStandIn(BotApiStandIn):
    """``BotApiStandIn`` with bulk pushes, reply counters and latency measurement."""

    def __init__(self) -> None:
        # Lenient edits: the same participants walk again in every run, so a button pressed in
        # run 2 edits a message that run 1 already brought to that very text.
        super().__init__(strict_edits=False)
        self.replies = 0
        """Successful send/edit calls so far (what ``sent_to`` would list)."""
        self.get_updates_calls = 0
        """getUpdates calls so far, counted on arrival (a long poll answers much later)."""
        self._in_flight: dict[str, deque[_InFlight]] = {}  # chat -> its paced updates, in order
        self._paced: PacedResult | None = None

    def __enter__(self) -> BenchStandIn:
        self.start()
        return self

    # ------------------------------------------------------------------ counting
    async def handle(
        self, method: str, params: JSONDict, files: dict[str, UploadedFile]
    ) -> tuple[int, JSONDict]:
        at = time.monotonic()
        name = method.lower()
        if name == "getupdates":
            self.get_updates_calls += 1
        status, envelope = await super().handle(method, params, files)
        if status == 200 and name in _REPLY_METHODS:
            self.replies += 1
            if self._paced is not None:
                self._match(str(params.get("chat_id")), at, self._paced)
        return status, envelope

    def _match(self, chat: str, at: float, result: PacedResult) -> None:
        queue = self._in_flight.get(chat)
        if not queue:
            return
        head = queue[0]
        if not head.answered:
            head.answered = True
            result.latencies.append(at - head.pushed)
        head.replies_left -= 1
        if head.replies_left <= 0:
            queue.popleft()

    def reset(self) -> None:
        """Forget recorded calls and known messages (they only cost memory between runs)."""
        with self._lock:
            self._calls.clear()
            self._messages.clear()

    # ------------------------------------------------------------------ pushing
    def push_many(self, updates: Sequence[JSONDict]) -> int:
        """Queue ``updates`` (JSON dicts, as ``Update.to_dict()`` gives) in order, with fresh
        consecutive update ids; returns the first id. One lock, one wake-up, linear time."""
        with self._lock:
            first = next_id = max(self._last_update_id + 1, self._confirmed_up_to)
            for data in updates:
                queued = {**data, "update_id": next_id}
                self._pending.append((next_id, queued))  # ids only grow: stays sorted
                self._note_incoming(queued)
                next_id += 1
            self._last_update_id = next_id - 1
        self._loop_call(self._wake_waiters)
        return first

    def push_paced(
        self, schedule: Sequence[tuple[float, JSONDict, int]], timeout: float
    ) -> PacedResult:
        """Push each ``(offset_s, update, replies)`` at its offset from now, on the server's
        event loop; ``replies`` is how many send/edit calls the update must cause. Blocks
        until every update got all its replies (or ``timeout``); returns the latencies."""
        self._paced = result = PacedResult()
        self._in_flight.clear()
        loop = self._server_loop()
        future = asyncio.run_coroutine_threadsafe(self._push_on_schedule(schedule), loop)
        future.result(timeout)
        deadline = time.monotonic() + timeout
        while self.unanswered() and time.monotonic() < deadline:
            time.sleep(0.005)
        self._paced = None
        return result

    def unanswered(self) -> int:
        """Paced updates still waiting for some of their replies."""
        return sum(len(queue) for queue in list(self._in_flight.values()))

    async def _push_on_schedule(self, schedule: Sequence[tuple[float, JSONDict, int]]) -> None:
        result = self._paced
        assert result is not None
        start = time.monotonic()
        for offset, update, replies in schedule:
            delay = start + offset - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.monotonic()
            queue = self._in_flight.setdefault(chat_of(update), deque())
            queue.append(_InFlight(now, replies))
            self.push_many([update])
            result.first_push = result.first_push or now
            result.last_push = now
            result.pushed += 1

    # ------------------------------------------------------------------ the base's internals
    def _server_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None or loop.is_closed():
            raise RuntimeError("the stand-in is not running")
        return loop

    def _loop_call(self, callback: Any) -> None:
        loop = self._server_loop()
        if loop.is_running() and self._thread is not None:
            loop.call_soon_threadsafe(callback)
