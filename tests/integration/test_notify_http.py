"""The dispatcher's HTTP client against a raw asyncio server that answers as told.

What the channels rely on, whoever parses the bytes (aiohttp now): connections kept alive and
reused, a fresh one when the server closed an idle one, answers delimited by length, chunks or
the end of the connection, informational answers skipped, no redirect followed, one deadline
for the whole answer, at most 16 requests to one origin at once, the environment's proxy used,
TLS trusting SSL_CERT_FILE, and each failure classified as permanent or not.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from rungs.notify.channels import Context, DeliveryError, Outgoing, webhook
from rungs.notify.http import BadRequest, HttpClient
from rungs.notify.messages import Message
from rungs.policy.channels import WebhookConfig
from tests.tls import self_signed

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
HANG_UP = b""  # an answer of nothing: the server closes the connection without answering


class Server:
    """Reads each request whole; `answer(n)` gives the bytes for the n-th (None: silence,
    HANG_UP: close at once), and `close_after` closes the connection once answered."""

    def __init__(
        self,
        answer: Callable[[int], bytes | None],
        close_after: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.answer, self.close_after, self.tls = answer, close_after, tls
        self.requests: list[tuple[bytes, bytes]] = []
        self.connections = 0

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}/hook?x=1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def _conn(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                n = head.lower().split(b"content-length: ")[1:]  # none for CONNECT
                size = int(n[0].split(b"\r\n")[0]) if n else 0
                self.requests.append((head, await r.readexactly(size)))
                out = self.answer(len(self.requests))
                if out is None:
                    await asyncio.sleep(10)
                    return
                if out == HANG_UP:
                    break
                w.write(out)
                await w.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        except ssl.SSLError:  # a client that does not trust the certificate
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
            await c.close()
        assert s.connections == 1 and len(s.requests) == 3
        head, body = s.requests[2]
        assert head.startswith(b"POST /hook?x=1 HTTP/1.1\r\n") and body == b'{"i":2}'
        for line in (f"Host: 127.0.0.1:{s.port}", "User-Agent: ua/1", "Idempotency-Key: k2"):
            assert line.encode() + b"\r\n" in head

    run(go)


def test_an_idle_connection_the_server_closed_is_replaced() -> None:
    async def go() -> None:
        async with Server(lambda n: OK, close_after=True) as s:
            c = HttpClient("ua")
            assert (await c.post(s.url, b"1", {}, 5.0)).status == 200
            await asyncio.sleep(0.05)  # the close reaches the client: dropped from the pool
            assert (await c.post(s.url, b"2", {}, 5.0)).status == 200
            await c.close()
        assert s.connections == 2

    run(go)


def test_a_request_on_a_connection_closed_unnoticed_goes_again_on_a_new_one() -> None:
    async def go() -> None:
        # the second request finds the kept connection closing (as if the server's idle
        # timeout struck as it went out): nothing comes back, and it goes once more
        async with Server(lambda n: HANG_UP if n == 2 else OK) as s:
            c = HttpClient("ua")
            assert (await c.post(s.url, b"1", {}, 5.0)).status == 200
            assert (await c.post(s.url, b"2", {}, 5.0)).status == 200
            await c.close()
        assert s.connections == 2 and [b for _, b in s.requests] == [b"1", b"2", b"2"]

    run(go)


def test_a_server_that_always_hangs_up_is_tried_twice_then_a_connection_error() -> None:
    async def go() -> None:
        async with Server(lambda n: HANG_UP) as s:
            c = HttpClient("ua")
            with pytest.raises(ConnectionError):
                await c.post(s.url, b"x", {}, 5.0)
            await c.close()
        assert len(s.requests) == 2

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
            await c.close()

    run(go)


def test_an_answer_delimited_by_the_end_of_the_connection() -> None:
    async def go() -> None:
        async with Server(lambda n: b"HTTP/1.0 503 Busy\r\nRetry-After: 7\r\n\r\nlater", True) as s:
            c = HttpClient("ua")
            a = await c.post(s.url, b"{}", {}, 5.0)
            assert (a.status, a.body, a.headers["retry-after"]) == (503, b"later", "7")
            await c.close()

    run(go)


def test_a_long_answer_is_read_whole_and_its_start_kept() -> None:
    big = b"e" * 100_000
    answer = b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n%s" % (len(big), big)

    async def go() -> None:
        async with Server(lambda n: answer) as s:
            c = HttpClient("ua")
            for _ in range(2):
                a = await c.post(s.url, b"{}", {}, 5.0)
                assert (a.status, a.body) == (500, b"e" * 4096)
            await c.close()
        assert s.connections == 1  # read to the end: the connection stays usable

    run(go)


def test_a_redirect_is_an_answer_not_followed() -> None:
    moved = b"HTTP/1.1 307 Moved\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n"

    async def go() -> None:
        async with Server(lambda n: moved) as s:
            c = HttpClient("ua")
            a = await c.post(s.url, b"{}", {}, 5.0)
            assert (a.status, a.headers["location"]) == (307, "/elsewhere")
            await c.close()
        assert len(s.requests) == 1

    run(go)


def test_deadline_and_refusals() -> None:
    async def go() -> None:
        async with Server(lambda n: None) as s:  # no answer at all
            c = HttpClient("ua")
            with pytest.raises(TimeoutError):
                await c.post(s.url, b"{}", {}, 0.2)
            await c.close()
        async with Server(lambda n: OK) as s:  # checked as the request is written
            c = HttpClient("ua")
            with pytest.raises(BadRequest):
                await c.post(s.url, b"", {"X-Evil": "a\r\nInjected: 1"}, 1.0)
            await c.close()
        assert not s.requests
        half = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"  # the rest never comes
        async with Server(lambda n: half) as s:
            c = HttpClient("ua")
            with pytest.raises(TimeoutError, match=r"no answer within 0\.2s"):
                await asyncio.wait_for(c.post(s.url, b"{}", {}, 0.2), 2.0)  # not this one
            await c.close()
        c = HttpClient("ua")
        for url in ("ftp://example.test/x", "http:///nohost", "http://h:99999/"):
            with pytest.raises(BadRequest):
                await c.post(url, b"", {}, 1.0)
        with pytest.raises(OSError) as refused:
            await c.post("http://127.0.0.1:9/", b"", {}, 1.0)
        assert not isinstance(refused.value, TimeoutError)
        await c.close()

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
            finally:
                w.close()

        server = await asyncio.start_server(slow, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        c = HttpClient("ua")
        got = await asyncio.gather(*(c.post(url, b"{}", {}, 5.0) for _ in range(40)))
        assert [a.status for a in got] == [200] * 40 and most == 16
        await c.close()
        server.close()

    run(go)


def test_credentials_in_the_url_are_sent_as_basic_auth() -> None:
    async def go() -> None:
        async with Server(lambda n: OK) as s:
            url = s.url.replace("http://", "http://us%40er:p%3Ass@")
            c = HttpClient("ua")
            await c.post(url, b"{}", {}, 5.0)
            await c.close()
        want = base64.b64encode(b"us@er:p:ss").decode()
        assert f"Authorization: Basic {want}\r\n".encode() in s.requests[0][0]

    run(go)


def test_channels_say_what_is_permanent() -> None:
    cfg = WebhookConfig(timeout=2.0)

    async def blocking(fn: Callable[[], None]) -> None:
        fn()

    async def go() -> None:
        http = HttpClient("ua")
        ctx = Context(http, blocking)

        async def send(url: str) -> DeliveryError:
            out = Outgoing("webhook", url, cfg, Message("", "", data={"a": 1}), "k", 1_000_000)
            with pytest.raises(DeliveryError) as err:
                await webhook.send(ctx, out)
            return err.value

        async with Server(
            lambda n: b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\ngone"
        ) as s:
            e = await send(s.url)
            assert e.permanent and e.message == "HTTP 404 Not Found"  # the status line only
            assert e.detail == "gone"  # the body: for the log, not the timeline
        busy = b"HTTP/1.1 429 Slow\r\nRetry-After: 3\r\nContent-Length: 0\r\n\r\n"
        async with Server(lambda n: busy) as s:
            e = await send(s.url)
            assert not e.permanent and e.retry_after == 3.0
        async with Server(lambda n: HANG_UP) as s:
            e = await send(s.url)
            assert not e.permanent and e.message.startswith("127.0.0.1: ")
        e = await send("http://127.0.0.1:9/refused")
        assert not e.permanent and e.message.startswith("127.0.0.1: ")
        e = await send("gopher://127.0.0.1/")
        assert e.permanent
        await http.close()

    run(go)


def test_the_environments_proxy_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    refuse = b"HTTP/1.1 502 No\r\nContent-Length: 0\r\n\r\n"

    async def go() -> None:
        async with (
            Server(lambda n: refuse if n == 2 else OK) as proxy,
            Server(lambda n: OK) as direct,
        ):
            monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
            monkeypatch.setenv("NO_PROXY", "direct.test,127.0.0.1")
            monkeypatch.delenv("HTTPS_PROXY", raising=False)
            c = HttpClient("ua")
            a = await c.post("http://hooks.example/x?y=1", b"via", {"Idempotency-Key": "k"}, 5.0)
            assert (a.status, a.body) == (200, b"ok")
            head, body = proxy.requests[0]
            assert head.startswith(b"POST http://hooks.example/x?y=1 HTTP/1.1\r\n")
            assert b"Host: hooks.example\r\n" in head and b"Idempotency-Key: k\r\n" in head
            assert body == b"via"
            assert (await c.post(direct.url, b"d", {}, 5.0)).status == 200  # NO_PROXY
            assert direct.requests[0][0].startswith(b"POST /hook?x=1 HTTP/1.1\r\n")
            with pytest.raises(OSError):  # only http is proxied: https goes direct (refused)
                await c.post("https://127.0.0.1:9/", b"", {}, 5.0)
            assert len(proxy.requests) == 1
            await c.close()

            monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
            c = HttpClient("ua")
            with pytest.raises(ConnectionError):  # the proxy would not open the tunnel
                await c.post("https://hooks.example/x", b"", {}, 5.0)
            assert proxy.requests[1][0].startswith(b"CONNECT hooks.example:443 HTTP/1.1\r\n")
            await c.close()

    run(go)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_trusts_ssl_cert_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)

    async def go() -> None:
        async with Server(lambda n: OK, tls=tls) as s:
            monkeypatch.delenv("SSL_CERT_DIR", raising=False)
            monkeypatch.delenv("SSL_CERT_FILE", raising=False)
            c = HttpClient("ua")  # certifi: a self-signed certificate is not trusted
            with pytest.raises(OSError) as err:
                await c.post(s.url, b"{}", {}, 5.0)
            assert not isinstance(err.value, TimeoutError) and not s.requests
            await c.close()
            monkeypatch.setenv("SSL_CERT_FILE", str(cert))
            c = HttpClient("ua")
            for _ in range(2):
                assert (await c.post(s.url, b"{}", {}, 5.0)).status == 200
            await c.close()
        assert len(s.requests) == 2

    run(go)
