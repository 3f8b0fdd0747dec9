"""People keyed by e-mail, shared by the importers: one Rungs person per address, whatever
vendor ids point at it, and the vendor id -> person id map the other sections read."""

from __future__ import annotations

from rungs.importers.common import Slugs
from rungs.importers.plan import Draft, Person

__all__ = ["Directory"]


class Directory:
    """Vendor user ids (and e-mails, and usernames) to Rungs person ids."""

    def __init__(self, draft: Draft, slugs: Slugs) -> None:
        self.draft = draft
        self.slugs = slugs
        self.by_email: dict[str, Person] = {}
        self.ids: dict[str, str] = {}  # vendor id, e-mail or username -> person id

    def add(self, source: str, name: str, email: str, *aliases: str) -> Person:
        """The person with this e-mail, created on first sight (the same address under two
        vendor ids is one person)."""
        key = email.strip().lower()
        person = self.by_email.get(key)
        if person is None:
            pid = self.slugs.new("people", name or key.split("@")[0], "person")
            person = Person(pid, name or email, email.strip(), source)
            self.by_email[key] = person
            self.draft.people.append(person)
        else:
            self.draft.cannot(
                "user", name, f"has the e-mail of {person.name!r} ({email}): merged into one person"
            )
        for alias in (source, key, *aliases):
            if alias:
                self.ids[alias] = person.id
                self.ids[alias.lower()] = person.id
        return person

    def get(self, ref: str | None) -> str | None:
        if ref is None:
            return None
        return self.ids.get(ref) or self.ids.get(ref.lower())

    def set_contact(self, person: Person, method: str, address: str, label: str) -> bool:
        """Keep the first address per method; another one is reported (Rungs keeps one per
        channel). Returns whether `address` is the one kept."""
        if method == "email" and address.lower() == person.email.lower():
            return True
        have = person.contacts.get(method)
        if have is None:
            if method == "email":
                self.draft.cannot(
                    "contact method",
                    f"{person.name}: {label}",
                    f"a second e-mail address ({address}); Rungs keeps {person.email}",
                )
                return False
            person.contacts[method] = address
            return True
        if have == address:
            return True
        self.draft.cannot(
            "contact method",
            f"{person.name}: {label}",
            f"a second {method} contact ({address}); Rungs keeps one per channel ({have})",
        )
        return False
