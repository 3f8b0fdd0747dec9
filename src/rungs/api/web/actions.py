"""Actions taken in the console: the same `Commands.act` as the API, done as the signed-in
person (`by`) with `actor` = `web` on the entry. A refusal is a message for a toast."""

from __future__ import annotations

from rungs.api.web.session import Viewer
from rungs.core.model import Event, Refused
from rungs.engine import Engine
from rungs.engine.writer import Unavailable

__all__ = ["ACTOR", "LABELS", "WEB_ACTIONS", "act"]

ACTOR = "web"
LABELS = {
    "acknowledge": "Acknowledge",
    "escalate": "Escalate",
    "resolve": "Resolve",
    "reopen": "Reopen",
    "assign": "Assign",
    "set_priority": "Set priority",
}
WEB_ACTIONS = frozenset(LABELS)
PAST = {
    "acknowledge": "acknowledged",
    "escalate": "escalated",
    "resolve": "resolved",
    "reopen": "reopened",
    "assign": "assigned",
    "set_priority": "re-prioritised",
}


async def act(
    engine: Engine,
    viewer: Viewer,
    case_id: str,
    action: str,
    *,
    reason: str | None = None,
    to_level: int | None = None,
    to: str | None = None,
    priority: str | None = None,
) -> str | None:
    """Decide `action` on the case; None when done, else why not (nothing was written)."""
    if action not in WEB_ACTIONS:
        return f"unknown action '{action}'"
    if any("\x00" in (v or "") for v in (case_id, reason, to, priority)):
        return "a NUL character is not allowed in a form field"  # no database stores it
    event = Event(action, viewer.person, reason, to_level, to, priority, actor=ACTOR)
    try:
        await engine.commands.act(case_id, event)
    except Refused as exc:
        return f"{case_id}: {exc.message}"
    except Unavailable as exc:
        return f"{exc.message}; nothing was written, try again"
    return None
