"""A local stand-in for the Telegram Bot API, for tests and benchmarks.

No Telegram server is reachable from the test machines, so a real python-telegram-bot
``Bot``/``Application`` built with ``base_url=standin.base_url`` talks plain HTTP/1.1 to this
server on 127.0.0.1 instead. It runs tornado in a background thread with its own event loop and

* answers the Bot API methods the project uses with Telegram's JSON envelope and realistic
  ``Message`` objects (message ids increase per chat, inline keyboards are echoed back);
* records every call (:class:`Call`) so tests can assert what the bot sent;
* serves ``getUpdates`` from an in-memory queue with Telegram's offset semantics: fetching does
  not confirm anything, only a later ``offset`` does, so unconfirmed updates are redelivered;
* can simulate flood control (HTTP 429) and one-off errors such as a user who blocked the bot.

Usage::

    with BotApiStandIn() as api:
        app = Application.builder().token(api.token).base_url(api.base_url).build()
        api.push_update(text_update(1, 42, "/start"))
        ...  # run the application
        api.wait_for(lambda: api.texts_to(42))  # from async code: await api.await_for(...)
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import tornado.httpserver
import tornado.netutil
import tornado.web
from telegram import Update

T = TypeVar("T")
JSONDict = dict[str, Any]

BOT_ID = 123456
BOT_USERNAME = "consulta_test_bot"
BOT_FIRST_NAME = "Consulta Test"
BOT_USER: JSONDict = {
    "id": BOT_ID,
    "is_bot": True,
    "first_name": BOT_FIRST_NAME,
    "username": BOT_USERNAME,
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
    "can_connect_to_business": False,
    "has_main_web_app": False,
}
# Calls that deliver something to a chat; what sent_to() reports.
SEND_METHODS = frozenset(
    {
        "sendMessage",
        "editMessageText",
        "editMessageReplyMarkup",
        "sendDocument",
        "sendPhoto",
        "sendMediaGroup",
    }
)
# Form values that must stay strings even when they look like JSON (PTB sends every parameter
# as a string: str values as-is, everything else json.dumps()-ed).
_STRING_FIELDS = frozenset(
    {
        "text",
        "caption",
        "callback_query_id",
        "inline_message_id",
        "url",
        "parse_mode",
        "action",
        "language_code",
        "secret_token",
        "photo",
        "document",
        "video",
        "audio",
        "voice",
        "sticker",
        "animation",
        "message_effect_id",
        "business_connection_id",
    }
)
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)


class ApiError(Exception):
    """Raised inside a method implementation to answer with an ``ok: false`` envelope."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after


