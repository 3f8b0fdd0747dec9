"""The inbound mail and survey policy keys: compiled values, and each mistake located."""

from __future__ import annotations

from pathlib import Path

import pytest

from rungs.policy import load_policy_text

BASE = (Path(__file__).parents[1] / "fixtures" / "inbound.yaml").read_text()


def compile_edit(old: str, new: str) -> tuple[object, list[str]]:
    assert old in BASE
    policy, problems = load_policy_text(BASE.replace(old, new, 1), "p.yaml")
    return policy, [f"{p.line}:{p.message}" for p in problems if p.severity == "error"]


def test_the_fixture_compiles_with_its_keys() -> None:
    policy, problems = load_policy_text(BASE, "p.yaml")
    assert policy is not None, problems
    g = policy.customers["globex"]
    assert (g.contacts, g.domains, g.owner) == (("ops@globex.test",), ("globex.test",), "carol")
    mail = policy.inbound_email
    assert mail is not None and mail.addresses["escalations@acme.test"].escalate
    assert mail.addresses["support@acme.test"].priority == "P3"
    assert (mail.escalation_reason, mail.reopen_within) == ("customer_request", 7 * 86_400 * 10**6)
    s = policy.surveys
    assert s is not None and (s.after, s.scale, s.sample) == (86_400 * 10**6, 5, 100)
    assert s.good(4) and not s.good(3)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        ("owner: carol", "owner: carl", "owner: carl", "unknown person 'carl'"),
        ("contacts: [ops@globex.test]", "contacts: [ops-globex.test]", "ops-globex",
         "is not a mail address"),
        ("domains: [globex.test]", "domains: ['globex test']", "globex test",
         "is not a domain name"),
        ("{escalate: true}", "{escalate: yes please}", "yes please", "'escalate' must be"),
        ("{category: general, priority: P3}", "{category: general, priority: P9}",
         "P9", "unknown priority 'P9'"),
        ("inbound_email:\n", "inbound_email:\n  escalation_reason: angry\n",
         "angry", "escalation_reason 'angry' is not one of the policy's reasons"),
        ("  scale: 5", "  scale: 3", "scale: 3", "'scale' must be"),
        ("  sample: 100", "  sample: 101", "sample: 101", "'sample' must be"),
        ("  after: 24h", "  after: soon", "after: soon", "duration"),
        ("inbound_email:\n", "inbound_email:\n  imap: {host: mail.test, user_env: U, "
         "password_env: RUNGS_P}\n", "imap:", "user_env"),
        ("  expire: 28d", "  expyre: 28d", "expyre", "did you mean 'expire'"),
    ],
)  # fmt: skip
def test_each_mistake_is_one_located_error(old: str, new: str, needle: str, message: str) -> None:
    policy, errors = compile_edit(old, new)
    assert policy is None
    assert len(errors) == 1, errors
    line = line_of(BASE.replace(old, new, 1), needle)
    assert errors[0].startswith(f"{line}:") and message in errors[0], errors


def test_imap_settings_and_defaults() -> None:
    policy, errors = compile_edit(
        "inbound_email:\n",
        "inbound_email:\n  reopen_within: 2d\n  imap: {host: mail.test, port: 1143, tls: none,"
        " user_env: RUNGS_IMAP_USER, password_env: RUNGS_IMAP_PASSWORD}\n",
    )
    assert not errors
    mail = policy.inbound_email  # type: ignore[attr-defined]
    assert mail.reopen_within == 2 * 86_400 * 10**6
    imap = mail.imap
    assert (imap.host, imap.port, imap.tls, imap.folder) == ("mail.test", 1143, "none", "INBOX")
    assert (imap.user_env, imap.password_env) == ("RUNGS_IMAP_USER", "RUNGS_IMAP_PASSWORD")
