"""Channel adapters: one message out through email, webhook, SMS, voice, Slack or Apprise.

Each `send_*` returns on success and raises `DeliveryError` otherwise, saying whether trying
again could help (`permanent=False`) or not. HTTP: 2xx is success, 4xx other than 408 and 429
is permanent, anything else (5xx, 408, 429, a network error) transient. SMTP: a 5xx reply is
permanent, 4xx and connection trouble transient. Every message carries its idempotency key,
so a receiver can drop a duplicate that at-least-once delivery may produce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Any
from urllib.parse import urlencode, urlsplit
from xml.sax.saxutils import escape

from rungs.notify.http import Answer, BadRequest, HttpClient
from rungs.notify.messages import Message
from rungs.policy.channels import (
    AppriseConfig,
    EmailConfig,
    SlackConfig,
    TwilioConfig,
    WebhookConfig,
)
from rungs.store import jsonbytes

__all__ = ["DeliveryError", "Adapters", "sign", "message_id", "USER_AGENT"]

USER_AGENT = "Rungs/0.1 (+escalation)"
KEY_HEADER = "X-Rungs-Idempotency-Key"
_ATOM = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]")
_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


def _body(value: Any) -> bytes:
    """Compact UTF-8 JSON by orjson; what neither it nor the standard library takes, as str."""
    try:
        return jsonbytes.dumps(value)
    except TypeError:
        return _json(value).encode()


_SLICE = 2047  # hashlib keeps the GIL below 2048 bytes


class DeliveryError(Exception):
    def __init__(self, message: str, permanent: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.message, self.permanent, self.retry_after = message, permanent, retry_after


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`, as X-Rungs-Signature carries it.

    Fed in slices under 2 KiB: hashlib lets go of the GIL for longer input, and getting it
    back in a busy server can take a whole switch interval (5 ms) of another thread."""
    mac = hmac.new(secret, timestamp.encode() + b".", "sha256")
    view = memoryview(body)
    for i in range(0, len(view), _SLICE):
        mac.update(view[i : i + _SLICE])
    return "sha256=" + mac.hexdigest()


def message_id(key: str, sender: str) -> str:
    """A Message-ID made from the idempotency key: a resent mail has the same one."""
    domain = sender.rpartition("@")[2] or "rungs.invalid"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"<{_ATOM.sub('-', key)}.{digest}@{domain}>"


def _env(name: str | None, what: str) -> str:
    if not name:
        raise DeliveryError(f"{what} is not configured", permanent=True)
    value = os.environ.get(name)
    if not value:
        raise DeliveryError(f"environment variable {name} ({what}) is not set", permanent=True)
    return value


def _http_error(r: Answer) -> DeliveryError:
    code = r.status
    text = " ".join(r.text[:200].split())
    retry_after = None
    if code in (429, 503):
        try:
            retry_after = float(r.headers.get("retry-after", ""))
        except ValueError:
            retry_after = None
    permanent = 400 <= code < 500 and code not in (408, 429)
    return DeliveryError(f"HTTP {code}{': ' + text if text else ''}", permanent, retry_after)


class Adapters:
    """The channels. The HTTP ones are coroutines for the dispatcher's event loop, sharing its
    keep-alive connections; email and Apprise block (the dispatcher runs them on threads)."""

    def __init__(self) -> None:
        self.http = HttpClient(USER_AGENT)

    async def close(self) -> None:
        """Close the HTTP connections (on the event loop the HTTP channels ran on)."""
        await self.http.close()

    # HTTP ------------------------------------------------------------------------------------

    async def _post(self, url: str, timeout: float, body: bytes, headers: dict[str, str]) -> None:
        try:
            r = await self.http.post(url, body, headers, timeout)
        except BadRequest as exc:
            raise DeliveryError(str(exc), permanent=True) from None
        except TimeoutError:
            raise DeliveryError(f"no answer from {_host(url)} within {timeout:g}s") from None
        except OSError as exc:
            raise DeliveryError(f"{_host(url)}: {type(exc).__name__}: {exc}") from None
        if not 200 <= r.status < 300:
            raise _http_error(r)

    async def send_webhook(
        self, url: str, cfg: WebhookConfig, body: dict[str, Any], key: str, now_s: int
    ) -> None:
        raw = _body(body)
        ts = str(now_s)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            "X-Rungs-Timestamp": ts,
        }
        if cfg.secret_env:
            secret = _env(cfg.secret_env, "channels.webhook.secret_env")
            headers["X-Rungs-Signature"] = sign(secret.encode(), ts, raw)
        await self._post(url, cfg.timeout, raw, headers)

    async def send_slack(
        self, url: str, cfg: SlackConfig, payload: dict[str, Any], key: str
    ) -> None:
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        await self._post(url, cfg.timeout, _body(payload), headers)

    async def _twilio(self, cfg: TwilioConfig, what: str, form: dict[str, str], key: str) -> None:
        account = _env(cfg.account_env, f"channels.{what}.account_env")
        token = _env(cfg.token_env, f"channels.{what}.token_env")
        url = cfg.url.format(account=account)
        basic = base64.b64encode(f"{account}:{token}".encode()).decode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": f"Basic {basic}",
            "Idempotency-Key": key,
            "I-Twilio-Idempotency-Token": key,
        }
        await self._post(url, cfg.timeout, urlencode(form).encode(), headers)

    async def send_sms(self, number: str, cfg: TwilioConfig, text: str, key: str) -> None:
        form = {"To": e164(number), "From": e164(cfg.sender), "Body": text[:1600]}
        await self._twilio(cfg, "sms", form, key)

    async def send_voice(self, number: str, cfg: TwilioConfig, text: str, key: str) -> None:
        said = escape(text)
        twiml = (
            f'<Response><Say voice="alice">{said}</Say><Pause length="1"/>'
            f'<Say voice="alice">{said}</Say></Response>'
        )
        form = {"To": e164(number), "From": e164(cfg.sender), "Twiml": twiml}
        await self._twilio(cfg, "voice", form, key)

    # email -----------------------------------------------------------------------------------

    def send_email(self, address: str, cfg: EmailConfig, msg: Message, key: str) -> None:
        m = EmailMessage()
        m["From"] = formataddr(("Rungs", cfg.sender))
        m["To"] = address
        m["Subject"] = msg.subject
        m["Date"] = formatdate(localtime=False)
        m["Message-ID"] = message_id(key, cfg.sender)
        m[KEY_HEADER] = key
        m["Auto-Submitted"] = "auto-generated"
        m.set_content(msg.text)
        if msg.html:
            m.add_alternative(msg.html, subtype="html")
        try:
            if cfg.security == "tls":
                ctx = ssl.create_default_context()
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, timeout=cfg.timeout, context=ctx
                )
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
            with smtp:
                if cfg.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if cfg.username_env:
                    user = _env(cfg.username_env, "channels.email.username_env")
                    password = _env(cfg.password_env, "channels.email.password_env")
                    smtp.login(user, password)
                smtp.send_message(m)
        except DeliveryError:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()), (0, b""))
            raise DeliveryError(
                f"SMTP {code} refused {address}: {_text(text)}", permanent=code >= 500
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}", permanent=exc.smtp_code >= 500
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"SMTP server: {exc}", permanent=True) from None
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(f"TLS certificate of {cfg.host}: {exc}", permanent=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            what = type(exc).__name__
            raise DeliveryError(f"SMTP {cfg.host}:{cfg.port}: {what}: {exc}") from None

    # apprise ---------------------------------------------------------------------------------

    def send_apprise(self, url: str, cfg: AppriseConfig, msg: Message, key: str) -> None:
        import apprise

        ap = apprise.Apprise()
        if not ap.add(url):
            raise DeliveryError("not a URL Apprise knows", permanent=True)
        ok = ap.notify(title=msg.subject, body=msg.text)
        if not ok:
            raise DeliveryError("Apprise could not deliver (see the server log)")


def e164(number: str) -> str:
    """`+49 170 111-1111` -> `+491701111111`, as SMS and voice providers want it."""
    return re.sub(r"[^\d+]", "", number)


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or url
    except ValueError:
        return url


def _text(raw: Any) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    return " ".join(str(raw).split())[:200]
