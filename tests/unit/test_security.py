"""Issue 12 §6 without a server: which variables a policy may name, mail headers on one line,
messages that cannot be built, Slack's fallback text, and what a delivery error may say."""

from __future__ import annotations

import asyncio
import email
import email.policy
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rungs.cli import app
from rungs.core.decide import decide
from rungs.core.model import Event
from rungs.engine.integrations import integration_for_key
from rungs.notify.channels import Context, DeliveryError, Outgoing, send
from rungs.notify.channels import _http as http_channel
from rungs.notify.channels.base import MAX_ERROR, safe_error
from rungs.notify.channels.email import build
from rungs.notify.compose import Composer
from rungs.notify.deliver import Deliverer
from rungs.notify.http import Answer, HttpClient
from rungs.notify.messages import Message, Renderer, one_line
from rungs.notify.results import outcome
from rungs.policy import load_policy_text, validate_file
from rungs.policy.channels import EmailConfig, Retry, TwilioConfig, channels_of
from rungs.policy.model import Policy
from rungs.policy.secrets import SecretRefused, prefix_problem, read_secret, secret_prefix
from rungs.store.outbox import Row
from tests.unit.test_notify_policy import BASE

EMAIL = "  email: {host: smtp.x.test, sender: rungs@x.test}\n"
LINKS = {"acknowledge": "https://r.x.test/a/1", "resolve": "https://r.x.test/a/2"}


def problems_of(text: str, **options: Any) -> list[str]:
    _, problems = load_policy_text(text, "p.yaml", **options)
    return [str(p) for p in problems if p.severity == "error"]


# *_env names: the deploy-time prefix ----------------------------------------------------------


def test_a_policy_may_name_only_variables_with_the_prefix() -> None:
    text = BASE + (
        "integrations:\n"
        "  - {id: prom, format: alertmanager, key_env: AWS_SECRET_ACCESS_KEY}\n"  # line 11
        "channels:\n"
        '  sms: {url: "https://attacker.test/{account}", account_env: DATABASE_URL,\n'  # 13
        '        token_env: RUNGS_SMS_TOKEN, sender: "+4930000000"}\n'
        "  webhook: {secret_env: RUNGS_SECRET_PREFIX}\n"  # 15: the prefix's own variable
    )
    errors = problems_of(text)
    assert len(errors) == 3, errors
    assert errors[0].startswith("p.yaml:11:")
    assert "'key_env': AWS_SECRET_ACCESS_KEY is not a variable a policy may name" in errors[0]
    assert "starting with RUNGS_" in errors[0] and "RUNGS_SECRET_PREFIX" in errors[0]
    assert errors[1].startswith("p.yaml:13:") and "'account_env': DATABASE_URL" in errors[1]
    assert errors[2].startswith("p.yaml:15:") and "'secret_env': RUNGS_SECRET_PREFIX" in errors[2]
    fine = text.replace("AWS_SECRET_ACCESS_KEY", "RUNGS_PROM_KEY")
    fine = fine.replace("DATABASE_URL", "RUNGS_SMS_ACCOUNT").replace(
        "secret_env: RUNGS_SECRET_PREFIX", "secret_env: RUNGS_HOOK"
    )
    assert problems_of(fine) == []


def test_the_prefix_is_the_deployments_and_a_stored_version_loads_again() -> None:
    text = BASE + "channels:\n" + EMAIL + "  webhook: {secret_env: ACME_HOOK}\n"
    assert problems_of(text, secret_prefix="ACME_") == []
    assert problems_of(text.replace("ACME_HOOK", "RUNGS_HOOK"), secret_prefix="ACME_")
    assert problems_of(text)  # the default prefix: RUNGS_
    assert problems_of(text, secret_prefix=None) == []  # stored before: checked where read
    assert secret_prefix({}) == "RUNGS_"
    assert secret_prefix({"RUNGS_SECRET_PREFIX": "ACME_"}) == "ACME_"
    for unusable in ("", "  ", "A B", "1X", "*"):  # would let a policy name anything
        assert secret_prefix({"RUNGS_SECRET_PREFIX": unusable}) == "RUNGS_"
    assert prefix_problem("RUNGS_", "RUNGS_") is not None  # the prefix alone names nothing
    assert prefix_problem("RUNGS_X", "RUNGS_") is None


