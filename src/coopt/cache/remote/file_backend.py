"""file:///dir: a remote store in a shared directory (NFS, a mounted volume). One file per key.

Writes go to a temporary file in the target's directory and are renamed over it, so a reader on any machine sees
the old object or the new one, never a half-written one. No timeout can be set on a file system: a hung NFS mount
hangs the call (use redis:// or http:// where that matters).
"""

from __future__ import annotations

import os

from coopt.cache.remote.base import Backend, RemoteError, check_key, read_only_error
from coopt.cache.remote.spec import RemoteSpec


class FileBackend(Backend):
    """Objects as files under `spec.path`; the key is the relative path."""

    def __init__(self, spec: RemoteSpec) -> None:
        self.spec = spec
        self.root = spec.path

    def __repr__(self) -> str:
        return "FileBackend(%s)" % self.spec.display

    def _path(self, key: str) -> str:
        return os.path.join(self.root, check_key(key))

    def get(self, key: str) -> bytes | None:
        """The file's bytes, or None when there is no such file."""
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise RemoteError("cannot read %s: %s" % (key, exc.strerror or exc)) from None

    def put(self, key: str, data: bytes) -> None:
        """Write the file atomically (temporary file in the same directory, then os.replace)."""
        if self.spec.read_only:
            raise read_only_error(self.spec.display)
        path = self._path(key)
        if not os.path.isdir(self.root):  # the share itself must exist: a missing mount is an error, not a mkdir
            raise RemoteError("no directory %s (create it)" % self.root)
        tmp = "%s.tmp-%d-%s" % (path, os.getpid(), os.urandom(4).hex())
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise RemoteError("cannot write %s: %s" % (key, exc.strerror or exc)) from None

    def exists(self, key: str) -> bool:
        """True when the file is there."""
        path = self._path(key)
        try:
            os.stat(path)
            return True
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as exc:
            raise RemoteError("cannot stat %s: %s" % (key, exc.strerror or exc)) from None

    def delete(self, key: str) -> None:
        """Remove the file; nothing when it is not there."""
        if self.spec.read_only:
            raise read_only_error(self.spec.display)
        try:
            os.unlink(self._path(key))
        except (FileNotFoundError, NotADirectoryError):
            pass
        except OSError as exc:
            raise RemoteError("cannot delete %s: %s" % (key, exc.strerror or exc)) from None

    def close(self) -> None:
        """Nothing to close."""
