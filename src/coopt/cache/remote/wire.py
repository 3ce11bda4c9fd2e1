"""A TCP connection with a deadline on every step, for the redis and HTTP backends.

A call to a remote costs at most `connect_timeout + timeout` seconds, whatever the server does: the connect gets
`connect_timeout`, and every send and receive after it gets only what is left of `timeout` (socket.settimeout on
each step with the time remaining, so a server that drips one byte a second cannot stretch a call).
Failures become RemoteError; a connection the server closed while it sat idle is reported as `Closed`, which the
backends answer by reconnecting once within the same deadline (their operations are idempotent).
"""

from __future__ import annotations

import _socket  # the C module: `socket` pulls in enum and selectors, milliseconds on every remote lookup
import time

from coopt.cache.remote.base import RemoteError

MAX_LINE = 65536  # a status, header or RESP line longer than this is a protocol error, not a reason to buffer more
MAX_BODY = 1 << 30  # a server announcing a bigger object is broken or hostile: refuse before allocating


class Closed(RemoteError):
    """The server closed (or reset) the connection."""


class Wire:
    """One kept-alive connection to host:port. Not thread-safe: one backend object per thread."""

    def __init__(self, host: str, port: int, connect_timeout: float, timeout: float) -> None:
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.sock: _socket.socket | None = None
        self.buf = bytearray()
        self.deadline = 0.0

    # -- lifetime ----------------------------------------------------------------------------------------------

    def start(self, end: float) -> bool:
        """Begin one call that must be over by `end` (monotonic). Connects if needed; True when this connected."""
        if self.sock is not None:
            self.deadline = min(end, time.monotonic() + self.timeout)
            return False
        left = min(self.connect_timeout, end - time.monotonic())
        if left <= 0:
            raise RemoteError("timeout before connecting", timeout=True)
        self.sock = _connect(self.host, self.port, left, self.connect_timeout)
        self.buf.clear()
        self.deadline = min(end, time.monotonic() + self.timeout)
        return True

    def close(self) -> None:
        """Drop the connection (the next start reconnects)."""
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf.clear()

    # -- steps -------------------------------------------------------------------------------------------------

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise RemoteError("timeout (%g ms)" % (self.timeout * 1000), timeout=True)
        return left

    def _sock(self) -> _socket.socket:
        if self.sock is None:
            raise Closed("not connected")
        self.sock.settimeout(self._left())
        return self.sock

    def send(self, *parts: bytes) -> None:
        """Send every part, within the deadline."""
        for part in parts:
            view = memoryview(part)
            while view:
                try:
                    n = self._sock().send(view)
                except TimeoutError:
                    raise RemoteError("timeout sending (%g ms)" % (self.timeout * 1000), timeout=True) from None
                except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                    raise Closed("connection closed by the server") from None
                except OSError as exc:
                    raise RemoteError("send failed: %s" % (exc.strerror or type(exc).__name__)) from None
                view = view[n:]

    def _fill(self) -> None:
        try:
            chunk = self._sock().recv(262144)
        except TimeoutError:
            raise RemoteError("timeout waiting for the server (%g ms)" % (self.timeout * 1000), timeout=True) from None
        except (ConnectionResetError, ConnectionAbortedError):
            raise Closed("connection reset by the server") from None
        except OSError as exc:
            raise RemoteError("receive failed: %s" % (exc.strerror or type(exc).__name__)) from None
        if not chunk:
            raise Closed("connection closed by the server")
        self.buf += chunk

    def readline(self) -> bytes:
        """One line without its CRLF."""
        start = 0
        while True:
            at = self.buf.find(b"\r\n", start)
            if at >= 0:
                line = bytes(self.buf[:at])
                del self.buf[: at + 2]
                return line
            if len(self.buf) > MAX_LINE:
                raise RemoteError("protocol error: line too long")
            start = max(0, len(self.buf) - 1)
            self._fill()

    def read_exact(self, n: int) -> bytes:
        """Exactly `n` bytes. A large body is received straight into its own buffer (no growing and copying)."""
        if not 0 <= n <= MAX_BODY:
            raise RemoteError("protocol error: an object of %d bytes announced" % n)
        if len(self.buf) >= n:
            out = bytes(self.buf[:n])
            del self.buf[:n]
            return out
        body = bytearray(n)
        view = memoryview(body)
        have = len(self.buf)
        view[:have] = self.buf
        self.buf.clear()
        while have < n:
            try:
                got = self._sock().recv_into(view[have:])
            except TimeoutError:
                raise RemoteError("timeout waiting for the server (%g ms)" % (self.timeout * 1000),
                                  timeout=True) from None
            except (ConnectionResetError, ConnectionAbortedError):
                raise Closed("connection reset by the server") from None
            except OSError as exc:
                raise RemoteError("receive failed: %s" % (exc.strerror or type(exc).__name__)) from None
            if not got:
                raise Closed("connection closed by the server")
            have += got
        view.release()
        return bytes(body)

    def read_to_eof(self) -> bytes:
        """Everything until the server closes the connection (which is then dropped)."""
        while True:
            try:
                self._fill()
            except Closed:
                break
        out = bytes(self.buf)
        self.close()
        return out


def _connect(host: str, port: int, left: float, configured: float) -> _socket.socket:
    """A connected TCP socket to host:port, trying each address in turn within `left` seconds (what
    socket.create_connection does). Name resolution is not under the timeout: use addresses or /etc/hosts names."""
    try:
        addresses = _socket.getaddrinfo(host, port, 0, _socket.SOCK_STREAM)
    except OSError as exc:
        raise RemoteError("cannot resolve %s: %s" % (host, exc.strerror or type(exc).__name__)) from None
    end = time.monotonic() + left
    why = "no address"
    for family, kind, proto, _, address in addresses:
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(max(0.001, end - time.monotonic()))
            sock.connect(address)
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            return sock
        except TimeoutError:
            sock.close()
            raise RemoteError("connect timeout (%g ms)" % (configured * 1000), timeout=True) from None
        except OSError as exc:
            sock.close()
            why = exc.strerror or type(exc).__name__
            if time.monotonic() >= end:
                raise RemoteError("connect timeout (%g ms)" % (configured * 1000), timeout=True) from None
    raise RemoteError("cannot connect: %s" % why)
