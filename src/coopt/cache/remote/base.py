"""What every remote backend is: a store of bytes by key with get/put/exists/delete, and one failure type.

The tier above (cache/remote/sync.py) packs, signs and checks what it stores; a backend only moves bytes. Any failure of
the server or the way to it -- refused, timed out, a protocol error, credentials refused, a 5xx -- is a
`RemoteError`, so the caller has one thing to catch and can skip the remote for the rest of the build.
"""

from __future__ import annotations

import abc

# Keys are short ascii paths such as "m/<hex>" or "e/ab/<hex>"; these characters map to a redis key, a URL path
# and a file name alike without quoting.
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
MAX_KEY = 512


class RemoteError(Exception):
    """A remote store failed; `reason` is a short text without any credential (e.g. "timeout", "HTTP 503").

    `timeout` is True when the failure was the server not answering within the configured time."""

    def __init__(self, reason: str, *, timeout: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timeout = timeout


class Backend(abc.ABC):  # abc, not typing.Protocol: typing costs coopt-cc milliseconds to import
    """A remote store of whole objects by key."""

    @abc.abstractmethod
    def get(self, key: str) -> bytes | None:
        """The object stored under `key`, or None when there is none."""

    @abc.abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key`, replacing what was there."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """True when an object is stored under `key`."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object under `key`; nothing when there is none."""

    @abc.abstractmethod
    def close(self) -> None:
        """Drop the connection, if any. The backend reconnects on its next call."""


def check_key(key: str) -> str:
    """`key` when it is a safe relative path of [A-Za-z0-9._-] segments; ValueError otherwise (a caller's bug)."""
    if not key or len(key) > MAX_KEY:
        raise ValueError("remote key must be 1 to %d characters" % MAX_KEY)
    for part in key.split("/"):
        if part in ("", ".", "..") or not _KEY_CHARS.issuperset(part):
            raise ValueError("remote key %r is not a relative path of [A-Za-z0-9._-] segments" % key)
    return key


def read_only_error(display: str) -> RemoteError:
    """The error of a write to a remote configured read-only (raised before any contact with the server)."""
    return RemoteError("read-only remote %s: not written" % display)
