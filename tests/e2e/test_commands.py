"""The real `rungs` command as a user runs it: simulate from a file and from stdin, refusals."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from rungs.sim.output import compare_timelines
from tests.conftest import require_shared
from tests.unit.test_stories import _explain
from tests.unit.test_validate import edit, write

ROOT = Path(__file__).resolve().parents[2]
STORY = ".story.yaml"


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


# --- validate through the installed command ---------------------------------------------

RUNGS = Path(sys.executable).with_name("rungs")


def test_three_errors_through_the_installed_command(tmp_path: Path) -> None:
    text = edit("calendar: office", "calendar: nowhere")
    text = text.replace("country: DE", "country: XX")
    text = text.replace("notify: [person:bob]\n\nrules", "notify: [person:nobody]\n\nrules")
    path = write(tmp_path, text)
    proc = subprocess.run(
        [str(RUNGS), "validate", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(f"{path}:")]
    assert len(lines) == 3, proc.stderr
    assert lines[0].startswith(f"{path}:14:16: unknown holiday country 'XX'")
    assert lines[1].startswith(f"{path}:41:15: unknown calendar 'nowhere'")
    assert lines[2].startswith(f"{path}:60:18: unknown person 'nobody'")


def test_acme_policy_through_the_installed_command() -> None:
    acme = require_shared() / "acme" / "policy.yaml"
    proc = subprocess.run(
        [str(RUNGS), "validate", str(acme)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