def test_rungs_validate_uses_the_deployments_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(BASE + "channels:\n  webhook: {secret_env: ACME_HOOK}\n", encoding="utf-8")
    assert validate_file(path)[0] is None
    monkeypatch.setenv("RUNGS_SECRET_PREFIX", "ACME_")
    done = CliRunner().invoke(app, ["validate", str(path)])
    assert done.exit_code == 0, done.output
    monkeypatch.delenv("RUNGS_SECRET_PREFIX")
    done = CliRunner().invoke(app, ["validate", str(path)])
    assert done.exit_code == 1 and "ACME_HOOK is not a variable" in done.output


def test_a_name_without_the_prefix_is_never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://rungs:hunter2@db/rungs")
    monkeypatch.setenv("RUNGS_SMS_TOKEN", "tok")
    monkeypatch.delenv("RUNGS_SECRET_PREFIX", raising=False)
    env = {"DATABASE_URL": "postgresql://x", "RUNGS_T": "t", "RUNGS_SECRET_PREFIX": "ACME_"}
    with pytest.raises(SecretRefused):
        read_secret("DATABASE_URL", {"DATABASE_URL": "x"})
    with pytest.raises(SecretRefused):
        read_secret("RUNGS_T", env)  # the deployment's prefix is ACME_ here
    assert read_secret("RUNGS_T", {"RUNGS_T": "t"}) == "t"
    assert read_secret("RUNGS_T", {"RUNGS_T": ""}) is None
    # a policy stored before the check, sending the database URL to an "SMS provider"
    with pytest.raises(DeliveryError) as err:
        http_channel.env("DATABASE_URL", "channels.sms.account_env")
    assert err.value.permanent and "not read" in err.value.message
    assert "hunter2" not in err.value.message
    assert http_channel.env("RUNGS_SMS_TOKEN", "channels.sms.token_env") == "tok"

    sent: list[str] = []

    class Spy(HttpClient):
        async def post(self, url: str, body: bytes, headers: Any, timeout: float) -> Answer:
            sent.append(url)
            return Answer(201, {}, b"")

    async def go() -> None:
        async def blocking(fn: Any) -> None:
            fn()

        cfg = TwilioConfig("https://attacker.test/{account}", "DATABASE_URL", "RUNGS_SMS_TOKEN",
                           "+4930000000")  # fmt: skip
        out = Outgoing("sms", "+4917011111", cfg, Message("s", "t"), "k", 0)
        with pytest.raises(DeliveryError) as err:
            await send(Context(Spy("ua"), blocking), out)
        assert err.value.permanent

    asyncio.run(go())
    assert sent == []  # nothing went out


def test_an_integration_key_named_without_the_prefix_is_not_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = BASE + "integrations:\n  - {id: prom, format: alertmanager, key_env: PROM_KEY}\n"
    policy, problems = load_policy_text(text, "p.yaml", secret_prefix=None)  # stored before
    assert policy is not None, problems
    monkeypatch.setenv("PROM_KEY", "k" * 20)
    monkeypatch.delenv("RUNGS_SECRET_PREFIX", raising=False)
    assert integration_for_key(policy, "k" * 20) is None
    monkeypatch.setenv("RUNGS_SECRET_PREFIX", "PROM_")  # a deployment that chose PROM_
    again, _ = load_policy_text(text, "p.yaml", secret_prefix=None)
    assert again is not None and integration_for_key(again, "k" * 20) is not None


# mail headers, rendering errors, Slack --------------------------------------------------------


def _opened(policy: Policy, title: str) -> tuple[Any, list[dict[str, Any]]]:
    case, effects = decide(None, Event("open", data={"customer": "acme", "title": title}), 0,
                           policy, case_id="C5")  # fmt: skip
    return case, [e.entry for e in effects if type(e).__name__ == "Record"]


