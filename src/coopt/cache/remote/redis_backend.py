"""redis://: objects as redis strings under `coopt:<key>`, spoken in RESP2 over a plain socket.

On a fresh connection AUTH ([user] password) and SELECT db go out in the same write as the first command, so the
first call costs one round trip too. Who may write is redis's business: give the writer a user with +set/+del and
everyone else a user (or the default user) with only +get/+exists; a refused command is a RemoteError.
"""

from __future__ import annotations

import time

from coopt.cache.remote.base import Backend, RemoteError, check_key, read_only_error
from coopt.cache.remote.spec import RemoteSpec
from coopt.cache.remote.wire import Closed, Wire

PREFIX = "coopt:"
Reply = object  # bytes | int | str | None | list | ReplyError


class ReplyError:
    """A RESP error reply (`-ERR ...`), returned by the parser so pipelined replies are all read first."""

    def __init__(self, text: str) -> None:
        self.text = text


def encode(*args: bytes | str | int) -> list[bytes]:
    """One RESP command as pieces to send; a large value is sent as it is, not copied into a bigger buffer."""
    head = [b"*%d\r\n" % len(args)]
    out: list[bytes] = []
    for arg in args:
        b = arg if isinstance(arg, bytes) else str(arg).encode()
        head.append(b"$%d\r\n" % len(b))
        if len(b) > 65536:
            out += [b"".join(head), b, b"\r\n"]
            head = []
        else:
            head += [b, b"\r\n"]
    if head:
        out.append(b"".join(head))
    return out


class RedisBackend(Backend):
    """A redis server as a remote store."""

    def __init__(self, spec: RemoteSpec) -> None:
        self.spec = spec
        self.wire = Wire(spec.host, spec.port, spec.connect_timeout, spec.timeout)

    def __repr__(self) -> str:
        return "RedisBackend(%s)" % self.spec.display

    # -- protocol ----------------------------------------------------------------------------------------------

    def _read(self) -> Reply:
        line = self.wire.readline()
        kind, rest = line[:1], line[1:]
        try:
            if kind == b"+":
                return rest.decode("utf-8", "replace")
            if kind == b"-":
                return ReplyError(rest.decode("utf-8", "replace"))
            if kind == b":":
                return int(rest)
            if kind == b"$":
                n = int(rest)
                if n < 0:
                    return None
                data = self.wire.read_exact(n)
                self.wire.read_exact(2)
                return data
            if kind == b"*":
                n = int(rest)
                return None if n < 0 else [self._read() for _ in range(n)]
        except ValueError:
            pass
        raise RemoteError("redis protocol error")

    def _check(self, reply: Reply) -> Reply:
        if isinstance(reply, ReplyError):
            text = reply.text
            if self.spec.password:
                text = text.replace(self.spec.password, "***")
            raise RemoteError("redis refused: %s" % text[:160])
        return reply

    def _handshake(self) -> list[list[bytes]]:
        out = []
        if self.spec.password:
            auth = (self.spec.user, self.spec.password) if self.spec.user else (self.spec.password,)
            out.append(encode("AUTH", *auth))
        if self.spec.db:
            out.append(encode("SELECT", self.spec.db))
        return out

    def command(self, *args: bytes | str | int) -> Reply:
        """Run one redis command; its reply (bytes, int, str, None or a list). RemoteError on any failure,
        including an error reply. For the store's own operations and for tests."""
        end = time.monotonic() + self.spec.connect_timeout + self.spec.timeout
        for attempt in (0, 1):
            fresh = self.wire.start(end)
            try:
                first = self._handshake() if fresh else []
                self.wire.send(*[p for cmd in first for p in cmd], *encode(*args))
                replies = [self._read() for _ in range(len(first) + 1)]
                for r in replies[:-1]:
                    self._check(r)
                return self._check(replies[-1])
            except Closed:
                self.wire.close()
                if fresh or attempt:  # a fresh connection that closes is the server's answer, not staleness
                    raise
            except RemoteError:
                self.wire.close()
                raise
        raise AssertionError("unreachable")

    def _key(self, key: str) -> str:
        return PREFIX + check_key(key)

    # -- Backend -----------------------------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """GET; None when the key is not set."""
        reply = self.command("GET", self._key(key))
        if reply is not None and not isinstance(reply, bytes):
            raise RemoteError("redis protocol error: GET answered %s" % type(reply).__name__)
        return reply

    def put(self, key: str, data: bytes) -> None:
        """SET."""
        if self.spec.read_only:
            raise read_only_error(self.spec.display)
        self.command("SET", self._key(key), data)

    def exists(self, key: str) -> bool:
        """EXISTS."""
        return self.command("EXISTS", self._key(key)) == 1

    def delete(self, key: str) -> None:
        """DEL."""
        if self.spec.read_only:
            raise read_only_error(self.spec.display)
        self.command("DEL", self._key(key))

    def close(self) -> None:
        """Drop the connection."""
        self.wire.close()


