"""Property-based API test: schemathesis generates requests for every operation of
`/openapi.json` (valid and invalid ones) and checks each answer: never a 5xx, a status code
the document lists, the media type and body schema it documents.

Then the extremes, which random generation seldom reaches (issue 12 §5): into every parameter
and every field of every body the document describes, one at a time, go extreme integers,
instants at the ends of the calendar, control characters, a lone surrogate and long strings.
Each answer must be below 500, and an error must be JSON with a `detail`.

Run in process (ASGI) on a virtual clock with an admin token; the number of examples per
operation is bounded so that the whole module stays well under a minute.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

schemathesis = pytest.importorskip("schemathesis")

from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis import checks as st_checks  # noqa: E402

from rungs.bootstrap import VIRTUAL_CLOCK_ENV, build  # noqa: E402
from rungs.time.instant import parse_instant  # noqa: E402
from tests.conftest import api_token  # noqa: E402
from tests.integration.test_auth import KEYS, POLICY  # noqa: E402
from tests.sync import open_case  # noqa: E402

EXAMPLES = int(os.environ.get("RUNGS_FUZZ_EXAMPLES", "30"))
CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
    st_checks.response_headers_conformance,
]


@contextmanager
def _serve(db_url: str, policy_dir: Path) -> Iterator[tuple[Any, dict[str, str]]]:
    """The app on a virtual clock with one open case (id in `app.state.fuzz_case`), and admin
    headers."""
    old = os.environ.get(VIRTUAL_CLOCK_ENV)
    os.environ[VIRTUAL_CLOCK_ENV] = "1"
    policy = policy_dir / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    service, app = build(
        db_url=db_url, policy_file=policy, virtual_start=parse_instant("2026-03-02T09:00:00Z")
    )
    try:
        case, _ = open_case(
            service, {"customer": "acme", "title": "a case for the fuzzer", "dedup_key": "C1"}
        )
        app.state.fuzz_case = case.id  # the extremes test addresses it
        headers = {"Authorization": f"Bearer {api_token(service.db, 'admin', 'fuzz-admin')}"}
        yield app, headers
    finally:
        service.stop()
        service.db.dispose()
        if old is None:
            os.environ.pop(VIRTUAL_CLOCK_ENV, None)
        else:
            os.environ[VIRTUAL_CLOCK_ENV] = old


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, str]]]:
    d = tmp_path_factory.mktemp("rungs-fuzz")
    with _serve(f"sqlite:///{d / 'rungs.db'}", d) as served:
        yield served


def _fuzzer(operation: Any, mode: Any, headers: dict[str, str]) -> Any:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],  # report the first failure, unshrunk
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    return run


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_api_fuzz(mode: str, fuzz_app: tuple[Any, dict[str, str]]) -> None:
    """Every operation, with data that fits its schema (positive) or breaks it (negative)."""
    app, admin = fuzz_app
    api = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = 0
    for result in api.get_all_operations():
        operation = result.ok()
        operations += 1
        # Opsgenie's routes take a GenieKey in Authorization: leave that header to the fuzzer
        headers = {} if operation.path.startswith("/v2/alerts") else admin

        run = _fuzzer(operation, GenerationMode(mode), headers)
        try:
            run()
        except Unsatisfiable:
            assert mode == "negative", operation  # nothing to get wrong: no parameters, no body
        except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failure
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:3000])
    assert operations >= 20, f"only {operations} operations in /openapi.json"
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)


# the extremes ---------------------------------------------------------------------------------

EXTREMES: list[Any] = [
    2**63,
    -(2**63) - 1,
    10**30,
    -1,
    1e308,
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59.999999Z",
    "99999999999999999999",
    "\x00\x01\x07\x1b[2J\r\nX-Injected: 1\t\x7f",
    "\u202e\ufeff\u2028",
    "\ud800",
    "x" * 70_000,
]
VALID: dict[str, dict[str, Any]] = {  # bodies that get past validation, for the extremes to reach
    "/v1/cases": {"customer": "acme", "title": "t"},
    "/v1/schedules/{sid}/overrides": {
        "from": "2026-03-03T00:00:00Z",
        "to": "2026-03-04T00:00:00Z",
        "who": "ann",
    },
    "/v1/clock/advance": {"to": "2026-03-02T09:00:00Z"},
    "/v1/integrations/{key}/events": {"title": "t"},
    "/v2/enqueue": {
        "routing_key": KEYS["pagerduty"],
        "event_action": "trigger",
        "payload": {"summary": "s", "source": "s", "severity": "critical"},
    },
}
# errors in PagerDuty's (events, change events) and Opsgenie's own shape
SENDER_FORMATS = ("/v2/enqueue", "/v2/change/enqueue", "/v2/alerts")


def _resolve(doc: dict[str, Any], schema: Any) -> dict[str, Any]:
    """A schema with its `$ref` followed and one level of anyOf/allOf merged (objects only)."""
    if not isinstance(schema, dict):
        return {}
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _resolve(doc, doc["components"]["schemas"][name])
    for key in ("anyOf", "allOf", "oneOf"):
        for part in schema.get(key, ()):
            found = _resolve(doc, part)
            if found.get("type") == "object" or "properties" in found:
                return found
    return schema


def _fields(doc: dict[str, Any], schema: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every field of a body schema, as key paths; inside free-form objects, one key `k`."""
    s = _resolve(doc, schema)
    out: list[tuple[str, ...]] = []
    for name, sub in (s.get("properties") or {}).items():
        out.append((*path, name))
        if len(path) < 3:
            out.extend(_fields(doc, sub, (*path, name)))
    extra = s.get("additionalProperties")
    if extra not in (None, False) and not s.get("properties"):
        out.append((*path, "k"))
    return out


