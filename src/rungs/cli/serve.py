"""`rungs serve`: the API, engine and dispatcher in one process, or `--workers N`."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.exc import SQLAlchemyError

from rungs.cli.common import _db_problem, _fail, _option, app, err
from rungs.cli.store import DbOption
from rungs.policy import PolicyError
from rungs.time.instant import parse_duration, parse_instant


@app.command()
def serve(
    policy: Annotated[
        Path | None, typer.Option("--policy", envvar="RUNGS_POLICY", help="Policy file to load.")
    ] = None,
    db: DbOption = "sqlite:///rungs.db",
    host: Annotated[str, typer.Option("--host", envvar="RUNGS_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", envvar="RUNGS_PORT")] = 8080,
    role: Annotated[
        str, typer.Option("--role", envvar="RUNGS_ROLE", help="api, engine, dispatcher or all.")
    ] = "all",
    virtual_clock: Annotated[
        str | None,
        typer.Option("--virtual-clock", metavar="START", help="Tests: time stands still at START."),
    ] = None,
    token_rate_limit: Annotated[
        str | None,
        typer.Option(
            "--token-rate-limit",
            envvar="RUNGS_TOKEN_RATE_LIMIT",
            metavar="PER_SECOND[:BURST]",
            help="Requests per second per API token (default: no limit).",
        ),
    ] = None,
    max_body: Annotated[
        int,
        typer.Option("--max-body", envvar="RUNGS_MAX_BODY", help="Largest request body, in bytes."),
    ] = 1024 * 1024,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            envvar="RUNGS_WORKERS",
            help="Processes serving the port, each with the same role (one interpreter per core).",
        ),
    ] = 1,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Exit when the --policy file has errors, instead of serving the last stored "
            "version (for CI pipelines).",
        ),
    ] = False,
    log_level: Annotated[
        str,
        typer.Option(
            "--log-level",
            envvar="RUNGS_LOG_LEVEL",
            help="debug, info (a line per request), warning or error.",
        ),
    ] = "info",
    verify_every: Annotated[
        str | None,
        typer.Option(
            "--verify-every",
            envvar="RUNGS_VERIFY_EVERY",
            metavar="DURATION",
            help="Run `rungs verify` in the engine this often (e.g. 24h); /metrics shows it.",
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option("--tls-cert", envvar="RUNGS_TLS_CERT", help="Serve HTTPS: certificate (PEM)."),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(
            "--tls-key", envvar="RUNGS_TLS_KEY", help="Serve HTTPS: its private key (PEM)."
        ),
    ] = None,
    trusted_header: Annotated[
        str | None,
        typer.Option(
            "--trusted-header",
            envvar="RUNGS_TRUSTED_HEADER",
            help="Console single sign-on: the header a reverse proxy names the signed-in "
            "person in (id or e-mail), e.g. X-Forwarded-Email. Off by default.",
        ),
    ] = None,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            metavar="ADDR",
            help="An address or network (CIDR) whose --trusted-header is believed; repeat it.",
        ),
    ] = None,
    smtp_port: Annotated[
        int | None,
        typer.Option(
            "--smtp-port",
            envvar="RUNGS_SMTP_PORT",
            help="Take customers' mail by SMTP on this port (STARTTLS with --tls-cert).",
        ),
    ] = None,
    smtp_max_size: Annotated[
        int,
        typer.Option("--smtp-max-size", envvar="RUNGS_SMTP_MAX_SIZE", help="Largest mail, bytes."),
    ] = 10 * 1024 * 1024,
    blob_dir: Annotated[
        Path | None,
        typer.Option(
            "--blob-dir",
            envvar="RUNGS_BLOB_DIR",
            help="Where mail attachments are kept (default: DB.blobs beside a SQLite file).",
        ),
    ] = None,
) -> None:
    """Run the API, the engine and the dispatcher on one database."""

    import uvicorn

    from rungs.api.access import LEVELS, configure_logging
    from rungs.api.limits import parse_rate
    from rungs.bootstrap import build, settle_heap

    if role not in ("api", "engine", "dispatcher", "all"):
        raise _fail(f"--role must be api, engine, dispatcher or all, not '{role}'")
    if log_level.lower() not in LEVELS:
        raise _fail(f"--log-level must be one of {', '.join(LEVELS)}, not '{log_level}'")
    start = None
    if virtual_clock is not None:
        start = _option(parse_instant, virtual_clock, "--virtual-clock")

    every = (
        None if verify_every is None else _option(parse_duration, verify_every, "--verify-every")
    )
    if every is not None and every < 60_000_000:
        raise _fail("--verify-every must be at least 1m")
    token_rate = _option(parse_rate, token_rate_limit, "--token-rate-limit")
    if max_body < 1024:
        raise _fail("--max-body must be at least 1024 bytes")
    if workers < 1:
        raise _fail("--workers must be at least 1")
    if workers > 1 and every is not None:
        raise _fail(
            "--verify-every needs --workers 1: each worker would run its own verifier "
            "(run `rungs verify` from a scheduler, or one `rungs serve --role engine` with it)"
        )
    tls = _tls_or_exit(tls_cert, tls_key)
    proxies = _proxies_or_exit(trusted_header, trusted_proxy or [])
    _port_free_or_exit(host, port)
    if smtp_port is not None:
        if workers > 1:
            raise _fail("--smtp-port needs --workers 1 (one listener per port)")
        if smtp_max_size < 1024:
            raise _fail("--smtp-max-size must be at least 1024 bytes")
        _port_free_or_exit(host, smtp_port)
    configure_logging(log_level.lower())
    # the trusted proxy is checked against the socket's peer: uvicorn's proxy headers would
    # put the end user's X-Forwarded-For address there (it trusts 127.0.0.1 by default)
    scheme = "https" if tls else "http"
    if workers > 1:
        if start is not None:
            raise _fail("--virtual-clock needs --workers 1: each worker would have its own clock")
        os.environ["RUNGS_LOG_LEVEL"] = log_level.lower()  # read in each worker process
        _serve_workers(
            workers,
            host,
            port,
            db_url=db,
            policy_file=policy,
            role=role,
            token_rate=token_rate,
            max_body=max_body,
            strict=strict,
            tls=tls,
            trusted_header=trusted_header,
            trusted_proxies=proxies,
            verify_every=every,
            blob_dir=str(blob_dir) if blob_dir else None,
        )
        return
    with _start_errors(db):
        engine, api = build(
            db_url=db,
            policy_file=policy,
            virtual_start=start,
            role=role,
            token_rate=token_rate,
            max_body=max_body,
            strict=strict,
            trusted_header=trusted_header,
            trusted_proxies=proxies,
            verify_every=every,
            blob_dir=blob_dir,
        )
        doors = _mail_doors(engine, db, blob_dir, host, smtp_port, smtp_max_size, tls, role)
    print(f"Rungs is serving at {scheme}://{host}:{port} (API docs at /docs)", flush=True)
    if doors.smtp is not None:
        print(f"Rungs takes mail by SMTP at {host}:{smtp_port}", flush=True)
    settle_heap()
    try:
        uvicorn.run(
            api, host=host, port=port, log_level="warning", access_log=False,
            proxy_headers=trusted_header is None, **tls,
        )  # fmt: skip
    finally:
        doors.stop()
        engine.stop()


def _mail_doors(
    engine: Any,
    db: str,
    blob_dir: Path | None,
    host: str,
    smtp_port: int | None,
    max_size: int,
    tls: dict[str, str],
    role: str,
) -> Any:
    """The SMTP listener and the IMAP poller (engine roles only), started."""
    from rungs.api.inbound import blob_dir_for
    from rungs.api.inbound.doors import Doors

    pair = (tls["ssl_certfile"], tls["ssl_keyfile"]) if tls else None
    doors = Doors(
        engine, blob_dir or blob_dir_for(db), host=host, smtp_port=smtp_port, tls=pair,
        max_size=max_size, imap=role in ("all", "engine"),
    )  # fmt: skip
    try:
        doors.start()
    except BaseException:
        engine.stop()
        raise
    return doors


@contextlib.contextmanager
def _start_errors(db: str | None = None) -> Iterator[None]:
    """Errors while starting the service: each policy problem on a line, others as one."""

    try:
        yield
    except PolicyError as exc:
        for p in exc.problems:
            err.print(str(p), highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except (PermissionError, RuntimeError, OSError) as exc:
        raise _fail(str(exc)) from None
    except SQLAlchemyError as exc:
        raise _fail(_db_problem(exc, db)) from None


def _port_free_or_exit(host: str, port: int) -> None:
    """Refuse at once, naming the settings, when `host:port` cannot be listened on (uvicorn
    would log a bind error and exit after the engine had started)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise _fail(f"--host {host}: {exc}; change it with --host or RUNGS_HOST") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise _fail(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): choose another port "
                "with --port or RUNGS_PORT (or another address with --host or RUNGS_HOST)"
            ) from None


