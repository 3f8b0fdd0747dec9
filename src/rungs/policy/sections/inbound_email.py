"""`inbound_email`: the addresses customers write to, what a mail to each opens or escalates,
how long a resolved case may be reopened by a reply, and an IMAP mailbox to poll.

`escalation_reason` is the reason a mail to an `escalate: true` address escalates with; it
must be one of the policy's `reasons` when the policy lists any (the core refuses others).
"""

from __future__ import annotations

from typing import Any

from rungs.policy.loader import Path
from rungs.policy.model import PRIORITIES, Imap, InboundAddress, InboundEmail
from rungs.policy.reader import Reader, kind_of
from rungs.policy.values import MAILBOX

__all__ = ["compile_inbound_email"]

_DAY = 86_400_000_000
_TLS = ("tls", "starttls", "none")


def compile_inbound_email(r: Reader, reasons: tuple[str, ...]) -> InboundEmail | None:
    if "inbound_email" not in r.data:
        return None
    p: Path = ("inbound_email",)
    allowed = ("addresses", "escalation_reason", "reopen_within", "imap")
    m = r.fields(r.data["inbound_email"], p, "inbound_email", allowed, ("addresses",))
    if m is None:
        return None
    addresses = _addresses(r, m.get("addresses"), (*p, "addresses"))
    reason = r.string(m, "escalation_reason", p) or "customer_request"
    if reasons and reason not in reasons:
        r.err(
            (*p, "escalation_reason") if "escalation_reason" in m else p,
            f"escalation_reason '{reason}' is not one of the policy's reasons "
            f"({', '.join(reasons)})",
        )
    within = r.duration(m, "reopen_within", p, default=7 * _DAY)
    imap = _imap(r, m["imap"], (*p, "imap")) if "imap" in m else None
    return InboundEmail(addresses, reason, within or 0, imap)


def _addresses(r: Reader, value: Any, p: Path) -> dict[str, InboundAddress]:
    m = r.mapping(value, p, "inbound_email.addresses")
    if m is None:
        return {}
    if not m:
        r.err(p, "inbound_email.addresses lists no address")
    out: dict[str, InboundAddress] = {}
    for raw, spec in m.items():
        address = str(raw).strip().lower()
        at = (*p, raw)
        if not MAILBOX.match(address):
            r.err(at, f"'{raw}' is not a mail address", key=True)
            continue
        what = f"inbound address '{raw}'"
        f = r.fields(spec or {}, at, what, ("category", "priority", "escalate"), ())
        if f is None:
            continue
        priority = r.string(f, "priority", at)
        if priority is not None and priority not in PRIORITIES:
            r.err((*at, "priority"), f"unknown priority '{priority}' (use {', '.join(PRIORITIES)})")
        escalate = f.get("escalate", False)
        if not isinstance(escalate, bool):
            r.err((*at, "escalate"), f"'escalate' must be true or false, not {kind_of(escalate)}")
            escalate = False
        out[address] = InboundAddress(r.string(f, "category", at), priority, escalate)
    return out


def _imap(r: Reader, value: Any, p: Path) -> Imap | None:
    allowed = ("host", "port", "tls", "user_env", "password_env", "folder")
    m = r.fields(value, p, "inbound_email.imap", allowed, ("host", "user_env", "password_env"))
    if m is None:
        return None
    host, folder = r.string(m, "host", p), r.string(m, "folder", p) or "INBOX"
    tls = m.get("tls", "tls")
    if tls is True or tls is False:
        tls = "tls" if tls else "none"
    if tls not in _TLS:
        r.err((*p, "tls"), f"'tls' must be one of {', '.join(_TLS)} (or true/false), not {tls!r}")
        tls = "tls"
    port = m.get("port", 993 if tls == "tls" else 143)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        r.err((*p, "port"), f"'port' must be a port number (1-65535), not {port!r}")
        port = 993
    envs = {}
    for key in ("user_env", "password_env"):
        name = r.string(m, key, p)
        if name is not None and r.env_name((*p, key), key, name):
            envs[key] = name
    if host is None or len(envs) < 2:
        return None
    return Imap(host, envs["user_env"], envs["password_env"], port, str(tls), folder)
