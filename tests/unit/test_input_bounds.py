"""Bounds on what comes from outside (issue 12 §5), in the pure parts: instants Rungs takes,
schedules computed from any of them, overrides checked before they are stored, and YAML that is
too deep or expands too far."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rungs.policy import load_policy_text
from rungs.policy.loader import MAX_DEPTH, MAX_VALUES, load_yaml
from rungs.schedules.ical import to_ical
from rungs.schedules.oncall import (
    Layer,
    Override,
    Schedule,
    layer_error,
    on_call,
    override_error,
    shifts,
)
from rungs.time.hours import parse_hours
from rungs.time.instant import (
    DAY,
    EARLIEST,
    LATEST,
    WEEK,
    InstantRangeError,
    checked,
    format_utc,
    parse_instant,
    range_error,
    to_us,
)

ENDS = [
    "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59-14:00",  # after year 9999 in UTC
    "9999-12-31T23:59:59.999999Z",
    "1899-12-31T23:59:59Z",
    "9000-01-01T00:00:00Z",
]


@pytest.mark.parametrize("text", ENDS)
def test_instants_at_the_ends_of_the_calendar_are_refused_by_name(text: str) -> None:
    with pytest.raises(InstantRangeError, match="out of range: instants are taken from 1900"):
        parse_instant(text)
    with pytest.raises(ValueError):  # callers catch ValueError, as for any bad instant
        parse_instant(text)


def test_the_range_itself_is_taken_and_formats() -> None:
    assert parse_instant("1900-01-01T00:00:00Z") == EARLIEST
    assert parse_instant("8999-12-31T23:59:59.999999Z") == LATEST - 1
    assert parse_instant("1900-01-01T01:00:00+01:00") == EARLIEST
    assert range_error(EARLIEST) is None and range_error(LATEST - 1) is None
    assert range_error(EARLIEST - 1) is not None and range_error(LATEST) is not None
    # what the API computes from any of them (a default range, 400 days of shifts) is a date
    assert format_utc(EARLIEST - 400 * DAY) == "1898-11-27T00:00:00Z"
    assert format_utc(LATEST + 400 * DAY) == "9001-02-05T00:00:00Z"
    assert checked(EARLIEST) == EARLIEST
    with pytest.raises(InstantRangeError, match="0001-01-01T00:00:00Z: instants are taken"):
        checked(to_us(datetime(1, 1, 1, tzinfo=UTC)))
    with pytest.raises(InstantRangeError, match="instants are taken"):
        checked(2**70)  # not even a date: said as a number


def test_override_error_checks_range_and_order_before_anything_is_stored() -> None:
    at = parse_instant("2026-03-02T09:00:00Z")
    assert override_error(Override(at, at + DAY, "ann")) is None
    assert override_error(Override(at, at, "ann")) == ("to", "'to' must be later than 'from'")
    field, why = override_error(Override(EARLIEST - 1, at, "ann")) or ("", "")
    assert field == "from" and why.startswith("from: instants are taken from 1900")
    field, why = override_error(Override(at, LATEST, "ann")) or ("", "")
    assert field == "to" and "up to 9000-01-01" in why


def test_layer_error_refuses_a_start_out_of_range_and_endless_shifts() -> None:
    assert layer_error(Layer("l", ("a",), "1w", EARLIEST - 1, "UTC")) == (
        "start: instants are taken from 1900-01-01T00:00:00Z up to 9000-01-01T00:00:00Z"
    )
    assert layer_error(Layer("l", ("a",), "5200w", 0, "UTC")) is None
    assert layer_error(Layer("l", ("a",), "5201w", 0, "UTC")) == (
        "shift '5201w' is longer than 100 years"
    )


def _schedule(start: int) -> Schedule:
    """Every kind of layer: calendar shifts across DST, a restricted one in another zone, an
    elapsed shift, the longest shift there is; and an override."""
    office = parse_hours({d: "09:00-17:00" for d in ("mon", "tue", "wed", "thu", "fri")})
    return Schedule(
        "edge",
        "Europe/Berlin",
        (
            Layer("century", ("zoe", "yan"), "5200w", start, "Pacific/Kiritimati"),
            Layer("weekly", ("ann", "ben"), "1w", start, "Europe/Berlin"),
            Layer("halfday", ("cat", "dan"), "12h", start, "America/New_York"),
            Layer("office", ("eve",), "1d", start, "Pacific/Kiritimati", office),
        ),
        (Override(start + DAY, start + 2 * DAY, "fay"),),
    )


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    anchor=st.integers(EARLIEST, LATEST - 1),
    at=st.integers(EARLIEST, LATEST - 1),
    days=st.integers(1, 400),
)
def test_schedules_answer_for_every_instant_in_range(anchor: int, at: int, days: int) -> None:
    """Handoffs and local wall clocks near both ends are still dates: no OverflowError."""
    s = _schedule(anchor)
    assert layer_error(s.layers[0]) is None
    on_call(s, at)
    start = min(at, LATEST - days * DAY)
    found = shifts(s, start, start + days * DAY)
    for x in found:
        format_utc(x.start), format_utc(x.end)
    to_ical(s, found)


@pytest.mark.parametrize("at", [EARLIEST, LATEST - 1, LATEST - 400 * DAY])
def test_schedules_at_the_ends_of_the_range(at: int) -> None:
    s = _schedule(EARLIEST if at > EARLIEST + WEEK else LATEST - 1)
    on_call(s, at)
    start = min(at, LATEST - 400 * DAY)
    assert shifts(s, start, start + 400 * DAY)


# YAML ----------------------------------------------------------------------------------------


def test_deeply_nested_yaml_is_one_located_problem_not_a_recursion_error() -> None:
    for text in (
        "a: " + "[" * 100_000 + "]" * 100_000,
        "a:\n" + "".join(f"{'  ' * (i + 1)}k{i}:\n" for i in range(200)),
        "a: " + "{b: " * 5_000 + "1" + "}" * 5_000,
    ):
        loc = load_yaml(text, "deep.yaml")
        assert loc.data is None
        (problem,) = loc.problems
        assert problem.message == f"YAML document nested more than {MAX_DEPTH} levels deep"
        assert problem.line >= 1 and problem.file == "deep.yaml"


def test_yaml_nested_to_the_bound_still_loads() -> None:
    # the root mapping, MAX_DEPTH - 2 lists, the scalar: MAX_DEPTH nodes inside each other
    text = "a: " + "[" * (MAX_DEPTH - 2) + "1" + "]" * (MAX_DEPTH - 2)
    loc = load_yaml(text, "ok.yaml")
    assert not loc.problems
    v = loc.data["a"]
    for _ in range(MAX_DEPTH - 3):
        v = v[0]
    assert v == [1]
    assert load_yaml("a: [" + text[3:] + "]", "deep.yaml").problems


def test_recursive_and_exponential_aliases_stop_with_a_problem() -> None:
    loc = load_yaml("a: &a [1, *a]\n", "loop.yaml")
    (problem,) = loc.problems
    assert "nested more than" in problem.message and "through aliases" in problem.message
    laughs = "x: &x0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n" + "".join(
        f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 10)}]\n" for i in range(1, 9)
    )
    loc = load_yaml(laughs, "laughs.yaml")
    (problem,) = loc.problems
    assert (
        problem.message == f"YAML document more than {MAX_VALUES} values once aliases are expanded"
    )


def test_a_mapping_that_merges_itself_is_a_problem() -> None:
    loc = load_yaml("a: &a {<<: *a, b: 1}\n", "merge.yaml")
    assert loc.problems, loc.data


def test_a_key_that_is_a_list_or_a_mapping_is_refused() -> None:
    loc = load_yaml("? [a, b]\n: 1\n? {c: d}\n: 2\ne: 3\n", "keys.yaml")
    assert loc.data == {"e": 3}
    assert [(p.line, p.message) for p in loc.problems] == [
        (1, "a key must be a plain value, not a list"),
        (3, "a key must be a plain value, not a mapping"),
    ]


def test_a_policy_with_a_schedule_start_out_of_range_is_a_located_error() -> None:
    text = """\
