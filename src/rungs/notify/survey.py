"""The survey mail, rendered at delivery: one link per rating (`/s/{token}?rating=N`, which
opens the survey page with that rating chosen and records nothing until it is sent), and the
requester's opt-out link (`/s/{token}/opt_out`)."""

from __future__ import annotations

from html import escape
from typing import Any

from rungs.notify.messages import Message

__all__ = ["survey_message", "with_survey"]

_WORDS = {5: ("very bad", "bad", "okay", "good", "very good"), 2: ("bad", "good")}


def survey_message(base: str, subject: str, survey: dict[str, Any]) -> tuple[str, str]:
    """(text, html) of the survey mail for `survey` (`token`, `scale`, `case`, `title`)."""
    token, scale = str(survey["token"]), int(survey["scale"])
    words = _WORDS.get(scale, _WORDS[5])
    links = [(n, words[n - 1], f"{base}/s/{token}?rating={n}") for n in range(1, scale + 1)]
    opt_out = f"{base}/s/{token}/opt_out"
    case = f"case {survey['case']} ({survey['title']})"
    text = (
        f"Your {case} was resolved. How satisfied are you with how we handled it?\n\n"
        + "".join(f"  {n} ({word}): {url}\n" for n, word, url in links)
        + "\nEach link opens a page where you can add a comment before you send your rating.\n"
        f"\nNo more surveys: {opt_out}\n"
    )
    items = "".join(
        f'<li><a href="{escape(url)}">{n} – {escape(word)}</a></li>' for n, word, url in links
    )
    html = (
        f"<p>Your {escape(case)} was resolved. How satisfied are you with how we handled it?</p>"
        f"<ul>{items}</ul><p>Each link opens a page where you can add a comment.</p>"
        f'<p><a href="{escape(opt_out)}">No more surveys</a></p>'
    )
    return text, html


def with_survey(msg: Message, base: str, survey: dict[str, Any]) -> Message:
    text, html = survey_message(base, msg.subject, survey)
    return Message(msg.subject, text, html, msg.data)
