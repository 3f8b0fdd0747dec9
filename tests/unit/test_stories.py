"""Golden stories: every `*.story.yaml` of the shared contract and of `tests/scenarios/`.

Each story runs as `rungs simulate POLICY STORY --json` would, in-process, and its timeline is
compared with the `*.expected.json` beside it under the contract's rule (listed kinds and fields
only, entries at one instant as a multiset; see `shared/scenarios/README.md`). A story with a
`*.expected-error.txt` beside it must instead be refused: `SimulationError` with that text in its
message. The story's `policy:` is relative to the story file (`policy.yaml` beside it when
absent). A few tests run the real `rungs` command, from a file and from stdin.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from rungs.policy import Policy, load_policy
from rungs.sim import SimulationError, load_story, run_story
from rungs.sim.output import compare_timelines, timeline_json
from tests.conftest import require_shared, shared_scenarios

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "tests" / "scenarios"
STORY = ".story.yaml"


SHARED = shared_scenarios()


def _stories() -> list[Any]:
    found = []
    for root, prefix in ((SHARED, "shared"), (PROJECT, "tests/scenarios")):
        if root is None:
            continue
        for path in sorted(root.rglob(f"*{STORY}")):
            found.append(pytest.param(path, id=f"{prefix}/{path.relative_to(root).as_posix()}"))
    return found


STORIES = _stories()


def _sibling(story: Path, suffix: str) -> Path:
    return story.with_name(story.name[: -len(STORY)] + suffix)


@cache
def _policy(path: Path) -> Policy:
    return load_policy(path)


def _simulate(story_path: Path) -> list[dict[str, Any]]:
    story = load_story(story_path)
    policy_path = (story_path.parent / (story.policy or "policy.yaml")).resolve()
    sim = run_story(_policy(policy_path), story)
    return timeline_json(sim.timeline)


def _explain(problems: list[str], actual: list[dict[str, Any]]) -> str:
    lines = [f"{len(problems)} difference(s) from the expected timeline:"]
    lines += [f"  {p}" for p in problems]
    lines.append("actual timeline:")
    lines += [f"  {json.dumps(e)}" for e in actual]
    return "\n".join(lines)


@pytest.mark.parametrize("story_path", STORIES)
def test_story(story_path: Path) -> None:
    expected_file = _sibling(story_path, ".expected.json")
    error_file = _sibling(story_path, ".expected-error.txt")
    if error_file.exists():
        wanted = error_file.read_text(encoding="utf-8").strip()
        assert wanted, f"{error_file} is empty"
        with pytest.raises(SimulationError) as refused:
            _simulate(story_path)
        assert wanted in str(refused.value), (
            f"the refusal should contain {wanted!r}, got: {refused.value}"
        )
        return
    assert expected_file.exists(), f"no {expected_file.name} (or .expected-error.txt) beside it"
    expected = json.loads(expected_file.read_text(encoding="utf-8"))
    actual = _simulate(story_path)
    problems = compare_timelines(expected, actual)
    assert not problems, _explain(problems, actual)


def test_the_shared_contract_is_found() -> None:
    shared = require_shared()
    assert list(shared.rglob(f"*{STORY}")), f"no stories under {shared}"


def test_project_stories_say_what_they_pin_down() -> None:
    stories = sorted(PROJECT.rglob(f"*{STORY}"))
    assert len(stories) >= 28
    silent = [p for p in stories if not p.read_text(encoding="utf-8").startswith("#")]
    assert not silent, f"stories without a leading comment: {silent}"
