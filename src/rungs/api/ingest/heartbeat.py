"""Heartbeats (`POST /v1/heartbeats/{key}`, any body ignored; `GET /v1/heartbeats`): a beat
means the next is expected within the integration's `interval`; a missed one opens a case,
which the next beat resolves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from rungs.api.ingest.commands import Beat
from rungs.policy.model import Integration
from rungs.time.instant import format_duration, format_utc

__all__ = ["HeartbeatAnswer", "answer", "state_json", "to_commands"]


class HeartbeatAnswer(BaseModel):
    status: str = "up"
    integration: str
    last_beat: str
    next_due: str
    resolved: str | None = None


def to_commands(integ: Integration) -> list[Beat]:
    """A beat of the integration (the body, whatever it is, says nothing more)."""
    return [Beat(integ)]


def answer(integ: Integration, state: Mapping[str, Any]) -> HeartbeatAnswer:
    """The answer to a beat, from the state it left (`last_beat`, `next_due`, `resolved`)."""
    return HeartbeatAnswer(
        integration=integ.id,
        last_beat=format_utc(state["last_beat"]),
        next_due=format_utc(state["next_due"]),
        resolved=state["resolved"],
    )


def state_json(s: Mapping[str, Any]) -> dict[str, Any]:
    """One heartbeat's state as `GET /v1/heartbeats` lists it."""
    return {
        "integration": s["integration"],
        "status": s["status"],
        "interval": format_duration(s["interval_us"]),
        "last_beat": format_utc(s["last_beat"]),
        "next_due": format_utc(s["next_due"]) if s["next_due"] else None,
        "missed_at": format_utc(s["missed_at"]) if s["missed_at"] else None,
    }
