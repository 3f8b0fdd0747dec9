"""The pure escalation core: decide(case, event, now, policy) -> (case, effects).

The names the shell needs, re-exported: the case and its events, the effects to carry out
(dispatch on their type), due timers read back from stored rows, the SLA clock view and the
decoding of stored timeline entries.
"""

from rungs.core.decide import decide
from rungs.core.model import (
    CallWebhook,
    CancelTimers,
    Case,
    Effect,
    Event,
    Notice,
    Notify,
    Record,
    Refused,
    ScheduleTimer,
)
from rungs.core.sla import clocks, read_clocks
from rungs.core.timeline import decode_entry, entry_json, timeline_json
from rungs.core.timers import DueTimer, due_timer

__all__ = [
    "CallWebhook",
    "CancelTimers",
    "Case",
    "DueTimer",
    "Effect",
    "Event",
    "Notice",
    "Notify",
    "Record",
    "Refused",
    "ScheduleTimer",
    "clocks",
    "decide",
    "decode_entry",
    "due_timer",
    "entry_json",
    "read_clocks",
    "timeline_json",
]
