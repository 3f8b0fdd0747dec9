"""The pure parts of issue 17: the storm options of the policy (located errors), where an
alert goes (`core.grouping.route`), group keys, flapping state and maintenance coverage."""

from __future__ import annotations

from rungs.core.flapping import changed
from rungs.core.grouping import AlertSeen, GroupSeen, Seen, group_key, group_values, resolves, route
from rungs.core.maintenance import Window, covering, hold, release
from rungs.core.model import Notify
from rungs.policy import load_policy_text
from rungs.policy.model import Flap, Grouping, IntegrationOptions, Storm
from rungs.time.instant import MINUTE

HEAD = """\
people:
  - {id: alice, contacts: {email: alice@example.test}}
customers: [{id: acme}]
integrations:
"""


def test_storm_options_compile_off_by_default() -> None:
    text = HEAD + (
        "  - {id: am, format: alertmanager, key: am-key-0123456789ab, group_by: [alertname],\n"
        "     group_window: 5m, group_resolve: any, storm: {cases: 50, window: 1m},\n"
        "     flap: {count: 4, window: 10m}}\n"
        "  - {id: ev, format: events, key: ev-key-0123456789ab}\n"
    )
    policy, problems = load_policy_text(text, "p.yaml")
    assert problems == [] and policy is not None
    am = policy.integrations["am"].options
    assert am.grouping == Grouping(("alertname",), 5 * MINUTE, "any")
    assert am.storm == Storm(50, MINUTE) and am.flap == Flap(4, 10 * MINUTE)
    ev = policy.integrations["ev"].options
    assert (ev.grouping, ev.storm, ev.flap) == (None, None, None)


def test_storm_options_errors_are_located() -> None:
    text = HEAD + (
        "  - id: ev\n"
        "    format: events\n"
        "    key: ev-key-0123456789ab\n"
        "    group_by: []\n"
        "    group_resolve: some\n"
        "    storm: {cases: 0, window: 1m}\n"
        "    flap: {count: 3, window: 9d}\n"
        "  - {id: hb, format: heartbeat, key: hb-key-0123456789ab, interval: 1m,\n"
        "     defaults: {customer: acme}, flap: {count: 2, window: 1m}}\n"
        "  - {id: pd, format: pagerduty, key: pd-key-0123456789ab, group_window: 5m}\n"
    )
    policy, problems = load_policy_text(text, "p.yaml")
    assert policy is None
    assert [(p.line, p.message) for p in problems] == [
        (8, "group_by needs at least one label or field"),
        (9, "unknown group_resolve 'some' (use all or any)"),
        (10, "'cases' must be a whole number from 1 to 100000"),
        (11, "'window' must be from 1s to 7d"),
        (12, "grouping, storm and flap are for alert integrations, not heartbeats"),
        (14, "'group_window' needs 'group_by'"),
    ]


GROUPED = IntegrationOptions(grouping=Grouping(("service",), 5 * MINUTE))
STORMY = IntegrationOptions(storm=Storm(3, MINUTE))
FLAPPY = IntegrationOptions(flap=Flap(3, 10 * MINUTE))


def test_route_repeat_refire_and_reopen() -> None:
    firing = AlertSeen("C1", True, "firing", 0)
    resolved_open = AlertSeen("C1", True, "resolved", 0)
    resolved_ended = AlertSeen("C1", False, "resolved", 0)
    assert route(GROUPED, Seen(firing), 1) == "repeat"
    assert route(GROUPED, Seen(resolved_open), 1) == "refire"
    assert route(FLAPPY, Seen(resolved_ended), 10 * MINUTE) == "reopen"
    assert route(FLAPPY, Seen(resolved_ended), 10 * MINUTE + 1) == "open"  # long quiet
    assert route(GROUPED, Seen(resolved_ended), 1) == "open"  # without flap: a new case
    closed = AlertSeen("C1", False, "resolved", 0, closed=True)
    assert route(FLAPPY, Seen(closed), 1) == "open"  # a closed case is final: never reopened


