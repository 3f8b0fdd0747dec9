"""`rungs serve --trusted-header` behind a reverse proxy on the same host: the proxy's
address is the socket's peer, whatever X-Forwarded-For the proxy adds."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.console import console_policy
from tests.procs import Servers


@pytest.mark.parametrize("workers", [1, 2])
def test_the_trusted_header_is_believed_from_a_proxy_on_the_same_host(
    tmp_path: Path, workers: int
) -> None:
    policy = tmp_path / "console.yaml"
    policy.write_text(console_policy(), "utf-8")
    with Servers(tmp_path) as servers:
        s = servers.start(
            "serve", f"sqlite:///{tmp_path / 'r.db'}", policy,
            extra=["--trusted-header", "X-Forwarded-Email", "--trusted-proxy", "127.0.0.1",
                   "--workers", str(workers)],
        )  # fmt: skip
        s.wait_healthy()
        # what a proxy on this host sends: the end user's address, and who signed in
        proxied = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Email": "bob@acme.test"}
        r = httpx.get(f"{s.url}/", headers=proxied, timeout=10)
        assert r.status_code == 200 and "Bob Ortiz" in r.text
        r = httpx.get(f"{s.url}/", headers={"X-Forwarded-Email": "nobody@x.test"}, timeout=10)
        assert r.status_code == 303  # a name the policy does not know: signed out
