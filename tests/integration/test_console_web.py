"""The console over HTTP (TestClient on the real app and SQLite): sign-in, redirects, CSRF,
the lockout, the trusted proxy header, roles, and who an action is recorded as."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from rungs.store.credentials import LOCKOUT, MAX_FAILURES
from tests.console import PASSWORD, console_app, csrf_of, sign_in
from tests.sync import open_case


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("web")
    engine, app = console_app(f"sqlite:///{tmp / 'rungs.db'}", tmp)
    engine.app = app
    engine.tmp = tmp
    yield engine
    engine.stop()


def client(service: Any, **kw: Any) -> TestClient:
    return TestClient(service.app, follow_redirects=True, **kw)


def new_case(service: Any, **data: Any) -> str:
    case, _ = open_case(service, {"customer": "globex", "title": "Printer on fire", **data})
    return case.id


def entries(service: Any, case_id: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in service.views.timeline(case_id) if e["kind"] == kind]


def test_signed_out_every_page_redirects_to_login_with_a_safe_next(service: Any) -> None:
    c = client(service)
    case_id = new_case(service)
    for path, expected in [
        ("/", "/login"),
        (f"/cases/{case_id}?kind=opened", f"/login?next=/cases/{case_id}%3Fkind%3Dopened"),
        ("/events", "/login?next=/events"),
    ]:
        r = c.get(path, follow_redirects=False)
        assert r.status_code == 303, path
        assert r.headers["location"] == expected
    r = c.get("/", headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.status_code == 401 and r.headers["HX-Redirect"] == "/login"
    token = csrf_of(c.get("/login").text)
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        r = c.post(
            "/login",
            data={"username": "bob", "password": PASSWORD, "csrf": token, "next": evil},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == "/", evil
        token = csrf_of(client(service, cookies=r.cookies).get("/").text)


def test_the_session_cookie_is_httponly_lax_and_secure_over_tls(service: Any) -> None:
    for base, secure in (("http://testserver", False), ("https://testserver", True)):
        c = TestClient(service.app, base_url=base, follow_redirects=False)
        token = csrf_of(c.get("/login").text)
        r = c.post("/login", data={"username": "bob", "password": PASSWORD, "csrf": token})
        cookie = next(h for h in r.headers.get_list("set-cookie") if "rungs_session=" in h)
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert ("Secure" in cookie) is secure


def test_a_post_without_the_csrf_token_is_403_and_changes_nothing(service: Any) -> None:
    c = client(service)
    token = sign_in(c, "bob")
    case_id = new_case(service)
    for data in ({"action": "acknowledge"}, {"action": "acknowledge", "csrf": "x" + token}):
        r = c.post(f"/cases/{case_id}/act", data=data)
        assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = c.post("/bulk", data={"action": "resolve", "ids": [case_id]})
    assert r.status_code == 403
    r = c.post("/logout", data={})
    assert r.status_code == 403
    assert entries(service, case_id, "acknowledged") == []
    assert service.views.case(case_id)["status"] == "open"
    r = TestClient(service.app).post("/login", data={"username": "bob", "password": PASSWORD})
    assert r.status_code == 403  # the sign-in form carries one too


def test_actions_are_recorded_as_the_signed_in_person_by_web(service: Any) -> None:
    c = client(service)
    token = sign_in(c, "bob")
    one, two = new_case(service), new_case(service)
    r = c.post(f"/cases/{one}/act", data={"action": "acknowledge", "csrf": token})
    assert r.status_code == 200 and f"{one} acknowledged." in r.text
    [ack] = entries(service, one, "acknowledged")
    assert (ack["by"], ack["actor"]) == ("bob", "web")
    r = c.post(
        f"/cases/{one}/act",
        data={"action": "escalate", "reason": "customer_request", "to_level": "3", "csrf": token},
    )
    [esc] = entries(service, one, "escalated")
    assert (esc["by"], esc["actor"], esc["reason"], esc["level"]) == (
        "bob", "web", "customer_request", 3
    )  # fmt: skip
    r = c.post("/bulk", data={"action": "resolve", "ids": [one, two], "csrf": token})
    assert "Resolved 2 cases." in r.text
    assert [(e["by"], e["actor"]) for e in entries(service, two, "resolved")] == [("bob", "web")]


def test_a_level_that_is_not_a_number_is_a_toast_not_an_error(service: Any) -> None:
    c = client(service)
    token = sign_in(c, "bob")
    case_id = new_case(service)
    for odd in ("\u00b2", "\u0663", "x"):  # superscript two, Arabic-Indic three: not ASCII
        data = {"action": "escalate", "reason": "customer_request", "to_level": odd}
        r = c.post(f"/cases/{case_id}/act", data={**data, "csrf": token})
        assert r.status_code == 200 and "the level must be a number" in r.text, odd
    assert entries(service, case_id, "escalated") == []


def test_the_case_timeline_shows_the_newest_entries_and_pages_to_older_ones(
    service: Any,
) -> None:
    from rungs.core.model import Event
    from tests.sync import act

    TIMELINE_PAGE = 200  # entries on one case page

    c = client(service)
    sign_in(c, "bob")
    case_id = new_case(service)
    for _ in range(TIMELINE_PAGE + 10):
        act(service, case_id, Event("customer_reply", data={"text": "again"}))
    total = len(service.views.timeline(case_id))
    assert total > TIMELINE_PAGE
    first = c.get(f"/cases/{case_id}").text
    assert first.count("<li data-kind=") == TIMELINE_PAGE  # the newest only
    assert 'data-kind="opened"' not in first
    older = re.search(rf'href="(/cases/{case_id}\?before=\d+)"', first)
    assert older and "Older entries" in first
    rest = c.get(older.group(1)).text
    assert rest.count("<li data-kind=") == total - TIMELINE_PAGE
    assert 'data-kind="opened"' in rest and "Older entries" not in rest
    assert "Newest entries" in rest
    only = c.get(f"/cases/{case_id}", params={"kind": "opened"}).text
    assert only.count("<li data-kind=") == 1 and "Older entries" not in only
    assert c.get(f"/cases/{case_id}", params={"before": "0"}).status_code == 422


def test_a_refused_action_is_a_toast_not_an_error(service: Any) -> None:
    c = client(service)
    token = sign_in(c, "bob")
    case_id = new_case(service)
    r = c.post(f"/cases/{case_id}/act", data={"action": "escalate", "csrf": token})
    assert r.status_code == 200
    assert "Not done:" in r.text and "a reason is required" in r.text
    r = c.post(f"/cases/{case_id}/act", data={"action": "reopen", "csrf": token})
    assert "cannot reopen a case that is open" in r.text
    r = c.get("/cases/C999999")
    assert r.status_code == 404 and "No case C999999" in r.text
    r = c.post("/bulk", data={"action": "resolve", "ids": ["C1\x00"], "csrf": token})
    assert r.status_code == 200 and "NUL character is not allowed" in r.text


def test_a_viewer_sees_no_actions_and_cannot_act(service: Any) -> None:
    c = client(service)
    token = sign_in(c, "erin")
    case_id = new_case(service)
    page = c.get(f"/cases/{case_id}").text
    assert ">Acknowledge<" not in page and ">Escalate<" not in page
    assert "Acknowledge selected" not in c.get("/").text
    r = c.post(f"/cases/{case_id}/act", data={"action": "acknowledge", "csrf": token})
    assert r.status_code == 403 and "viewer" in r.json()["detail"]
    r = c.post("/bulk", data={"action": "acknowledge", "ids": [case_id], "csrf": token})
    assert r.status_code == 403
    assert entries(service, case_id, "acknowledged") == []


def test_repeated_failures_lock_the_person_out_across_a_restart(service: Any) -> None:
    c = client(service)

    def attempt(password: str) -> Any:
        token = csrf_of(c.get("/login").text)
        return c.post("/login", data={"username": "alice", "password": password, "csrf": token})

    for _ in range(MAX_FAILURES - 1):
        assert attempt("wrong").status_code == 401
    last = attempt("wrong")
    assert last.status_code == 401 and "locked until" in last.text
    r = attempt(PASSWORD)  # the right password, but locked
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text
    # kept in the database: a second app on it (as after a restart) refuses too
    with service.db.connect() as conn:
        locked = conn.execute(
            text("SELECT locked_until FROM credentials WHERE person = 'alice'")
        ).scalar_one()
    assert locked == service.clock.now() + LOCKOUT
    again, app = console_app(str(service.db.url), service.tmp, passwords=False)
    try:
        c2 = TestClient(app)
        token = csrf_of(c2.get("/login").text)
        r = c2.post("/login", data={"username": "alice", "password": PASSWORD, "csrf": token})
        assert r.status_code == 429
    finally:
        again.stop()


def test_a_new_password_ends_the_sessions_signed_in_with_the_old_one(service: Any) -> None:
    from rungs.store.credentials import set_password

    c = client(service)
    sign_in(c, "bob")
    assert c.get("/", follow_redirects=False).status_code == 200
    with service.db.begin() as conn:
        set_password(conn, "bob", PASSWORD, 1)  # the same text, a new hash
    assert c.get("/", follow_redirects=False).status_code == 303


def test_the_trusted_header_counts_only_from_the_trusted_proxy(tmp_path: Path) -> None:
    engine, app = console_app(
        f"sqlite:///{tmp_path / 'p.db'}",
        tmp_path,
        trusted_header="X-Forwarded-Email",
        trusted_proxies=["10.0.0.0/8"],
    )
    try:
        header = {"X-Forwarded-Email": "Bob@Acme.test"}
        proxied = TestClient(app, client=("10.1.2.3", 4000), follow_redirects=False)
        r = proxied.get("/", headers=header)
        assert r.status_code == 200 and "Bob Ortiz" in r.text
        token = csrf_of(r.text)
        case_id, _ = open_case(engine, {"customer": "globex", "title": "via proxy"})
        r = proxied.post(
            f"/cases/{case_id.id}/act",
            headers=header,
            cookies=r.cookies,
            data={"action": "acknowledge", "csrf": token},
        )
        assert r.status_code == 303
        [ack] = [e for e in engine.views.timeline(case_id.id) if e["kind"] == "acknowledged"]
        assert (ack["by"], ack["actor"]) == ("bob", "web")
        outside = TestClient(app, client=("192.168.1.9", 4000), follow_redirects=False)
        assert outside.get("/", headers=header).status_code == 303  # not from the proxy
        assert proxied.get("/", headers={"X-Forwarded-Email": "nobody@x"}).status_code == 303
    finally:
        engine.stop()


def test_the_header_is_ignored_when_the_option_is_off(service: Any) -> None:
    c = TestClient(service.app, client=("10.1.2.3", 4000), follow_redirects=False)
    assert c.get("/", headers={"X-Forwarded-Email": "bob@acme.test"}).status_code == 303


def test_sign_out_needs_its_token_and_ends_the_session(service: Any) -> None:
    c = client(service)
    token = sign_in(c, "bob")
    r = c.post("/logout", data={"csrf": token})
    assert r.url.path == "/login" and "signed out" in r.text
    assert c.get("/", follow_redirects=False).status_code == 303


def test_a_session_ends_after_two_idle_hours(service: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from itsdangerous.timed import TimestampSigner

    from rungs.api.web.session import IDLE

    c = client(service)
    sign_in(c, "bob")
    real = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda s: real(s) + IDLE - 60)
    assert c.get("/", follow_redirects=False).status_code == 200  # still in time: renewed
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda s: real(s) + 2 * IDLE)
    assert c.get("/", follow_redirects=False).status_code == 303


def test_console_pages_may_not_be_framed(service: Any) -> None:
    """Another site must not show a console page (or a one-click link's page) in a frame and
    trick a signed-in person into its buttons."""
    c = client(service)
    pages = [c.get("/login")]
    sign_in(c, "bob")
    case_id = new_case(service)
    pages += [c.get("/"), c.get(f"/cases/{case_id}"), c.get("/cases/NOPE-1"), c.get("/a/x.y")]
    pages.append(c.get(f"/cases/{case_id}", headers={"HX-Request": "true"}))  # a fragment
    for r in pages:
        assert r.headers["content-type"].startswith("text/html"), r.url
        assert r.headers["x-frame-options"] == "DENY", r.url
        assert r.headers["content-security-policy"] == "frame-ancestors 'none'", r.url