def test_route_attaches_within_the_group_window_only() -> None:
    group = GroupSeen("C1", 0, True)
    assert route(GROUPED, Seen(None, group), 5 * MINUTE - 1) == "attach"
    assert route(GROUPED, Seen(None, group), 5 * MINUTE) == "open"
    assert route(GROUPED, Seen(None, GroupSeen("C1", 0, False)), 1) == "open"  # resolved
    endless = IntegrationOptions(grouping=Grouping(("service",)))
    assert route(endless, Seen(None, group), 10**12) == "attach"


def test_route_storm_threshold() -> None:
    assert route(STORMY, Seen(None, recent=2), 0) == "open"
    assert route(STORMY, Seen(None, recent=3), 0) == "storm"
    storm = GroupSeen("S", 0, True)
    assert route(STORMY, Seen(None, storm_case=storm, recent=3), 0) == "attach_storm"
    both = IntegrationOptions(grouping=Grouping(("service",), MINUTE), storm=Storm(3, MINUTE))
    old_group = GroupSeen("C1", 0, True)  # still open, but past its group window
    seen = Seen(None, old_group, storm_case=storm, recent=3)
    assert route(both, seen, 2 * MINUTE) == "attach_storm"
    assert route(both, Seen(None, old_group, storm_case=storm, recent=3), 1) == "attach"
    over = GroupSeen("S", 0, True, released=True)
    assert route(STORMY, Seen(None, storm_case=over, recent=3), 0) == "storm"


def test_group_values_and_keys() -> None:
    am = {"fields": {"labels": {"alertname": "Disk", "cluster": "eu"}}, "customer": "acme"}
    assert group_values(("alertname", "customer", "nope"), am) == {
        "alertname": "Disk",
        "customer": "acme",
        "nope": "",
    }
    g = Grouping(("alertname",))
    other = {"fields": {"labels": {"alertname": "Disk", "cluster": "us"}}}
    assert group_key("am", g, am) == group_key("am", g, other)
    assert group_key("am", g, am) != group_key("am2", g, am)
    assert len(group_key("x" * 200, g, am)) <= 300
    assert resolves("all", 1) is False and resolves("all", 0) is True
    assert resolves("any", 5) is True


def test_flapping_needs_more_than_count_changes_within_the_window() -> None:
    flap = Flap(3, 10 * MINUTE)
    changes: tuple[int, ...] = ()
    states = []
    for t in (0, MINUTE, 2 * MINUTE, 3 * MINUTE):
        st = changed(changes, t, flap)
        changes = st.changes
        states.append(st.flapping)
    assert states == [False, False, False, True]
    assert st.quiet_due == 13 * MINUTE
    spread = changed((0, 4 * MINUTE, 8 * MINUTE), 12 * MINUTE, flap)  # the first is too old
    assert spread.flapping is False and spread.changes == (4 * MINUTE, 8 * MINUTE, 12 * MINUTE)
    assert changed((1, 2, 3), 4, None).flapping is False


def test_maintenance_covers_integrations_or_customers_in_its_span() -> None:
    w = Window(1, frozenset({"am"}), frozenset({"acme"}), 100, 200, "r")
    late = Window(2, frozenset({"am"}), frozenset(), 150, 300, "r")
    assert covering([w], "am", "other", 100) is w
    assert covering([w], "ev", "acme", 199) is w
    assert covering([w], "am", "acme", 200) is None  # the end is not in it
    assert covering([w], "ev", "other", 150) is None
    assert covering([w, late], "am", None, 160) is late  # the one ending last


def test_a_held_case_opened_at_its_window_end_keys_its_pages_after_its_effects() -> None:
    """The released case's pages are keyed after what the held case already sent (its
    `seq`), never again as its first page: the outbox takes a key once."""
    text = HEAD + "matrices:\n  - id: main\n    levels: [{notify: [person:alice]}]\n"
    policy, problems = load_policy_text(text, "p.yaml")
    assert problems == [] and policy is not None
    w = Window(1, frozenset({"ev"}), frozenset(), 0, 100, "r")
    held, _ = hold("C1", {"customer": "acme", "title": "t"}, 10, policy, w)
    held.seq = 4  # pages sent by hand while it was held
    released, effects = release(held, 100, policy, 1)
    keys = [e.key for e in effects if isinstance(e, Notify)]
    assert keys and all(int(k.rsplit(":n", 1)[1]) > 4 for k in keys)
    assert released.seq > 4