def test_a_title_with_line_breaks_stays_on_one_subject_line() -> None:
    policy, problems = load_policy_text(BASE + "channels:\n" + EMAIL + "  slack: {}\n", "p.yaml")
    assert policy is not None, problems
    title = "Down\r\nBcc: mallory@evil.test\n\x00\x1b\u2028again"
    case, entries = _opened(policy, title)
    r = Renderer()
    item = r.item_context(case, policy, 0, entries, 1, "opened", LINKS)
    msg = r.message(policy, "email", {"id": "ann", "name": "Ann"}, [item])
    assert msg.subject == "[Rungs] P3 C5 level 1: Down Bcc: mallory@evil.test again (Acme)"
    assert one_line("a\r\nb\tc\x85d\x7f") == "a b c d"
    broken = BASE.replace("email: ann@x.test", 'email: "ann@x.test\\nBcc: eve@evil.test"')
    refused = problems_of(broken + "channels:\n" + EMAIL)
    assert any("email contact must be an email address" in p for p in refused), refused
    cfg = channels_of(policy)["email"]
    # even a subject that was not folded before (a custom template, say) goes out as one line
    raw = Message("Down\r\nBcc: mallory@evil.test", "text", "<p>html</p>")
    for m in (msg, raw):
        mail = build(Outgoing("email", "ann@x.test\r\nCc: eve@evil.test", cfg, m, "C5:n1", 0))
        parsed = email.message_from_bytes(mail.as_bytes(), policy=email.policy.default)
        assert parsed["Bcc"] is None and parsed["Cc"] is None
        assert "\n" not in str(parsed["Subject"]) and "\n" not in str(parsed["To"])
        assert str(parsed["Subject"]).startswith(("[Rungs] P3 C5", "Down Bcc:"))


def test_a_mail_that_cannot_be_built_is_permanent() -> None:
    cfg = EmailConfig("smtp.x.test", "rungs@x.test")
    # a lone surrogate (JSON's "\udcff" in a title) cannot be encoded, now or ever
    out = Outgoing("email", "ann@x.test", cfg, Message("s", "Down \udcff"), "k", 0)
    with pytest.raises(DeliveryError) as err:
        build(out)
    assert err.value.permanent and err.value.message.startswith("the mail could not be built")


def test_a_message_that_cannot_be_rendered_is_permanent(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "notice.txt").write_text("{{ notice.level // 0 }}", "utf-8")
    (tmp_path / "templates" / "email.txt").write_text("{{ item.level // 0 }}", "utf-8")
    text = BASE + "channels:\n" + EMAIL
    policy, problems = load_policy_text(text, "p.yaml", str(tmp_path))
    assert policy is not None, problems

    class One:
        def policy(self, version: int) -> Policy:
            return policy  # type: ignore[return-value]

        def current_version(self) -> int:
            return 1

    class NoLinks:
        def url(self, *args: Any) -> str:
            return "https://r.x.test/a/1"

    composer = Composer(One(), NoLinks(), Renderer())  # type: ignore[arg-type]
    settings = channels_of(policy)
    notice = {"person": "ann", "channel": "email", "action": "acknowledged", "by": "ann",
              "level": 1, "title": "Down"}  # fmt: skip
    case, entries = _opened(policy, "Down")
    page = Row(2, "C5", "notify", "C5:n1",
               {"person": "ann", "channel": "email", "level": 1, "reason": "opened"}, 1, 0,
               (case, 1, entries))  # fmt: skip
    for row in (Row(1, "C5", "notice", "C5:ack0:ann", notice, 1, 0), page):
        with pytest.raises(DeliveryError) as err:
            composer.compose([row], policy, settings, 0)
        assert err.value.permanent, row.kind
        assert err.value.message == (
            "the message could not be built: ZeroDivisionError: integer division or modulo by zero"
        )
        # on its first attempt of five: dead at once, and the core pages the next method
        done = outcome(row, err.value, Retry(attempts=5), 10)
        assert done.mark["status"] == "dead"
        if done.result is not None:
            assert done.result["permanent"] and not done.result["ok"]


