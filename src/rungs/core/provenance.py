"""What the core keeps of where an input came from, as the input said it.

An alert whose customer, category, priority or matrix could not be used as sent is opened with
other values by ingest (`rungs.api.ingest.address`), which says so in the open data as
`corrections: [{field, received, used}]`; the case's timeline keeps one `input_corrected`
entry per correction, right after `opened`, so nobody mistakes a corrected value for one the
sender gave. An action may come with a `reason` and, from a sender, a `source_user` (a name
the sender gave, never checked against the policy's people); both are kept on its entry, and
so is its `actor`: who the shell authenticated for it (an API token's name), beside `by`, the
person it was done as.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rungs.core.ctx import Ctx
from rungs.core.model import Event

__all__ = ["opened_by", "record_corrections", "said"]


def record_corrections(ctx: Ctx, data: Mapping[str, Any]) -> None:
    """One `input_corrected` entry per correction of the open data, in order."""
    for c in data.get("corrections") or ():
        ctx.record("input_corrected", field=c["field"], received=c["received"], used=c["used"])


def said(event: Event) -> dict[str, str]:
    """The reason, source user and actor an action came with, for its timeline entry (only
    those given, so entries of actions without them are as before)."""
    out = {}
    if event.reason is not None:
        out["reason"] = event.reason
    if event.source_user is not None:
        out["source_user"] = event.source_user
    if event.actor is not None:
        out["actor"] = event.actor
    return out


def opened_by(data: Mapping[str, Any]) -> dict[str, str]:
    """Who opened a case, for its `opened` entry: the open data's `actor`, when it has one."""
    actor = data.get("actor")
    return {"actor": str(actor)} if actor else {}
