"""The console in a real browser: a `rungs serve` process and Debian's Chromium, driven by
Playwright (pytest-playwright's `page` fixture, launched at /usr/bin/chromium).

Reusable by every console page's tests (import from `tests.e2e.browser.conftest`):

- `console` (module fixture): a `Console` — a running server with the example policy (people
  with each console role, passwords set through `rungs user password`), its `url`, an admin
  API token (`api_post`/`api_get`) and `advance(to)` of its virtual clock;
- `signed_in(page, console, person="alice")`: a page signed in through /login;
- `check_axe(page)`: assert no serious or critical axe violation;
- `assert_no_horizontal_scroll(page)`;
- `DESKTOP`, `PHONE`: the viewports the tests use (1440×900, 375×667).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.console import PASSWORD, PEOPLE, START, console_policy
from tests.procs import RUNGS, Server, Servers, cli_token

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 375, "height": 667}
SERIOUS = ("serious", "critical")


def set_password(
    db: str, person: str, password: str = PASSWORD
) -> subprocess.CompletedProcess[str]:
    """`rungs user password PERSON --db DB`, the password on standard input."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNGS_")}
    return subprocess.run(
        [str(RUNGS), "user", "password", person, "--db", db],
        input=password + "\n", capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip


@dataclass
class Console:
    server: Server
    token: str  # an admin API token

    @property
    def url(self) -> str:
        return self.server.url

    def api_post(self, path: str, body: Any = None) -> Any:
        r = httpx.post(self.url + path, json=body, headers=self._auth(), timeout=10)
        assert r.status_code < 300, r.text
        return r.json()

    def api_get(self, path: str) -> Any:
        r = httpx.get(self.url + path, headers=self._auth(), timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    def advance_by(self, *, minutes: int) -> Any:
        """Move the server's virtual clock forward (what comes due runs on the way)."""
        from rungs.time.instant import format_utc, parse_instant

        now = parse_instant(self.api_get("/v1/clock")["now"])
        return self.api_post("/v1/clock/advance", {"to": format_utc(now + minutes * 60_000_000)})

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """One server per test module, on SQLite, at START under the virtual clock."""
    tmp = tmp_path_factory.mktemp("console")
    policy = tmp / "policy.yaml"
    policy.write_text(console_policy(), "utf-8")
    db = f"sqlite:///{tmp / 'rungs.db'}"
    with Servers(tmp) as servers:
        server = servers.start(
            "console", db, policy,
            extra=["--virtual-clock", START],
            secrets={"RUNGS_ALLOW_VIRTUAL_CLOCK": "1"},
        )  # fmt: skip
        server.wait_healthy()
        for person in PEOPLE:
            done = set_password(db, person)
            assert done.returncode == 0, done.stderr
        yield Console(server, cli_token(db, "admin", "browser-tests"))


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright launches Debian's Chromium (Playwright's download cannot work here)."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


def signed_in(page: Any, console: Console, person: str = "alice", path: str = "/") -> Any:
    """Sign `person` in through the form and land on `path`."""
    page.goto(f"{console.url}/login?next={path}")
    page.get_by_label("Username").fill(person)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{console.url}{path}")
    return page


def check_axe(page: Any) -> None:
    """No serious or critical accessibility violation on the page as it stands (axe-core)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v.get("impact") in SERIOUS]
    details = [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(n["target"]) for n in v["nodes"][:3])
        for v in bad
    ]
    assert not bad, f"axe on {page.url}:\n" + "\n".join(details)


def assert_no_horizontal_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    inner = page.evaluate("window.innerWidth")
    assert width <= inner, f"{page.url} scrolls sideways: {width}px wide in a {inner}px window"
