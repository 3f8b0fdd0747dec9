"""The doors `rungs serve` opens for mail: the SMTP listener (`--smtp-port`) and, when the
policy has `inbound_email.imap`, the IMAP poller (on processes that run the engine)."""

from __future__ import annotations

import ssl
from pathlib import Path

from rungs.engine import Engine

from .attachments import Blobs
from .imap import ImapPoller
from .intake import DEFAULT_MAX_SIZE, Intake
from .smtp import Listener, tls_context

__all__ = ["Doors"]


class Doors:
    def __init__(
        self,
        engine: Engine,
        blob_dir: Path,
        *,
        host: str = "127.0.0.1",
        smtp_port: int | None = None,
        tls: tuple[str, str] | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
        imap: bool = True,
        imap_ssl: ssl.SSLContext | None = None,
    ) -> None:
        self.intake = Intake(engine, Blobs(blob_dir), max_size=max_size)
        context = tls_context(*tls) if tls else None
        self.smtp = (
            None if smtp_port is None else Listener(self.intake, host, smtp_port, tls=context)
        )
        settings = self.intake.policy().inbound_email
        self.imap = None
        if imap and settings is not None and settings.imap is not None:
            self.imap = ImapPoller(self.intake, settings.imap, ssl_context=imap_ssl)

    def start(self) -> None:
        if self.smtp is not None:
            self.smtp.start()
        if self.imap is not None:
            self.imap.start()

    def stop(self) -> None:
        if self.imap is not None:
            self.imap.stop()
        if self.smtp is not None:
            self.smtp.stop()
