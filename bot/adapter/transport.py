"""PTB's HTTP requests carried by aiohttp instead of httpx.

PTB talks to the Bot API through a ``BaseRequest``; its default, ``HTTPXRequest``, spends
about as much CPU per request as the rest of an update's handling (httpx, httpcore, h11 and
anyio are pure Python). aiohttp parses HTTP in C: bench/updates.py measures the difference.
Everything above ``do_request`` (JSON decoding, error mapping to ``Forbidden``,
``RetryAfter``..., the rate limiter) stays PTB's, with one distinction PTB does not make:
a request that surely was not carried out raises ``NotApplied`` (bot.adapter.sending
sends those, and only those, again).
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

__all__ = ["AiohttpRequest", "NotApplied"]

_JSON = {"Content-Type": "application/json"}


class NotApplied(NetworkError):
    """The Bot API surely did not carry the request out, so it is safe to send again: no
    connection could be made (refused, unreachable, name or TLS failure, no connection
    within the connect timeout: nothing was written), or the server answered with a 5xx
    status (Telegram's own failure). A timeout while waiting for the answer, or a connection
    that broke after the request was written, is not one: the request may have been
    carried out (``TimedOut``, ``NetworkError``)."""


class AiohttpRequest(BaseRequest):
    """A ``BaseRequest`` on one ``aiohttp.ClientSession`` (keep-alive, ``pool_size``
    connections at most). Timeouts as ``HTTPXRequest``'s: seconds, ``None`` for none."""

    def __init__(
        self,
        pool_size: int = 4,
        read_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_timeout: float | None = 20.0,
    ) -> None:
        self._pool_size = pool_size
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_timeout = media_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.USER_AGENT},
                skip_auto_headers=("Accept-Encoding",),
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized")
        files = request_data.multipart_data if request_data else None
        data: aiohttp.FormData | bytes | None = None
        headers = None
        if files and request_data is not None:
            data = _form(request_data.json_parameters, files)
        elif request_data is not None:  # JSON: encoded in C, unlike a form's percent-escapes
            data, headers = json.dumps(request_data.parameters).encode(), _JSON
        read = self._given(read_timeout, self._read_timeout)
        if files:  # an upload's time is spent writing: give it the media timeout
            read = self._given(write_timeout, self._media_timeout)
        timeout = aiohttp.ClientTimeout(
            sock_read=read,
            sock_connect=self._given(connect_timeout, self._connect_timeout),
            connect=self._given(pool_timeout, self._pool_timeout),
        )
        try:
            async with self._session.request(
                method, url, data=data, headers=headers, timeout=timeout
            ) as res:
                status, body = res.status, await res.read()
        except (aiohttp.ConnectionTimeoutError, aiohttp.ClientConnectorError) as err:
            raise NotApplied(f"aiohttp.{err.__class__.__name__}: {err}") from err
        except TimeoutError as err:
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{err.__class__.__name__}: {err}") from err
        if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise NotApplied(f"the Bot API answered {status}")
        return status, body

    @staticmethod
    def _given(value: Any, default: float | None) -> float | None:
        return default if isinstance(value, type(BaseRequest.DEFAULT_NONE)) else value


def _form(fields: dict[str, str], files: dict[str, Any]) -> aiohttp.FormData:
    """Fields and files as one multipart body (PTB gives files as (name, content, type))."""
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    for name, part in files.items():
        if isinstance(part, tuple):
            filename, content, mimetype = part
            form.add_field(name, content, filename=filename, content_type=mimetype)
        else:
            form.add_field(name, part, filename=name)
    return form
