"""The pure escalation core: decide(case, event, now, policy) -> (case, effects)."""