@dataclass(frozen=True)
class UploadedFile:
    """One file part of a multipart request (the content is kept for assertions)."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class Call:
    """One recorded API call. ``at`` is ``time.monotonic()`` when the request arrived."""

    method: str
    params: dict[str, Any]
    at: float
    files: dict[str, UploadedFile] = field(default_factory=dict)
    status: int = 200  # HTTP status answered (429 for flood control, 499 if the client went away)
    result: Any = None  # the "result" returned on success

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class _Failure:
    method: str
    code: int
    description: str
    chat_id: int | str | None
    times: int
    retry_after: int | None


class BotApiStandIn:
    """Fake Bot API server; see the module docstring. Start with ``with`` or ``start()``."""

    token = f"{BOT_ID}:TEST"

    def __init__(
        self,
        *,
        flood_limit_per_s: int | None = None,
        flood_retry_after: int = 1,
        strict_edits: bool = True,
    ) -> None:
        """``flood_limit_per_s``: allow at most this many send*/edit* calls in any sliding
        one-second window (accepted calls only are counted); further ones get HTTP 429 with
        ``retry_after=flood_retry_after``. ``strict_edits``: an edit that changes nothing gets
        Telegram's 400 "message is not modified", as the real server does."""
        self.flood_limit_per_s = flood_limit_per_s
        self.flood_retry_after = flood_retry_after
        self.strict_edits = strict_edits
        self.too_many_requests = 0
        self.port = 0
        self._lock = threading.RLock()
        self._calls: list[Call] = []
        self._pending: list[tuple[int, JSONDict]] = []  # sorted by update_id
        self._confirmed_up_to = 0
        self._last_update_id = 0
        self._last_message_id: collections.defaultdict[int, int] = collections.defaultdict(int)
        self._messages: dict[tuple[int, int], JSONDict] = {}
        self._failures: list[_Failure] = []
        self._late: dict[str, list[float]] = {}
        self._commands: dict[tuple[str, str], list[Any]] = {}
        self._webhook_url = ""
        self._file_counter = 0
        self._flood_window: collections.deque[float] = collections.deque()
        self._waiters: set[asyncio.Future[None]] = set()  # long-polling getUpdates requests
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._methods: dict[str, Callable[[JSONDict, dict[str, UploadedFile]], Any]] = {
            "getMe": lambda p, f: BOT_USER,
            "logOut": lambda p, f: True,
            "close": lambda p, f: True,
            "sendChatAction": lambda p, f: self._chat_id(p) is not None,
            "answerCallbackQuery": lambda p, f: bool(self._require(p, "callback_query_id")),
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "getUpdates": self._get_updates,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message,
            "editMessageReplyMarkup": self._edit_message,
            "deleteMessage": self._delete_message,
            "sendDocument": self._send_file,
            "sendPhoto": self._send_file,
            "sendMediaGroup": self._send_media_group,
        }
        self._canonical = {name.lower(): name for name in self._methods}

    # ------------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    def start(self) -> BotApiStandIn:
        if self._thread is not None:
            raise RuntimeError("already started")
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
        self.port = sockets[0].getsockname()[1]
        ready = threading.Event()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._serve(sockets, ready)),
            name="botapi-standin",
            daemon=True,
        )
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("Bot API stand-in did not start")
        return self

    def stop(self) -> None:
        thread, loop, event = self._thread, self._loop, self._stop_event
        if thread is None or loop is None or event is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop may already be closed
            loop.call_soon_threadsafe(event.set)
        thread.join(10)
        self._thread = None

    def __enter__(self) -> BotApiStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _serve(self, sockets: list[socket.socket], ready: threading.Event) -> None:
        self._loop, self._stop_event = asyncio.get_running_loop(), asyncio.Event()
        app = tornado.web.Application(
            [
                (r"/bot[^/]*/([A-Za-z0-9_]+)/?", _MethodHandler, {"api": self}),
                (r".*", _NotFoundHandler),
            ],
            log_function=lambda handler: None,  # no access log: it costs time in benchmarks
        )
        server = tornado.httpserver.HTTPServer(app)
        server.add_sockets(sockets)
        ready.set()
        await self._stop_event.wait()
        server.stop()
        self._closing = True
        self._wake_waiters()
        await asyncio.sleep(0.01)  # let woken long polls answer
        await server.close_all_connections()

    # ------------------------------------------------------------------ test-side API
    @property
    def calls(self) -> list[Call]:
        """A snapshot of all recorded calls, oldest first."""
        with self._lock:
            return list(self._calls)

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def sent_to(self, chat_id: int | str, *, include_failed: bool = False) -> list[Call]:
        """Successful (unless ``include_failed``) send/edit calls addressed to ``chat_id``."""
        return [
            c
            for c in self.calls
            if c.method in SEND_METHODS
            and str(c.params.get("chat_id")) == str(chat_id)
            and (include_failed or c.ok)
        ]

    def texts_to(self, chat_id: int | str) -> list[str]:
        """Texts of successful sendMessage/editMessageText calls to ``chat_id``, in order."""
        return [
            str(c.params.get("text"))
            for c in self.sent_to(chat_id)
            if c.method in ("sendMessage", "editMessageText")
        ]

    def message(self, chat_id: int, message_id: int) -> JSONDict | None:
        """Current state (after edits) of a message the stand-in knows about."""
        with self._lock:
            return self._messages.get((chat_id, message_id))

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        """Poll ``predicate()`` from sync code until truthy; return its value or raise
        ``TimeoutError``. Do not call it from the event loop that runs the bot: use
        :meth:`await_for` there."""
        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            if time.monotonic() > deadline:
                raise TimeoutError(self._timeout_message(timeout))
            time.sleep(0.005)
        return value

    async def await_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        """Async variant of :meth:`wait_for`; lets the caller's event loop keep running."""
        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            if time.monotonic() > deadline:
                raise TimeoutError(self._timeout_message(timeout))
            await asyncio.sleep(0.005)
        return value

    def _timeout_message(self, timeout: float) -> str:
        recent = [(c.method, c.status, c.params) for c in self.calls[-5:]]
        return f"condition not met within {timeout}s; last calls: {recent}"

    def push_update(self, update: Update | JSONDict, *, redeliver: bool = False) -> int:
        """Queue an update for getUpdates and return its update_id. A PTB ``Update`` is
        serialised with ``to_dict()``; update_id 0/None means "assign the next id".

        ``redeliver=True`` queues an update again although it was confirmed, as Telegram
        does when a bot died before its confirmation arrived (a new process polls again
        from scratch)."""
        data = update.to_dict() if isinstance(update, Update) else json.loads(json.dumps(update))
        with self._lock:
            if redeliver and data.get("update_id"):
                self._confirmed_up_to = min(self._confirmed_up_to, data["update_id"])
            update_id = data.get("update_id") or max(
                self._last_update_id + 1, self._confirmed_up_to
            )
            if update_id < self._confirmed_up_to or any(u == update_id for u, _ in self._pending):
                raise ValueError(f"update_id {update_id} is already confirmed or pending")
            data["update_id"] = update_id
            bisect.insort(self._pending, (update_id, data), key=lambda item: item[0])
            self._last_update_id = max(self._last_update_id, update_id)
            self._note_incoming(data)
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake_waiters)
        return update_id

    def pending_count(self) -> int:
        """Updates not yet confirmed (fetched-but-unconfirmed ones included)."""
        with self._lock:
            return len(self._pending)

    @property
    def confirmed_up_to(self) -> int:
        """Highest getUpdates offset seen: every update with a smaller id is gone for good."""
        return self._confirmed_up_to

    def fail_next(
        self,
        method: str,
        error_code: int,
        description: str,
        *,
        chat_id: int | str | None = None,
        times: int = 1,
        retry_after: int | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (to ``chat_id`` if given) fail, e.g.
        ``fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user", chat_id=42)``."""
        with self._lock:
            self._failures.append(
                _Failure(method.lower(), error_code, description, chat_id, times, retry_after)
            )

    def answer_late(self, method: str, seconds: float, *, times: int = 1) -> None:
        """Carry out the next ``times`` calls of ``method`` but answer each only after
        ``seconds``: to a client with a shorter timeout, the answer is lost although the
        message was sent."""
        with self._lock:
            self._late.setdefault(method.lower(), []).extend([seconds] * times)

    # ------------------------------------------------------------------ request handling
    async def handle(
        self, method: str, params: JSONDict, files: dict[str, UploadedFile]
    ) -> tuple[int, JSONDict]:
        """Serve one API call (already decoded); returns (HTTP status, envelope)."""
        name = self._canonical.get(method.lower(), method)
        call = Call(name, params, time.monotonic(), files)
        try:
            impl = self._methods.get(name)
            if impl is None:
                raise ApiError(404, "Not Found: method not found")
            if self.flood_limit_per_s is not None and name.startswith(("send", "edit")):
                self._check_flood(call.at)
            self._check_failures(name, params)
            result = impl(params, files)
            if asyncio.iscoroutine(result):
                result = await result
        except ApiError as err:
            call.status = err.code
            envelope: JSONDict = {
                "ok": False,
                "error_code": err.code,
                "description": err.description,
            }
            if err.retry_after is not None:
                envelope["parameters"] = {"retry_after": err.retry_after}
            return err.code, envelope
        except asyncio.CancelledError:
            call.status = 499
            raise
        except (KeyError, TypeError, ValueError) as err:
            call.status = 400
            return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {err}"}
        else:
            call.result = result
            with self._lock:
                late = self._late.get(name.lower())
                delay = late.pop(0) if late else 0.0
            if delay:  # carried out, answered late: see answer_late
                await asyncio.sleep(delay)
            return 200, {"ok": True, "result": result}
        finally:
            with self._lock:
                self._calls.append(call)

    def _check_flood(self, now: float) -> None:
        window = self._flood_window
        while window and now - window[0] >= 1.0:
            window.popleft()
        if self.flood_limit_per_s is not None and len(window) >= self.flood_limit_per_s:
            self.too_many_requests += 1
            retry = self.flood_retry_after
            raise ApiError(429, f"Too Many Requests: retry after {retry}", retry_after=retry)
        window.append(now)

    def _check_failures(self, method: str, params: JSONDict) -> None:
        with self._lock:
            for failure in self._failures:
                if failure.method == method.lower() and (
                    failure.chat_id is None or str(failure.chat_id) == str(params.get("chat_id"))
                ):
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failures.remove(failure)
                    raise ApiError(failure.code, failure.description, failure.retry_after)

    def _wake_waiters(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _note_incoming(self, data: JSONDict) -> None:
        """Keep per-chat message ids above the user's, and remember bot messages that
        callback queries point at (so they can be edited)."""
        for key in ("message", "edited_message", "channel_post", "callback_query"):
            msg = data.get(key)
            if key == "callback_query" and msg:
                msg = msg.get("message")
            if msg and "chat" in msg and "message_id" in msg:
                chat_id, message_id = msg["chat"]["id"], msg["message_id"]
                self._last_message_id[chat_id] = max(self._last_message_id[chat_id], message_id)
                if key == "callback_query":
                    self._messages.setdefault((chat_id, message_id), dict(msg))

    # ------------------------------------------------------------------ method implementations
    @staticmethod
    def _require(params: JSONDict, name: str) -> Any:
        value = params.get(name)
        if value is None or value == "":
            raise ApiError(400, f"Bad Request: {name} is empty")
        return value

    def _chat_id(self, params: JSONDict) -> int:
        value = self._require(params, "chat_id")
        try:
            return int(value)
        except ValueError:
            raise ApiError(400, "Bad Request: chat not found") from None

    @staticmethod
    def _json_param(params: JSONDict, name: str) -> Any:
        value = params.get(name)
        return json.loads(value) if isinstance(value, str) else value

    def _markup(self, params: JSONDict) -> JSONDict | None:
        """The reply_markup to echo (Telegram only echoes inline keyboards)."""
        markup = self._json_param(params, "reply_markup")
        if not isinstance(markup, dict) or "inline_keyboard" not in markup:
            return None
        for row in markup["inline_keyboard"]:
            for button in row:
                if len(button.get("callback_data", "").encode()) > 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup

    def _new_message(self, chat_id: int, content: JSONDict) -> JSONDict:
        with self._lock:
            self._last_message_id[chat_id] += 1
            message_id = self._last_message_id[chat_id]
            message = {
                "message_id": message_id,
                "from": BOT_USER,
                "date": int(time.time()),
                "chat": _chat(chat_id),
                **{k: v for k, v in content.items() if v},
            }
            self._messages[(chat_id, message_id)] = message
        return message

    def _text(self, params: JSONDict, name: str = "text") -> str:
        text = params.get(name)
        if name == "text" and not text:
            raise ApiError(400, "Bad Request: message text is empty")
        if text and len(str(text)) > (4096 if name == "text" else 1024):
            raise ApiError(400, f"Bad Request: message {name} is too long")
        return str(text) if text else ""

    def _send_message(self, params: JSONDict, files: dict[str, UploadedFile]) -> JSONDict:
        chat_id = self._chat_id(params)
        return self._new_message(
            chat_id, {"text": self._text(params), "reply_markup": self._markup(params)}
        )

    def _edit_message(self, params: JSONDict, files: dict[str, UploadedFile]) -> JSONDict | bool:
        if params.get("inline_message_id"):
            return True
        chat_id, message_id = self._chat_id(params), int(self._require(params, "message_id"))
        markup = self._markup(params)
        with self._lock:
            old = self._messages.get((chat_id, message_id)) or {
                "message_id": message_id,
                "from": BOT_USER,
                "date": int(time.time()),
                "chat": _chat(chat_id),
            }
            new = {k: v for k, v in old.items() if k not in ("reply_markup", "edit_date")}
            if "text" in params:
                new["text"] = self._text(params)
            if markup:
                new["reply_markup"] = markup
            if (
                self.strict_edits
                and new.get("text") == old.get("text")
                and markup == old.get("reply_markup")
            ):
                raise ApiError(400, _NOT_MODIFIED)
            new["edit_date"] = int(time.time())
            self._messages[(chat_id, message_id)] = new
        return new

    def _delete_message(self, params: JSONDict, files: dict[str, UploadedFile]) -> bool:
        key = (self._chat_id(params), int(self._require(params, "message_id")))
        with self._lock:
            self._messages.pop(key, None)
        return True

    def _file(self, ref: Any, files: dict[str, UploadedFile], kind: str) -> JSONDict:
        """Fake file metadata for an uploaded part or a file_id/URL string."""
        with self._lock:
            self._file_counter += 1
            n = self._file_counter
        if isinstance(ref, str) and ref.startswith("attach://"):
            ref = files.get(ref.removeprefix("attach://"))
        if ref is None:
            raise ApiError(400, f"Bad Request: there is no {kind} in the request")
        info: JSONDict = {"file_id": f"{kind.upper()}-{n}", "file_unique_id": f"U{n}"}
        if isinstance(ref, UploadedFile):
            info.update(file_size=ref.size, file_name=ref.filename, mime_type=ref.content_type)
        else:
            info["file_id"] = str(ref)
        if kind == "photo":
            return {k: info[k] for k in ("file_id", "file_unique_id")} | {
                "width": 800,
                "height": 600,
                "file_size": info.get("file_size", 1),
            }
        if kind == "video":
            info.update(duration=1, width=640, height=480)
        elif kind == "audio":
            info["duration"] = 1
        return info

    def _media_fields(self, kind: str, info: JSONDict) -> JSONDict:
        if kind == "photo":
            thumb = info | {
                "file_id": info["file_id"] + "-s",
                "file_unique_id": info["file_unique_id"] + "-s",
                "width": 90,
                "height": 68,
            }
            return {"photo": [thumb, info]}
        return {kind: info}

    def _send_file(self, params: JSONDict, files: dict[str, UploadedFile]) -> JSONDict:
        chat_id = self._chat_id(params)
        kind = "photo" if "photo" in params or "photo" in files else "document"
        info = self._file(files.get(kind) or params.get(kind), files, kind)
        return self._new_message(
            chat_id,
            {
                **self._media_fields(kind, info),
                "caption": self._text(params, "caption"),
                "reply_markup": self._markup(params),
            },
        )

    def _send_media_group(self, params: JSONDict, files: dict[str, UploadedFile]) -> list[Any]:
        chat_id = self._chat_id(params)
        media = self._json_param(params, "media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise ApiError(400, "Bad Request: wrong number of media (must be 2-10)")
        group_id = str(int(time.time() * 1000))
        return [
            self._new_message(
                chat_id,
                {
                    **self._media_fields(
                        item["type"], self._file(item.get("media"), files, item["type"])
                    ),
                    "caption": item.get("caption"),
                    "media_group_id": group_id,
                },
            )
            for item in media
        ]

    async def _get_updates(self, params: JSONDict, files: dict[str, UploadedFile]) -> list[Any]:
        if self._webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset, timeout = int(params.get("offset") or 0), float(params.get("timeout") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        batch = self._take(offset, limit)
        if not batch and timeout > 0 and not self._closing:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.add(waiter)
            try:
                await asyncio.wait({waiter}, timeout=timeout)
            finally:
                self._waiters.discard(waiter)
            batch = self._take(offset, limit)
        return batch

    def _take(self, offset: int, limit: int) -> list[JSONDict]:
        """Confirm updates below ``offset`` (negative: keep only the last -offset) and return
        up to ``limit`` of the rest, without confirming them."""
        with self._lock:
            if offset < 0:
                keep = self._pending[offset:]
                offset = keep[0][0] if keep else self._last_update_id + 1
            if offset:
                cut = bisect.bisect_left(self._pending, offset, key=lambda item: item[0])
                del self._pending[:cut]
                self._confirmed_up_to = max(self._confirmed_up_to, offset)
            return [data for _, data in self._pending[:limit]]

    def _set_my_commands(self, params: JSONDict, files: dict[str, UploadedFile]) -> bool:
        commands = self._json_param(params, "commands")
        if not isinstance(commands, list):
            raise ApiError(400, "Bad Request: commands is empty")
        self._commands[self._commands_key(params)] = commands
        return True

    def _get_my_commands(self, params: JSONDict, files: dict[str, UploadedFile]) -> list[Any]:
        return self._commands.get(self._commands_key(params), [])

    def _delete_my_commands(self, params: JSONDict, files: dict[str, UploadedFile]) -> bool:
        self._commands.pop(self._commands_key(params), None)
        return True

    def _commands_key(self, params: JSONDict) -> tuple[str, str]:
        scope = self._json_param(params, "scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    def _set_webhook(self, params: JSONDict, files: dict[str, UploadedFile]) -> bool:
        self._webhook_url = str(params.get("url") or "")
        return self._delete_webhook(params, files) if not self._webhook_url else True

    def _delete_webhook(self, params: JSONDict, files: dict[str, UploadedFile]) -> bool:
        self._webhook_url = ""
        if params.get("drop_pending_updates"):
            self._take(self._last_update_id + 1, 1)
        return True

    def _get_webhook_info(self, params: JSONDict, files: dict[str, UploadedFile]) -> JSONDict:
        return {
            "url": self._webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": self.pending_count(),
        }


def _chat(chat_id: int) -> JSONDict:
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": f"User {chat_id}"}
    kind = "supergroup" if str(chat_id).startswith("-100") else "group"
    return {"id": chat_id, "type": kind, "title": f"Chat {chat_id}"}


def _decode_form_value(name: str, raw: str) -> Any:
    if name in _STRING_FIELDS:
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


class _MethodHandler(tornado.web.RequestHandler):
    def initialize(self, api: BotApiStandIn) -> None:
        self.api = api
        self._task: asyncio.Task[tuple[int, JSONDict]] | None = None

    async def get(self, method: str) -> None:
        request = self.request
        try:
            params: JSONDict = {
                k: _decode_form_value(k, v[-1].decode()) for k, v in request.query_arguments.items()
            }
            if request.headers.get("Content-Type", "").startswith("application/json"):
                params.update(json.loads(request.body or b"{}"))
            else:
                params.update(
                    {
                        k: _decode_form_value(k, v[-1].decode())
                        for k, v in request.body_arguments.items()
                    }
                )
        except (ValueError, AttributeError):
            self._answer(
                400,
                {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: invalid request body",
                },
            )
            return
        files = {
            name: UploadedFile(parts[0].filename, parts[0].content_type, parts[0].body)
            for name, parts in request.files.items()
            if parts
        }
        self._task = asyncio.ensure_future(self.api.handle(method, params, files))
        try:
            status, envelope = await self._task
        except asyncio.CancelledError:  # the client disconnected during a long poll
            return
        self._answer(status, envelope)

    post = get

    def _answer(self, status: int, envelope: JSONDict) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(envelope))

    def on_connection_close(self) -> None:
        if self._task is not None:
            self._task.cancel()


class _NotFoundHandler(tornado.web.RequestHandler):
    def prepare(self) -> None:
        self.set_status(404)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"ok": False, "error_code": 404, "description": "Not Found"}))
