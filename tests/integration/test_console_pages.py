"""The On call, Policy, People and Admin pages over HTTP (the app in this process, signed in
with a password): what each role may do, CSRF on every form, and each page's actions
through the engine's commands."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from rungs.bootstrap import build
from rungs.engine import Engine as Service
from rungs.store.credentials import set_password
from rungs.time.instant import parse_instant

ACME = (Path(__file__).resolve().parents[2] / "src/rungs/examples/acme.yaml").read_text()
ROLES = {"alice": "admin", "bob": "responder", "carol": "viewer"}
START = parse_instant("2026-11-30T10:00:00+01:00")  # a Monday: dave is on call
PASSWORD = "correct horse battery staple"


def with_roles(policy: str) -> str:
    for pid, role in ROLES.items():
        policy = policy.replace(f"  - id: {pid}\n", f"  - id: {pid}\n    console_role: {role}\n")
    return policy


class Browser:
    """A signed-in person's client: cookies kept, the page's CSRF token at hand."""

    def __init__(self, app: object, person: str | None) -> None:
        self.client = TestClient(app, follow_redirects=False)  # type: ignore[arg-type]
        self.csrf = self.token("/login")
        if person is not None:
            r = self.client.post(
                "/login", data={"username": person, "password": PASSWORD, "csrf": self.csrf}
            )
            assert r.status_code == 303, r.text
            self.csrf = self.token("/oncall")

    def token(self, path: str) -> str:
        page = self.client.get(path)
        found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
        assert found, page.text[:500]
        return found.group(1)

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path)

    def post(
        self,
        path: str,
        data: dict[str, str],
        *,
        csrf: bool = True,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        body = {**data, "csrf": self.csrf} if csrf else data
        return self.client.post(path, data=body, headers=headers)


def start(db_url: str, tmp_path: Path, *, file_managed: bool) -> Service:
    path = tmp_path / "acme.yaml"
    path.write_text(with_roles(ACME))
    if file_managed:
        service, app = build(db_url=db_url, policy_file=path, virtual_start=START)
    else:  # stored once from the file, then served as the database's
        build(db_url=db_url, policy_file=path, virtual_start=START)[0].stop()
        service, app = build(db_url=db_url, policy_file=None, virtual_start=START)
    service.app = app  # type: ignore[attr-defined]
    with service.db.begin() as conn:
        for pid in ROLES:
            set_password(conn, pid, PASSWORD, 0)
    return service


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    mp = pytest.MonkeyPatch()
    mp.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    tmp = tmp_path_factory.mktemp("pages")
    s = start(f"sqlite:///{tmp / 'rungs.db'}", tmp, file_managed=False)
    yield s
    s.stop()
    s.db.dispose()
    mp.undo()


@pytest.fixture(scope="module")
def people(service: Service) -> dict[str, Browser]:
    return {pid: Browser(service.app, pid) for pid in ROLES}  # type: ignore[attr-defined]


def test_signed_out_every_page_goes_to_sign_in(service: Service) -> None:
    anon = Browser(service.app, None)  # type: ignore[attr-defined]
    for path in ("/oncall", "/policy", "/people", "/people/alice", "/admin"):
        r = anon.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), path


def test_every_form_refuses_a_post_without_its_csrf_token(people: dict[str, Browser]) -> None:
    alice = people["alice"]
    posts = {
        "/oncall/overrides": {"schedule": "network-oncall", "who": "alice",
                              "start": "2026-12-01T09:00", "end": "2026-12-01T10:00"},
        "/oncall/feed": {"action": "renew"},
        "/policy/check": {"yaml": ACME},
        "/policy": {"yaml": ACME},
        "/people/alice/test": {"channel": "email"},
        "/admin/tokens": {"name": "nope", "role": "viewer"},
        "/admin/tokens/x/revoke": {},
        "/admin/deliveries/1/retry": {},
        "/admin/maintenance": {"customers": "globex", "start": "2026-12-01T09:00",
                               "end": "2026-12-01T10:00", "reason": "no csrf"},
        "/admin/maintenance/1/end": {},
    }  # fmt: skip
    for path, data in posts.items():
        assert alice.post(path, data, csrf=False).status_code == 403, path
        assert alice.post(path, {**data, "csrf": "forged"}, csrf=False).status_code == 403, path


def test_a_viewer_reads_but_cannot_save_the_policy_or_create_tokens(
    service: Service, people: dict[str, Browser]
) -> None:
    carol = people["carol"]
    page = carol.get("/policy")
    assert page.status_code == 200 and ">Save<" not in page.text
    assert "Only an admin saves the policy" in page.text
    assert "channels: &lt;redacted&gt;" in page.text, "secrets removed, as for viewer tokens"
    assert "log: {}" in people["alice"].get("/policy").text, "an admin sees the text as stored"
    shown = service.views.policy_yaml(redact=True)[1]
    check = carol.post("/policy/check", {"yaml": shown}, headers={"HX-Request": "true"})
    assert "No errors: the policy is valid." in check.text, "secrets' stand-ins compile"
    sim = carol.post(
        "/policy/simulate",
        {"yaml": shown.replace("after: 15m", "after: 20m"), "customer": "globex",
         "priority": "P1", "category": "network", "start": "2026-11-27T17:55",
         "tz": "Europe/Berlin", "horizon": "1d"},
        headers={"HX-Request": "true"},
    )  # fmt: skip
    assert 'title="2026-11-27T17:15:00Z"' in sim.text, "her edit (20m, not 15m) simulated"
    edited = ACME.replace("name: Initech", "name: Initech (by carol)")
    assert carol.post("/policy", {"yaml": edited}).status_code == 403
    assert carol.get("/admin").status_code == 403
    assert carol.post("/admin/tokens", {"name": "carols", "role": "admin"}).status_code == 403
    own = {"schedule": "network-oncall", "who": "carol", "start": "2026-12-01T09:00",
           "end": "2026-12-01T10:00"}  # fmt: skip
    assert carol.post("/oncall/overrides", own).status_code == 403, "a viewer acts on nothing"
    assert [v["version"] for v in service.views.policy_history()[0]] == [1]
    with service.db.connect() as conn:
        names = conn.execute(text("SELECT name FROM api_tokens")).scalars().all()
    assert "carols" not in names


def test_a_responder_adds_an_override_for_themselves_only(
    service: Service, people: dict[str, Browser]
) -> None:
    bob = people["bob"]
    form = {"schedule": "network-oncall", "start": "2026-11-30T11:00", "end": "2026-11-30T13:00",
            "tz": "Europe/Berlin", "note": "swap with dave"}  # fmt: skip
    r = bob.post("/oncall/overrides", {**form, "who": "erin"})
    assert r.status_code == 403 and "for themselves only" in r.text
    r = bob.post("/oncall/overrides", {**form, "who": "bob"})
    assert r.status_code == 303 and r.headers["location"] == "/oncall"
    page = bob.get("/oncall").text
    assert "bob is on call for network-oncall from 2026-11-30T10:00:00Z" in page  # the toast
    schedule = service.views.policy().schedules["network-oncall"]
    assert ("bob", START + 3600 * 10**6) in {(o.who, o.start) for o in schedule.overrides}
    shifts = service.views.oncall_board(START + 3600 * 10**6)["schedules"][0]
    assert shifts["on_call"] == ["bob"] and shifts["source"] == "override"
    bad = bob.post("/oncall/overrides", {**form, "who": "bob", "end": "2026-11-30T10:00"})
    assert bad.status_code == 422 and "later" in bad.text
    zone = bob.post("/oncall/overrides", {**form, "who": "bob", "tz": "Mars/Olympus"})
    assert zone.status_code == 422 and "unknown time zone" in zone.text
    r = people["alice"].post("/oncall/overrides", {**form, "who": "erin"})
    assert r.status_code == 303, "an admin adds one for anyone"


def test_the_policy_editor_checks_simulates_and_an_admin_saves(
    service: Service, people: dict[str, Browser]
) -> None:
    alice = people["alice"]
    broken = ACME.replace("    warn_at: [50, 75, 90]", "    warn_at: [50, 75, 190]")
    line = broken.splitlines().index("    warn_at: [50, 75, 190]") + 1
    frag = alice.post("/policy/check", {"yaml": broken}, headers={"HX-Request": "true"})
    assert frag.status_code == 200 and frag.text.lstrip().startswith('<div id="problems"')
    assert f"Line {line}, column" in frag.text and "warn_at: [50, 75, 190]" in frag.text
    full = alice.post("/policy/check", {"yaml": broken})  # without JavaScript: the whole page
    assert "<h1>Policy</h1>" in full.text and f"Line {line}, column" in full.text
    sim = alice.post(
        "/policy/simulate",
        {"yaml": ACME, "customer": "globex", "priority": "P1", "category": "network",
         "start": "2026-11-27T17:55", "tz": "Europe/Berlin", "horizon": "1d"},
        headers={"HX-Request": "true"},
    )  # fmt: skip
    assert sim.status_code == 200 and sim.text.lstrip().startswith('<section id="simulation"')
    assert "2026-11-27T17:10:00Z" in sim.text and "escalated" in sim.text
    refused = alice.post("/policy", {"yaml": broken})
    assert refused.status_code == 422 and f"Line {line}, column" in refused.text
    edited = ACME.replace("name: Initech", "name: Initech GmbH")
    saved = alice.post("/policy", {"yaml": with_roles(edited)})
    assert saved.status_code == 303
    (latest, *_), _ = service.views.policy_history()
    assert latest["stored_by"] == "alice" and latest["source"] == "web:alice"
    page = alice.get(f"/policy?version={latest['version']}").text
    assert "~ customer initech" in page and "Initech GmbH" in page


def test_a_file_managed_policy_is_shown_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    service = start(f"sqlite:///{tmp_path / 'f.db'}", tmp_path, file_managed=True)
    try:
        alice = Browser(service.app, "alice")  # type: ignore[attr-defined]
        page = alice.get("/policy").text
        assert "File-managed" in page and "readonly" in page and ">Save<" not in page
        r = alice.post("/policy", {"yaml": ACME.replace("Initech", "Initrode")})
        assert r.status_code == 409 and "managed by the file" in r.text
        assert service.views.policy_history()[1] == 1
    finally:
        service.stop()
        service.db.dispose()


def test_an_admin_creates_a_token_seen_once_and_revokes_it(
    service: Service, people: dict[str, Browser]
) -> None:
    alice = people["alice"]
    r = alice.post("/admin/tokens", {"name": "ci-bot", "role": "responder", "person": ""})
    assert r.status_code == 201 and r.headers["cache-control"] == "no-store"
    token = re.search(r'<code class="secret" id="new-token">(rungs_[^<]+)</code>', r.text)
    assert token, r.text[:300]
    api = TestClient(service.app)  # type: ignore[attr-defined]
    auth = {"Authorization": f"Bearer {token.group(1)}"}
    assert api.get("/v1/cases", headers=auth).status_code == 200
    assert token.group(1) not in alice.get("/admin").text, "shown once"
    again = alice.post("/admin/tokens", {"name": "ci-bot", "role": "viewer"})
    assert again.status_code == 409 and "exists" in again.text
    assert alice.post("/admin/tokens", {"name": "-bad", "role": "viewer"}).status_code == 422
    r = alice.post("/admin/tokens/ci-bot/revoke", {})
    assert r.status_code == 303
    assert api.get("/v1/cases", headers=auth).status_code == 401
    page = alice.get("/admin").text
    assert "Token &#39;ci-bot&#39; revoked." in page and 'aria-label="Revoke ci-bot"' not in page


def test_an_admin_adds_a_maintenance_window_and_ends_it_now(
    service: Service, people: dict[str, Browser]
) -> None:
    alice, bob = people["alice"], people["bob"]
    window = {
        "integrations": ["prometheus"],
        "customers": ["globex"],
        "tz": "Europe/Berlin",
        "start": "2026-11-30T11:00",
        "end": "2026-11-30T13:30",
        "reason": "core switch",
    }
    assert bob.post("/admin/maintenance", window).status_code == 403  # type: ignore[arg-type]
    refused = {
        "unknown time zone": {**window, "tz": "Mars/Olympus"},
        "&#39;to&#39; must be after &#39;from&#39;": {**window, "end": "2026-11-30T10:30"},
        "name at least one integration or customer": {**window, "integrations": [],
                                                      "customers": []},
        "unknown integration &#39;nope&#39;": {**window, "integrations": ["nope"]},
        "a reason is required": {**window, "reason": "   "},
    }  # fmt: skip
    for why, data in refused.items():
        r = alice.post("/admin/maintenance", data)  # type: ignore[arg-type]
        assert r.status_code == 422 and why in r.text, why
        assert 'value="2026-11-30T11:00"' in r.text, "the form keeps what was typed"
    assert service.views.maintenance(10) == [], "nothing added by a refused form"
    r = alice.post("/admin/maintenance", window)  # type: ignore[arg-type]
    assert r.status_code == 303 and r.headers["location"].startswith("/admin")
    [made] = service.views.maintenance(10)
    assert (made["integrations"], made["customers"], made["created_by"]) == (
        ["prometheus"], ["globex"], "alice"
    )  # fmt: skip
    assert (made["from"], made["to"], made["state"]) == (
        "2026-11-30T10:00:00Z",
        "2026-11-30T12:30:00Z",
        "scheduled",
    )  # fmt: skip, Berlin is UTC+1 in November
    page = alice.get("/admin").text
    assert "holds prometheus, globex" in page and "core switch" in page
    assert f'aria-label="End maintenance window {made["id"]} now"' in page
    assert bob.post(f"/admin/maintenance/{made['id']}/end", {}).status_code == 403
    assert alice.post(f"/admin/maintenance/{made['id']}/end", {}).status_code == 303
    assert service.views.maintenance_window(made["id"])["state"] == "cancelled"  # type: ignore[index]
    assert f"Maintenance window {made['id']} ended." in alice.get("/admin").text
    assert alice.post(f"/admin/maintenance/{made['id']}/end", {}).status_code == 303
    assert "is not under way or to come" in alice.get("/admin").text


def test_people_pages_show_contacts_and_send_tests_to_ones_own(
    service: Service, people: dict[str, Browser]
) -> None:
    bob, carol = people["bob"], people["carol"]
    assert "Alice Ng" in carol.get("/people").text
    page = carol.get("/people/alice").text
    assert "alice@acme.test" in page and "Send a test notification" not in page
    assert carol.post("/people/alice/test", {"channel": "email"}).status_code == 403
    assert bob.get("/people/nobody").status_code == 404
    r = bob.post("/people/bob/test", {"channel": "email"})
    assert r.status_code == 303
    page = bob.get("/people/bob").text
    assert "is on its way" in page and "waiting" in page
    again = bob.post("/people/bob/test", {"channel": "email"})
    assert again.status_code == 303
    assert "on its way already" in bob.get("/people/bob").text
    assert bob.post("/people/bob/test", {"channel": "sms"}).status_code == 303
    assert "has no sms contact" in bob.get("/people/bob").text
    with service.db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM timeline")).scalar_one() == 0, "no case"
        kinds = conn.execute(text("SELECT kind FROM outbox")).scalars().all()
    assert kinds.count("test") == 1


def test_an_admin_retries_a_dead_letter_from_the_page(
    service: Service, people: dict[str, Browser]
) -> None:
    alice = people["alice"]
    service.writer.call(
        lambda conn: conn.execute(
            text("INSERT INTO outbox (case_id, kind, key, payload, status, attempts, next_attempt,"
                 " created_at, last_error) VALUES ('C9', 'notify', 'C9:n1', :p, 'dead', 5, 0, 0,"
                 " 'gave up after 5 attempts: SMTP down')"),
            {"p": '{"person": "bob", "channel": "email", "level": 1, "reason": "opened"}'},
        )
    )  # fmt: skip
    page = alice.get("/admin").text
    (rid,) = re.findall(r'action="/admin/deliveries/(\d+)/retry"', page)
    assert "gave up after 5 attempts: SMTP down" in page
    assert alice.post(f"/admin/deliveries/{rid}/retry", {}).status_code == 303
    assert "is on its way again" in alice.get("/admin").text
    with service.db.connect() as conn:
        row = conn.execute(text("SELECT status, attempts FROM outbox WHERE key = 'C9:n1'")).one()
    assert (row.status, row.attempts) == ("pending", 0)
    assert alice.post(f"/admin/deliveries/{rid}/retry", {}).status_code == 303
    assert "not dead-lettered" in alice.get("/admin").text
    assert people["bob"].post(f"/admin/deliveries/{rid}/retry", {}).status_code == 403


def test_calendar_links_are_made_renewed_and_turned_off_by_their_person(
    service: Service, people: dict[str, Browser]
) -> None:
    bob, carol, alice = people["bob"], people["carol"], people["alice"]
    assert "No calendar link yet." in bob.get("/oncall").text
    assert bob.post("/oncall/feed", {"action": "renew"}).status_code == 303
    link = re.search(r'<code class="feed-link">http://[^/]+(/calendar/[^<]+\.ics)</code>',
                     bob.get("/oncall").text)  # fmt: skip
    assert link, "the link shows on the page"
    ics = bob.get(link.group(1))
    assert ics.status_code == 200 and b"BEGIN:VCALENDAR" in ics.content
    assert b"On call: bob" in ics.content
    assert "feed-link" not in carol.get("/people/bob").text, "nobody else sees it"
    r = carol.post("/oncall/feed", {"action": "off", "person": "bob", "back": "/people/bob"})
    assert r.status_code == 303 and bob.get(link.group(1)).status_code == 200, "not carol's"
    admin_view = alice.get("/people/bob").text  # an admin manages anyone's, sees none
    assert "feed-link" not in admin_view and link.group(1) not in admin_view
    assert "bob has a calendar link" in admin_view and "Turn calendar link off" in admin_view
    r = alice.post("/oncall/feed", {"action": "renew", "person": "bob", "back": "/people/bob"})
    assert r.status_code == 303 and r.headers["location"] == "/people/bob"
    assert bob.get(link.group(1)).status_code == 404, "renewed: the old link stops"
    assert bob.post("/oncall/feed", {"action": "off"}).status_code == 303
    assert "No calendar link yet." in bob.get("/oncall").text
    bad = bob.post("/oncall/feed", {"action": "renew", "back": "https://evil.test/"})
    assert bad.status_code == 422, "back is a console page only"
