"""Crash safety of `rungs serve`: kill -9 while escalation timers come due loses nothing.

1. One server (SQLite and PostgreSQL): open 500 cases over HTTP, keep a trickle of openings
   going, and SIGKILL the process while level-2 timers are firing. Restart it on the same
   database; every case (every one answered 201, and any unanswered one that exists) ends
   with exactly one escalation to level 2, one to level 3 and one page per person per level.
2. Two engines on one PostgreSQL database, 5,000 level timers due at once: each fires
   exactly once, and killing one engine in the middle of its batch loses none.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import reset_database
from tests.procs import Server, Servers, cli_token, wait_until
from tests.sync import open_case

pytestmark = pytest.mark.slow

POLICY = """\
version: 1
timezone: UTC
people:
  - id: ann
    contacts: { email: ann@example.com }
  - id: ben
    contacts: { email: ben@example.com }
  - id: cat
    contacts: { email: cat@example.com }
  - id: dan
    contacts: { email: dan@example.com }
customers:
  - id: acme
    name: Acme
matrices:
  - id: default
    levels:
      - name: L1 desk
        notify: [person:ann]
      - name: L2 leads
        after: %(l2)s
        unless: resolved
        notify: [person:ben, person:cat]
      - name: L3 manager
        after: %(l3)s
        unless: resolved
        notify: [person:dan]
"""
# Every page of a complete case: (person, level) -> exactly once.
PAGES = {("ann", 1): 1, ("ben", 2): 1, ("cat", 2): 1, ("dan", 3): 1}
L2_S, L3_S = 3.0, 6.0
BURST, BURST_THREADS, TRICKLE_THREADS = 500, 16, 4


def _write_policy(tmp_path: Path, l2: str, l3: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY % {"l2": l2, "l3": l3}, encoding="utf-8")
    return path


def _total(client: httpx.Client, **query: Any) -> int:
    r = client.get("/v1/cases", params={**query, "limit": 1})
    r.raise_for_status()
    return int(r.json()["total"])


def _problems(case_id: str, entries: list[dict[str, Any]]) -> list[str]:
    """What a case's timeline lacks or repeats, against the complete story of this policy."""
    out = []
    kinds = Counter(e["kind"] for e in entries)
    if kinds["opened"] != 1:
        out.append(f"{case_id}: {kinds['opened']} 'opened' entries")
    steps = [(e["level"], e["from"]) for e in entries if e["kind"] == "escalated"]
    if steps != [(2, 1), (3, 2)]:
        out.append(f"{case_id}: escalations (level, from) {steps}, not [(2, 1), (3, 2)]")
    pages = Counter((e["to"], e["level"]) for e in entries if e["kind"] == "notified")
    if pages != PAGES:
        out.append(f"{case_id}: pages {dict(pages)}, not {PAGES}")
    return out


def _escalations_around(db_url: str, instant: int) -> tuple[int, int]:
    """Level-2 escalations decided before and after an instant (microseconds, UTC)."""
    from rungs.store.db import make_engine

    db = make_engine(db_url)
    try:
        with db.connect() as conn:
            rows = conn.execute(
                text("SELECT at, entry FROM timeline WHERE kind = 'escalated'")
            ).all()
    finally:
        db.dispose()
    at = [r.at for r in rows if json.loads(r.entry)["level"] == 2]
    return sum(1 for t in at if t < instant), sum(1 for t in at if t >= instant)


class Opener:
    """POST /v1/cases from threads; records every answer and every request left unanswered."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.client = httpx.Client(
            base_url=url,
            timeout=30.0,
            limits=httpx.Limits(max_connections=64),
            headers=headers,
        )
        self.lock = threading.Lock()
        self.created: dict[str, float] = {}  # case id -> when its 201 arrived (monotonic)
        self.other: list[tuple[int, str]] = []  # answers other than 201
        self.unanswered: list[tuple[float, str]] = []  # (when it failed, error)
        self.stop = threading.Event()
        self.n = 0

    def open_one(self) -> None:
        with self.lock:
            self.n += 1
            n = self.n
        body = {"customer": "acme", "title": f"crash test case {n}", "priority": "P2"}
        try:
            r = self.client.post("/v1/cases", json=body)
        except httpx.HTTPError as exc:
            with self.lock:
                self.unanswered.append((time.monotonic(), f"{type(exc).__name__}: {exc}"))
            return
        with self.lock:
            if r.status_code == 201:
                self.created[r.json()["id"]] = time.monotonic()
            else:
                self.other.append((r.status_code, r.text))

    def trickle(self) -> None:
        while not self.stop.is_set():
            self.open_one()
            self.stop.wait(0.05)


def test_kill_9_while_escalating_loses_nothing(db_url: str, tmp_path: Path) -> None:
    policy = _write_policy(tmp_path, f"{L2_S:.0f}s", f"{L3_S:.0f}s")
    t_test = time.monotonic()
    headers = {"Authorization": f"Bearer {cli_token(db_url, 'responder')}"}
    with Servers(tmp_path) as servers:
        first = servers.start("first", db_url, policy)
        up = first.wait_healthy()
        opener = Opener(first.url, headers)
        trickle = [
            threading.Thread(target=opener.trickle, daemon=True) for _ in range(TRICKLE_THREADS)
        ]
        try:
            t0 = time.monotonic()
            with ThreadPoolExecutor(BURST_THREADS) as pool:
                burst = [pool.submit(opener.open_one) for _ in range(BURST)]
                for t in trickle:
                    t.start()
                for f in burst:
                    f.result()
            burst_s = time.monotonic() - t0
            # Kill in the middle of the burst's level-2 timers coming due (and never before
            # 3.5 s); the trickle keeps both openings and timers in flight at that moment.
            kill_at = t0 + max(3.5, L2_S + burst_s / 2)
            time.sleep(max(0.0, kill_at - time.monotonic()))
            level2 = wait_until(
                "a first case at level 2", lambda: _total(opener.client, level=2), timeout=20.0
            )
            before = {"cases": _total(opener.client), "level2": level2}
            killing_at = time.monotonic()  # a request failing after this is the kill's doing
            first.kill()
            killed_at, killed_wall = time.monotonic(), time.time_ns() // 1000
            assert first.proc.returncode == -signal.SIGKILL
        finally:
            opener.stop.set()
            for t in trickle:
                t.join(timeout=35)
            opener.client.close()
        assert not opener.other, f"answers other than 201 before the kill: {opener.other[:5]}"
        early = [u for u in opener.unanswered if u[0] < killing_at]
        assert not early, f"requests failed before the kill: {early[:5]}"
        assert len(opener.created) >= BURST // 2, "too few cases were opened before the kill"

        second = servers.start("restarted", db_url, policy)
        restart_s = second.wait_healthy()
        with httpx.Client(base_url=second.url, timeout=30.0, headers=headers) as client:
            total = _total(client)
            # The last case opened just before the kill reaches level 3 at L3_S after it.
            wait_until(
                "every case to reach level 3",
                lambda: _total(client, level=3) == total or None,
                timeout=max(0.0, killed_at + L3_S - time.monotonic()) + 60.0,
                every=0.2,
            )
            settled_s = time.monotonic() - killed_at
            ids: list[str] = []
            while len(ids) < total:
                r = client.get("/v1/cases", params={"limit": 500, "offset": len(ids)})
                r.raise_for_status()
                page = [c["id"] for c in r.json()["items"]]
                assert page, "the case list ended early"
                ids.extend(page)
            missing = set(opener.created) - set(ids)
            assert not missing, (
                f"cases answered 201 are gone after the kill: {sorted(missing)[:10]}"
            )
            extra = sorted(set(ids) - set(opener.created))
            assert len(extra) <= len(opener.unanswered), (
                f"{len(extra)} cases nobody was told about, only "
                f"{len(opener.unanswered)} requests went unanswered"
            )

            def timeline(case_id: str) -> tuple[str, list[dict[str, Any]]]:
                r = client.get(f"/v1/cases/{case_id}/timeline")
                r.raise_for_status()
                return case_id, r.json()

            with ThreadPoolExecutor(8) as pool:
                timelines = dict(pool.map(timeline, ids))
        problems = [p for cid, entries in timelines.items() for p in _problems(cid, entries)]
        assert not problems, f"{len(problems)} problems, first ones:\n" + "\n".join(problems[:20])
        l2_before, l2_after = _escalations_around(db_url, killed_wall)
        assert l2_before > 0, "the kill came before any level-2 timer had fired"
        assert l2_after > 0, "no level-2 timer was left for the restarted process"
        print(
            f"[{db_url.split(':')[0]}] first up in {up:.1f}s; {BURST} opened in {burst_s:.2f}s; "
            f"at the kill ({killed_at - t0:.2f}s after the first open): {before['cases']} cases, "
            f"{before['level2']} at level 2; {len(opener.created)} answered 201, "
            f"{len(opener.unanswered)} unanswered of which {len(extra)} exist; level-2 "
            f"escalations {l2_before} before the kill, {l2_after} after; restart up in "
            f"{restart_s:.1f}s; all at level 3 {settled_s:.1f}s after the kill; "
            f"test {time.monotonic() - t_test:.1f}s"
        )


# ---- two engines -------------------------------------------------------------------------

CASES = 5000
BATCH = 500  # Engine batch: timers taken per transaction
FIRED = re.compile(r"^rungs_engine_lateness_hist_seconds_count (\S+)$", re.M)


def _fired(server: Server) -> int:
    """Timers this process has fired so far (counted inside its transactions)."""
    r = httpx.get(f"{server.url}/metrics", timeout=5.0)
    r.raise_for_status()
    m = FIRED.search(r.text)
    return int(float(m.group(1))) if m else 0


@pytest.mark.postgres
def test_two_engines_fire_each_timer_once_and_survive_a_kill(pg_url: str, tmp_path: Path) -> None:
    from rungs.engine import Engine
    from rungs.store.db import make_engine
    from rungs.time.clock import SystemClock

    reset_database(pg_url)
    policy = _write_policy(tmp_path, "2s", "1h")
    t_test = time.monotonic()
    db = make_engine(pg_url)
    opener: Engine | None = None
    with Servers(tmp_path) as servers:
        try:
            a = servers.start("engine-a-all", pg_url, policy, role="all")
            a.wait_healthy()  # one at a time: it migrates and stores policy version 1
            b = servers.start("engine-b", pg_url, policy, role="engine")
            b.wait_healthy()
            assert httpx.get(f"{b.url}/healthz").json()["role"] == "engine"

            # Hold both engines still while the cases are written, so that the 5,000
            # level-2 timers are (nearly all) due together when they resume.
            a.signal(signal.SIGSTOP)
            b.signal(signal.SIGSTOP)
            opener = Engine(db, SystemClock())
            assert opener.policies.ensure(policy.read_text(encoding="utf-8"), str(policy)) == 1
            t0 = time.monotonic()
            data = {"customer": "acme", "title": "two engines", "priority": "P2"}
            with ThreadPoolExecutor(64) as pool:
                opened = list(pool.map(lambda _: open_case(opener, dict(data))[0].id, range(CASES)))
            create_s = time.monotonic() - t0
            assert len(set(opened)) == CASES
            a.signal(signal.SIGCONT)
            b.signal(signal.SIGCONT)
            t_resume = time.monotonic()

            def escalated() -> int:
                with db.connect() as conn:
                    return conn.execute(
                        text("SELECT count(*) FROM timeline WHERE kind = 'escalated'")
                    ).scalar_one()

            def due_left() -> int:
                with db.connect() as conn:
                    return conn.execute(
                        text("SELECT count(*) FROM timers WHERE due <= :now"),
                        {"now": time.time_ns() // 1000},
                    ).scalar_one()

            # Kill B inside its second batch: its first batch (up to 500 timers, one
            # transaction) is committed, the one in hand is not. Its counter moves inside the
            # transaction, so more than one batch fired means the first one was committed.
            b_fired = wait_until(
                "engine B to start a second batch",
                lambda: (n := _fired(b)) > BATCH and n,
                timeout=60.0,
                every=0.02,
            )
            b.kill()
            kill_s = time.monotonic() - t_resume
            assert b.proc.returncode == -signal.SIGKILL
            committed_at_kill = escalated()
            left_at_kill = due_left()
            assert left_at_kill > 0, "engine B was killed after every timer had fired"
            assert committed_at_kill > 0, "nothing was committed before the kill"

            wait_until(
                "every due level timer to fire",
                lambda: (due_left() == 0 and escalated() >= CASES) or None,
                timeout=90.0,
                every=0.2,
            )
            done_s = time.monotonic() - t_resume
            a_fired = _fired(a)
            assert a.alive()
            # Stopped gracefully, A commits what it has in hand and fires nothing more: a
            # duplicate firing would be in the rows read below.
            a.signal(signal.SIGINT)  # as Ctrl-C: `rungs serve` stops its service, exits 0
            assert a.proc.wait(timeout=30) == 0, a.log_text()

            with db.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT case_id, entry FROM timeline"
                        " WHERE kind IN ('escalated', 'notified')"
                    )
                ).all()
                left = conn.execute(text("SELECT case_id, key, due, payload FROM timers")).all()
                outbox = conn.execute(text("SELECT count(*) FROM outbox")).scalar_one()
                levels = dict(
                    conn.execute(text("SELECT level, count(*) FROM cases GROUP BY level")).all()
                )
        finally:
            if opener is not None:
                opener.stop()
            db.dispose()

    escalations: Counter[str] = Counter()
    pages: dict[str, Counter[tuple[str, int]]] = {}
    for case_id, raw in rows:
        e = json.loads(raw)
        if e["kind"] == "escalated":
            assert (e["level"], e["from"]) == (2, 1), f"{case_id}: unexpected escalation {e}"
            escalations[case_id] += 1
        else:
            pages.setdefault(case_id, Counter())[(e["to"], e["level"])] += 1
    not_once = {c: escalations[c] for c in opened if escalations[c] != 1}
    assert not not_once, (
        f"{len(not_once)} cases not escalated exactly once: {list(not_once.items())[:10]}"
    )
    want = {("ann", 1): 1, ("ben", 2): 1, ("cat", 2): 1}
    wrong = {c: dict(p) for c in opened if (p := pages.get(c, Counter())) != want}
    assert not wrong, f"{len(wrong)} cases with wrong pages: {list(wrong.items())[:5]}"
    assert levels == {2: CASES}, levels
    assert outbox == 3 * CASES, outbox
    now = time.time_ns() // 1000
    assert {(r.key, r.payload) for r in left} == {("level", "[3,0]")}, "other timers are left"
    assert len(left) == CASES and {r.case_id for r in left} == set(opened)
    assert all(r.due > now for r in left), "a due level timer was left unfired"
    print(
        f"[two engines] {CASES} cases written in {create_s:.1f}s; B killed {kill_s:.2f}s after "
        f"resuming, having fired {b_fired}+ timers ({committed_at_kill} escalations committed, "
        f"{left_at_kill} due timers left); A fired {a_fired}, so B's committed share was "
        f"{CASES - a_fired}; all fired {done_s:.1f}s after resuming; "
        f"test {time.monotonic() - t_test:.1f}s"
    )
