"""Customers' mail in: the SMTP listener and the IMAP poller (the two doors), parsing,
auto-reply detection, routing, automatic answers and attachments. What a mail does to a case
is decided in one writer transaction by `rungs.engine.mail` through `Commands.take_mail`."""

from __future__ import annotations

from .attachments import Blobs, blob_dir_for
from .intake import DEFAULT_MAX_SIZE, Intake
from .routes import inbound_router

__all__ = ["DEFAULT_MAX_SIZE", "Blobs", "Intake", "blob_dir_for", "inbound_router"]
