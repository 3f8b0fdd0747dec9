"""Console test helpers shared by the integration and browser tests (and other pages' tests).

- `console_policy()`: the example policy with console roles (alice admin, erin viewer, the
  rest responders); `PASSWORD`, everyone's password in the tests;
- `console_app(db_url, **build_args)`: `bootstrap.build` at `START` under the virtual clock,
  passwords set for `PEOPLE`; returns (engine, app);
- `sign_in(client, person)`: through /login; returns the page's CSRF token;
- `csrf_of(html)`: the CSRF token of a page.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery"
ROLES = {"alice": "admin", "erin": "viewer"}  # everyone else: responder (the default)
PEOPLE = ("alice", "bob", "erin")  # who has a password
START = "2026-12-02T09:00:00Z"  # a Wednesday, inside Berlin's office hours
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def console_policy() -> str:
    """The example policy, with console roles: alice admin, erin viewer, the rest responders."""
    text = (ROOT / "src/rungs/examples/acme.yaml").read_text("utf-8")
    for person, role in ROLES.items():
        text = text.replace(f"  - id: {person}\n", f"  - id: {person}\n    console_role: {role}\n")
    return text


def console_app(
    db_url: str, tmp: Path, *, passwords: bool = True, **build_args: Any
) -> tuple[Any, FastAPI]:
    """The service on `db_url` with `console_policy()`, passwords set for `PEOPLE` (unless
    `passwords` is False: a restart keeps what is stored)."""
    from rungs.bootstrap import VIRTUAL_CLOCK_ENV, build
    from rungs.store.credentials import set_password
    from rungs.time.instant import parse_instant

    policy = tmp / "console.yaml"
    policy.write_text(console_policy(), "utf-8")
    os.environ[VIRTUAL_CLOCK_ENV] = "1"
    engine, app = build(
        db_url=db_url, policy_file=policy, virtual_start=parse_instant(START), **build_args
    )
    if not passwords:
        return engine, app
    with engine.db.begin() as conn:
        for person in PEOPLE:
            set_password(conn, person, PASSWORD, 0)
    return engine, app


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


def sign_in(client: Any, person: str, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the CSRF token of the page it lands on."""
    token = csrf_of(client.get("/login").text)
    r = client.post(
        "/login", data={"username": person, "password": password, "csrf": token, "next": "/"}
    )
    assert r.status_code == 200 and r.url.path == "/", (r.status_code, r.text[:300])
    return csrf_of(r.text)
