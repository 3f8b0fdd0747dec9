"""The real Prometheus Alertmanager (Debian's `prometheus-alertmanager`, installed by
`make test`) sends its webhook to a real `rungs serve`: alerts posted to Alertmanager's own API
open cases in Rungs, and resolve them when Alertmanager sends them resolved."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.procs import Servers, cli_token, free_port, wait_until

KEY = "alertmanager-test-0123456789"
POLICY = f"""\
version: 1
timezone: UTC
people:
  - id: ann
    contacts: {{ email: ann@example.com }}
customers:
  - {{ id: acme, name: Acme }}
matrices:
  - id: default
    levels:
      - notify: [person:ann]
integrations:
  - id: prometheus
    format: alertmanager
    key: {KEY}
    defaults: {{ customer: acme, category: monitoring }}
"""
CONFIG = """\
global:
  resolve_timeout: 5s
route:
  receiver: rungs
  group_by: ['alertname', 'instance']
  group_wait: 200ms
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: rungs
    webhook_configs:
      - url: '{url}'
        send_resolved: true
"""


def _alertmanager() -> str:
    found = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("prometheus-alertmanager is not installed (make test installs it)")
        pytest.skip("prometheus-alertmanager is not installed (make test installs it)")
    return found


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def _alert(instance: str, severity: str, ends: datetime | None = None) -> dict[str, Any]:
    now = datetime.now(UTC)
    alert: dict[str, Any] = {
        "labels": {"alertname": "DiskFull", "instance": instance, "severity": severity},
        "annotations": {
            "summary": f"Disk full on {instance}",
            "description": f"{instance}: / is 99% full",
        },
        "startsAt": _iso(now - timedelta(minutes=1)),
        "generatorURL": "http://prometheus.example/graph?g0.expr=disk",
    }
    if ends is not None:
        alert["endsAt"] = _iso(ends)
    return alert


def test_real_alertmanager_opens_and_resolves_cases(tmp_path: Path) -> None:
    binary = _alertmanager()
    db = f"sqlite:///{tmp_path / 'rungs.db'}"
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    headers = {"Authorization": f"Bearer {cli_token(db, 'viewer')}"}
    with Servers(tmp_path) as servers:
        rungs = servers.start("rungs", db, policy)
        rungs.wait_healthy()
        am_port = free_port()
        am_url = f"http://127.0.0.1:{am_port}"
        config = tmp_path / "alertmanager.yml"
        config.write_text(
            CONFIG.format(url=f"{rungs.url}/v1/integrations/{KEY}/alertmanager"), encoding="utf-8"
        )
        (tmp_path / "am-data").mkdir()
        log = (tmp_path / "alertmanager.log").open("wb")
        am = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
                "--log.level=debug",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            client = httpx.Client(base_url=rungs.url, headers=headers, timeout=10.0)

            def ready() -> bool:
                assert am.poll() is None, (tmp_path / "alertmanager.log").read_text()
                try:
                    return httpx.get(f"{am_url}/-/ready", timeout=2.0).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until("Alertmanager to be ready", ready, timeout=30.0)
            r = httpx.post(
                f"{am_url}/api/v2/alerts",
                json=[_alert("db1:9100", "critical"), _alert("db2:9100", "warning")],
                timeout=10.0,
            )
            assert r.status_code == 200, r.text

            def cases(status: str | None = None) -> list[dict[str, Any]]:
                params = {"limit": 100} if status is None else {"limit": 100, "status": status}
                return client.get("/v1/cases", params=params).json()["items"]

            opened = wait_until(
                "both alerts to open cases", lambda: len(cases("open")) == 2 and cases(), 30.0
            )
            by_instance = {c["fields"]["labels"]["instance"]: c for c in opened}
            db1 = by_instance["db1:9100"]
            assert db1["title"] == "Disk full on db1:9100" and db1["priority"] == "P1"
            assert db1["description"] == "db1:9100: / is 99% full"
            assert db1["customer"] == "acme" and db1["category"] == "monitoring"
            assert db1["fields"]["annotations"]["summary"] == "Disk full on db1:9100"
            assert db1["fields"]["generator_url"].startswith("http://prometheus.example/graph")
            assert db1["dedup_key"] == f"prometheus:{db1['fields']['fingerprint']}"
            assert by_instance["db2:9100"]["priority"] == "P3"

            # db1 resolved at Alertmanager (endsAt in the past): Alertmanager sends it resolved
            past = datetime.now(UTC) - timedelta(seconds=5)
            r = httpx.post(
                f"{am_url}/api/v2/alerts", json=[_alert("db1:9100", "critical", past)], timeout=10
            )
            assert r.status_code == 200, r.text

            def status_of(case_id: str) -> str:
                return client.get(f"/v1/cases/{case_id}").json()["status"]

            wait_until("db1's case to resolve", lambda: status_of(db1["id"]) == "resolved", 30.0)
            assert status_of(by_instance["db2:9100"]["id"]) == "open"
            timeline = client.get(f"/v1/cases/{db1['id']}/timeline").json()
            assert timeline[-1]["kind"] == "resolved"
            assert timeline[-1]["by"] == "integration:prometheus"

            # firing again after resolve: a new case for the same fingerprint
            r = httpx.post(
                f"{am_url}/api/v2/alerts", json=[_alert("db1:9100", "critical")], timeout=10
            )
            assert r.status_code == 200, r.text
            again = wait_until(
                "db1 firing again to open a new case",
                lambda: [c for c in cases("open") if c["dedup_key"] == db1["dedup_key"]],
                30.0,
            )
            assert again[0]["id"] != db1["id"]
            client.close()
        finally:
            am.terminate()
            try:
                am.wait(timeout=10)
            except subprocess.TimeoutExpired:
                am.kill()
                am.wait()
            log.close()
            print("----- alertmanager log -----")
            print((tmp_path / "alertmanager.log").read_text(errors="replace")[-5000:])
