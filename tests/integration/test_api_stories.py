"""Every story, run through the live API on the virtual clock, matches `rungs simulate`.

For each event: advance the clock to its instant, then call its action over HTTP (`open` is
`POST /v1/cases` with the `with` fields). Then advance to `until` and read every timeline, and
`rungs verify` the database: the stored history re-runs exactly. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rungs.bootstrap import build
from rungs.policy import load_policy
from rungs.sim import load_story, run_story
from rungs.sim.output import compare_timelines, timeline_json
from rungs.store.views.replay import verify
from rungs.time.instant import format_utc
from tests.conftest import ROOT, api_token, shared_scenarios

STORIES = sorted(
    [
        *(shared_scenarios() or Path("/nonexistent")).rglob("*.story.yaml"),
        *(ROOT / "tests" / "scenarios").rglob("*.story.yaml"),
    ]
)
STORIES = [
    s
    for s in STORIES
    if not s.with_name(s.name.replace(".story.yaml", ".expected-error.txt")).exists()
]


def _policy_path(story_path: Path) -> Path:
    story = load_story(story_path)
    return (story_path.parent / (story.policy or "policy.yaml")).resolve()


@pytest.mark.parametrize("story_path", STORIES, ids=lambda p: str(p.name))
def test_story_over_api_matches_simulator(
    story_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    story = load_story(story_path)
    policy_file = _policy_path(story_path)
    policy = load_policy(policy_file)
    expected = timeline_json(run_story(policy, story).timeline)
    start = story.events[0].at
    # role "engine": decisions without deliveries. The simulator takes every page as sent;
    # a live dispatcher would try the story's channels, find none configured, and page the
    # next contact method (tests/integration/test_notify.py covers delivery).
    service, app = build(db_url=db_url, policy_file=policy_file, virtual_start=start, role="engine")
    ids: dict[str, str] = {}
    # An action needs a person (`by`): the story's, else the token's. The story's actions
    # without one (pending, reopen, ...) are then the token's person's; the contract's
    # fields of their entries do not include `by`, so the timelines still compare.
    token = api_token(service.db, "admin", person=next(iter(policy.people)))
    try:
        with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
            for ev in story.events:
                r = client.post("/v1/clock/advance", json={"to": format_utc(ev.at)})
                assert r.status_code == 200, r.text
                if ev.do == "open":
                    r = client.post("/v1/cases", json=ev.params)
                    assert r.status_code == 201, r.text
                    ids[ev.case] = r.json()["id"]
                else:
                    r = client.post(f"/v1/cases/{ids[ev.case]}/{ev.do}", json=ev.params)
                    assert r.status_code == 200, r.text
            if story.until is not None:
                r = client.post("/v1/clock/advance", json={"to": format_utc(story.until)})
                assert r.status_code == 200, r.text
            actual = []
            for name, cid in ids.items():
                r = client.get(f"/v1/cases/{cid}/timeline")
                assert r.status_code == 200
                for e in r.json():
                    e["case"] = name
                    actual.append(e)
        verified = verify(service.db, 0)  # the stored history is what the core decides
        assert verified.ok and verified.cases == len(ids), verified.divergences
    finally:
        service.stop()
        service.db.dispose()
    actual.sort(key=lambda e: e["at"])  # stable: per-case order is kept within an instant
    problems = compare_timelines(expected, actual)
    assert not problems, "\n".join(problems)
    assert len(actual) == len(expected), "the API timeline has other entries than the simulator"
