"""Real servers on 127.0.0.1 for the remote storage tests: redis-server with ACLs, nginx with WebDAV, a server that
accepts and never answers, and a port nothing listens on.

Context managers, usable from any test or bench (no pytest needed):

    with redis_server(tmp_path, password="s3cret") as r:    # r.spec writes, r.read_only_spec may only read
    with nginx_webdav(tmp_path, write_user=("writer", "s3cret")) as w:  # anonymous GET/HEAD; PUT/DELETE need it
    with hanging_server() as port: ...
    with canned_server(b"HTTP/1.1 503 ...") as port: ...   # answers anything with these bytes, then closes
    port = dead_port()
    with remote_store("redis" | "http" | "file", tmp_path) as s:  # s.spec, s.read_only_spec, s.corrupt(), s.kill()

Each server runs in its own process group and is killed with it at exit; its files (data, logs, config) stay in
the directory given. Passwords are written to disk only hashed (redis `#sha256`, nginx `{SHA}`).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

REDIS = "/usr/bin/redis-server"
NGINX = "/usr/sbin/nginx"
START_TIMEOUT = 20.0
T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dead_port() -> int:
    """A port nothing listens on: connecting is refused at once."""
    return free_port()


@contextmanager
def hanging_server() -> Iterator[int]:
    """A port that accepts TCP connections and never answers nor closes them. Yields the port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:  # accept for real, so the backlog never fills; keep every connection open, silent
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    worker = threading.Thread(target=accept, daemon=True)
    worker.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        worker.join()
        for s in held:
            s.close()
        listener.close()


@contextmanager
def canned_server(reply: bytes) -> Iterator[int]:
    """A port whose server reads a request, answers `reply` (whatever it is: a malformed answer, a 503) and closes
    the connection: for the corners a real server does not produce on demand. Yields the port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                try:
                    conn.settimeout(2)
                    conn.recv(65536)
                    conn.sendall(reply)
                except OSError:
                    pass

    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        worker.join()
        listener.close()


# --- processes ---------------------------------------------------------------------------------------------------


class ServerProcess:
    """A server process in its own process group (nginx has workers: kill() must reach them too)."""

    def __init__(self, argv: list[str], log: Path, cwd: Path) -> None:
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=cwd, start_new_session=True)

    def alive(self) -> bool:
        """True while the main process runs."""
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group, at once (a server dying mid-build)."""
        self._signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        """SIGTERM the group, then SIGKILL what is left after 5 s."""
        if self.alive():
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self._signal(signal.SIGKILL)
        self.proc.wait()

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def log_tail(self) -> str:
        """The last lines the server logged (for a failure message)."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return ""


def _wait_answering(server: ServerProcess, port: int, probe: bytes, expect: bytes) -> None:
    """Wait until the server on `port` answers `probe` with a reply starting with `expect`; a server that never
    does is stopped before the error goes on."""
    try:
        _poll_answering(server, port, probe, expect)
    except BaseException:
        server.stop()
        raise


def _poll_answering(server: ServerProcess, port: int, probe: bytes, expect: bytes) -> None:
    end = time.monotonic() + START_TIMEOUT
    while time.monotonic() < end:
        if not server.alive():
            raise RuntimeError("server exited at start:\n" + server.log_tail())
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(probe)
                if s.recv(64).startswith(expect):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("server on port %d did not answer within %gs:\n%s" % (port, START_TIMEOUT, server.log_tail()))


def _start(make: Callable[[], T], attempts: int = 3) -> T:
    """Call make() until it starts (a free port can be taken between choosing it and binding it)."""
    for i in range(attempts):
        try:
            return make()
        except RuntimeError:
            if i == attempts - 1:
                raise
    raise AssertionError("unreachable")


# --- redis -------------------------------------------------------------------------------------------------------


@dataclass
class RedisServer:
    """A running redis-server. With a password, user `writer` (the name given) may read and write `coopt:*` keys
    (the ACL of docs/remote.md) and the default user (no password) may only read: GET, EXISTS, PING, SELECT."""

    port: int
    directory: Path
    process: ServerProcess
    writer: str = "writer"
    password: str | None = field(default=None, repr=False)

    def url(self, user: str = "", password: str = "", db: int = 0) -> str:
        """redis://[user:password@]127.0.0.1:port/db."""
        auth = "%s:%s@" % (user, password) if password else ""
        return "redis://%s127.0.0.1:%d/%d" % (auth, self.port, db)

    @property
    def spec(self) -> str:
        """A spec holding the write credential (or none, when the server has no password)."""
        return self.url(self.writer, self.password) if self.password else self.url()

    @property
    def read_only_spec(self) -> str:
        """The same store as the default user: reads work, writes are refused by the server ("" without ACLs)."""
        return self.url() if self.password else ""

    def kill(self) -> None:
        """Kill the server at once."""
        self.process.kill()


