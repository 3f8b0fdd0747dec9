"""The policy's `channels` section: compiled settings, located errors, secrets only by name;
and the pieces of delivery that need no server (backoff, signatures, templates from the
policy's folder). Links, which keep their secret in the database: test_notify_links.py."""

from __future__ import annotations

from pathlib import Path

from rungs.core.decide import decide
from rungs.core.model import Event
from rungs.notify.channels.email import message_id
from rungs.notify.channels.webhook import sign
from rungs.notify.limits import Limiter, backoff
from rungs.notify.messages import Renderer, human, tidy
from rungs.policy import load_policy_text, validate_file
from rungs.policy.channels import Channels, EmailConfig, RateLimit, Retry, TwilioConfig

BASE = """\
version: 1
people:
  - id: ann
    name: Ann
    contacts: {email: ann@x.test, sms: "+4917011111", webhook: "https://hooks.x.test/a"}
customers: [{id: acme, name: Acme}]
matrices:
  - id: d
    levels: [{name: L1, notify: [person:ann]}]
"""


def compile_(channels: str, extra: str = "") -> tuple[object, list[str]]:
    policy, problems = load_policy_text(BASE + channels + extra, "p.yaml")
    return policy, [str(p) for p in problems]


def test_channels_compile_to_settings() -> None:
    policy, problems = compile_("""\
channels:
  email: {host: smtp.x.test, sender: rungs@x.test, security: starttls,
          username_env: RUNGS_SMTP_USER, password_env: RUNGS_SMTP_PASSWORD}
  webhook: {secret_env: RUNGS_HOOK_SECRET}
  sms: {url: "https://sms.x.test/Accounts/{account}/Messages.json", account_env: RUNGS_A,
        token_env: RUNGS_T, sender: "+4930000000"}
  retry: {attempts: 7, backoff: 10s, max_backoff: 5m, lease: 2m}
  bundle: 30s
  rate_limits: {person: 20/1h, channel: {sms: {count: 5, per: 1m}}}
  handled_notice: false
links: {base_url: "https://rungs.x.test", ttl: 12h}
""")
    assert problems == []
    ch = policy.channels  # type: ignore[attr-defined]
    assert isinstance(ch, Channels) and sorted(ch) == ["email", "sms", "webhook"]
    assert ch["email"] == EmailConfig(
        "smtp.x.test",
        "rungs@x.test",
        587,
        "starttls",
        "RUNGS_SMTP_USER",
        "RUNGS_SMTP_PASSWORD",
        10.0,
    )
    assert isinstance(ch["sms"], TwilioConfig) and ch["sms"].inbound_verify
    assert ch.retry == Retry(7, 10_000_000, 300_000_000, 120_000_000)
    assert ch.bundle == 30_000_000 and not ch.handled_notice
    assert ch.person_limit == RateLimit(20, 3_600_000_000)
    assert ch.channel_limits == {"sms": RateLimit(5, 60_000_000)}
    assert "slack" in ch and "voice" not in ch  # slack needs only the person's URL


def test_no_channels_section_is_quiet_and_defaults() -> None:
    policy, problems = compile_("")
    assert problems == []
    ch = policy.channels  # type: ignore[attr-defined]
    assert isinstance(ch, Channels) and not ch.declared and len(ch) == 0
    assert ch.retry == Retry() and ch.handled_notice and ch.bundle == 0


def test_channel_errors_are_located_and_secrets_come_only_from_the_environment() -> None:
    _, problems = compile_("""\
channels:
  email: {host: smtp.x.test, sender: nobody, security: ssl, password: hunter2, port: 70000}
  sms: {url: "ftp://x/{acct}", account_env: A, token: abc, sender: "+1"}
  webhook: {secret_env: "not a name"}
  retry: {attempts: 0, backoff: soon}
  rate_limits: {person: lots, channel: {fax: 1/1m}}
  bundle: -1m
  handled_notice: maybe
  pager: {}
""")
    text = "\n".join(problems)
    for line, needle in (
        ("p.yaml:11:", "sender must be an email address"),
        ("p.yaml:11:", "security must be one of none, starttls, tls, not 'ssl'"),
        ("p.yaml:11:", "secrets come only from the environment: write 'password_env: VARIABLE'"),
        ("p.yaml:11:", "port must be a number from 1 to 65535"),
        ("p.yaml:12:", "url must start with http:// or https://"),
        ("p.yaml:12:", "write 'token_env: VARIABLE' instead of 'token'"),
        ("p.yaml:12:", "channels.sms is missing 'token_env'"),
        ("p.yaml:13:", "'secret_env' names an environment variable"),
        ("p.yaml:14:", "attempts must be a whole number from 1 to 100"),
        ("p.yaml:14:", "backoff: malformed duration 'soon'"),
        ("p.yaml:15:", "a rate limit is written COUNT/DURATION such as '20/1h'"),
        ("p.yaml:15:", "unknown channel 'fax'"),
        ("p.yaml:16:", "bundle"),
        ("p.yaml:17:", "handled_notice must be true or false"),
        ("p.yaml:18:", "unknown channel or setting 'pager'"),
    ):
        assert any(p.startswith(line) and needle in p for p in problems), f"{needle}\n{text}"
    assert "hunter2" not in text and "abc" not in text


