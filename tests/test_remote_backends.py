"""The remote storage backends (cache/remote) against real servers on 127.0.0.1: redis-server with ACLs, nginx with
WebDAV, a shared directory; plus a server that hangs and a port nothing listens on (tests/support/servers.py).

Every failure of a server must come back as one RemoteError with a short reason and no credential, within the
configured timeouts; a read-only spec must refuse writes before contacting anyone.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from coopt.cache.remote import RemoteError, RemoteSpec, SpecError, check_key, open_backend, parse_spec
from support.servers import (
    RemoteStore,
    canned_server,
    dead_port,
    hanging_server,
    nginx_webdav,
    redis_server,
    remote_store,
)

SECRET = "pw-Xq7-never-shown"
KEY = "e/ab/abcdef0123456789"
NETWORK = ["redis", "http"]


@pytest.fixture(params=["file", "redis", "http"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RemoteStore]:
    """A fresh store of each kind; redis and http with a write credential and a read-only way in."""
    with remote_store(request.param, tmp_path / request.param) as s:
        yield s


def _url(kind: str, port: int, auth: str = "") -> str:
    return "redis://%s127.0.0.1:%d/0" % (auth, port) if kind == "redis" else "http://%s127.0.0.1:%d/cache/" % (
        auth, port)


def _bounded(call: Callable[[], object]) -> RemoteError:
    """Run `call` in a thread and return the RemoteError it raised. The join limit is a guard against hanging
    the suite, far above any configured timeout, not a measurement."""
    out: list[BaseException | object] = []

    def run() -> None:
        try:
            out.append(call())
        except BaseException as exc:  # noqa: BLE001 -- handed to the test thread
            out.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "the call hung"
    assert isinstance(out[0], RemoteError), "expected a RemoteError, got %r" % (out[0],)
    return out[0]


# --- round trips -------------------------------------------------------------------------------------------------


def test_round_trip(store: RemoteStore) -> None:
    b = open_backend(parse_spec(store.spec))
    try:
        assert b.get(KEY) is None and not b.exists(KEY)
        b.put(KEY, b"first")
        assert b.get(KEY) == b"first" and b.exists(KEY)
        b.put(KEY, b"second")  # replaces
        assert b.get(KEY) == b"second"
        b.put("m/0123abcd", b"manifest")  # another prefix, another depth
        assert b.get("m/0123abcd") == b"manifest"
        b.delete(KEY)
        assert b.get(KEY) is None and not b.exists(KEY)
        b.delete(KEY)  # deleting what is not there is not an error
        assert b.get("m/0123abcd") == b"manifest"
    finally:
        b.close()


def test_binary_and_large_objects(store: RemoteStore) -> None:
    b = open_backend(parse_spec(store.spec + "|timeout=10000"))
    every_byte = bytes(range(256)) * 4 + b"\r\n\r\n$-1\r\n*0\r\n"
    big = os.urandom(5 * 1024 * 1024)
    try:
        for key, data in (("e/00/bytes", every_byte), ("e/00/big", big), ("e/00/empty", b"")):
            b.put(key, data)
        for key, data in (("e/00/bytes", every_byte), ("e/00/big", big), ("e/00/empty", b"")):
            assert b.get(key) == data, key
        b.close()  # and through a fresh connection
        assert b.get("e/00/big") == big
    finally:
        b.close()


def test_a_fresh_backend_sees_what_another_wrote(store: RemoteStore) -> None:
    a = open_backend(parse_spec(store.spec))
    a.put(KEY, b"shared")
    reader = store.read_only_spec or store.spec + "|read-only"
    assert open_backend(parse_spec(reader)).get(KEY) == b"shared"


def test_http_answers_sent_chunked_are_decoded(tmp_path: Path) -> None:
    with nginx_webdav(tmp_path) as w:
        data = os.urandom(300_000)
        open_backend(parse_spec(w.spec)).put(KEY, data)
        chunked = open_backend(parse_spec(w.chunked_spec))
        from coopt.cache.remote.http_backend import HttpBackend

        assert isinstance(chunked, HttpBackend)
        r = chunked.request("GET", chunked.spec.path + KEY)
        assert "chunked" in r.headers.get("transfer-encoding", ""), r.headers  # the server did answer chunked
        assert chunked.get(KEY) == data
        assert chunked.get("e/ab/missing") is None


def test_http_put_into_a_missing_collection_makes_it(tmp_path: Path) -> None:
    with nginx_webdav(tmp_path, create_full_put_path=False) as w:
        b = open_backend(parse_spec(w.spec))
        b.put(KEY, b"deep")
        b.put("e/ab/second", b"same parent")
        assert b.get(KEY) == b"deep" and b.get("e/ab/second") == b"same parent"
        log = (w.directory / "access.log").read_text()
        # nginx refused the first PUT (500: no such directory), then the collections were made
        assert log.count('"MKCOL ') >= 2 and '"PUT /cache/%s HTTP/1.1" 500' % KEY in log, log


def test_a_connection_the_server_dropped_is_reopened(tmp_path: Path) -> None:
    with redis_server(tmp_path, password=SECRET) as r:
        a = open_backend(parse_spec(r.spec))
        a.put(KEY, b"x")  # a's connection is open now
        killer = open_backend(parse_spec(r.spec))
        assert killer.command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes") >= 1  # type: ignore[attr-defined]
        assert a.get(KEY) == b"x"


# --- read-only, credentials ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["file", "redis", "http"])
def test_a_read_only_spec_refuses_writes_without_contacting_the_server(kind: str, tmp_path: Path) -> None:
    # Nothing listens there: a write that tried would fail with "cannot connect", not with read-only.
    spec = "file://%s" % tmp_path if kind == "file" else _url(kind, dead_port(), "u:%s@" % SECRET)
    b = open_backend(parse_spec(spec + "|read-only"))
    for call in (lambda: b.put(KEY, b"x"), lambda: b.delete(KEY)):
        with pytest.raises(RemoteError) as err:
            call()
        assert "read-only" in err.value.reason and SECRET not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_spec_still_reads(store: RemoteStore) -> None:
    open_backend(parse_spec(store.spec)).put(KEY, b"v")
    ro = open_backend(parse_spec(store.spec + "|read-only"))
    assert ro.get(KEY) == b"v" and ro.exists(KEY)
    with pytest.raises(RemoteError):
        ro.put("e/00/other", b"w")
    assert open_backend(parse_spec(store.spec)).get("e/00/other") is None


@pytest.mark.parametrize("kind", NETWORK)
def test_the_server_refuses_a_reader_that_writes(kind: str, tmp_path: Path) -> None:
    with remote_store(kind, tmp_path) as s:
        open_backend(parse_spec(s.spec)).put(KEY, b"by the writer")
        reader = open_backend(parse_spec(s.read_only_spec))
        assert reader.get(KEY) == b"by the writer"
        for call in (lambda: reader.put(KEY, b"by a reader"), lambda: reader.delete(KEY)):
            err = _bounded(call)
            assert ("NOPERM" if kind == "redis" else "401") in err.reason, err.reason
        assert reader.get(KEY) == b"by the writer"


@pytest.mark.parametrize("kind", NETWORK)
def test_a_wrong_password_is_refused(kind: str, tmp_path: Path) -> None:
    with remote_store(kind, tmp_path) as s:
        port = s.server.port  # type: ignore[union-attr]
        b = open_backend(parse_spec(_url(kind, port, "writer:%s@" % SECRET)))
        err = _bounded(lambda: b.put(KEY, b"x"))
        assert ("WRONGPASS" if kind == "redis" else "401") in err.reason, err.reason
        assert SECRET not in str(err) and SECRET not in repr(err)
        assert open_backend(parse_spec(s.spec)).get(KEY) is None


@pytest.mark.parametrize("kind", NETWORK)
def test_credentials_from_the_environment(kind: str, tmp_path: Path) -> None:
    with remote_store(kind, tmp_path) as s:
        port = s.server.port  # type: ignore[union-attr]
        text = _url(kind, port) + "|user-env=COOPT_T_USER|password-env=COOPT_T_PASSWORD"
        password = s.server.password  # type: ignore[union-attr]
        spec = parse_spec(text, {"COOPT_T_USER": "writer", "COOPT_T_PASSWORD": password})
        assert password not in repr(spec) + spec.display and "***" in spec.display
        open_backend(spec).put(KEY, b"env")
        assert open_backend(parse_spec(s.spec)).get(KEY) == b"env"
        anonymous = open_backend(parse_spec(text, {}))  # the variables unset: no credential, reads only
        assert anonymous.get(KEY) == b"env"
        _bounded(lambda: anonymous.put(KEY, b"no"))


def test_the_password_is_never_shown(tmp_path: Path) -> None:
    port = dead_port()
    for text in ("redis://writer:%s@127.0.0.1:%d/0" % (SECRET, port), "redis://%s@127.0.0.1:%d" % (SECRET, port),
                 "http://writer:%s@127.0.0.1:%d/cache/" % (SECRET, port)):
        spec = parse_spec(text)
        b = open_backend(spec)
        err = _bounded(lambda b=b: b.get(KEY))  # type: ignore[misc]
        shown = [str(spec), repr(spec), spec.display, str(b), repr(b), str(err), repr(err), err.reason]
        assert not [s for s in shown if SECRET in s], shown
        assert "***" in spec.display
    with redis_server(tmp_path, password=SECRET) as r:
        b = open_backend(parse_spec(r.url("writer", SECRET)))
        b.put(KEY, b"x")
        assert SECRET not in repr(b) + str(b)
        bad = open_backend(parse_spec(r.url("writer", SECRET + "x")))
        err = _bounded(lambda: bad.get(KEY))
        assert SECRET not in str(err)


# --- servers that fail ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", NETWORK)
def test_a_dead_port_is_a_remote_error(kind: str) -> None:
    b = open_backend(parse_spec(_url(kind, dead_port())))
    for call in (lambda: b.get(KEY), lambda: b.put(KEY, b"x"), lambda: b.exists(KEY), lambda: b.delete(KEY)):
        err = _bounded(call)
        assert "cannot connect" in err.reason and not err.timeout, err.reason


@pytest.mark.parametrize("kind", NETWORK)
def test_a_hanging_server_times_out(kind: str) -> None:
    with hanging_server() as port:
        b = open_backend(parse_spec(_url(kind, port) + "|connect-timeout=100|timeout=300"))
        for call in (lambda: b.get(KEY), lambda: b.exists(KEY), lambda: b.put(KEY, os.urandom(8 << 20))):
            err = _bounded(call)
            assert err.timeout and "timeout" in err.reason, err.reason


@pytest.mark.parametrize("kind", NETWORK)
def test_a_server_killed_between_calls(kind: str, tmp_path: Path) -> None:
    with remote_store(kind, tmp_path) as s:
        b = open_backend(parse_spec(s.spec))
        b.put(KEY, b"before")
        assert b.get(KEY) == b"before"  # the connection is kept open
        s.kill()
        for call in (lambda: b.get(KEY), lambda: b.put(KEY, b"after"), lambda: b.exists(KEY)):
            err = _bounded(call)
            assert not err.timeout, err.reason


CANNED = [
    ("http", b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", "HTTP 503"),
    ("http", b"HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\noops", "HTTP 500"),
    ("http", b"SSH-2.0-OpenSSH_9.2\r\n", "bad status line"),
    ("http", b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", "protocol error"),
    ("http", b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999\r\n\r\n", "protocol error"),
    ("http", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
    ("http", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", "closed"),
    ("http", b"", "closed"),
    ("redis", b"-ERR unknown command\r\n", "redis refused: ERR"),
    ("redis", b"?what\r\n", "redis protocol error"),
    ("redis", b"$99999999999999\r\n", "protocol error"),
    ("redis", b":1\r\n", "GET answered int"),
    ("redis", b"$10\r\nshort", "closed"),
    ("redis", b"", "closed"),
]


@pytest.mark.parametrize("kind, reply, reason", CANNED)
def test_a_malformed_or_failing_answer_is_a_remote_error(kind: str, reply: bytes, reason: str) -> None:
    with canned_server(reply) as port:
        b = open_backend(parse_spec(_url(kind, port) + "|timeout=5000"))
        err = _bounded(lambda: b.get(KEY))
        assert reason in err.reason and not err.timeout, err.reason


# --- specs and keys ------------------------------------------------------------------------------------------------

GOOD = [
    ("file:///srv/coopt/", dict(scheme="file", path="/srv/coopt")),
    ("redis://cache.lan", dict(scheme="redis", host="cache.lan", port=6379, db=0, user="", password="")),
    ("redis://%s@h:7000/3" % SECRET, dict(host="h", port=7000, db=3, user="", password=SECRET)),
    ("redis://w:%s@h/1|read-only" % SECRET, dict(user="w", password=SECRET, db=1, read_only=True)),
    ("redis://:p%40ss@[::1]:1/0", dict(host="::1", port=1, password="p@ss")),
    ("http://h/c", dict(scheme="http", host="h", port=80, path="/c/")),
    ("http://u:%s@h:8080/a/b/ | connect-timeout=20 | timeout=250" % SECRET,
     dict(user="u", password=SECRET, port=8080, path="/a/b/", connect_timeout=0.02, timeout=0.25)),
    ("http://h:1/", dict(path="/", connect_timeout=0.1, timeout=1.0, read_only=False)),
    ("redis://h|operation-timeout=70", dict(timeout=0.07)),  # ccache's name
    ("redis://:%s/x@h/0" % SECRET, dict(host="h", password=SECRET + "/x")),  # "/" and "@" need no encoding
]


@pytest.mark.parametrize("text, fields", GOOD)
def test_parse_spec(text: str, fields: dict[str, object]) -> None:
    spec = parse_spec(text, {})
    assert isinstance(spec, RemoteSpec)
    for name, value in fields.items():
        assert getattr(spec, name) == value, name
    assert SECRET not in repr(spec) + spec.display + str(spec)


BAD = [
    ("gopher://h/x", "unknown scheme 'gopher'"),
    ("https://h/x", "https is not supported"),
    ("redis:/h", "not a URL"),
    ("cache.lan:6379", "not a URL"),
    ("redis://h/abc", "database must be a number"),
    ("redis://:%s@/0" % SECRET, "no host"),
    ("redis://h:0", "bad port"),
    ("http://u:%s@h:99999/c/" % SECRET, "bad port"),
    ("http://h/c?x=1", "no query"),
    ("file://relative/dir", "not an absolute directory"),
    ("redis://h|readonly", "unknown attribute 'readonly'"),
    ("redis://h|timeout", "expected timeout=VALUE"),
    ("redis://h|timeout=fast", "whole number of milliseconds"),
    ("redis://h|timeout=0", "whole number of milliseconds"),
    ("redis://h|read-only=yes", "expected read-only"),
    ("redis://u:%s@h|password-env=P" % SECRET, "a password in the URL and password-env"),
    ("file:///d|password-env=P", "file:// takes no credentials"),
    ("redis://u:%s/x@h/abc" % SECRET, "database must be a number"),  # a "/" in an unencoded password
]


@pytest.mark.parametrize("text, message", BAD)
def test_parse_spec_refuses_with_one_line(text: str, message: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(text, {})
    text_shown = str(err.value)
    assert isinstance(err.value, ValueError)
    assert message in text_shown and "\n" not in text_shown, text_shown
    assert "Xq7" not in text_shown, text_shown


@pytest.mark.parametrize("key, ok", [
    ("m/0123abcdef", True), ("e/ab/AB-cd_ef.1", True), ("", False), ("/abs", False), ("a//b", False),
    ("a/../b", False), ("a/./b", False), ("a b", False), ("a\nb", False), ("é", False), ("x" * 600, False),
])
def test_keys_are_checked(key: str, ok: bool, tmp_path: Path) -> None:
    if ok:
        assert check_key(key) == key
        return
    with pytest.raises(ValueError):
        check_key(key)
    with pytest.raises(ValueError):
        open_backend(parse_spec("file://%s" % tmp_path)).put(key, b"x")
    assert list(tmp_path.iterdir()) == []


def test_the_package_is_import_light() -> None:
    # coopt-cc imports these on a local miss: none of the modules that cost milliseconds may come with them.
    import subprocess
    import sys

    src = str(Path(__file__).resolve().parent.parent / "src")
    code = ("import sys; sys.path.insert(0, %r); before = set(sys.modules); import coopt.cache.remote as r; "
            "import coopt.cache.remote.redis_backend, coopt.cache.remote.http_backend, "
            "coopt.cache.remote.file_backend; r.open_backend(r.parse_spec('http://u:p@127.0.0.1:1/c/')); "
            "print(' '.join(sorted(set(sys.modules) - before)))" % src)
    loaded = set(subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True,
                                check=True).stdout.split())
    assert "coopt.cache.remote.http_backend" in loaded
    heavy = {"typing", "dataclasses", "json", "subprocess", "socket", "enum", "selectors", "http.client",
             "urllib.request", "urllib.parse", "re", "importlib", "collections", "redis", "base64"}
    assert not loaded & heavy, sorted(loaded & heavy)