@contextmanager
def redis_server(tmp_path: Path, password: str | None = None, writer: str = "writer") -> Iterator[RedisServer]:
    """Start redis-server on a free 127.0.0.1 port, no persistence, in `tmp_path`/redis-<port>. With `password`:
    user `writer` holds it and may write; the default user reads only."""
    if not os.access(REDIS, os.X_OK):
        raise RuntimeError("%s is not installed (scripts/install-deps.sh installs redis-server)" % REDIS)

    def make() -> RedisServer:
        port = free_port()
        d = Path(tmp_path) / ("redis-%d" % port)
        d.mkdir(parents=True)
        lines = ["port %d" % port, "bind 127.0.0.1", 'save ""', "appendonly no", "dir %s" % d, "daemonize no",
                 "protected-mode no", "databases 16"]
        if password:
            digest = hashlib.sha256(password.encode()).hexdigest()
            lines += ["user default on nopass ~* resetchannels -@all +get +exists +ping +select +hello +auth",
                      # the writer's rules from docs/remote.md, plus KEYS and CLIENT for the tests' own use
                      "user %s on #%s ~coopt:* resetchannels -@all +get +set +exists +del +ping +select +hello "
                      "+auth +keys +client" % (writer, digest)]
        (d / "redis.conf").write_text("\n".join(lines) + "\n")
        proc = ServerProcess([REDIS, str(d / "redis.conf")], d / "redis.log", d)
        _wait_answering(proc, port, b"PING\r\n", b"+PONG")
        return RedisServer(port, d, proc, writer, password)

    server = _start(make)
    try:
        yield server
    finally:
        server.process.stop()


# --- nginx WebDAV ------------------------------------------------------------------------------------------------

NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
{user}
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/temp/body;
    proxy_temp_path {d}/temp/proxy;
    fastcgi_temp_path {d}/temp/fastcgi;
    uwsgi_temp_path {d}/temp/uwsgi;
    scgi_temp_path {d}/temp/scgi;
    client_max_body_size 0;
    server {{
        listen 127.0.0.1:{port};
        root {d}/root;
        location /cache/ {{
            dav_methods PUT DELETE MKCOL;
            create_full_put_path {full_path};
            dav_access user:rw group:r all:r;
            limit_except GET HEAD {{
                auth_basic "coopt cache";
                auth_basic_user_file {d}/htpasswd;
            }}
        }}
        # The same objects, read-only, answered chunked (SSI drops Content-Length): for the chunked decoder.
        location /chunked/ {{
            alias {d}/root/cache/;
            ssi on;
            ssi_types *;
        }}
    }}
}}
"""


@dataclass
class WebDav:
    """A running nginx with a WebDAV location /cache/: anyone may GET/HEAD, PUT/DELETE/MKCOL need the user."""

    port: int
    directory: Path
    process: ServerProcess
    user: str
    password: str = field(repr=False)

    @property
    def files(self) -> Path:
        """Where the stored objects are on disk (the location's directory)."""
        return self.directory / "root" / "cache"

    def url(self, user: str = "", password: str = "") -> str:
        """http://[user:password@]127.0.0.1:port/cache/."""
        auth = "%s:%s@" % (user, password) if user else ""
        return "http://%s127.0.0.1:%d/cache/" % (auth, self.port)

    @property
    def spec(self) -> str:
        """A spec with the write credential."""
        return self.url(self.user, self.password)

    @property
    def chunked_spec(self) -> str:
        """A read-only view of the same objects whose answers come with Transfer-Encoding: chunked."""
        return "http://127.0.0.1:%d/chunked/" % self.port

    @property
    def read_only_spec(self) -> str:
        """The same store without a credential: reads work, writes get 401."""
        return self.url()

    def kill(self) -> None:
        """Kill nginx (master and workers) at once."""
        self.process.kill()


@contextmanager
def nginx_webdav(tmp_path: Path, write_user: tuple[str, str] = ("writer", "secret"),
                 create_full_put_path: bool = True) -> Iterator[WebDav]:
    """Start nginx on a free 127.0.0.1 port with everything (config, logs, temp files, objects) under
    `tmp_path`/nginx-<port>. `create_full_put_path=False` makes PUT into a missing directory answer 409, as a
    stricter WebDAV server does."""
    if not os.access(NGINX, os.X_OK):
        raise RuntimeError("%s is not installed (scripts/install-deps.sh installs nginx-core)" % NGINX)
    user, password = write_user

    def make() -> WebDav:
        port = free_port()
        d = Path(tmp_path) / ("nginx-%d" % port)
        for sub in ("root/cache", "temp", "logs"):
            (d / sub).mkdir(parents=True)
        sha = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
        (d / "htpasswd").write_text("%s:{SHA}%s\n" % (user, sha))
        # As root, workers would run as nobody and could not write under a private tmp directory.
        run_as = "user root;" if os.geteuid() == 0 else ""
        conf = NGINX_CONF.format(d=d, port=port, user=run_as, full_path="on" if create_full_put_path else "off")
        (d / "nginx.conf").write_text(conf)
        proc = ServerProcess([NGINX, "-p", str(d), "-c", str(d / "nginx.conf"), "-e", str(d / "error.log")],
                             d / "nginx.out", d)
        _wait_answering(proc, port, b"HEAD /cache/ HTTP/1.0\r\n\r\n", b"HTTP/1.1 ")
        return WebDav(port, d, proc, user, password)

    server = _start(make)
    try:
        yield server
    finally:
        server.process.stop()


# --- one store of each kind, for the cache tier's tests ------------------------------------------------------------


def _flip(data: bytes) -> bytes:
    at = len(data) // 2
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :] if data else b"\xff"


