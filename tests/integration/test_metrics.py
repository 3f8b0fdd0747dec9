"""`/metrics` says where messages go and what senders send: deliveries by channel and result
(a real SMTP server that goes down), the outbox's depth, ingest requests by sender and status."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient

from rungs.engine import Engine as Service
from tests.integration import test_notify as notify
from tests.integration.test_notify import PEOPLE, Smtp, deliver, open_case, policy_yaml

# the notify tests' fixtures: a real SMTP server, the service on a virtual clock, its secrets
smtp, start, _secrets = notify.smtp, notify.start, notify._secrets

KEY = "events-key-0123456789abcdef"
INTEGRATION = f"""\
integrations:
  - {{id: ev, format: events, key: {KEY}, defaults: {{customer: acme}}}}
"""


def _metric(text: str, name: str, **labels: str) -> float:
    """The sample's value (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if m and ",".join(sorted(m.group(1).split(","))) == want:
            return float(m.group(2))
    return 0.0


def test_deliveries_outbox_depth_and_ingest_in_metrics(
    start: Callable[..., Service], smtp: Smtp
) -> None:
    service = start(policy_yaml(smtp_port=smtp.port, people=PEOPLE, extra=INTEGRATION))
    client = TestClient(service.app)  # type: ignore[attr-defined]
    open_case(service)
    deliver(service)
    text = client.get("/metrics").text
    assert _metric(text, "rungs_deliveries_total", channel="email", result="sent") == 1, text
    assert _metric(text, "rungs_outbox_rows", status="pending") == 0, text

    smtp.stop()  # the next mail fails and waits for its retry: the outbox has a row pending
    open_case(service, title="second")
    deliver(service)
    text = client.get("/metrics").text
    assert _metric(text, "rungs_deliveries_total", channel="email", result="retry") == 1, text
    assert _metric(text, "rungs_outbox_rows", status="pending") == 1, text

    body = {"title": "Backup failed", "dedup_key": "b1"}
    assert client.post(f"/v1/integrations/{KEY}/events", json=body).status_code == 202
    assert client.post(f"/v1/integrations/{KEY}/events", json={"x": 1}).status_code == 422
    assert client.post("/v1/integrations/wrong-key-0123456789/events", json=body).status_code == 401
    text = client.get("/metrics").text
    for status, n in (("202", 1), ("422", 1), ("401", 1)):
        got = _metric(text, "rungs_ingest_requests_total", sender="events", status=status)
        assert got == n, (status, text)
