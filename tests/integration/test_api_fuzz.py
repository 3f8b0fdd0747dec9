"""Property-based API test: schemathesis generates requests for every operation of
`/openapi.json` (valid and invalid ones) and checks each answer: never a 5xx, a status code
the document lists, the media type and body schema it documents.

Run in process (ASGI) on a virtual clock with an admin token; the number of examples per
operation is bounded so that the whole module stays well under a minute.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis import checks as st_checks  # noqa: E402

from rungs.bootstrap import VIRTUAL_CLOCK_ENV, build  # noqa: E402
from rungs.time.instant import parse_instant  # noqa: E402
from tests.conftest import api_token  # noqa: E402
from tests.integration.test_auth import POLICY  # noqa: E402
from tests.sync import open_case  # noqa: E402

EXAMPLES = int(os.environ.get("RUNGS_FUZZ_EXAMPLES", "30"))
CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
    st_checks.response_headers_conformance,
]


@pytest.fixture(scope="module")
def fuzz_app() -> Iterator[tuple[Any, dict[str, str]]]:
    old = os.environ.get(VIRTUAL_CLOCK_ENV)
    os.environ[VIRTUAL_CLOCK_ENV] = "1"
    with tempfile.TemporaryDirectory(prefix="rungs-fuzz-") as d:
        policy = Path(d) / "policy.yaml"
        policy.write_text(POLICY, encoding="utf-8")
        service, app = build(
            db_url=f"sqlite:///{Path(d) / 'rungs.db'}",
            policy_file=policy,
            virtual_start=parse_instant("2026-03-02T09:00:00Z"),
        )
        try:
            open_case(
                service, {"customer": "acme", "title": "a case for the fuzzer", "dedup_key": "C1"}
            )
            headers = {"Authorization": f"Bearer {api_token(service.db, 'admin', 'fuzz-admin')}"}
            yield app, headers
        finally:
            service.stop()
            service.db.dispose()
            if old is None:
                os.environ.pop(VIRTUAL_CLOCK_ENV, None)
            else:
                os.environ[VIRTUAL_CLOCK_ENV] = old


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
