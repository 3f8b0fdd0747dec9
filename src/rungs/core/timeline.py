"""Timeline entries as stored and as shown.

The core records an entry as a dict with an integer-µs `at`, `case`, `kind` and the kind's
fields; the store keeps it as JSON text. `decode_entry` is the one way back from a stored row
(API, handoff, dispatcher), `entry_json` the one way to the timeline JSON of the scenarios
README (`at` as `YYYY-MM-DDTHH:MM:SSZ`, empty fields left out).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from rungs.time.instant import format_utc

__all__ = ["Entry", "decode_entries", "decode_entry", "entry_json", "timeline_json"]

Entry = dict[str, Any]


def decode_entry(raw: str | bytes | bytearray) -> Entry:
    """A stored entry (the `timeline.entry` column) back as the core recorded it.

    The standard library reads it: the rows may hold what only it wrote (integers past 64
    bits, NaN from before numbers had to be finite), see `rungs.store.jsonbytes`.
    """
    entry = json.loads(raw)
    if not isinstance(entry, dict):
        raise ValueError(f"a timeline entry is a JSON object, not {type(entry).__name__}")
    return entry


def decode_entries(raws: Iterable[str | bytes | bytearray]) -> list[Entry]:
    return [decode_entry(raw) for raw in raws]


def entry_json(e: Entry) -> dict[str, Any]:
    """An entry as the timeline JSON shows it: `at`, `case`, `kind` first, no empty field."""
    d: dict[str, Any] = {"at": format_utc(e["at"]), "case": e["case"], "kind": e["kind"]}
    for k, v in e.items():
        if k not in d and v is not None:
            d[k] = v
    return d


def timeline_json(entries: Iterable[Entry]) -> list[dict[str, Any]]:
    """Entries as the timeline JSON of `rungs simulate --json` and the API."""
    return [entry_json(e) for e in entries]
