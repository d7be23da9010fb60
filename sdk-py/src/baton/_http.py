"""A small HTTP/1.1 client on asyncio streams, so the SDK needs nothing
outside the standard library.

By default a request has a connection of its own (``Connection: close``):
the client's requests are few (starts, result long-polls, heartbeats) and a
long-poll must not hold a pooled connection. A :class:`Pool` keeps
connections open between requests (keep-alive) for a caller that sends many
short requests to one server: the inline sessions' checkpoints, where a new
connection per step costs a TCP (for ``https://`` also a TLS) handshake and
several more turns of the event loop, each one behind every other push the
loop is serving.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import ssl
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from . import _tracing

USER_AGENT = "baton-sdk-python/0.1.0"

T = TypeVar("T")

# (scheme, host, port, TLS context): the connections one server can share.
_Key = tuple[str, str, int, ssl.SSLContext | None]


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body)

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; ``{}`` when it is empty or not an object."""
        value = self.json()
        return cast("dict[str, Any]", value) if isinstance(value, dict) else {}


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    loop: asyncio.AbstractEventLoop
    reused: bool = False
    idle_since: float = 0.0

    def discard(self) -> None:
        """Closes it without waiting (its loop may be gone already)."""
        if not self.loop.is_closed():
            self.writer.close()


class Pool:
    """Connections kept open between requests, by server (scheme, host,
    port and TLS context); each carries one request at a time. At most
    ``max_idle`` wait per server; one idle for ``idle_timeout`` seconds is
    closed rather than reused, as the server may have dropped it. A
    connection belongs to the event loop that opened it."""

    def __init__(self, *, max_idle: int = 100, idle_timeout: float = 5.0) -> None:
        self._max_idle = max_idle
        self._idle_timeout = idle_timeout
        # Oldest on the left; requests take from the right (the connection
        # used last is the least likely to have been dropped).
        self._idle: dict[_Key, collections.deque[_Connection]] = {}

    def _take(self, key: _Key) -> _Connection | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        loop = asyncio.get_running_loop()
        fresh_since = time.monotonic() - self._idle_timeout
        while idle:
            conn = idle.pop()
            if (
                conn.loop is loop
                and conn.idle_since > fresh_since
                and not conn.reader.at_eof()
                and not conn.writer.is_closing()
            ):
                conn.reused = True
                return conn
            conn.discard()
        return None

    def _give_back(self, key: _Key, conn: _Connection) -> None:
        idle = self._idle.setdefault(key, collections.deque())
        now = time.monotonic()
        while idle and idle[0].idle_since <= now - self._idle_timeout:
            idle.popleft().discard()
        if len(idle) >= self._max_idle:
            conn.discard()
            return
        conn.idle_since = now
        idle.append(conn)


class _Stale(Exception):
    """A kept-alive connection was closed by the server before it answered."""


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    """The system's CAs, loaded once: loading them takes milliseconds."""
    return ssl.create_default_context()


async def request(
    method: str,
    url: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float | None = 90.0,
    ssl_context: ssl.SSLContext | None = None,
    pool: Pool | None = None,
) -> Response:
    """Sends one request; ``body`` is JSON-encoded unless it is bytes. The
    active OpenTelemetry context, if any, goes along as ``traceparent``.
    ``ssl_context`` verifies ``https://`` servers (the system's CAs by
    default). With ``pool``, the request goes on one of its idle
    connections to that server, or a new one, and the connection goes back
    to the pool once the answer is read (unless the server closes it)."""
    sent = dict(headers or {})
    _tracing.inject(sent)
    return await _within(timeout, _request(method, url, body, sent, ssl_context, pool))


if sys.version_info >= (3, 11):

    async def _within(timeout: float | None, aw: Awaitable[T]) -> T:
        """``aw`` in the caller's task, cancelled after ``timeout`` seconds
        (``asyncio.wait_for`` before 3.12 runs it in a task of its own: two
        more turns of the event loop per request)."""
        async with asyncio.timeout(timeout):
            return await aw

else:

    async def _within(timeout: float | None, aw: Awaitable[T]) -> T:
        return await asyncio.wait_for(aw, timeout)


async def _request(
    method: str,
    url: str,
    body: Any,
    headers: dict[str, str],
    ssl_context: ssl.SSLContext | None,
    pool: Pool | None,
) -> Response:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"unsupported URL scheme in {url!r}")
    host = parts.hostname or "localhost"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    payload = b""
    if body is not None:
        payload = (
            body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
        )
    host_header = host if parts.port is None else f"{host}:{port}"
    if ":" in host and not host.startswith("["):
        host_header = f"[{host}]" + (f":{port}" if parts.port else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host_header}"]
    if pool is None:
        lines.append("Connection: close")
    lines += [
        f"User-Agent: {USER_AGENT}",
        "Accept: application/json",
        f"Content-Length: {len(payload)}",
    ]
    if body is not None and not isinstance(body, bytes):
        lines.append("Content-Type: application/json")
    lines.extend(f"{k}: {v}" for k, v in headers.items())
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload
    ctx = (ssl_context or _default_ssl_context()) if parts.scheme == "https" else None
    key: _Key = (parts.scheme, host, port, ctx)
    conn = pool._take(key) if pool is not None else None
    if conn is not None:
        try:
            return await _exchange(conn, data, method, key, pool)
        except _Stale:
            pass  # nothing was answered: once more, on a new connection
    reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
    conn = _Connection(reader, writer, asyncio.get_running_loop())
    return await _exchange(conn, data, method, key, pool)


async def _exchange(
    conn: _Connection, data: bytes, method: str, key: _Key, pool: Pool | None
) -> Response:
    """Sends the request on ``conn`` and reads the answer; then gives the
    connection back to ``pool`` when it can carry another request, else
    closes it. Raises :class:`_Stale` when a reused connection turns out
    closed before any answer."""
    reader, writer = conn.reader, conn.writer
    host, port = key[1], key[2]
    keep = False
    try:
        try:
            writer.write(data)
            await writer.drain()
            status_line = await reader.readline()
        except ConnectionError as err:
            if conn.reused:
                raise _Stale from err
            raise
        if not status_line and conn.reused:
            raise _Stale
        fields = status_line.decode("latin-1").split(" ", 2)
        if len(fields) < 2 or not fields[0].startswith("HTTP/"):
            raise ConnectionError(f"invalid HTTP response from {host}:{port}: {status_line!r}")
        status = int(fields[1])
        resp_headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            resp_headers[name.strip().lower()] = value.strip()
        framed = True
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            data = b""
        elif resp_headers.get("transfer-encoding", "").lower() == "chunked":
            data = await _read_chunked(reader)
        elif "content-length" in resp_headers:
            data = await reader.readexactly(int(resp_headers["content-length"]))
        else:
            data = await reader.read()
            framed = False
        keep = (
            pool is not None
            and framed
            and status >= 200
            and fields[0] == "HTTP/1.1"
            and "close" not in resp_headers.get("connection", "").lower()
        )
        return Response(status, resp_headers, data)
    finally:
        if keep and pool is not None:
            pool._give_back(key, conn)
        else:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, ssl.SSLError):
                pass


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size_line = await reader.readline()
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            # Trailers, then the blank line.
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            return bytes(out)
        out += await reader.readexactly(size)
        await reader.readline()
