"""The dispatcher's HTTP client against a raw asyncio server that answers as told.

What httpx did for the channels, the lean client must do too: keep connections alive and
reuse them, take a fresh one when the server closed an idle one, read answers delimited by
length, chunks or the end of the connection, skip informational answers, give up at the
deadline, and refuse what cannot be sent.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from rungs.notify.adapters import Adapters, DeliveryError
from rungs.notify.http import BadRequest, HttpClient
from rungs.policy.channels import WebhookConfig

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Server:
    """Reads each request whole; `answer(n)` gives the bytes for the n-th (None: silence),
    and `close_after` closes the connection once answered."""

    def __init__(self, answer: Callable[[int], bytes | None], close_after: bool = False) -> None:
        self.answer, self.close_after = answer, close_after
        self.requests: list[tuple[bytes, bytes]] = []
        self.connections = 0

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/hook?x=1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def _conn(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                n = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                self.requests.append((head, await r.readexactly(n)))
                out = self.answer(len(self.requests))
                if out is None:
                    await asyncio.sleep(10)
                    return
                w.write(out)
                await w.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            w.close()


def run(test: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(test())


def test_keep_alive_reuses_one_connection_and_sends_the_headers() -> None:
    async def go() -> None:
        async with Server(lambda n: OK) as s:
            c = HttpClient("ua/1")
            for i in range(3):
                a = await c.post(s.url, b'{"i":%d}' % i, {"Idempotency-Key": f"k{i}"}, 5.0)
                assert (a.status, a.body) == (200, b"ok")
            c.close()
        assert s.connections == 1 and len(s.requests) == 3
        head, body = s.requests[2]
        assert head.startswith(b"POST /hook?x=1 HTTP/1.1\r\n") and body == b'{"i":2}'
        port = s.url.split(":")[2].split("/")[0]
        for line in (f"Host: 127.0.0.1:{port}", "User-Agent: ua/1", "Idempotency-Key: k2"):
            assert line.encode() + b"\r\n" in head

    run(go)


def test_an_idle_connection_the_server_closed_is_replaced() -> None:
    async def go() -> None:
        async with Server(lambda n: OK, close_after=True) as s:
            c = HttpClient("ua")
            assert (await c.post(s.url, b"1", {}, 5.0)).status == 200
            await asyncio.sleep(0.05)  # the close reaches the client: dropped from the pool
            assert (await c.post(s.url, b"2", {}, 5.0)).status == 200
        assert s.connections == 2

    run(go)


def test_a_request_on_a_connection_closing_unnoticed_goes_again_on_a_new_one() -> None:
    async def go() -> None:
        async with Server(lambda n: OK) as s:
            c = HttpClient("ua")
            assert (await c.post(s.url, b"1", {}, 5.0)).status == 200
            origin = c.target(s.url).origin
            conn = c._take(origin)
            assert conn is not None and conn.transport is not None
            c._put(origin, conn)
            conn.transport.close()  # closing, not yet noticed: taken for the next request
            assert (await c.post(s.url, b"2", {}, 5.0)).status == 200
        assert s.connections == 2 and [b for _, b in s.requests] == [b"1", b"2"]

    run(go)


@pytest.mark.parametrize(
    "answer, body",
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", b"abc"),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx", b"x"),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\ny", b"y"),
    ],
)
def test_answers_by_chunks_after_informational_or_with_close(answer: bytes, body: bytes) -> None:
    async def go() -> None:
        async with Server(lambda n: answer) as s:
            c = HttpClient("ua")
            a = await c.post(s.url, b"{}", {}, 5.0)
            assert a.body == body and a.status in (200, 201)

    run(go)


def test_an_answer_delimited_by_the_end_of_the_connection() -> None:
    async def go() -> None:
        async with Server(lambda n: b"HTTP/1.0 503 Busy\r\nRetry-After: 7\r\n\r\nlater", True) as s:
            a = await HttpClient("ua").post(s.url, b"{}", {}, 5.0)
            assert (a.status, a.body, a.headers["retry-after"]) == (503, b"later", "7")

    run(go)


def test_deadline_and_refusals() -> None:
    async def go() -> None:
        async with Server(lambda n: None) as s:
            with pytest.raises(TimeoutError):
                await HttpClient("ua").post(s.url, b"{}", {}, 0.2)
        c = HttpClient("ua")
        for url in ("ftp://example.test/x", "http:///nohost", "http://h:99999/"):
            with pytest.raises(BadRequest):
                await c.post(url, b"", {}, 1.0)
        with pytest.raises(BadRequest):
            await c.post("http://127.0.0.1:9/", b"", {"X-Evil": "a\r\nInjected: 1"}, 1.0)

    run(go)


def test_at_most_sixteen_requests_to_one_origin_at_once() -> None:
    async def go() -> None:
        now = most = 0

        async def slow(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            nonlocal now, most
            try:
                while True:
                    head = await r.readuntil(b"\r\n\r\n")
                    now += 1
                    most = max(most, now)
                    await r.readexactly(int(head.split(b"Content-Length: ")[1].split(b"\r")[0]))
                    await asyncio.sleep(0.05)
                    now -= 1
                    w.write(OK)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass

        server = await asyncio.start_server(slow, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        c = HttpClient("ua")
        got = await asyncio.gather(*(c.post(url, b"{}", {}, 5.0) for _ in range(40)))
        assert [a.status for a in got] == [200] * 40 and most == 16
        c.close()
        server.close()

    run(go)


def test_credentials_in_the_url_are_sent_as_basic_auth() -> None:
    async def go() -> None:
        async with Server(lambda n: OK) as s:
            url = s.url.replace("http://", "http://us%40er:p%3Ass@")
            await HttpClient("ua").post(url, b"{}", {}, 5.0)
        want = base64.b64encode(b"us@er:p:ss").decode()
        assert f"Authorization: Basic {want}\r\n".encode() in s.requests[0][0]

    run(go)


def test_adapters_say_what_is_permanent() -> None:
    cfg = WebhookConfig(timeout=2.0)

    async def send(url: str) -> DeliveryError:
        with pytest.raises(DeliveryError) as err:
            await Adapters().send_webhook(url, cfg, {"a": 1}, "k", 1)
        return err.value

    async def go() -> None:
        async with Server(
            lambda n: b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\ngone"
        ) as s:
            e = await send(s.url)
            assert e.permanent and e.message == "HTTP 404: gone"
        busy = b"HTTP/1.1 429 Slow\r\nRetry-After: 3\r\nContent-Length: 0\r\n\r\n"
        async with Server(lambda n: busy) as s:
            e = await send(s.url)
            assert not e.permanent and e.retry_after == 3.0
        e = await send("http://127.0.0.1:9/refused")
        assert not e.permanent and e.message.startswith("127.0.0.1: ")
        e = await send("gopher://127.0.0.1/")
        assert e.permanent

    run(go)


def test_an_origin_behind_a_proxy_goes_through_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "direct.test")
    c = HttpClient("ua")
    assert c.target("http://hooks.example/x").proxy
    assert not c.target("http://direct.test/x").proxy
    assert not c.target("https://hooks.example/x").proxy  # only http is proxied here
