"""Notification delivery: the dispatcher, channel adapters, messages and one-click links."""

from __future__ import annotations

from rungs.notify.dispatcher import Dispatcher, OutboxHook, install

__all__ = ["Dispatcher", "OutboxHook", "install"]
