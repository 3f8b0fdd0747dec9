"""The IMAP poller: an existing mailbox (`inbound_email.imap`) read on its own thread with
IMAPClient. Unseen messages are fetched with `BODY.PEEK[]` (which leaves them unseen), taken,
and flagged `\\Seen` only once their case is committed, so a crash in between takes them
again (the Message-ID makes the second time a no-op). It waits with IDLE where the server
offers it (searching again at least every `idle_s` seconds), else polls every `poll_s`
seconds; a lost connection is tried again with backoff; `stop()` cuts a wait at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import threading

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from rungs.core.model import Refused
from rungs.engine.writer import Unavailable
from rungs.policy.model import Imap
from rungs.policy.secrets import SecretRefused, read_secret

from .intake import Intake

__all__ = ["ImapPoller"]

log = logging.getLogger("rungs.inbound")
SEEN = b"\\Seen"


class ImapPoller:
    def __init__(
        self,
        intake: Intake,
        settings: Imap,
        *,
        poll_s: float = 30.0,
        idle_s: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.intake = intake
        self.settings = settings
        self.poll_s = poll_s
        # how long one IDLE waits before searching again anyway: a new message's EXISTS can
        # reach the client together with IDLE's continuation line and sit in imaplib's read
        # buffer, where IMAPClient's poll of the socket does not see it
        self.idle_s = idle_s
        self.ssl_context = ssl_context
        self.taken = 0
        self._too_big: set[int] = set()  # left unseen, said once
        self._failed: set[int] = set()  # could not be taken: left unseen, said once
        self._stop = threading.Event()
        self._client: IMAPClient | None = None  # the connection in use (stop() cuts it)
        self._thread = threading.Thread(target=self._run, name="rungs-imap", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop at once: a wait in IDLE is cut by shutting the connection's socket."""
        self._stop.set()
        client = self._client
        if client is not None:
            with contextlib.suppress(OSError):
                client.socket().shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        backoff = 1.0
        try:
            while not self._stop.is_set():
                try:
                    with self._connect() as client:
                        self._client = client
                        backoff = 1.0
                        self._serve(client, loop)
                except SecretRefused as exc:  # the environment will not change: stop
                    log.error("IMAP %s: %s; not reading mail", self.settings.host, exc)
                    break
                except (IMAPClientError, OSError, KeyError, ssl.SSLError) as exc:
                    if self._stop.is_set():
                        break
                    log.warning("IMAP %s: %s; trying again in %.0fs", self.settings.host, exc,
                                backoff)  # fmt: skip
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 60.0)
        finally:
            loop.close()

    def _connect(self) -> IMAPClient:
        s = self.settings
        # named by the policy: only variables with the deployment's prefix (checked again
        # here, as every reader of a `*_env` does: a policy stored before a prefix change)
        user = read_secret(s.user_env, os.environ)
        password = read_secret(s.password_env, os.environ)
        if user is None or password is None:
            raise KeyError(f"{s.user_env} and {s.password_env} must be set")
        tls = s.tls == "tls"
        client = IMAPClient(s.host, port=s.port, ssl=tls, ssl_context=self.ssl_context, timeout=30)
        if s.tls == "starttls":
            client.starttls(self.ssl_context or ssl.create_default_context())
        client.login(user, password)
        client.select_folder(s.folder)
        return client

    def _serve(self, client: IMAPClient, loop: asyncio.AbstractEventLoop) -> None:
        idle = client.has_capability("IDLE")
        while not self._stop.is_set():
            self._take_unseen(client, loop)
            if idle:
                client.idle()
                try:
                    client.idle_check(timeout=self.idle_s)
                finally:
                    client.idle_done()
            else:
                self._stop.wait(self.poll_s)
                client.noop()

    def _take_unseen(self, client: IMAPClient, loop: asyncio.AbstractEventLoop) -> None:
        for uid in client.search(["UNSEEN"]):
            if self._stop.is_set():
                return
            if uid in self._too_big or uid in self._failed:
                continue
            # the size first: a message over the limit is never downloaded
            size = (client.fetch([uid], ["RFC822.SIZE"]).get(uid) or {}).get(b"RFC822.SIZE")
            if not isinstance(size, int) or size > self.intake.max_size:
                self._leave_too_big(uid)
                continue
            fetched = client.fetch([uid], ["BODY.PEEK[]"]).get(uid) or {}
            raw = fetched.get(b"BODY[]")
            if not isinstance(raw, bytes):
                continue
            if len(raw) > self.intake.max_size:  # the server under-stated it
                self._leave_too_big(uid)
                continue
            try:
                loop.run_until_complete(self.intake.take(raw))
            except Unavailable:
                return  # the database cannot take it now: the next round takes it
            except Refused as exc:
                log.warning("IMAP message %s refused: %s (flagged seen)", uid, exc.message)
            except Exception:  # this message only: the others are still taken
                log.exception("IMAP message %s could not be taken: left unseen", uid)
                self._failed.add(uid)
                continue
            client.add_flags([uid], [SEEN])  # only after the commit: never lost
            self.taken += 1

    def _leave_too_big(self, uid: int) -> None:
        """Left unseen where it is (for a person to read in the mailbox), said once."""
        log.warning("IMAP message %s is over the size limit: left unseen", uid)
        self._too_big.add(uid)
