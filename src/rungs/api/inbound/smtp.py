"""The SMTP listener of `rungs serve --smtp-port` (aiosmtpd): a mail is answered `250` only
once its case is committed, `552` above the size limit, `451` when the database cannot take
it now (the sender tries again), `550` for an address the policy does not list. STARTTLS is
offered when the server has a certificate."""

from __future__ import annotations

import logging
import ssl
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from rungs.core.model import Refused
from rungs.engine.writer import Unavailable

from .intake import Intake

__all__ = ["Listener", "SmtpHandler"]

log = logging.getLogger("rungs.inbound")


class SmtpHandler:
    def __init__(self, intake: Intake) -> None:
        self.intake = intake

    async def handle_RCPT(  # aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not self.intake.accepts(address):
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes):
            raw = str(raw).encode("utf-8", "surrogateescape")
        try:
            taken = await self.intake.take(
                raw, envelope_from=envelope.mail_from, rcpts=list(envelope.rcpt_tos)
            )
        except Unavailable:
            return "451 4.3.0 cannot take mail now, try again later"
        except Refused as exc:
            return f"554 5.6.0 {exc.message[:200]}"
        except Exception:
            log.exception("a mail could not be taken")
            return "451 4.3.0 local error, try again later"
        return f"250 2.0.0 OK {taken.case_id or taken.outcome}"


class _Controller(Controller):
    def __init__(self, handler: SmtpHandler, *, tls: ssl.SSLContext | None, **kw: Any) -> None:
        self._tls = tls
        super().__init__(handler, **kw)

    def factory(self) -> SMTP:
        return SMTP(
            self.handler,
            data_size_limit=self.handler.intake.max_size,
            enable_SMTPUTF8=True,
            tls_context=self._tls,
            require_starttls=False,
            hostname=self.hostname,
            ident="Rungs",
        )


class Listener:
    """The listener on its own thread and event loop (aiosmtpd's Controller)."""

    def __init__(
        self, intake: Intake, host: str, port: int, *, tls: ssl.SSLContext | None = None
    ) -> None:
        self.controller = _Controller(SmtpHandler(intake), tls=tls, hostname=host, port=port)

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx
