"""The automatic answer to a new case ("we received your request", the case id in the
subject as `[C12]`, so a reply threads even when its headers are lost) and to mail nobody
could be matched to. Sent through the outbox (`rungs.engine.mail.outgoing`)."""

from __future__ import annotations

from rungs.engine.mail import Answer, Inbound

__all__ = ["compose"]


def compose(mail: Inbound, case_id: str | None) -> Answer:
    subject = mail.subject or "your message"
    if case_id is None:
        return Answer(
            f"Re: {subject}",
            "We received your message, but could not match your address to a customer "
            "account, so no case was opened yet. Our team will look at it.\n\n"
            "This is an automatic answer; you will get it only once.\n",
        )
    return Answer(
        f"[{case_id}] We received your request: {subject}",
        f"We received your request and opened case {case_id}.\n\n"
        "We will answer you as soon as we can. To add to this case, reply to this mail "
        f"(keep [{case_id}] in the subject).\n\n"
        "This is an automatic answer.\n",
    )
