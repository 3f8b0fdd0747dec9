"""Every command of the README's tour, run as written against the example policy.

A newcomer copies the README's shell blocks line by line; so does this test, through `bash`
in a scratch directory (with `src/` linked into it, so `cp src/rungs/examples/...` works), with
the virtualenv's `bin/` first on `PATH`. Only placeholders are filled in: optional parts in
`[...]` are left out, `TOKEN` is the token the tour created, `URL` is the scratch database, and
the server listens on a free port instead of 8080. `make run`/`make test` are left to make.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import rungs
from tests.conftest import ROOT
from tests.procs import free_port, wait_until

README = ROOT / "README.md"
BIN = Path(sys.executable).parent


def sh_blocks(text: str) -> list[list[str]]:
    """The command lines of every ```sh block, in order."""
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    return [[ln for ln in b.splitlines() if ln.strip() and not ln.startswith("#")] for b in blocks]


def fill(line: str, *, port: int, db: str, token: str) -> str:
    """The README's placeholders filled in; the rest of the line as written."""
    line = re.sub(r" \[[^\]]*\]", "", line)  # optional parts
    line = line.replace("127.0.0.1:8080", f"127.0.0.1:{port}").replace("TOKEN", token)
    line = line.replace("--db URL", f"--db {db}")
    if re.search(r"\brungs serve\b", line):
        line = line.split("#")[0].rstrip() + f" --port {port}"
    return line


class Tour:
    """A scratch directory, the environment of a fresh shell, and the server the tour starts."""

    def __init__(self, where: Path) -> None:
        self.where = where
        (where / "src").symlink_to(ROOT / "src")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RUNGS_")}
        self.env.update(PATH=f"{BIN}:{os.environ.get('PATH', '')}", NO_COLOR="1", COLUMNS="120")
        self.env["PYTHONPATH"] = str(Path(rungs.__file__).parents[1])  # the tree under test
        self.port = free_port()
        self.db = f"sqlite:///{where / 'rungs.db'}"
        self.token = "TOKEN"
        self.server: subprocess.Popen[bytes] | None = None
        self.log = where / "serve.log"
        self.outputs: dict[str, str] = {}

    def run(self, line: str) -> str:
        cmd = fill(line, port=self.port, db=self.db, token=self.token)
        if " serve " in f" {cmd} ":
            self._serve(cmd)
            return ""
        done = subprocess.run(
            ["bash", "-c", cmd], cwd=self.where, env=self.env, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"$ {cmd}\n{done.stdout}\n{done.stderr}"
        assert "None" not in done.stdout + done.stderr, f"$ {cmd}\n{done.stdout}\n{done.stderr}"
        if "token create" in cmd:
            self.token = done.stdout.strip().splitlines()[-1]
        self.outputs[line] = done.stdout
        return done.stdout

    def _serve(self, cmd: str) -> None:
        with self.log.open("wb") as out:
            self.server = subprocess.Popen(
                ["bash", "-c", cmd], cwd=self.where, env=self.env, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        url = f"http://127.0.0.1:{self.port}/healthz"

        def healthy() -> bool:
            assert self.server is not None and self.server.poll() is None, self.log.read_text()
            try:
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until("rungs serve /healthz", healthy, 60, every=0.1)

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGTERM)
            try:
                self.server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait(timeout=10)


@pytest.fixture
def tour(tmp_path: Path) -> Iterator[Tour]:
    t = Tour(tmp_path)
    try:
        yield t
    finally:
        t.stop()
        print(t.log.read_text(errors="replace") if t.log.exists() else "(no server log)")


def test_every_command_of_the_readme_runs_against_the_example_policy(tour: Tour) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed (the README's requests use it)")
    text = README.read_text("utf-8")
    blocks = sh_blocks(text)
    tour_block = next(b for b in blocks if b[0].startswith("cp src/rungs/examples/acme.yaml"))
    assert [b for b in blocks if b[0].startswith("make ")], "the first block runs make"
    for line in tour_block:
        tour.run(line)
    out = tour.outputs
    version = next(v for k, v in out.items() if k.startswith("rungs --version"))
    assert rungs.__version__ in version
    explain = next(v for k, v in out.items() if "--explain B-12" in k)
    assert "paused (pending)" in explain and "Weihnachtstag" in explain
    assert "BREACHED" in explain and "overdue" in explain and "80h business" in explain
    now = next(v for k, v in out.items() if k.startswith("rungs oncall") and "--at" not in k)
    assert "frank" in now  # the fallback, named whether or not someone is on call now
    at = json.loads(next(v for k, v in out.items() if "--at 2026-11-25T20:00" in k))
    assert at["on_call"] and at["on_call"][0] in ("dave", "carol")

    # with the server up: the curl lines, then the ingest snippet and the token commands
    curls = next(b for b in blocks if b[0].startswith("curl "))
    opened = json.loads(tour.run(curls[0]))
    assert opened["status"] == "accepted" and opened["new"] is True
    cases = json.loads(tour.run(curls[1]))
    assert [c["title"] for c in cases["items"]] == ["Backup failed on web1"]
    snippet = next(
        json.loads(b)
        for b in re.findall(r"```json\n(.*?)```", text, flags=re.S)
        if "dedup_key" in b
    )
    base = f"http://127.0.0.1:{tour.port}"
    r = httpx.post(f"{base}/v1/integrations/change-me/events", json=snippet, timeout=10)
    assert r.status_code == 202, r.text
    case = r.json()["case"]
    auth = {"Authorization": f"Bearer {tour.token}"}
    timeline = httpx.get(f"{base}/v1/cases/{case}/timeline", headers=auth, timeout=10).json()
    kinds = [e["kind"] for e in timeline]
    assert "opened" in kinds and "input_corrected" not in kinds, timeline
    tokens = next(b for b in blocks if any("token revoke" in ln for ln in b))
    for line in tokens:
        tour.run(line)
    listed = next(v for k, v in tour.outputs.items() if k.startswith("rungs token list"))
    assert "pager-bot" in listed

    # one log line per request, and never the integration key in the path or the token
    tour.stop()
    log = tour.log.read_text(errors="replace")
    assert re.search(r"GET /v1/cases 200 \d+(\.\d+)? ?ms", log), log
    assert "POST /v1/integrations/{key}/events 202" in log, log
    assert "change-me" not in log and tour.token not in log, log
