"""Twilio's request format, for SMS and voice (any compatible provider)."""

from __future__ import annotations

import base64
import re
from urllib.parse import urlencode

from rungs.notify.channels._http import env, post
from rungs.notify.channels.base import Context
from rungs.policy.channels import TwilioConfig

__all__ = ["e164", "twilio"]


def e164(number: str) -> str:
    """`+49 170 111-1111` -> `+491701111111`, as SMS and voice providers want it."""
    return re.sub(r"[^\d+]", "", number)


async def twilio(
    ctx: Context, cfg: TwilioConfig, what: str, form: dict[str, str], key: str
) -> None:
    account = env(cfg.account_env, f"channels.{what}.account_env")
    token = env(cfg.token_env, f"channels.{what}.token_env")
    url = cfg.url.format(account=account)
    basic = base64.b64encode(f"{account}:{token}".encode()).decode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": f"Basic {basic}",
        "Idempotency-Key": key,
        "I-Twilio-Idempotency-Token": key,
    }
    await post(ctx, url, cfg.timeout, urlencode(form).encode(), headers)
