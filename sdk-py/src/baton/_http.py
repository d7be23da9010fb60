"""A small HTTP/1.1 client on asyncio streams, so the SDK needs nothing
outside the standard library. One connection per request
(``Connection: close``): requests are few (starts, result long-polls,
heartbeats) and a long-poll must not hold a pooled connection or a thread.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from . import _tracing

USER_AGENT = "baton-sdk-python/0.1.0"


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


async def request(
    method: str,
    url: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float | None = 90.0,
    ssl_context: ssl.SSLContext | None = None,
) -> Response:
    """Sends one request; ``body`` is JSON-encoded unless it is bytes. The
    active OpenTelemetry context, if any, goes along as ``traceparent``.
    ``ssl_context`` verifies ``https://`` servers (the system's CAs by
    default)."""
    sent = dict(headers or {})
    _tracing.inject(sent)
    return await asyncio.wait_for(_request(method, url, body, sent, ssl_context), timeout)


async def _request(
    method: str, url: str, body: Any, headers: dict[str, str], ssl_context: ssl.SSLContext | None
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
    ctx = (ssl_context or ssl.create_default_context()) if parts.scheme == "https" else None
    reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
    try:
        host_header = host if parts.port is None else f"{host}:{port}"
        if ":" in host and not host.startswith("["):
            host_header = f"[{host}]" + (f":{port}" if parts.port else "")
        lines = [
            f"{method} {target} HTTP/1.1",
            f"Host: {host_header}",
            "Connection: close",
            f"User-Agent: {USER_AGENT}",
            "Accept: application/json",
            f"Content-Length: {len(payload)}",
        ]
        if body is not None and not isinstance(body, bytes):
            lines.append("Content-Type: application/json")
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)
        await writer.drain()
        status_line = await reader.readline()
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
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            data = b""
        elif resp_headers.get("transfer-encoding", "").lower() == "chunked":
            data = await _read_chunked(reader)
        elif "content-length" in resp_headers:
            data = await reader.readexactly(int(resp_headers["content-length"]))
        else:
            data = await reader.read()
        return Response(status, resp_headers, data)
    finally:
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
