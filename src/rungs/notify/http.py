"""A lean HTTP/1.1 client for the dispatcher's event loop: what the HTTP channels need.

httpx cost ~280 µs of CPU per webhook, most of the dispatcher's work and more than the rest
of a delivery together. This client keeps keep-alive connections per origin, sends a request
with one write and parses the answer with httptools (llhttp, in C): ~25 µs, and many requests
in flight on one thread (at most 16 to one origin, as httpx's pool allowed). It POSTs over
HTTP/1.1 only, with TLS trusting what httpx trusts (certifi, or `SSL_CERT_FILE`/`SSL_CERT_DIR`),
follows no redirects (a 3xx is an answer), and gives each request one deadline covering the
wait for a slot, connect, send and the whole answer. An origin that the environment routes
through a proxy (`HTTP(S)_PROXY`, `ALL_PROXY`, `NO_PROXY`) is left to httpx, on a thread, as
before.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import time
import urllib.request
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import httptools

__all__ = ["Answer", "BadRequest", "HttpClient"]

KEEP_BODY = 4096  # bytes of an answer kept (for the error message); the rest is read, unkept
IDLE_S = 5.0  # an idle connection is not reused after this long (httpx's keep-alive expiry)
PER_ORIGIN = 16  # requests in flight to one origin at once (as httpx's pool allowed): polite
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(slots=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes  # at most KEEP_BODY bytes of it

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class BadRequest(ValueError):
    """The URL or a header cannot be sent at all (trying again cannot help)."""


class Dropped(ConnectionError):
    """The connection closed before any byte of the answer arrived."""


@dataclass(slots=True)
class Target:
    """A URL taken apart once: where to connect and the first lines of every request to it."""

    url: str
    scheme: str
    host: str
    port: int
    origin: tuple[str, str, int]
    head: str  # "POST /path HTTP/1.1\r\nHost: ...\r\n..." up to the request's own headers
    proxy: bool  # the environment sends this origin through a proxy: httpx's job


class _Conn(asyncio.Protocol):
    """One connection; one request at a time (no pipelining)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Answer] | None = None
        self.closed = False
        self.keep = True
        self.idle_since = 0.0
        self._status = 0
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._kept = 0
        self._got = False  # any byte of the answer

    # asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._got = True
        try:
            self.parser.feed_data(data)
        except Exception as exc:  # not HTTP/1.1 as we know it (or an upgrade)
            self._fail(ConnectionError(f"malformed answer: {type(exc).__name__}: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        w = self.waiter
        if w is None or w.done():
            return
        if self._status >= 200:  # an answer delimited by the end of the connection
            self._finish(keep=False)
        elif not self._got:
            w.set_exception(Dropped(str(exc) if exc else "connection closed by the server"))
        else:
            w.set_exception(ConnectionError(str(exc) if exc else "connection closed mid-answer"))

    # httptools callbacks ------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self._headers) < 100:
            self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if self._kept < KEEP_BODY:
            self._body.append(body)
            self._kept += len(body)

    def on_message_complete(self) -> None:
        if self._status < 200:  # 1xx: informational, the answer is still to come
            self._status, self._headers = 0, {}
            return
        self._finish(self.parser.should_keep_alive())

    # ---------------------------------------------------------------------------------------

    def _finish(self, keep: bool) -> None:
        self.keep = keep
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(Answer(self._status, self._headers, b"".join(self._body)[:KEEP_BODY]))

    def _fail(self, exc: Exception) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_exception(exc)

    def send(self, data: bytes, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Answer]:
        self._status, self._headers, self._body, self._kept, self._got = 0, {}, [], 0, False
        self.waiter = loop.create_future()
        assert self.transport is not None
        self.transport.write(data)
        return self.waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class HttpClient:
    """Keep-alive connections per origin; use it from one event loop only."""

    def __init__(self, user_agent: str) -> None:
        self.user_agent = user_agent
        self._idle: dict[tuple[str, str, int], deque[_Conn]] = {}
        self._slots: dict[tuple[str, str, int], asyncio.Semaphore] = {}
        self._targets: dict[str, Target] = {}
        self._ssl: ssl.SSLContext | None = None
        self._proxies = urllib.request.getproxies_environment()
        self._httpx: Any = None

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> Answer:
        """POST `body`; the answer, whatever its status. Raises BadRequest, TimeoutError
        (no whole answer within `timeout` seconds) or OSError (connection trouble)."""
        t = self.target(url)
        lines = [t.head]
        for k, v in headers.items():
            if "\r" in v or "\n" in v:
                raise BadRequest(f"header {k} holds a line break")
            lines.append(f"{k}: {v}\r\n")
        lines.append(f"Content-Length: {len(body)}\r\n\r\n")
        try:
            head = "".join(lines).encode("latin-1")
        except UnicodeEncodeError as exc:
            raise BadRequest(f"a header is not latin-1: {exc}") from None
        if t.proxy:
            return await self._via_httpx(t, head, body, timeout)
        loop = asyncio.get_running_loop()
        slots = self._slots.get(t.origin)
        if slots is None:
            slots = self._slots[t.origin] = asyncio.Semaphore(PER_ORIGIN)
        async with asyncio.timeout(timeout), slots:  # a slot too must come within the deadline
            for attempt in (1, 2):
                conn = self._take(t.origin) if attempt == 1 else None  # a retry: a new one
                reused = conn is not None
                if conn is None:
                    conn = await self._open(t, loop)
                done = False
                try:
                    answer = await conn.send(head + body, loop)
                    done = True
                except Dropped:
                    if reused:  # closed by the server while idle: once more, on a new one
                        continue
                    raise
                finally:
                    if not done:
                        conn.close()
                if conn.keep and not conn.closed:
                    self._put(t.origin, conn)
                else:
                    conn.close()
                return answer
        raise AssertionError("unreachable")

    def target(self, url: str) -> Target:
        found = self._targets.get(url)
        if found is None:
            found = self._parse(url)
            if len(self._targets) > 4096:
                self._targets.clear()
            self._targets[url] = found
        return found

    def close(self) -> None:
        """Close the idle connections (on the loop's thread)."""
        for q in self._idle.values():
            for c in q:
                c.close()
        self._idle.clear()
        if self._httpx is not None:
            self._httpx.close()

    # ---------------------------------------------------------------------------------------

    def _parse(self, url: str) -> Target:
        try:
            u = urlsplit(url)
            port = u.port
        except ValueError as exc:
            raise BadRequest(f"invalid URL {url!r}: {exc}") from None
        scheme = u.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise BadRequest(f"unsupported URL {url!r}: only http and https")
        host = u.hostname
        if not host:
            raise BadRequest(f"invalid URL {url!r}: no host")
        port = port or _DEFAULT_PORTS[scheme]
        shown = f"[{host}]" if ":" in host else host
        if port != _DEFAULT_PORTS[scheme]:
            shown += f":{port}"
        path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        if any(c in path for c in " \r\n"):
            raise BadRequest(f"invalid URL {url!r}: white space in the path")
        head = f"POST {path} HTTP/1.1\r\nHost: {shown}\r\nUser-Agent: {self.user_agent}\r\n"
        head += "Accept: */*\r\n"
        if u.username is not None:  # credentials in the URL: basic auth, as httpx does
            cred = f"{unquote(u.username)}:{unquote(u.password or '')}".encode()
            head += f"Authorization: Basic {base64.b64encode(cred).decode()}\r\n"
        proxy = bool(
            (self._proxies.get(scheme) or self._proxies.get("all"))
            and not urllib.request.proxy_bypass_environment(host, self._proxies)
        )
        return Target(url, scheme, host, port, (scheme, host, port), head, proxy)

    def _take(self, origin: tuple[str, str, int]) -> _Conn | None:
        q = self._idle.get(origin)
        if not q:
            return None
        now = time.monotonic()
        while q:
            c = q.pop()  # the most recently used: the likeliest to be alive
            if not c.closed and now - c.idle_since < IDLE_S:
                return c
            c.close()
        return None

    def _put(self, origin: tuple[str, str, int], conn: _Conn) -> None:
        q = self._idle.setdefault(origin, deque())
        conn.idle_since = time.monotonic()
        q.append(conn)
        while len(q) > PER_ORIGIN:
            q.popleft().close()

    async def _open(self, t: Target, loop: asyncio.AbstractEventLoop) -> _Conn:
        if t.scheme == "https":
            _, conn = await loop.create_connection(
                _Conn, t.host, t.port, ssl=self._tls(), server_hostname=t.host
            )
        else:
            _, conn = await loop.create_connection(_Conn, t.host, t.port)
        return conn

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
            if not (cafile or capath):
                try:
                    import certifi

                    cafile = certifi.where()
                except ImportError:
                    pass
            ctx = ssl.create_default_context(cafile=cafile, capath=capath)
            ctx.set_alpn_protocols(["http/1.1"])
            self._ssl = ctx
        return self._ssl

    async def _via_httpx(self, t: Target, head: bytes, body: bytes, timeout: float) -> Answer:
        """Through the proxy the environment names, with httpx (which reads it) on a thread."""
        import httpx

        if self._httpx is None:
            self._httpx = httpx.Client(follow_redirects=False)
        lines = head.decode("latin-1").split("\r\n")[1:]  # the request's headers, as sent
        skip = ("host:", "content-length:")
        headers = [tuple(x.split(": ", 1)) for x in lines if x and not x.lower().startswith(skip)]

        def post() -> Answer:
            r = self._httpx.post(t.url, content=body, headers=headers, timeout=timeout)
            return Answer(r.status_code, {k.lower(): v for k, v in r.headers.items()},
                          r.content[:KEEP_BODY])  # fmt: skip

        try:
            return await asyncio.get_running_loop().run_in_executor(None, post)
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.HTTPError as exc:
            raise OSError(f"{type(exc).__name__}: {exc}") from None
