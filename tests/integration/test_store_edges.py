"""Where parts of issue 12 meet: stored policies under another secret prefix, change events
as use of an integration, refused key names as unset keys, recent changes by customer."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, insert

from rungs.engine.integrations import keys_unset
from rungs.policy import load_policy_text
from rungs.store.changes import changes_between, record_change
from rungs.store.db import make_engine, upgrade
from rungs.store.tables import policies
from rungs.store.tokens import stored_people
from rungs.store.usage import in_use

POLICY = """\
version: 1
timezone: UTC
people:
  - {id: ann, contacts: {email: ann@example.com}}
customers:
  - {id: acme, name: Acme}
matrices:
  - id: default
    levels:
      - {name: Desk, notify: [person:ann]}
integrations:
  - {id: hooks, format: pagerduty, key_env: ACME_HOOK_KEY, defaults: {customer: acme}}
"""


@pytest.fixture
def db(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'rungs.db'}")
    upgrade(engine)
    return engine


def test_a_stored_policy_names_its_people_whatever_the_prefix_now(db: Engine) -> None:
    """A version accepted under the prefix `ACME_` still tells `token create --person` its
    people when the CLI runs with the default prefix."""
    with db.begin() as conn:
        conn.execute(insert(policies).values(yaml=POLICY, source="p.yaml", created_at=0))
    with db.connect() as conn:
        people = stored_people(conn)
    assert people is not None and set(people) == {"ann"}


def test_change_events_put_an_integration_in_use(db: Engine) -> None:
    with db.begin() as conn:
        record_change(conn, {"integration": "hooks", "summary": "deploy"}, now=1_000)
    with db.connect() as conn:
        assert in_use(conn, {"integrations": ["hooks"]}, since=500) == {"integrations": ["hooks"]}
        assert in_use(conn, {"integrations": ["hooks"]}, since=2_000) == {}


def test_a_key_name_without_the_prefix_is_reported_as_unset() -> None:
    policy, problems = load_policy_text(POLICY, "p.yaml", secret_prefix=None)
    assert policy is not None, problems
    set_but_refused = {"ACME_HOOK_KEY": "k"}  # set, but the default prefix is RUNGS_
    assert keys_unset(policy, set_but_refused) == [
        {"integration": "hooks", "key_env": "ACME_HOOK_KEY"}
    ]


def test_recent_changes_are_taken_by_customer_before_the_limit(db: Engine) -> None:
    """Other customers' many changes do not crowd out a case's own."""
    with db.begin() as conn:
        record_change(conn, {"integration": "hooks", "customer": "acme", "summary": "ours",
                             "at": 100}, now=100)  # fmt: skip
        for i in range(60):
            record_change(conn, {"integration": "hooks", "customer": "globex",
                                 "summary": f"theirs {i}", "at": 200 + i}, now=200 + i)  # fmt: skip
    with db.connect() as conn:
        mine = changes_between(conn, 0, 1_000, "acme")
        everyone = changes_between(conn, 0, 1_000)
    assert [c["summary"] for c in mine] == ["ours"]
    assert "ours" not in [c["summary"] for c in everyone]  # the limit, without the filter
