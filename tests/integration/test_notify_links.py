"""One-click links: signed, expiring, naming their person; the secret kept in the database."""

from __future__ import annotations

from pathlib import Path

import pytest

from rungs.notify.links import LinkError, Links
from rungs.store.db import make_engine, upgrade


def test_links_are_signed_expiring_and_name_their_person(tmp_path: Path) -> None:
    db = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    upgrade(db)
    links = Links(db)
    token = links.token("C7", "acknowledge", "ann", 2_000_000_000_000_000, "C7:n1")
    link = links.check(token, 1_900_000_000_000_000)
    assert (link.case_id, link.action, link.person, link.nonce) == (
        "C7",
        "acknowledge",
        "ann",
        "C7:n1",
    )
    assert Links(db).secret == links.secret  # generated once, kept in the database
    with pytest.raises(LinkError) as late:
        links.check(token, 2_000_000_000_000_000)
    assert late.value.status == 410 and late.value.reason == "expired"
    sig = token.partition(".")[2]
    forged = links.token("C7", "resolve", "ann", 2_000_000_000_000_000, "C7:n1").split(".")[0]
    with pytest.raises(LinkError) as bad:
        links.check(f"{forged}.{sig}", 0)
    assert bad.value.status == 404
    db.dispose()
