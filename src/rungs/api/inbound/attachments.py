"""Attachments kept as content-addressed files (SHA-256) beside the database or in
`--blob-dir`: the same file sent twice is stored once, and no file name from a mail ever
becomes a path. Nothing here is opened, run or rendered."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from rungs.store.mail import Attachment

from .parse import Part

__all__ = ["Blobs", "blob_dir_for"]


def blob_dir_for(db_url: str) -> Path:
    """The default: a `NAME.blobs` folder beside a SQLite file, else `./rungs-blobs`."""
    if db_url.startswith("sqlite:///") and db_url != "sqlite:///:memory:":
        return Path(db_url.removeprefix("sqlite:///") + ".blobs")
    return Path("rungs-blobs")


class Blobs:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, sha256: str) -> Path | None:
        """The stored file for a digest (None when the digest is not one or not stored)."""
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            return None
        p = self.folder / sha256[:2] / sha256
        return p if p.is_file() else None

    def keep(self, parts: list[Part] | tuple[Part, ...]) -> list[Attachment]:
        """Write each part once (atomically: a temporary file renamed into place)."""
        out = []
        for part in parts:
            digest = hashlib.sha256(part.data).hexdigest()
            target = self.folder / digest[:2] / digest
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
                try:
                    with os.fdopen(fd, "wb") as f:
                        f.write(part.data)
                        f.flush()
                        os.fsync(f.fileno())
                    os.replace(tmp, target)
                except BaseException:
                    Path(tmp).unlink(missing_ok=True)
                    raise
            out.append(Attachment(part.filename, part.content_type, len(part.data), digest))
        return out
