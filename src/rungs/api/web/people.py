"""People (`/people`, `/people/{id}`): a person's contacts and notification rules, their
on-call shifts, the open cases they hold, and "send a test notification" per contact (a real
send through the outbox and the channel, `Commands.send_test`; its outcome shows here, never in
a case's timeline). Contacts that are secret URLs (webhook, Slack, Apprise) show to the person
and to admins only; a test goes to one's own contacts, or, for an admin, to anyone's."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from rungs.api.feeds import Feeds
from rungs.api.web.render import page, redirect
from rungs.api.web.session import Viewer, require
from rungs.core.model import Refused
from rungs.engine import Engine
from rungs.notify.links import Links
from rungs.policy.model import CHANNELS
from rungs.policy.redact import REDACTED, SECRET_CONTACTS

__all__ = ["people_routes"]


def people_routes(engine: Engine) -> APIRouter:
    router = APIRouter()
    views, commands = engine.views, engine.commands
    feeds = Feeds(Links(engine.db), views)

    def mine(viewer: Viewer, pid: str) -> bool:
        """Whether the viewer may see the person's secrets and act for them."""
        return viewer.person == pid or viewer.can("admin")

    def person_context(viewer: Viewer, pid: str) -> dict[str, Any] | None:
        policy = views.policy()
        person = policy.people.get(pid)
        if person is None:
            return None
        own = mine(viewer, pid)
        contacts = [
            {"channel": ch, "address": addr if own or ch not in SECRET_CONTACTS else REDACTED}
            for ch, addr in person.contacts.items()
            if addr
        ]
        now = views.clock.now()
        teams = [t.id for t in policy.teams.values() if pid in t.members]
        return {
            "person": person,
            "role": getattr(person, "console_role", "responder"),
            "contacts": contacts,
            "rules": person.notify,
            "teams": teams,
            "shifts": views.person_shifts(pid, now),
            "cases": views.held_cases(pid),
            "tests": views.test_sends(pid) if own else [],
            "own": own,
            # the live link only to its person (it is their credential); an admin sees
            # whether it is on, to renew or turn it off
            "feed": feeds.url(pid) if viewer.person == pid else None,
            "feed_on": own and views.feed_nonce(pid) is not None,
            "feed_person": None if viewer.person == pid else pid,
            "names": {p.id: p.name for p in policy.people.values()},
        }

    @router.get("/people")
    async def people_index(
        request: Request, viewer: Viewer = Depends(require("viewer"))
    ) -> Response:
        policy = await run_in_threadpool(views.policy)
        people = sorted(policy.people.values(), key=lambda p: p.name.lower())
        rows = [(p, getattr(p, "console_role", "responder"), sorted(p.contacts)) for p in people]
        return page(request, "people.html", {"rows": rows})

    @router.get("/people/{pid}")
    async def person_page(
        request: Request, pid: str, viewer: Viewer = Depends(require("viewer"))
    ) -> Response:
        ctx = await run_in_threadpool(person_context, viewer, pid)
        if ctx is None:
            raise HTTPException(404, f"no person '{pid}' in the policy")
        return page(request, "person.html", ctx)

    @router.post("/people/{pid}/test")
    async def send_test(
        request: Request,
        pid: str,
        channel: str = Form(..., pattern="^(" + "|".join(CHANNELS) + ")$"),
        viewer: Viewer = Depends(require("viewer")),
    ) -> Response:
        back = f"/people/{pid}"
        if not mine(viewer, pid):
            raise HTTPException(
                403, "a test notification goes to your own contacts (admins: anyone's)"
            )
        try:
            await commands.send_test(pid, channel, viewer.person)
        except Refused as exc:
            if exc.status == 404:
                raise HTTPException(404, exc.message) from None
            return redirect(request, back, toast=("error", exc.message))
        return redirect(
            request,
            back,
            toast=(
                "ok",
                f"A test notification to {pid} by "
                f"{channel} is on its way; its outcome shows below.",
            ),
        )

    return router
