"""`rungs serve --tls-cert FILE --tls-key FILE` serves HTTPS (clients such as the `pagerduty`
library refuse plain http); half a pair, or a pair that does not load, is one line."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from rungs.cli import app
from tests.conftest import ROOT
from tests.procs import Servers, wait_until
from tests.tls import HAVE_OPENSSL, self_signed

ACME = ROOT / "src" / "rungs" / "examples" / "acme.yaml"


@pytest.mark.skipif(not HAVE_OPENSSL, reason="needs the openssl command")
def test_serve_over_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    with Servers(tmp_path) as servers:
        s = servers.start(
            "tls", f"sqlite:///{tmp_path / 'r.db'}", ACME,
            extra=["--tls-cert", str(cert), "--tls-key", str(key)],
        )  # fmt: skip
        url = f"https://127.0.0.1:{s.port}"
        trust = ssl.create_default_context(cafile=str(cert))

        def up() -> bool:
            assert s.alive(), s.log_text()
            try:
                return httpx.get(f"{url}/healthz", verify=trust, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until("https /healthz", up, 60)
        assert f"Rungs is serving at https://127.0.0.1:{s.port}" in s.log_text()
        with pytest.raises(httpx.HTTPError):  # plain http on the TLS port is not served
            httpx.get(f"http://127.0.0.1:{s.port}/healthz", timeout=2)


@pytest.mark.skipif(not HAVE_OPENSSL, reason="needs the openssl command")
def test_tls_settings_refused_in_one_line(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'r.db'}"
    for extra, says in (
        (["--tls-cert", str(cert)], "--tls-cert and --tls-key go together"),
        (["--tls-cert", str(key), "--tls-key", str(key)], f"--tls-cert {key}"),
        (["--tls-cert", str(cert), "--tls-key", str(tmp_path / "none.pem")], "--tls-key"),
    ):
        r = runner.invoke(app, ["serve", "--policy", str(ACME), "--db", db, *extra])
        assert r.exit_code == 1 and says in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "r.db").exists()
