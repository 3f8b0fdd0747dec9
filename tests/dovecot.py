"""A real IMAP server for the tests: Debian's Dovecot (`dovecot-imapd`, installed by `make
test`), started with its own configuration in a temporary folder, plain password and user
files, listening on a free port of 127.0.0.1."""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.procs import free_port, wait_until

__all__ = ["Dovecot"]

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
first_valid_uid = 0
first_valid_gid = 0
mail_uid = {uid}
mail_gid = {gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = home={root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service auth {{
  user = {user_name}
}}
service auth-worker {{
  user = {user_name}
}}
"""


def _binary() -> str:
    found = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists()
                                        else None)  # fmt: skip
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("dovecot is not installed (make test installs dovecot-imapd)")
        pytest.skip("dovecot is not installed (make test installs dovecot-imapd)")
    return found


class Dovecot:
    """One Dovecot instance with one mailbox user."""

    def __init__(self, user: str = "desk@acme.test", password: str = "secret") -> None:
        # its own folder, which its mail processes (never root) can reach
        root = Path(tempfile.mkdtemp(prefix="rungs-dovecot-"))
        root.chmod(0o711)
        self.root, self.user, self.password = root, user, password
        self.port = free_port()
        for sub in ("run", "state", "mail"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "mail").chmod(0o777)
        (root / "passwd").write_text(f"{user}:{{PLAIN}}{password}\n")
        name = pwd.getpwuid(os.getuid()).pw_name  # auth reads the password file as this user
        mail_user = pwd.getpwnam("nobody") if os.geteuid() == 0 else pwd.getpwuid(os.getuid())
        uid, gid = mail_user.pw_uid, mail_user.pw_gid
        conf = root / "dovecot.conf"
        conf.write_text(CONFIG.format(root=root, port=self.port, uid=uid, gid=gid, user_name=name))
        self.proc = subprocess.Popen(
            [_binary(), "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        wait_until("dovecot to listen", self._ready, timeout=15)

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"dovecot exited: {self.proc.stderr.read().decode()[-500:]}")  # type: ignore[union-attr]
        try:
            with imaplib.IMAP4("127.0.0.1", self.port) as c:
                c.login(self.user, self.password)
            return True
        except OSError:
            return False

    def client(self) -> imaplib.IMAP4:
        c = imaplib.IMAP4("127.0.0.1", self.port)
        c.login(self.user, self.password)
        return c

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        with self.client() as c:
            status, _ = c.append(folder, None, None, raw)
            assert status == "OK"

    def unseen(self, folder: str = "INBOX") -> list[bytes]:
        with self.client() as c:
            c.select(folder, readonly=True)
            status, data = c.search(None, "UNSEEN")
            assert status == "OK"
            return data[0].split()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)
