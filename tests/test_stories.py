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
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from rungs.policy import Policy, load_policy
from rungs.sim import SimulationError, load_story, run_story
from rungs.sim.output import compare_timelines, timeline_json

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "tests" / "scenarios"
STORY = ".story.yaml"


def _shared_root() -> Path | None:
    """The shared contract: beside this checkout (`../shared/scenarios`), else inside it."""
    candidates = (
        Path(__file__).resolve().parents[2] / "shared" / "scenarios",
        ROOT.parent / "shared" / "scenarios",
        ROOT / "shared" / "scenarios",
    )
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


SHARED = _shared_root()


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
    assert SHARED is not None, "shared/scenarios not found beside the checkout (../shared)"
    assert list(SHARED.rglob(f"*{STORY}")), f"no stories under {SHARED}"


def test_project_stories_say_what_they_pin_down() -> None:
    stories = sorted(PROJECT.rglob(f"*{STORY}"))
    assert len(stories) >= 28
    silent = [p for p in stories if not p.read_text(encoding="utf-8").startswith("#")]
    assert not silent, f"stories without a leading comment: {silent}"


# --- the real command ------------------------------------------------------------------------


def _rungs() -> list[str]:
    for candidate in (Path(sys.executable).parent / "rungs", ROOT / ".venv" / "bin" / "rungs"):
        if candidate.exists():
            return [str(candidate)]
    found = shutil.which("rungs")
    if found:
        return [found]
    return [sys.executable, "-c", "from rungs.cli import main; main()"]


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [*_rungs(), *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def _expected(story: str) -> list[dict[str, Any]]:
    return json.loads((ROOT / story.replace(STORY, ".expected.json")).read_text("utf-8"))


def test_cli_simulate_a_story_file() -> None:
    story = "tests/scenarios/core/06-reopen.story.yaml"
    done = _run("simulate", "tests/scenarios/core/policy.yaml", story, "--json")
    assert done.returncode == 0, done.stderr
    actual = json.loads(done.stdout)
    problems = compare_timelines(_expected(story), actual)
    assert not problems, _explain(problems, actual)


def test_cli_simulate_a_story_from_stdin() -> None:
    story = "tests/scenarios/calendars/01-lunch-break.story.yaml"
    text = (ROOT / story).read_text(encoding="utf-8")
    done = _run("simulate", "tests/scenarios/calendars/policy.yaml", "-", "--json", stdin=text)
    assert done.returncode == 0, done.stderr
    actual = json.loads(done.stdout)
    problems = compare_timelines(_expected(story), actual)
    assert not problems, _explain(problems, actual)


def test_cli_refusal_exits_non_zero_and_names_the_reason() -> None:
    story = "tests/scenarios/core/11-unknown-reason.story.yaml"
    done = _run("simulate", "tests/scenarios/core/policy.yaml", story, "--json")
    assert done.returncode != 0
    assert "boredom" in done.stderr
