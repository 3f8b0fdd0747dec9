""" "Handled by" notices: when someone acknowledges or resolves a case, everyone else paged in
the current round is told, so nobody keeps working on it.

Decided here, in the core, so `rungs simulate` shows them (timeline entries of kind `notice`)
and the live service writes them once (a `Notice` effect: an outbox row of kind `notice`).
Only when the policy declares channels with `handled_notice` on (the default there). Who was
paged is the case's `paged` (person -> channel), kept by `Ctx.send` and reset by a reopen.
"""

from __future__ import annotations

import hashlib

from rungs.core.ctx import Ctx
from rungs.core.model import Notice

__all__ = ["KEY_LIMIT", "handled", "notice_key"]

KEY_LIMIT = 120  # the outbox key column's width


def notice_key(case_id: str, about: str, epoch: int, person: str) -> str:
    """The idempotency key: one notice per case, action, round and person."""
    key = f"{case_id}:{about[:3]}{epoch}:{person}"
    if len(key) > KEY_LIMIT:
        key = f"{case_id}:{about[:3]}{epoch}:" + hashlib.sha256(person.encode()).hexdigest()[:32]
    return key


def handled(ctx: Ctx, about: str, by: str | None) -> None:
    """Tell each person paged this round, but `by`, that the case was `about` (acknowledged,
    resolved), on the channel that paged them: a voice call becomes an SMS (nobody wants a
    phone call to say all is well), or nothing for a person without an SMS contact."""
    if not ctx.plan.notices:
        return
    case = ctx.case
    people = ctx.policy.people
    for person, channel in case.paged.items():
        if person == by:
            continue
        if channel == "voice":
            p = people.get(person)
            if p is None or "sms" not in p.contacts:
                continue
            channel = "sms"
        ctx.record("notice", to=person, channel=channel, about=about)
        key = notice_key(case.id, about, case.epoch, person)
        ctx.effects.append(Notice(case.id, person, channel, about, by, case.level, case.title, key))
