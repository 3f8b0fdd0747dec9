"""The pages On call, Policy, People and Admin, as `web_router` includes them (`PAGES`)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter

from rungs.api.web.admin import admin_routes
from rungs.api.web.oncall import oncall_routes
from rungs.api.web.people import people_routes
from rungs.api.web.policy import policy_routes
from rungs.engine import Engine

__all__ = ["CONSOLE_B_PAGES"]

CONSOLE_B_PAGES: tuple[Callable[[Engine], APIRouter], ...] = (
    oncall_routes,
    policy_routes,
    people_routes,
    admin_routes,
)