def test_a_message_that_cannot_be_encoded_is_permanent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNGS_A", "AC1")
    monkeypatch.setenv("RUNGS_T", "tok")
    monkeypatch.delenv("RUNGS_SECRET_PREFIX", raising=False)
    cfg = TwilioConfig("https://sms.x.test/{account}", "RUNGS_A", "RUNGS_T", "+4930000000")

    class Fixed:
        def compose(self, *args: Any) -> Outgoing:  # a lone surrogate: JSON's "\udcff"
            return Outgoing("sms", "+4917011111", cfg, Message("s", "Down \udcff"), "k", 0)

    d = Deliverer(Fixed(), None, None, None, None, workers=1, user_agent="ua")  # type: ignore[arg-type]
    row = Row(1, "C1", "notify", "C1:n1", {"person": "ann", "channel": "sms"}, 1, 0)
    error = asyncio.run(d._send([row], None, None, 0))  # type: ignore[arg-type]
    assert error is not None and error.permanent
    assert error.message.startswith("the message could not be encoded: ")


def test_slacks_fallback_text_is_escaped_like_its_blocks() -> None:
    policy, problems = load_policy_text(BASE + "channels:\n  slack: {}\n", "p.yaml")
    assert policy is not None, problems
    case, entries = _opened(policy, "<!channel> & <https://evil.test|click>")
    r = Renderer()
    item = r.item_context(case, policy, 0, entries, 1, "opened", LINKS)
    msg = r.message(policy, "slack", {"id": "ann", "name": "Ann"}, [item])
    assert msg.data is not None
    fallback = msg.data["text"]
    assert "<!channel>" not in fallback and "<https://evil.test" not in fallback
    assert "&lt;!channel&gt; &amp; &lt;https://evil.test|click&gt;" in fallback
    section = msg.data["blocks"][1]["text"]["text"]
    assert "&lt;!channel&gt;" in section and "<!channel>" not in section


# what a delivery error may say ----------------------------------------------------------------


def test_delivery_errors_keep_no_credentials_or_response_bodies() -> None:
    said = safe_error(
        "cannot send to 'https://bot:hunter2@hooks.slack.com/services/T0/B0/XYZ?token=abc#f': "
        "InvalidURL: URL('https://bot:hunter2@hooks.slack.com/services/T0/B0/XYZ')"
        " via tgram://123456:AAEsecret/987 and http://proxy.test:3128\r\nX-Injected: yes"
    )
    for secret in ("hunter2", "bot:", "services", "XYZ", "token=abc", "AAEsecret", "123456"):
        assert secret not in said, said
    assert "https://hooks.slack.com/…" in said and "tgram://…/…" in said
    assert "http://proxy.test:3128" in said and "\n" not in said
    assert len(safe_error("x" * 5000)) == MAX_ERROR
    err = DeliveryError("to http://u:p@h.test/x failed", detail="body with http://u:p@h.test/")
    assert err.message == "to http://h.test/… failed" and str(err) == err.message
    assert err.detail == "body with http://h.test/…"

    answer = Answer(500, {}, b"<html>stack trace, DB password hunter2</html>", "Internal Error")
    failed = http_channel._http_error(answer)
    assert failed.message == "HTTP 500 Internal Error" and not failed.permanent
    assert failed.detail is not None and "hunter2" in failed.detail  # for the log only
    gone = http_channel._http_error(Answer(404, {}, b"nope"))
    assert gone.message == "HTTP 404" and gone.permanent
    row = Row(1, "C1", "notify", "C1:n1", {"person": "ann", "channel": "webhook"}, 1, 0)
    recorded = outcome(row, failed, Retry(attempts=1), 0)
    assert recorded.result is not None
    assert recorded.result["error"] == "gave up after 1 attempts: HTTP 500 Internal Error"
    assert recorded.mark["error"] == recorded.result["error"]
