"""http://: objects as files under a URL path on any server that takes whole-object PUT/GET/HEAD/DELETE (nginx's
WebDAV module, an S3-compatible gateway), in plain HTTP/1.1 over a socket kept open per backend object.

A PUT answered 409 (WebDAV: the parent collection is missing) or 500 (what nginx answers then, without
`create_full_put_path on`) makes the parent collections with MKCOL and is tried once more. Credentials go in a
Basic Authorization header.
"""

from __future__ import annotations

import binascii
import time

from coopt.cache.remote.base import Backend, RemoteError, check_key, read_only_error
from coopt.cache.remote.spec import RemoteSpec
from coopt.cache.remote.wire import MAX_BODY, Closed, Wire

NO_BODY = (204, 304)
MAX_HEADERS = 100


class Response:
    """What the server answered."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class HttpBackend(Backend):
    """An HTTP object store rooted at `spec.path`."""

    def __init__(self, spec: RemoteSpec) -> None:
        self.spec = spec
        self.wire = Wire(spec.host, spec.port, spec.connect_timeout, spec.timeout)
        host = "[%s]" % spec.host if ":" in spec.host else spec.host
        head = "Host: %s:%d\r\nUser-Agent: coopt\r\n" % (host, spec.port)
        if spec.user or spec.password:
            token = binascii.b2a_base64(("%s:%s" % (spec.user, spec.password)).encode(), newline=False)
            head += "Authorization: Basic %s\r\n" % token.decode()
        self._head = head.encode()

    def __repr__(self) -> str:
        return "HttpBackend(%s)" % self.spec.display

    # -- protocol ----------------------------------------------------------------------------------------------

    def _read_response(self, method: str) -> Response:
        while True:
            line = self.wire.readline()
            parts = line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
                raise RemoteError("HTTP protocol error: bad status line")
            status = int(parts[1])
            headers: dict[str, str] = {}
            while True:
                h = self.wire.readline()
                if not h:
                    break
                if len(headers) > MAX_HEADERS:
                    raise RemoteError("HTTP protocol error: too many headers")
                name, _, value = h.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            if status >= 200 or status == 101:
                break  # 1xx (100 Continue) comes before the real answer
        keep = parts[0] == b"HTTP/1.1" and "close" not in headers.get("connection", "").lower()
        if method == "HEAD" or status in NO_BODY or 100 <= status < 200:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked()
        elif "content-length" in headers:
            try:
                n = int(headers["content-length"])
            except ValueError:
                raise RemoteError("HTTP protocol error: bad Content-Length") from None
            body = self.wire.read_exact(n)
        else:
            body = self.wire.read_to_eof()
            keep = False
        if not keep:
            self.wire.close()
        return Response(status, headers, body)

    def _read_chunked(self) -> bytes:
        out = bytearray()
        while True:
            size_line = self.wire.readline().split(b";", 1)[0].strip()
            try:
                n = int(size_line, 16)
            except ValueError:
                raise RemoteError("HTTP protocol error: bad chunk size") from None
            if n == 0:
                while self.wire.readline():  # trailers, up to the empty line
                    pass
                return bytes(out)
            if n < 0 or len(out) + n > MAX_BODY:
                raise RemoteError("HTTP protocol error: bad chunk size")
            out += self.wire.read_exact(n)
            self.wire.read_exact(2)

    def _end(self) -> float:
        return time.monotonic() + self.spec.connect_timeout + self.spec.timeout

    def request(self, method: str, path: str, body: bytes | None = None, end: float = 0.0) -> Response:
        """One request on the kept connection (reconnecting once if the server had closed it while idle), over by
        `end` (monotonic; default: connect-timeout + timeout from now). RemoteError on a failure of the way to the
        server; any status is returned."""
        end = end or self._end()
        head = b"%s %s HTTP/1.1\r\n" % (method.encode(), path.encode()) + self._head
        if body is not None:
            head += b"Content-Length: %d\r\n" % len(body)
        head += b"\r\n"
        for attempt in (0, 1):
            fresh = self.wire.start(end)
            try:
                try:
                    self.wire.send(head, body or b"")
                except Closed:
                    pass  # a server refusing a large body may answer before reading it, then close: read that
                return self._read_response(method)
            except Closed:
                self.wire.close()
                if fresh or attempt:
                    raise
            except RemoteError:
                self.wire.close()
                raise
        raise AssertionError("unreachable")

    def _path(self, key: str) -> str:
        return self.spec.path + check_key(key)

    def _fail(self, method: str, key: str, r: Response) -> RemoteError:
        why = {401: "credentials refused", 403: "forbidden", 405: "method not allowed", 413: "object too large"}
        text = why.get(r.status, "server error" if r.status >= 500 else "unexpected answer")
        return RemoteError("HTTP %d on %s %s: %s" % (r.status, method, key, text))

    # -- Backend -----------------------------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """GET; None on 404 or 410."""
        r = self.request("GET", self._path(key))
        if r.status == 200:
            return r.body
        if r.status in (404, 410):
            return None
        raise self._fail("GET", key, r)

    def put(self, key: str, data: bytes) -> None:
        """PUT; on 409 or 500, MKCOL the parent collections and PUT once more."""
        if self.spec.read_only:
            raise read_only_error(self.spec.display)
        path = self._path(key)
        end = self._end()  # one bound for the PUT, the MKCOLs and the second PUT together
        r = self.request("PUT", path, data, end)
        if r.status in (409, 500):
            self._make_collections(key, end)
            r = self.request("PUT", path, data, end)
        if r.status not in (200, 201, 204):
            raise self._fail("PUT", key, r)

    def _make_collections(self, key: str, end: float) -> None:
        """MKCOL every collection from the base path down to the key's parent, in order. Failures on the base
        path's own segments are left to the PUT that follows (they may be outside what this server lets us make)."""
        base = [p for p in self.spec.path.split("/") if p]
        parts = key.split("/")[:-1]
        for i in range(1, len(base) + len(parts) + 1):
            path = "/" + "/".join((base + parts)[:i]) + "/"
            r = self.request("MKCOL", path, None, end)
            if r.status not in (200, 201, 204, 405) and i > len(base):  # 405: it exists already
                raise self._fail("MKCOL", path[len(self.spec.path) :], r)

    def exists(self, key: str) -> bool:
        """HEAD; False on 404 or 410."""
        r = self.request("HEAD", self._path(key))
        if r.status == 200:
            return True
        if r.status in (404, 410):
            return False
        raise self._fail("HEAD", key, r)

    def delete(self, key: str) -> None:
        """DELETE; a missing object is not an error."""
        if self.spec.read_only:
            raise read_only_error(self.spec.display)
        r = self.request("DELETE", self._path(key))
        if r.status not in (200, 202, 204, 404, 410):
            raise self._fail("DELETE", key, r)

    def close(self) -> None:
        """Drop the connection."""
        self.wire.close()
