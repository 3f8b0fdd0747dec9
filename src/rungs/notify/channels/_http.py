"""What the HTTP channels share: one POST with its failures classified, and the environment's
secrets.

HTTP: 2xx is success, 4xx other than 408 and 429 is permanent, anything else (5xx, 408, 429,
a network error) transient; a 429 or 503 may say when to try again (`Retry-After`). A failure
names the status line only (the body goes to the log, not the timeline).
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import urlsplit

from rungs.notify.channels.base import Context, DeliveryError
from rungs.notify.http import Answer, BadRequest
from rungs.policy.secrets import SecretRefused, read_secret
from rungs.store import jsonbytes

__all__ = ["USER_AGENT", "body", "env", "host", "post"]

USER_AGENT = "Rungs/0.1 (+escalation)"
_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


def body(value: Any) -> bytes:
    """Compact UTF-8 JSON by orjson; what neither it nor the standard library takes, as str."""
    try:
        return jsonbytes.dumps(value)
    except TypeError:
        return _json(value).encode()


def env(name: str | None, what: str) -> str:
    """A secret from the environment, named by the policy (permanent failure without it, or
    when the name lacks the deployment's prefix: a policy stored before it was checked)."""
    if not name:
        raise DeliveryError(f"{what} is not configured", permanent=True)
    try:
        value = read_secret(name, os.environ)
    except SecretRefused as exc:
        raise DeliveryError(f"{what}: {exc}: not read", permanent=True) from None
    if not value:
        raise DeliveryError(f"environment variable {name} ({what}) is not set", permanent=True)
    return value


def host(url: str) -> str:
    try:
        return urlsplit(url).hostname or url
    except ValueError:
        return url


async def post(ctx: Context, url: str, timeout: float, raw: bytes, headers: dict[str, str]) -> None:
    try:
        r = await ctx.http.post(url, raw, headers, timeout)
    except BadRequest as exc:
        raise DeliveryError(str(exc), permanent=True) from None
    except TimeoutError:
        raise DeliveryError(f"no answer from {host(url)} within {timeout:g}s") from None
    except OSError as exc:
        raise DeliveryError(f"{host(url)}: {type(exc).__name__}: {exc}") from None
    if not 200 <= r.status < 300:
        raise _http_error(r)


def _http_error(r: Answer) -> DeliveryError:
    """The status line for the timeline (`HTTP 404 Not Found`); the body's start for the log."""
    code = r.status
    text = " ".join(r.text[:200].split())
    retry_after = None
    if code in (429, 503):
        try:
            retry_after = float(r.headers.get("retry-after", ""))
        except ValueError:
            retry_after = None
    permanent = 400 <= code < 500 and code not in (408, 429)
    status = f"HTTP {code} {r.reason}".rstrip()
    return DeliveryError(status, permanent, retry_after, detail=text or None)
