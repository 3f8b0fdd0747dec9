"""One way in for every mail, whichever door it came through (SMTP or IMAP): parse, store
attachments, route, and hand to `Commands.take_mail`, which answers once it is committed."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

from rungs.engine import Engine
from rungs.engine.mail import Inbound, Taken
from rungs.policy import Policy

from .answers import compose
from .attachments import Blobs
from .parse import parse
from .route import inbound

__all__ = ["DEFAULT_MAX_SIZE", "Intake"]

DEFAULT_MAX_SIZE = 10 * 1024 * 1024  # bytes of one mail, attachments included


class Intake:
    def __init__(self, engine: Engine, blobs: Blobs, *, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self.engine = engine
        self.blobs = blobs
        self.max_size = max_size

    def policy(self) -> Policy:
        """The policy in force, compiled."""
        p = self.engine.policies
        return p.policy(p.current_version())

    def accepts(self, address: str) -> bool:
        """Whether mail to `address` is taken (any, when the policy lists no addresses)."""
        mail = self.policy().inbound_email
        return mail is None or not mail.addresses or address.lower() in mail.addresses

    async def take(
        self, raw: bytes, *, envelope_from: str | None = None, rcpts: Sequence[str] = ()
    ) -> Taken:
        """Take one mail: returns once its case (or its unmatched row) is committed."""
        fallback = f"<{hashlib.sha256(raw).hexdigest()[:40]}@rungs.invalid>"

        def prepare() -> Inbound:
            parsed = parse(raw, envelope_from=envelope_from, fallback_id=fallback)
            stored = self.blobs.keep(parsed.attachments)
            return inbound(parsed, rcpts, self.policy(), stored, envelope_from=envelope_from)

        mail = await asyncio.to_thread(prepare)
        return await self.engine.commands.take_mail(mail, compose)
