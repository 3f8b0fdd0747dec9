"""Email over SMTP (smtplib blocks, so it runs on a thread): text and HTML, a Message-ID made
from the idempotency key. A 5xx reply is permanent, 4xx and connection trouble transient; a
mail that cannot be built (or encoded for the server) is permanent."""

from __future__ import annotations

import hashlib
import re
import smtplib
import ssl
from email.errors import MessageError
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Any

from rungs.notify.channels._http import env
from rungs.notify.channels.base import Context, DeliveryError, Outgoing
from rungs.notify.messages import one_line
from rungs.policy.channels import EmailConfig

__all__ = ["KEY_HEADER", "NAME", "build", "message_id", "send"]

NAME = "email"
KEY_HEADER = "X-Rungs-Idempotency-Key"
_ATOM = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]")


def message_id(key: str, sender: str) -> str:
    """A Message-ID made from the idempotency key: a resent mail has the same one."""
    domain = sender.rpartition("@")[2] or "rungs.invalid"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"<{_ATOM.sub('-', key)}.{digest}@{domain}>"


async def send(ctx: Context, out: Outgoing) -> None:
    await ctx.blocking(lambda: _send_mail(out))


def build(out: Outgoing) -> EmailMessage:
    """The mail, every header on one line (`one_line`). What cannot be built now cannot be
    built on a later try either: a permanent failure, so the next contact method is paged."""
    cfg, msg, key = out.cfg, out.message, out.key
    assert isinstance(cfg, EmailConfig)
    try:
        m = EmailMessage()
        m["From"] = formataddr(("Rungs", one_line(cfg.sender)))
        m["To"] = one_line(out.address)
        m["Subject"] = one_line(msg.subject)
        m["Date"] = formatdate(localtime=False)
        thread = (msg.data or {}).get("mail")  # a mail to a customer: its own thread headers
        if thread:
            _thread_headers(m, thread)
        else:
            m["Message-ID"] = message_id(key, one_line(cfg.sender))
        m[KEY_HEADER] = one_line(key)
        m["Auto-Submitted"] = one_line((thread or {}).get("auto_submitted") or "auto-generated")
        m.set_content(msg.text)
        if msg.html:
            m.add_alternative(msg.html, subtype="html")
    except (ValueError, TypeError, LookupError, MessageError) as exc:
        raise DeliveryError(f"the mail could not be built: {exc}", permanent=True) from None
    return m


def _thread_headers(m: EmailMessage, thread: dict[str, Any]) -> None:
    """Message-ID as remembered when the mail was queued, In-Reply-To and References to
    thread it with the customer's mail, Reply-To the address the customer wrote to."""
    m["Message-ID"] = one_line(thread["message_id"])
    if thread.get("in_reply_to"):
        m["In-Reply-To"] = one_line(thread["in_reply_to"])
    if thread.get("references"):
        m["References"] = one_line(" ".join(thread["references"]))
    if thread.get("reply_to"):
        m["Reply-To"] = one_line(thread["reply_to"])


def _send_mail(out: Outgoing) -> None:
    cfg, address = out.cfg, out.address
    assert isinstance(cfg, EmailConfig)
    m = build(out)
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
                user = env(cfg.username_env, "channels.email.username_env")
                password = env(cfg.password_env, "channels.email.password_env")
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
    except (ValueError, TypeError, LookupError, MessageError) as exc:  # e.g. a non-ASCII
        # address the server cannot take (no SMTPUTF8): the same next time
        what = type(exc).__name__
        raise DeliveryError(
            f"SMTP {cfg.host}: cannot send: {what}: {exc}", permanent=True
        ) from None


def _text(raw: Any) -> str:
    """The server's reply as its status line: the first line, at most 200 characters."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    lines = str(raw).splitlines() or [""]
    return " ".join(lines[0].split())[:200]
