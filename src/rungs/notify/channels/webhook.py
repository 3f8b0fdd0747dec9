"""Webhook: the message's JSON, signed with HMAC-SHA256 when the policy names a secret.

`X-Rungs-Signature: sha256=<hex HMAC of "<X-Rungs-Timestamp>.<body>">`, `Idempotency-Key`.
"""

from __future__ import annotations

import hmac

from rungs.notify.channels._http import body, env, post
from rungs.notify.channels.base import Context, Outgoing
from rungs.policy.channels import WebhookConfig

__all__ = ["NAME", "send", "sign"]

NAME = "webhook"
_SLICE = 2047  # hashlib keeps the GIL below 2048 bytes


def sign(secret: bytes, timestamp: str, raw: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`, as X-Rungs-Signature carries it.

    Fed in slices under 2 KiB: hashlib lets go of the GIL for longer input, and getting it
    back in a busy server can take a whole switch interval (5 ms) of another thread."""
    mac = hmac.new(secret, timestamp.encode() + b".", "sha256")
    view = memoryview(raw)
    for i in range(0, len(view), _SLICE):
        mac.update(view[i : i + _SLICE])
    return "sha256=" + mac.hexdigest()


async def send(ctx: Context, out: Outgoing) -> None:
    cfg = out.cfg
    assert isinstance(cfg, WebhookConfig)
    raw = body(out.message.data or {})
    ts = str(out.now // 1_000_000)
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": out.key,
        "X-Rungs-Timestamp": ts,
    }
    if cfg.secret_env:
        secret = env(cfg.secret_env, "channels.webhook.secret_env")
        headers["X-Rungs-Signature"] = sign(secret.encode(), ts, raw)
    await post(ctx, out.address, cfg.timeout, raw, headers)
