"""Apprise: any of its URLs (it blocks, so it runs on a thread).

The channel's `timeout` bounds the send: it caps the plugin's own connect and read timeouts
(Apprise's `cto`/`rto`, 4 s each by default), and a backstop of twice that (a connect and a
read) bounds the whole call, for a plugin that makes several requests or ignores them: past
it the send is a transient failure (tried again) while its thread finishes on its own.
"""

from __future__ import annotations

import asyncio
import importlib

from rungs.notify.channels.base import Context, DeliveryError, Outgoing
from rungs.policy.channels import AppriseConfig

__all__ = ["NAME", "send"]

NAME = "apprise"


def _load() -> None:
    # Imported on first use, not at the top: it costs every process 0.2-0.4 s at start-up
    # (measured), and few policies use it. Not counted against a send's timeout.
    importlib.import_module("apprise")


def _notify(out: Outgoing, timeout: float) -> None:
    import apprise  # loaded by _load

    server = apprise.Apprise.instantiate(out.address)
    if server is None:
        raise DeliveryError("not a URL Apprise knows", permanent=True)
    server.socket_connect_timeout = min(server.socket_connect_timeout, timeout)
    server.socket_read_timeout = min(server.socket_read_timeout, timeout)
    ap = apprise.Apprise()
    ap.add(server)
    ok = ap.notify(title=out.message.subject, body=out.message.text)
    if not ok:
        raise DeliveryError("Apprise could not deliver (see the server log)")


async def send(ctx: Context, out: Outgoing) -> None:
    cfg = out.cfg if isinstance(out.cfg, AppriseConfig) else AppriseConfig()
    timeout = cfg.timeout
    await ctx.blocking(_load)
    try:
        await asyncio.wait_for(ctx.blocking(lambda: _notify(out, timeout)), 2 * timeout + 1)
    except TimeoutError:
        raise DeliveryError(f"Apprise did not finish within its timeout ({timeout:g} s)") from None