def test_contacts_are_checked_against_the_channels() -> None:
    _, problems = compile_(
        "channels:\n  webhook: {}\n",
    )
    assert any("has an email contact but channels.email is not configured" in p
               for p in problems)  # fmt: skip
    assert all("warning" in p for p in problems)
    bad = BASE.replace('"https://hooks.x.test/a"', '"hooks.x.test/a"').replace(
        '"+4917011111"', '"call me"'
    )
    _, found = load_policy_text(bad + "channels: {}\n", "p.yaml")
    messages = [str(p) for p in found if p.severity == "error"]
    assert any("webhook contact must be an http:// or https:// URL" in m for m in messages)
    assert any("sms contact must be a phone number" in m for m in messages)


def test_backoff_doubles_with_jitter_and_limiter_windows() -> None:
    r = Retry(attempts=5, backoff=4_000_000, max_backoff=20_000_000)
    for n, full in ((1, 4_000_000), (2, 8_000_000), (3, 16_000_000), (4, 20_000_000)):
        waits = {backoff(r, n) for _ in range(50)}
        assert all(full // 2 <= w <= full for w in waits) and len(waits) > 1
    lim = Limiter()
    two = [("p", RateLimit(2, 10))]
    assert lim.next_slot(two, 0) == 0
    lim.record(two, 0)
    lim.record(two, 3)
    assert lim.next_slot(two, 5) == 10 and lim.next_slot(two, 11) == 11
    assert (
        sign(b"k", "1", b"{}")
        == "sha256=" + __import__("hmac").new(b"k", b"1.{}", "sha256").hexdigest()
    )
    assert message_id("C1:n2", "rungs@acme.test") == message_id("C1:n2", "x@acme.test")
    assert message_id("C1:n2", "rungs@acme.test").endswith("@acme.test>")


def test_words() -> None:
    assert human(59 * 60 + 59) == "59m" and human(7 * 3600 + 59 * 60) == "7h59m"
    assert human(2 * 86400 + 3600) == "2d1h" and human(5) == "5s"
    assert tidy("first_response 59m59s0.485596s left; x 2h0.5s") == (
        "first_response 59m59s left; x 2h"
    )


def test_templates_are_overridden_from_the_policy_folder(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "sms.txt").write_text(
        "ACME ON-CALL {{ item.case.id }} {{ item.customer.name }} reply {{ item.code }}"
    )
    path = tmp_path / "policy.yaml"
    path.write_text(BASE + "channels:\n  sms: {url: 'https://x/{account}', account_env: RUNGS_A, "
                    "token_env: RUNGS_T, sender: '+1'}\n", encoding="utf-8")  # fmt: skip
    policy, problems = validate_file(path)
    assert policy is not None, problems
    case, effects = decide(None, Event("open", data={"customer": "acme", "title": "t"}), 0,
                           policy, case_id="C5")  # fmt: skip
    entries = [e.entry for e in effects if type(e).__name__ == "Record"]
    r = Renderer()
    links = {"acknowledge": "https://a", "resolve": "https://r"}
    item = r.item_context(case, policy, 0, entries, 1, "opened", links)
    sms = r.message(policy, "sms", {"id": "ann", "name": "Ann"}, [item])
    assert sms.text == "ACME ON-CALL C5 Acme reply 5"
    mail = r.message(policy, "email", {"id": "ann", "name": "Ann"}, [item])  # the package's
    assert "Why you: a new case for you (level 1, L1)" in mail.text and mail.html
