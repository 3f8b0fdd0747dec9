"""The dispatcher's HTTP client: one aiohttp session per event loop, what the HTTP channels need.

httpx cost ~285 µs of CPU per webhook; aiohttp (a C parser, keep-alive pool) ~70 µs. This is a
thin layer over it that keeps what the channels rely on: keep-alive connections, at most 16
requests in flight to one origin (as httpx's pool allowed), TLS trusting what httpx trusted
(certifi, or `SSL_CERT_FILE`/`SSL_CERT_DIR`), no redirects followed (a 3xx is an answer), one
deadline per request covering the wait for a connection, connect, send and the whole answer
(aiohttp rounds one of 5 s or more up to a whole second), and the environment's proxies as
aiohttp's `trust_env` reads them (`HTTP(S)_PROXY`, `NO_PROXY`; not `ALL_PROXY`). Failures come
out as three kinds the adapters classify: `BadRequest` (cannot be sent at all), `TimeoutError`,
`OSError`.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

__all__ = ["Answer", "BadRequest", "HttpClient"]

KEEP_BODY = 4096  # bytes of an answer kept (for the error message); the rest is read, unkept
IDLE_S = 5.0  # an idle connection is not reused after this long (httpx's keep-alive expiry)
PER_ORIGIN = 16  # requests in flight to one origin at once (as httpx's pool allowed): polite
LIMIT = 256  # connections in all: above the dispatcher's messages in flight (64), bounds sockets

# What aiohttp itself retries an idempotent request after (less failures to connect)
_DROPPED = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)


@dataclass(slots=True)
class Answer:
    status: int
    headers: Mapping[str, str]  # names case-insensitive
    body: bytes  # at most KEEP_BODY bytes of it
    reason: str = ""  # the status line's words (`Not Found`)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class BadRequest(ValueError):
    """The URL or a header cannot be sent at all (trying again cannot help)."""


@dataclass(slots=True, frozen=True)
class _Target:
    """A URL parsed once, with the proxy the environment names for it (None: direct)."""

    url: URL
    proxy: URL | None
    proxy_auth: aiohttp.BasicAuth | None


class HttpClient:
    """One aiohttp session, made on first use; use it from that event loop only."""

    def __init__(self, user_agent: str) -> None:
        self.user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        self._targets: dict[str, _Target] = {}
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> Answer:
        """POST `body`; the answer, whatever its status. Raises BadRequest, TimeoutError
        (no whole answer within `timeout` seconds) or OSError (connection trouble)."""
        try:
            return await self._post(url, body, headers, timeout)
        except BadRequest:
            raise
        except TimeoutError:  # before OSError (its base) and ClientError (ServerTimeoutError)
            raise TimeoutError(f"no answer within {timeout:g}s") from None
        except OSError:  # refused, reset, DNS, TLS (a bad certificate too, a ValueError as well)
            raise
        except (ValueError, aiohttp.NonHttpUrlClientError) as exc:  # InvalidURL, header CR/LF
            raise BadRequest(f"cannot send to {url!r}: {type(exc).__name__}: {exc}") from None
        except aiohttp.ClientError as exc:  # dropped mid-answer, a malformed answer
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        """Close the session's connections (on its event loop)."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    # ---------------------------------------------------------------------------------------

    async def _post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> Answer:
        session = self._session or self._open()
        t = self._targets.get(url) or await self._target(url)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        limit = self._timeouts.get(timeout)
        if limit is None:
            limit = self._timeouts[timeout] = aiohttp.ClientTimeout(total=timeout)
        for again in (False, True):
            try:
                r = await session.post(
                    t.url, data=body, headers=headers, timeout=limit, allow_redirects=False,
                    proxy=t.proxy, proxy_auth=t.proxy_auth,
                )  # fmt: skip
                break
            except _DROPPED as exc:
                # Gone before any answer (a kept-alive connection the server closed while
                # idle): aiohttp goes again only for idempotent methods, not POST; each
                # message carries its idempotency key, so it may, once, within the deadline.
                left = deadline - loop.time()
                if again or isinstance(exc, aiohttp.ClientConnectorError) or left <= 0:
                    raise
                limit = aiohttp.ClientTimeout(total=left)
        try:
            kept = b""
            async for chunk in r.content.iter_any():  # to the end: the connection is kept
                if len(kept) < KEEP_BODY:
                    kept += chunk[: KEEP_BODY - len(kept)]
        except BaseException:
            r.close()
            raise
        r.release()
        return Answer(r.status, r.headers, kept, r.reason or "")

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=LIMIT, limit_per_host=PER_ORIGIN, keepalive_timeout=IDLE_S, ssl=_tls()
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": self.user_agent},
            cookie_jar=aiohttp.DummyCookieJar(),  # a receiver's cookies are not sent back
        )
        return self._session

    async def _target(self, url: str) -> _Target:
        """The URL and its proxy, looked up once. `trust_env=True` would have aiohttp do this
        same lookup, and one in ~/.netrc, on threads for every request: +150 µs of CPU each."""
        try:
            u = URL(url)
        except ValueError as exc:
            raise BadRequest(f"invalid URL {url!r}: {exc}") from None
        try:
            proxy, auth = await asyncio.to_thread(get_env_proxy_for_url, u)
        except LookupError:  # none, or NO_PROXY names the host
            proxy = auth = None
        except ValueError as exc:  # an unusable proxy URL in the environment
            raise BadRequest(f"proxy for {url!r}: {exc}") from None
        t = _Target(u, proxy, auth)
        if len(self._targets) > 4096:
            self._targets.clear()
        self._targets[url] = t
        return t


def _tls() -> ssl.SSLContext:
    """What httpx trusted: certifi, unless SSL_CERT_FILE/SSL_CERT_DIR say else (built once per
    session: ~20 ms, and aiohttp would otherwise build its own, trusting the system store)."""
    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if not (cafile or capath):
        try:
            import certifi

            cafile = certifi.where()
        except ImportError:
            pass
    ctx = ssl.create_default_context(cafile=cafile, capath=capath)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
