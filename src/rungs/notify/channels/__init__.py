"""The delivery channels: one module each, behind one `send(ctx, out)`.

A channel is added by adding a module here with `NAME` and `async def send(ctx, out)` (see
`base.py`); `CHANNELS` finds every public module of this package. Its settings are the
policy's `channels.<NAME>` section (`rungs.policy.channels`).
"""

from __future__ import annotations

import importlib
import pkgutil

from rungs.notify.channels.base import Channel, ChannelConfig, Context, DeliveryError, Outgoing
from rungs.policy.channels import LogConfig

__all__ = [
    "CHANNELS",
    "Channel",
    "ChannelConfig",
    "Context",
    "DeliveryError",
    "Outgoing",
    "send",
]


def _discover() -> dict[str, Channel]:
    found: dict[str, Channel] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name == "base":
            continue
        module: Channel = importlib.import_module(f"{__name__}.{info.name}")  # type: ignore[assignment]
        found[module.NAME] = module
    return found


CHANNELS: dict[str, Channel] = _discover()  # name -> module: built once, at import


async def send(ctx: Context, out: Outgoing) -> None:
    """Send through the channel `out` names (or the log, when `channels.log` stands in for
    it); a permanent failure for one Rungs does not know."""
    channel = CHANNELS.get("log" if isinstance(out.cfg, LogConfig) else out.channel)
    if channel is None:
        raise DeliveryError(f"unknown channel '{out.channel}'", permanent=True)
    await channel.send(ctx, out)
