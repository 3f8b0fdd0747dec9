"""Who did it: the person an API action is done as (`by`) and who was authenticated for it
(`actor`, the token's name). Both go on the action's timeline entry.

The rules (issue 12 §1): `by` must name a person of the policy in force (422 naming `by`).
Omitted, it is the token's person; a token that belongs to nobody must give it. A token with a
person acts as another person only with the admin role (403 naming `by`); the entry then keeps
both, `by` and `actor`. The customer's own actions (`customer_reply`, `request_escalation`)
are nobody's on the team: `by` is neither required nor filled in for them.
"""

from __future__ import annotations

from collections.abc import Mapping

from rungs.api.errors import ApiError
from rungs.store.tokens import TokenInfo

__all__ = ["CUSTOMER_ACTIONS", "acting_as"]

CUSTOMER_ACTIONS = frozenset(("customer_reply", "request_escalation"))


def acting_as(
    token: TokenInfo | None, by: str | None, action: str, people: Mapping[str, object]
) -> str | None:
    """The person `action` is done as, by the rules above; ApiError when they refuse it."""
    if by is None and action not in CUSTOMER_ACTIONS:
        by = token.person if token is not None else None
        if by is None:
            name = f"token '{token.name}'" if token is not None else "this request"
            raise ApiError(
                422, f"'by' is required: {name} belongs to no person; name who acts", "by"
            )
        if by not in people:
            raise ApiError(
                422,
                f"'by' defaults to the token's person '{by}', who is not in the policy; "
                "name who acts",
                "by",
            )
    if by is None:
        return None
    if by not in people:
        raise ApiError(422, f"'by' must name a person in the policy; '{by}' is not one", "by")
    if (
        token is not None
        and token.person is not None
        and by != token.person
        and token.role != "admin"
    ):
        raise ApiError(
            403,
            f"token '{token.name}' acts as {token.person}; only an admin token may act as "
            f"another person ('{by}')",
            "by",
        )
    return by
