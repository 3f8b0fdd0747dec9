"""Mail that must never be answered: auto-replies and bulk mail (RFC 3834 and the usual
headers), so two robots never answer each other."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["is_automatic"]

_BULK = ("bulk", "junk", "list")
_DAEMONS = ("mailer-daemon", "postmaster")


def is_automatic(headers: Mapping[str, str], sender: str) -> bool:
    """Whether the mail is an auto-reply, a bounce or bulk mail (`headers`: lower-case
    names). `Auto-Submitted` other than `no`, `Precedence: bulk|junk|list`, `X-Autoreply`,
    `X-Autorespond`, an empty `Return-Path` (`<>`), or a `MAILER-DAEMON` sender."""
    auto = headers.get("auto-submitted", "").strip().lower()
    if auto and auto.split(";")[0].strip() != "no":
        return True
    if headers.get("precedence", "").strip().lower() in _BULK:
        return True
    if "x-autoreply" in headers or "x-autorespond" in headers:
        return True
    if "return-path" in headers and headers["return-path"].strip() in ("<>", ""):
        return True
    local = sender.partition("@")[0]
    return not sender or local in _DAEMONS
