"""A raw mail into what Rungs keeps of it: headers read by the standard library's `email`
(RFC 5322 and MIME), the text part (or the HTML part as text, by `html2text`), quoted
replies and signatures stripped (`mail-parser-reply`), and the attachments' bytes.

Nothing in a mail is run or rendered: HTML is only converted to text, attachments are only
hashed and stored (`attachments.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr

import html2text
from mailparser_reply import EmailReplyParser

__all__ = ["Part", "Parsed", "parse", "MAX_TEXT", "MAX_SUBJECT"]

MAX_TEXT = 100_000  # characters of a mail's text kept on the case
MAX_SUBJECT = 500
# printable ASCII without "<" and ">": ids are indexed (ix_mail_messages_message_id), and
# PostgreSQL refuses an index row over ~2700 bytes
_IDS = re.compile(r"<[!-;=?-~]{1,250}>")
_REPLY = EmailReplyParser(languages=["en", "de", "fr", "es", "it", "nl"])


@dataclass(frozen=True, slots=True)
class Part:
    """One attachment as sent (its bytes stay in memory only until they are stored)."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Parsed:
    message_id: str  # as written, with angle brackets (made up when the mail has none)
    sender: str  # lower case, without a display name ("" when none could be read)
    recipients: tuple[str, ...]  # To, then Cc (lower case)
    subject: str
    text: str
    date: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    headers: dict[str, str]  # lower-case name -> value, for auto-reply detection
    attachments: tuple[Part, ...] = field(default=())

    @property
    def ids(self) -> tuple[str, ...]:
        """Ids this mail answers: In-Reply-To, then References from the newest."""
        return tuple(dict.fromkeys((*self.in_reply_to, *reversed(self.references))))


def parse(raw: bytes, *, envelope_from: str | None = None, fallback_id: str) -> Parsed:
    """Read a mail; `fallback_id` becomes its Message-ID when it has none (a hash of it, so a
    second delivery of the same bytes is recognised)."""
    msg = message_from_bytes(raw, policy=email_policy.default)
    assert isinstance(msg, EmailMessage)
    # raw values, unfolded: only the subject needs decoding (the others are addresses and
    # ids, or are only tested), and the structured parse of every header costs a third of it
    headers: dict[str, str] = {}
    for k, v in msg.raw_items():
        headers.setdefault(k.lower(), _clean(" ".join(str(v).split())))
    headers["subject"] = _clean(_header(msg, "subject"))
    # a mail of one part (most are) is its own body: no MIME walk, which parses Content-Type
    # again at every step
    single = msg.get_content_type() if not msg.is_multipart() else None
    sender = _address(headers.get("from", "")) or _clean(envelope_from or "").strip().lower()
    recipients = tuple(
        a.lower() for _, a in getaddresses([headers.get("to", ""), headers.get("cc", "")]) if a
    )
    mid = _IDS.search(headers.get("message-id", ""))
    return Parsed(
        message_id=mid.group(0) if mid else fallback_id,
        sender=sender,
        recipients=recipients,
        subject=" ".join(headers.get("subject", "").split())[:MAX_SUBJECT],
        text=_clean(_text(msg, single)),
        date=headers.get("date") or None,
        in_reply_to=tuple(_IDS.findall(headers.get("in-reply-to", "")))[:5],
        references=tuple(_IDS.findall(headers.get("references", "")))[-30:],
        headers=headers,
        attachments=() if single is not None else tuple(_attachments(msg)),
    )


def _clean(value: str) -> str:
    """Without NUL: PostgreSQL's text cannot hold it, and a mail (or its decoded
    encoded-words and body) may carry one."""
    return value.replace("\x00", "")


def _header(msg: EmailMessage, name: str) -> str:
    try:
        return str(msg.get(name, ""))
    except (ValueError, TypeError, IndexError):  # a header the parser cannot decode
        raw = msg.get_all(name) or [""]
        return str(raw[0]).encode("ascii", "replace").decode()


def _address(value: str) -> str:
    addr = parseaddr(value)[1].strip().lower()
    return addr if "@" in addr else ""


def _text(msg: EmailMessage, single: str | None) -> str:
    """The new text of the mail: plain part preferred, else HTML as text; quoted replies and
    signatures stripped. `single`: the content type of a mail of one part."""
    if single is not None:
        body: EmailMessage | None = msg if single in ("text/plain", "text/html") else None
        ctype = single
    else:
        found = msg.get_body(preferencelist=("plain", "html"))
        body = found if isinstance(found, EmailMessage) else None
        ctype = body.get_content_type() if body is not None else ""
    if body is None:
        return ""
    # what `get_content` does (transfer encoding, then charset), with one Content-Type parse
    payload = body.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    try:
        content = payload.decode(body.get_content_charset() or "utf-8", "replace")
    except (LookupError, UnicodeError):  # a charset Python does not know, or a codec that is
        content = payload.decode("utf-8", "replace")  # no text decoder (`idna` raises on text)
    if ctype == "text/html":
        conv = html2text.HTML2Text(bodywidth=0)
        conv.ignore_images = True
        content = conv.handle(content)
    content = content.replace("\r\n", "\n")[: MAX_TEXT * 2]
    try:
        replies = _REPLY.read(content).replies
        new = replies[0].body if replies else content
    except Exception:  # the parser's regexes on a mail it cannot read: keep the whole text
        new = content
    return (new or content).strip()[:MAX_TEXT]


def _attachments(msg: EmailMessage) -> list[Part]:
    out = []
    for part in msg.iter_attachments():
        if part.is_multipart():
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        name = part.get_filename() or "attachment"
        out.append(Part(_safe_name(name), part.get_content_type()[:255], data))
    return out


def _safe_name(name: str) -> str:
    """A file name as a listing shows it: no path, no control characters."""
    name = re.sub(r"[\x00-\x1f\x7f/\\]+", "_", name).strip(" .") or "attachment"
    return name[:200]
