"""The API's route modules, one per concern; `rungs.api.app` includes them."""

from __future__ import annotations

from rungs.api.routes.cases import cases_router
from rungs.api.routes.clock import clock_router
from rungs.api.routes.health import Metrics, health_router
from rungs.api.routes.policy import policy_router

__all__ = ["Metrics", "cases_router", "clock_router", "health_router", "policy_router"]
