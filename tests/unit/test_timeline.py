"""Timeline entries: decoding stored rows, the timeline JSON, and the comparison rule for the
kinds the live service adds (compared only where an expected file lists them)."""

from __future__ import annotations

import json

import pytest

from rungs.core.timeline import decode_entries, decode_entry, entry_json, timeline_json
from rungs.sim.output import compare_timelines
from rungs.time.instant import parse_instant

AT = parse_instant("2026-06-01T10:40:00Z")


def test_a_stored_entry_decodes_from_text_and_bytes() -> None:
    entry = {"at": AT, "case": "C1", "kind": "acknowledged", "by": "ben", "n": 2**70}
    raw = json.dumps(entry)
    assert decode_entry(raw) == entry
    assert decode_entry(raw.encode()) == entry
    assert decode_entries([raw, raw.encode()]) == [entry, entry]


def test_a_stored_entry_is_an_object() -> None:
    with pytest.raises(ValueError, match="JSON object, not list"):
        decode_entry("[1]")


def test_the_timeline_json_puts_at_case_kind_first_and_drops_empty_fields() -> None:
    entry = {"kind": "acknowledged", "by": "ben", "reason": None, "at": AT, "case": "C1"}
    assert list(entry_json(entry).items()) == [
        ("at", "2026-06-01T10:40:00Z"),
        ("case", "C1"),
        ("kind", "acknowledged"),
        ("by", "ben"),
    ]
    assert timeline_json([entry]) == [entry_json(entry)]


ACK = {"at": "2026-06-01T10:40:00Z", "case": "C1", "kind": "acknowledged", "by": "ben"}


def _notice(to: str, channel: str = "sms") -> dict[str, str]:
    return {**ACK, "kind": "notice", "to": to, "channel": channel, "about": "acknowledged"}


def test_notices_are_ignored_unless_the_expected_timeline_lists_them() -> None:
    actual = [ACK, _notice("ann"), _notice("cat")]
    assert compare_timelines([ACK], actual) == []


def test_notices_are_compared_once_the_expected_timeline_lists_them() -> None:
    actual = [ACK, _notice("ann"), _notice("cat")]
    assert compare_timelines([ACK, _notice("cat"), _notice("ann")], actual) == []
    problems = compare_timelines([ACK, _notice("ann"), _notice("cat", "email")], actual)
    assert len(problems) == 2
    assert "missing" in problems[0] and "'email'" in problems[0]
    assert "unexpected" in problems[1] and "'sms'" in problems[1]
    assert compare_timelines([ACK, _notice("ann")], actual) != []