def _with(body: Any, path: tuple[str, ...], value: Any) -> Any:
    """A deep copy of `body` with `value` at `path` (dicts made on the way)."""
    out = copy.deepcopy(body) if isinstance(body, dict) else {}
    at = out
    for key in path[:-1]:
        nxt = at.get(key)
        if not isinstance(nxt, dict):
            nxt = at[key] = {}
        at = nxt
    at[path[-1]] = value
    return out


def _base(operation: Any) -> Any:
    """One valid-looking request for the operation, drawn by schemathesis (positive mode)."""
    found: list[Any] = []

    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    @settings(
        max_examples=1,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
        phases=[Phase.generate],
    )
    def grab(case: Any) -> None:
        found.append(case)

    grab()
    return found[0]


def _known(path: str, case_id: str) -> dict[str, str]:
    """Path parameters that name things that exist, so the extremes reach past a 404."""
    fmt = "heartbeat" if path.startswith("/v1/heartbeats") else path.rsplit("/", 1)[-1]
    return {
        "case_id": case_id,
        "sid": "primary",
        "action": "escalate",
        "alias": "C1",
        "identifier": "C1",
        "key": KEYS.get(fmt, "unknown"),
    }


def _quote(value: Any, safe: str = "", encoding: Any = None, errors: Any = None) -> str:
    """Percent-encoding that also carries a lone surrogate (as the bytes Python would write)."""
    return quote(str(value), safe=safe, errors="surrogatepass")


@pytest.fixture
def extremes_app(db_url: str, tmp_path: Path) -> Iterator[tuple[Any, dict[str, str]]]:
    with _serve(db_url, tmp_path) as served:
        yield served


def test_api_extremes(extremes_app: tuple[Any, dict[str, str]]) -> None:
    """Every extreme value into every parameter and body field of every operation, alone (on
    SQLite and PostgreSQL, which refuses NUL characters in text)."""
    app, admin = extremes_app
    api = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    sent = 0
    with TestClient(app, raise_server_exceptions=False) as client:
        doc = client.get("/openapi.json").json()
        for result in api.get_all_operations():
            operation = result.ok()
            path, method = operation.path, operation.method.lower()
            op = doc["paths"][path][method]
            headers = dict(admin)
            if path.startswith("/v2/alerts"):
                headers = {"Authorization": f"GenieKey {KEYS['opsgenie']}"}
            base = _base(operation)
            known = _known(path, app.state.fuzz_case)
            path_params = {k: known.get(k, v) for k, v in (base.path_parameters or {}).items()}
            query = dict(base.query or {})
            body = base.body if isinstance(base.body, dict) else None
            if body is not None:
                body = {**body, **VALID.get(path, {})}
            media = next(iter((op.get("requestBody") or {}).get("content", {})), None)
            schema = (op.get("requestBody") or {}).get("content", {}).get(media or "", {})
            params = [p for p in op.get("parameters", []) if p["in"] in ("path", "query")]
            places: list[tuple[str, Any]] = [(p["in"], p["name"]) for p in params]
            if media == "application/json":
                places += [("body", f) for f in _fields(doc, schema.get("schema"))]
            elif media is not None:
                places.append(("text", None))
            for where, name in places:
                for value in EXTREMES:
                    pp, q, b = dict(path_params), dict(query), body
                    in_url = value[:9000] if isinstance(value, str) else value  # past MAX_URL
                    if where == "path":
                        pp[name] = in_url
                    elif where == "query":
                        q[name] = in_url
                    elif where == "body":
                        b = _with(body, name, value)
                    url = path.format(**{k: _quote(v) for k, v in pp.items()})
                    if q:
                        url += "?" + urlencode({k: str(v) for k, v in q.items()}, quote_via=_quote)
                    kwargs: dict[str, Any] = {}
                    if where == "text":
                        kwargs["content"] = str(value).encode("utf-8", "surrogatepass")
                        kwargs["headers"] = {**headers, "Content-Type": media}
                    elif media == "application/json":
                        kwargs["content"] = json.dumps(b if b is not None else {}).encode()
                        kwargs["headers"] = {**headers, "Content-Type": media}
                    else:
                        kwargs["headers"] = headers
                    r = client.request(method.upper(), url, **kwargs)
                    sent += 1
                    what = f"{method.upper()} {url[:200]} {where} {name}={str(value)[:40]!r}"
                    if r.status_code >= 500:
                        failures.append(f"{what}: {r.status_code} {r.text[:300]}")
                    elif r.status_code >= 400 and not path.startswith(SENDER_FORMATS):
                        if not r.headers.get("content-type", "").startswith("application/json"):
                            if not path.startswith(("/a/", "/inbound")):
                                failures.append(f"{what}: {r.status_code} not JSON: {r.text[:200]}")
                        elif "detail" not in r.json():
                            failures.append(f"{what}: {r.status_code} without detail: {r.text}")
    assert sent > 1000, sent
    assert not failures, f"{len(failures)} of {sent} requests failed:\n" + "\n".join(failures[:40])
