"""The SDK's HTTP client (baton._http) against a small HTTP/1.1 server on
asyncio streams: a request without a pool has a connection of its own; with
a :class:`Pool` requests share kept-alive connections, one at a time, and a
connection the server closed or will not keep is not reused.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from baton import _http


@dataclass
class Server:
    """Answers every request ``{"n": <request number on its connection>}``.
    ``drop_after``: closes a connection when its next request arrives after
    that many, without answering (as a server that timed it out does).
    ``close``: answers ``Connection: close`` and closes. ``framing``:
    ``content-length``, ``chunked``, or ``eof`` (the body runs to the close)."""

    drop_after: int | None = None
    close: bool = False
    framing: str = "content-length"
    connections: int = 0
    requests: list[tuple[int, str]] = field(default_factory=list)
    port: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = self.connections
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = dict(
                    (k.strip().lower(), v.strip())
                    for k, _, v in (
                        line.partition(":") for line in head.decode().split("\r\n")[1:] if line
                    )
                )
                await reader.readexactly(int(headers.get("content-length", "0")))
                if self.drop_after is not None and served >= self.drop_after:
                    return
                served += 1
                self.requests.append((conn, headers.get("connection", "")))
                body = b'{"n": %d}' % served
                lines = [b"HTTP/1.1 200 OK", b"Content-Type: application/json"]
                if self.framing == "content-length":
                    lines.append(b"Content-Length: %d" % len(body))
                elif self.framing == "chunked":
                    lines.append(b"Transfer-Encoding: chunked")
                    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
                if self.close:
                    lines.append(b"Connection: close")
                writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
                await writer.drain()
                if self.close or self.framing == "eof":
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/x"


async def started(server: Server) -> AsyncIterator[Server]:
    s = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    server.port = s.sockets[0].getsockname()[1]
    async with s:
        yield server


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async for s in started(Server()):
        yield s


async def post(server: Server, pool: _http.Pool | None) -> int:
    resp = await _http.request("POST", server.url, body={"a": 1}, pool=pool)
    assert resp.status == 200
    return int(resp.json_object()["n"])


async def test_without_a_pool_every_request_has_its_own_connection(server: Server) -> None:
    assert [await post(server, None) for _ in range(3)] == [1, 1, 1]
    assert server.requests == [(1, "close"), (2, "close"), (3, "close")]


async def test_a_pool_keeps_the_connection_between_requests(server: Server) -> None:
    pool = _http.Pool()
    assert [await post(server, pool) for _ in range(3)] == [1, 2, 3]
    assert server.requests == [(1, ""), (1, ""), (1, "")]


async def test_requests_at_once_take_a_connection_each_and_share_them_after(
    server: Server,
) -> None:
    pool = _http.Pool(max_idle=2)
    await asyncio.gather(*(post(server, pool) for _ in range(3)))
    assert server.connections == 3
    # Two went back to the pool, the third was closed.
    await asyncio.gather(*(post(server, pool) for _ in range(3)))
    assert server.connections == 4


async def test_a_connection_the_server_drops_is_replaced_without_an_error() -> None:
    async for server in started(Server(drop_after=1)):
        pool = _http.Pool()
        assert [await post(server, pool) for _ in range(3)] == [1, 1, 1]
        assert server.connections == 3


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
async def test_framed_answers_keep_the_connection(framing: str) -> None:
    async for server in started(Server(framing=framing)):
        pool = _http.Pool()
        assert [await post(server, pool) for _ in range(2)] == [1, 2]
        assert server.connections == 1


@pytest.mark.parametrize(
    "unkept", [Server(close=True), Server(framing="eof")], ids=["connection-close", "eof"]
)
async def test_a_connection_the_server_will_not_keep_is_not_reused(unkept: Server) -> None:
    async for server in started(unkept):
        pool = _http.Pool()
        assert [await post(server, pool) for _ in range(2)] == [1, 1]
        assert server.connections == 2


async def test_an_idle_connection_past_the_idle_timeout_is_not_reused(server: Server) -> None:
    pool = _http.Pool(idle_timeout=0)
    assert [await post(server, pool) for _ in range(2)] == [1, 1]
    assert server.connections == 2
