"""Where a mail belongs, from the policy alone: the sender's customer (a listed contact, else
the longest listed domain the sender's is or is under), the inbound address it was written
to (envelope recipients first, then To and Cc) with its category, priority and `escalate`,
and the case its subject names (`[C12]`). The case itself is found in the store, in the
mail's transaction (`rungs.engine.mail`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rungs.engine.mail import Inbound
from rungs.policy import Policy
from rungs.policy.model import InboundAddress
from rungs.store.mail import Attachment

from .parse import Parsed
from .replies import is_automatic

__all__ = ["address_of", "case_hint", "customer_of", "inbound"]

_HINT = re.compile(r"\[(C\d{1,18})\]")


def customer_of(sender: str, policy: Policy) -> str | None:
    """The customer `sender` writes for: a contact first, then the most specific domain."""
    for c in policy.customers.values():
        if sender in c.contacts:
            return c.id
    domain = sender.rpartition("@")[2]
    best: tuple[int, str] | None = None
    for c in policy.customers.values():
        for d in c.domains:
            if (domain == d or domain.endswith("." + d)) and (best is None or len(d) > best[0]):
                best = (len(d), c.id)
    return best[1] if best else None


def address_of(
    envelope: Sequence[str], parsed: Parsed, policy: Policy
) -> tuple[str, InboundAddress | None]:
    """The inbound address written to and its settings (None: not a listed address)."""
    candidates = [a.lower() for a in envelope] + list(parsed.recipients)
    listed = policy.inbound_email.addresses if policy.inbound_email else {}
    for a in candidates:
        if a in listed:
            return a, listed[a]
    return (candidates[0] if candidates else ""), None


def case_hint(subject: str) -> str | None:
    found = _HINT.search(subject)
    return found.group(1) if found else None


def inbound(
    parsed: Parsed,
    envelope: Sequence[str],
    policy: Policy,
    attachments: Sequence[Attachment] = (),
    *,
    envelope_from: str | None = None,
) -> Inbound:
    """The mail as `rungs.engine.mail` takes it."""
    recipient, settings = address_of(envelope, parsed, policy)
    headers = parsed.headers
    if envelope_from is not None and "return-path" not in headers:
        headers = {**headers, "return-path": f"<{envelope_from}>"}
    return Inbound(
        message_id=parsed.message_id,
        sender=parsed.sender,
        recipient=recipient,
        subject=parsed.subject,
        text=parsed.text,
        date=parsed.date,
        ids=parsed.ids,
        case_hint=case_hint(parsed.subject),
        auto=is_automatic(headers, parsed.sender),
        customer=customer_of(parsed.sender, policy) if parsed.sender else None,
        escalate=bool(settings and settings.escalate),
        category=settings.category if settings else None,
        priority=settings.priority if settings else None,
        attachments=tuple(attachments),
    )