def _proxies_or_exit(header: str | None, proxies: list[str]) -> list[str]:
    """The --trusted-proxy networks, checked: a header needs at least one, and a proxy a
    header (a header believed from anywhere would let anyone sign in as anyone)."""
    import ipaddress

    if header is not None and not proxies:
        raise _fail("--trusted-header needs --trusted-proxy ADDR (the proxy's address)")
    if proxies and header is None:
        raise _fail("--trusted-proxy is used with --trusted-header")
    if header is not None and not header.replace("-", "").isalnum():
        raise _fail(f"--trusted-header '{header}' is not a header name")
    for p in proxies:
        try:
            ipaddress.ip_network(p, strict=False)
        except ValueError:
            raise _fail(f"--trusted-proxy '{p}' is not an IP address or network") from None
    return proxies


def _tls_or_exit(cert: Path | None, key: Path | None) -> dict[str, str]:
    """uvicorn's TLS settings: both files or neither, each readable, and a pair that loads
    (checked here, so a mistake is one line rather than a failing worker)."""
    import ssl

    if cert is None and key is None:
        return {}
    if cert is None or key is None:
        raise _fail("--tls-cert and --tls-key go together")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise _fail(f"--tls-cert {cert} / --tls-key {key}: {exc}") from None
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}


def _serve_workers(
    workers: int, host: str, port: int, tls: dict[str, str], **settings: Any
) -> None:
    """`rungs serve --workers N`: migrate and store the policy here, then N processes."""

    import uvicorn

    from rungs.bootstrap import WORKER_ENV, prepare, worker_settings

    strict = settings.pop("strict")
    with _start_errors(settings["db_url"]):
        policy = prepare(
            db_url=settings["db_url"], policy_file=settings["policy_file"], strict=strict
        )
    mail = policy.inbound_email
    if mail is not None and mail.imap is not None and settings["role"] in ("all", "engine"):
        raise _fail(
            "inbound_email.imap needs --workers 1 (one poller per mailbox): run it in one "
            "`rungs serve --role engine` beside `--role api --workers N`"
        )
    # the workers serve the current version, stored above; with a policy file they are
    # file-managed too (PUT refused), and find its text stored already (or, when it has
    # errors, serve the last stored version and say so on /healthz, as this process would)
    os.environ[WORKER_ENV] = worker_settings(**settings)
    scheme = "https" if tls else "http"
    print(f"Rungs is serving at {scheme}://{host}:{port} (API docs at /docs)", flush=True)
    uvicorn.run(
        "rungs.bootstrap:worker_app",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        proxy_headers=settings["trusted_header"] is None,
        **tls,  # type: ignore[arg-type]
    )