@dataclass
class RemoteStore:
    """A remote store for a test: the spec that may write, one that may only read ("" for file://, where the
    server cannot refuse), a way to damage stored objects behind coopt's back, and kill() for the server."""

    kind: str
    spec: str
    read_only_spec: str = ""
    files: Path | None = None  # where the objects are on disk (file, http)
    server: RedisServer | WebDav | None = None

    def corrupt(self, suffix: str) -> int:
        """Flip a byte in every stored object whose key ends with `suffix`; how many. AssertionError if none."""
        n = 0
        if self.files is not None:
            for p in self.files.rglob("*"):
                if p.is_file() and p.name.endswith(suffix):
                    p.write_bytes(_flip(p.read_bytes()))
                    n += 1
        else:
            from coopt.cache.remote import open_backend, parse_spec
            from coopt.cache.remote.redis_backend import PREFIX, RedisBackend

            backend = open_backend(parse_spec(self.spec + "|timeout=5000"))
            assert isinstance(backend, RedisBackend)
            try:
                keys = backend.command("KEYS", PREFIX + "*" + suffix)
                assert isinstance(keys, list)
                for k in keys:
                    data = backend.command("GET", k)
                    assert isinstance(data, bytes)
                    backend.command("SET", k, _flip(data))
                    n += 1
            finally:
                backend.close()
        assert n, "no stored object's key ends with %s" % suffix
        return n

    def kill(self) -> None:
        """Kill the server at once (file://: nothing to kill)."""
        if self.server is not None:
            self.server.kill()


@contextmanager
def remote_store(kind: str, root: Path) -> Iterator[RemoteStore]:
    """A fresh store of `kind` ("file", "redis" or "http") with its files under `root`; redis and http with a
    write credential and a read-only way in."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    secret = "w-" + os.urandom(8).hex()
    if kind == "file":
        (root / "store").mkdir(exist_ok=True)
        yield RemoteStore("file", "file://%s" % (root / "store"), "", root / "store")
    elif kind == "redis":
        with redis_server(root, password=secret) as r:
            yield RemoteStore("redis", r.spec, r.read_only_spec, None, r)
    elif kind == "http":
        with nginx_webdav(root, write_user=("writer", secret)) as w:
            yield RemoteStore("http", w.spec, w.read_only_spec, w.files, w)
    else:
        raise ValueError("remote store kind %r: expected file, redis or http" % kind)


def have(program: str) -> bool:
    """True when `program` (a path or a name on PATH) can be run."""
    return shutil.which(program) is not None