version: 1
people: [{id: ann, contacts: {email: ann@example.com}}]
schedules:
  - id: s
    timezone: UTC
    layers:
      - {name: w, members: [ann], shift: 1w, start: 0001-01-01T00:00:00+14:00}
      - {name: v, members: [ann], shift: 1w, start: "9999-12-31T23:59:59Z"}
    overrides:
      - {from: 0001-01-01 00:00:00+14:00, to: "2026-01-01T00:00:00Z", who: ann}
customers: [{id: acme}]
matrices: [{id: m, levels: [{notify: [person:ann]}]}]
"""
    policy, problems = load_policy_text(text, "p.yaml")
    assert policy is None
    assert any(p.line == 7 and "instants are taken" in p.message for p in problems), problems
    assert any(p.line == 8 and "out of range" in p.message for p in problems), problems
    assert any(p.line == 10 and "instants are taken" in p.message for p in problems), problems


def test_ical_text_never_spans_content_lines() -> None:
    s = _schedule(parse_instant("2026-03-02T09:00:00Z"))
    at = parse_instant("2026-03-02T09:00:00Z")
    out = to_ical(s, shifts(s, at, at + WEEK), person="ann", name="On call\r\nX-Injected: 1")
    assert not [line for line in out.split(b"\r\n") if line.startswith(b"X-Injected")]
    assert b"X-WR-CALNAME:On call X-Injected: 1\r\n" in out
