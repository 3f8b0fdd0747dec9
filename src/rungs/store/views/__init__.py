"""The read side: every GET reads through `Views` (cases, timelines, handoffs, SLA clocks,
on-call, tokens, heartbeats, health). The console and reports will read here too."""

from __future__ import annotations

from rungs.store.views._cases import FILTERS, case_json, entries, timeline_rows
from rungs.store.views._views import Policies, Views

__all__ = ["FILTERS", "Policies", "Views", "case_json", "entries", "timeline_rows"]
