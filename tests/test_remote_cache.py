"""Remote storage as the second cache level (cache/remote/sync.py), with real stores on loopback.

Two "machines" are two cache directories sharing one remote store. Machine A stores a variant (`coopt cache put`,
which uploads it); machine B's compile serves it. Then everything that can go wrong with a shared store -- a server
killed mid-build, a server that hangs, a dead port, a corrupted object, a wrongly signed or unsigned entry, a
read-only client that tries to write -- must leave the build succeeding with correct objects, counted, and the
credential nowhere on disk.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import Coopt, require

VARIANT = b"coopt-remote-test-variant"
SECRET = "team-key-s3cr3t-0f-the-test"


# --- remote stores ---------------------------------------------------------------------------------------------


@dataclass
class Store:
    """A remote store for a test: its spec, and a way to rewrite a stored object behind coopt's back."""

    kind: str
    spec: str
    corrupt: Callable[[str], None]  # flip bytes in the stored blob whose key ends with this text
    read_only_spec: str = ""  # the same store through a credential that may read but not write ("" if none)


def _flip(data: bytes) -> bytes:
    at = len(data) // 2
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


def _file_store(root: Path) -> Store:
    root.mkdir(parents=True, exist_ok=True)

    def corrupt(suffix: str) -> None:
        hits = [p for p in root.rglob("*") if p.is_file() and p.name.endswith(suffix)]
        assert hits, "no stored object ends with %s: %s" % (suffix, list(root.rglob("*")))
        for p in hits:
            p.write_bytes(_flip(p.read_bytes()))

    return Store("file", "file://%s" % root, corrupt)


def _servers():  # type: ignore[no-untyped-def]
    from support import servers

    return servers


KINDS = ["file", "redis", "http"]


@pytest.fixture(params=KINDS)
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """One remote store of each kind, fresh for each test."""
    if request.param == "file":
        yield _file_store(tmp_path / "remote")
        return
    require("redis-server" if request.param == "redis" else "nginx")
    with _servers().remote_store(request.param, tmp_path / ("remote-" + request.param)) as s:
        yield Store(request.param, s.spec, s.corrupt, s.read_only_spec)


# --- two machines, one small TU --------------------------------------------------------------------------------


def _tu(d: Path) -> None:
    (d / "f.h").write_text("#define K 3\n")
    (d / "f.c").write_text('#include "f.h"\nint f(int x) { return x * K; }\n')
    (d / "v.c").write_text('#include "f.h"\nint f(int x) { return x * K + 1; }\n'
                           '__attribute__((used)) static const char marker[] = "%s";\n' % VARIANT.decode())


@dataclass
class Machines:
    tree: Path
    a: Coopt
    b: Coopt
    plain: bytes

    def compile(self, m: Coopt, **env: str) -> bytes:
        """coopt-cc -O2 -c f.c on machine `m`; the object it wrote."""
        out = self.tree / "f.o"
        if out.exists():
            out.unlink()
        _with(m, env).run([m.cc, "-O2", "-c", "f.c", "-o", "f.o"], cwd=self.tree)
        return out.read_bytes()

    def put(self, m: Coopt, **env: str) -> str:
        """Machine `m` journals the compile and stores the variant (uploading it); `coopt cache put`'s output."""
        self.compile(m, **env)
        proc = _with(m, env).coopt("cache", "put", "--artifact", "v.c", "--for-object", "f.o", "--unverified",
                                   cwd=self.tree)
        return proc.stdout


def _with(m: Coopt, env: dict[str, str]) -> Coopt:
    return Coopt(m.bin, m.cache_dir, dict(m.env, **env))


def _machines(coopt: Coopt, tmp_path: Path, spec: str) -> Machines:
    require("clang")
    tree = tmp_path / "tree"
    tree.mkdir()
    _tu(tree)
    subprocess.run(["clang", "-O2", "-c", "f.c", "-o", "plain.o"], cwd=tree, check=True)
    a = Coopt(coopt.bin, tmp_path / "cache-a", dict(coopt.env, COOPT_CACHE_DIR=str(tmp_path / "cache-a"),
                                                    COOPT_REMOTE_STORAGE=spec))
    b = Coopt(coopt.bin, tmp_path / "cache-b", dict(coopt.env, COOPT_CACHE_DIR=str(tmp_path / "cache-b"),
                                                    COOPT_REMOTE_STORAGE=spec))
    return Machines(tree, a, b, (tree / "plain.o").read_bytes())


def _remote_counts(m: Coopt, event: str) -> int:
    return sum(v for k, v in m.stats().items() if k.startswith("remote:%s:" % event))


def test_a_variant_put_on_one_machine_is_served_on_another(coopt: Coopt, tmp_path: Path, remote: Store) -> None:
    ms = _machines(coopt, tmp_path, remote.spec)
    assert ms.compile(ms.b) == ms.plain  # nothing stored anywhere yet
    out = ms.put(ms.a)
    assert "uploaded" in out, out
    served = ms.compile(ms.b)
    assert VARIANT in served and served != ms.plain
    assert ms.b.stats().get("hit") == 1 and _remote_counts(ms.b, "hit") == 1
    # The fetched entry now sits in B's local cache: the next compile is a local hit, no remote request.
    requests = _remote_counts(ms.b, "requests")
    assert VARIANT in ms.compile(ms.b)
    assert ms.b.stats().get("hit") == 2 and _remote_counts(ms.b, "requests") == requests
    stats = ms.b.coopt("cache", "stats", "--json").stdout
    import json

    rows = json.loads(stats)["remotes"]
    assert list(rows) and all(r["hit"] == 1 and r["requests"] >= 2 for r in rows.values()), rows


def test_push_uploads_what_was_stored_before_a_remote_existed(coopt: Coopt, tmp_path: Path, remote: Store) -> None:
    ms = _machines(coopt, tmp_path, remote.spec)
    out = ms.put(ms.a, COOPT_REMOTE_STORAGE="")  # no remote configured at put time
    assert "uploaded" not in out
    assert ms.compile(ms.b) == ms.plain
    pushed = ms.a.coopt("cache", "push", cwd=ms.tree).stdout
    assert "uploaded" in pushed and pushed.strip().endswith("1 entry offered to 1 remote(s)"), pushed
    ms.b.coopt("cache", "clear")
    assert VARIANT in ms.compile(ms.b)


def test_a_stale_local_variant_makes_way_for_the_remote_one_for_new_headers(coopt: Coopt, tmp_path: Path,
                                                                           remote: Store) -> None:
    ms = _machines(coopt, tmp_path, remote.spec)
    ms.put(ms.a)
    assert VARIANT in ms.compile(ms.b)  # B now holds the variant for K 3 locally
    (ms.tree / "f.h").write_text("#define K 4\n")  # a header edit: B's local manifest no longer matches
    subprocess.run(["clang", "-O2", "-c", "f.c", "-o", "plain4.o"], cwd=ms.tree, check=True)
    assert ms.compile(ms.b) == (ms.tree / "plain4.o").read_bytes()  # nothing for K 4 anywhere yet
    ms.put(ms.a)  # the nightly machine stores a variant for the new header too
    served = ms.compile(ms.b)
    assert VARIANT in served and served != (ms.tree / "plain4.o").read_bytes()
    assert _remote_counts(ms.b, "hit") == 2


def test_a_read_only_local_cache_serves_a_remote_hit_without_writing(coopt: Coopt, tmp_path: Path,
                                                                      remote: Store) -> None:
    ms = _machines(coopt, tmp_path, remote.spec)
    ms.put(ms.a)
    ms.b.cache_dir.mkdir()
    assert VARIANT in ms.compile(ms.b, COOPT_READONLY="1")
    assert list(ms.b.cache_dir.iterdir()) == []


def test_a_corrupted_object_on_the_server_is_refused(coopt: Coopt, tmp_path: Path, remote: Store) -> None:
    ms = _machines(coopt, tmp_path, remote.spec)
    ms.put(ms.a)
    key = ms.a.journal()[-1]["key"]  # the direct key; the entry's key is in A's manifest
    entry_key = _entry_key(ms.a, key)
    remote.corrupt(entry_key)
    assert ms.compile(ms.b) == ms.plain
    assert ms.b.stats().get("remote_corrupt") == 1 and "hit" not in ms.b.stats()
    assert not (ms.b.cache_dir / "entries" / entry_key[:2] / entry_key).exists()


def _entry_key(m: Coopt, direct_key: str) -> str:
    from coopt.cache import manifest

    results = manifest.load(str(m.cache_dir / "manifests" / direct_key[:2] / direct_key))
    assert len(results) == 1
    return str(results[0]["key"])


@pytest.mark.parametrize("writer_key, reader_key, served", [
    (SECRET, SECRET, True),
    (SECRET + "-other", SECRET, False),  # wrongly signed
    ("", SECRET, False),  # unsigned, and the reader holds a key
    (SECRET, "", True),  # a reader without a key does not check signatures (checksums and key still hold)
])
def test_signatures(coopt: Coopt, tmp_path: Path, writer_key: str, reader_key: str, served: bool) -> None:
    store = _file_store(tmp_path / "remote")
    ms = _machines(coopt, tmp_path, store.spec)
    ms.put(ms.a, COOPT_CACHE_HMAC_KEY=writer_key)
    got = ms.compile(ms.b, COOPT_CACHE_HMAC_KEY=reader_key)
    if served:
        assert VARIANT in got
    else:
        assert got == ms.plain
        assert ms.b.stats().get("remote_bad_signature") == 1 and "hit" not in ms.b.stats()
    _assert_secret_nowhere(tmp_path)


def _assert_secret_nowhere(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            assert SECRET.encode() not in p.read_bytes(), p


def test_a_read_only_client_does_not_write(coopt: Coopt, tmp_path: Path, remote: Store) -> None:
    ms = _machines(coopt, tmp_path, remote.spec + "|read-only")
    out = ms.put(ms.a)
    assert out.startswith("stored ") and "read-only, not written" in out, out
    assert ms.a.coopt("cache", "ls").stdout.count("\n") >= 1
    assert ms.compile(ms.b) == ms.plain  # nothing reached the remote
    assert _remote_counts(ms.a, "put_skipped_read_only") == 1
    ms_all = dict(COOPT_REMOTE_STORAGE=remote.spec, COOPT_REMOTE_READ_ONLY="1")
    out = ms.put(ms.a, **ms_all)
    assert "read-only, not written" in out, out


def test_a_server_that_refuses_writes_fails_no_put(coopt: Coopt, tmp_path: Path, remote: Store) -> None:
    if not remote.read_only_spec:
        pytest.skip("%s has no read-only credential" % remote.kind)
    ms = _machines(coopt, tmp_path, remote.read_only_spec)
    out = ms.put(ms.a)
    assert out.startswith("stored ") and "not written" in out, out
    assert _remote_counts(ms.a, "put_refused") == 1
    assert ms.compile(ms.b) == ms.plain


def test_a_dead_server_costs_one_attempt_then_is_skipped(coopt: Coopt, tmp_path: Path) -> None:
    from support.servers import dead_port

    ms = _machines(coopt, tmp_path, "http://127.0.0.1:%d/cache/" % dead_port())
    assert ms.compile(ms.b) == ms.plain
    stamps = list((ms.b.cache_dir / "remote").glob("down-*"))
    assert len(stamps) == 1
    assert ms.compile(ms.b) == ms.plain
    assert _remote_counts(ms.b, "error") == 1 and _remote_counts(ms.b, "skipped") == 1
    # Once the stamp is older than remote_retry_after, the server is tried again.
    assert ms.compile(ms.b, COOPT_REMOTE_RETRY_AFTER="0") == ms.plain
    assert _remote_counts(ms.b, "error") == 2


@pytest.mark.parametrize("scheme", ["http", "redis"])
def test_a_hanging_server_is_bounded_and_marked_down(coopt: Coopt, tmp_path: Path, scheme: str) -> None:
    from support.servers import hanging_server

    with hanging_server() as port:
        spec = ("http://127.0.0.1:%d/cache/" if scheme == "http" else "redis://127.0.0.1:%d/0") % port
        ms = _machines(coopt, tmp_path, spec + "|timeout=200")
        assert ms.compile(ms.b) == ms.plain  # it finished: the timeout bounded the wait
        assert len(list((ms.b.cache_dir / "remote").glob("down-*"))) == 1
        assert ms.compile(ms.b) == ms.plain
        assert _remote_counts(ms.b, "error") == 1 and _remote_counts(ms.b, "skipped") == 1


def test_a_bad_spec_is_one_config_line_and_never_breaks_a_compile(coopt: Coopt, tmp_path: Path) -> None:
    ms = _machines(coopt, tmp_path, "gopher://127.0.0.1/x")
    assert ms.compile(ms.b) == ms.plain
    proc = ms.b.coopt("config", "show", check=False)
    assert proc.returncode != 0 and "COOPT_REMOTE_STORAGE" in proc.stderr and "gopher" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_credentials_are_never_shown(coopt: Coopt, tmp_path: Path) -> None:
    ms = _machines(coopt, tmp_path, "redis://:%s@127.0.0.1:1/0" % SECRET)
    ms.compile(ms.b, COOPT_DEBUG="1")
    shown = ms.b.coopt("config", "show").stdout + ms.b.coopt("cache", "stats").stdout
    assert SECRET not in shown
    _assert_secret_nowhere(tmp_path)


# --- a real project on two machines ----------------------------------------------------------------------------

TARGET = "blocksort.sho"
TARGET_SOURCE = "blocksort.c"
MARKER = b"coopt-remote-variant-of-blocksort"


@dataclass
class Project:
    tree: Path
    runner: object
    plain: dict[str, bytes]
    launcher_bin: Path
    base: Path

    def machine(self, name: str, spec: str, **env: str) -> Coopt:
        from test_real_projects import private_coopt

        m = private_coopt(self.launcher_bin, self.base / name)
        m.env.update(COOPT_REMOTE_STORAGE=spec, **env)
        return m

    def build(self, m: Coopt, during: Callable[[threading.Event], None] | None = None) -> dict[str, bytes]:
        """Build with coopt-cc on machine `m` (bzip2's `all` runs its tests: they must pass); `during` runs
        beside the build and is told when it has finished."""
        from support.builds import BZIP2, Runner, build, clean

        runner = Runner(self.tree, m.env)
        clean(BZIP2, runner)
        if during is None:
            return build(BZIP2, runner, "coopt-cc").objects
        finished = threading.Event()
        worker = threading.Thread(target=during, args=(finished,))
        worker.start()
        try:
            return build(BZIP2, runner, "coopt-cc").objects
        finally:
            finished.set()
            worker.join()


@pytest.fixture(scope="module")
def project(launcher_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """bzip2 from Debian's source, with its plain clang objects."""
    require("clang", "make")
    from support.builds import BZIP2, Runner, build, clean
    from test_real_projects import source_tree

    base = tmp_path_factory.mktemp("bzip2-remote")
    tree = source_tree(BZIP2.package, base / "tree")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOPT_")}
    runner = Runner(tree, dict(env, LC_ALL="C"))
    plain = build(BZIP2, runner, "clang").objects
    clean(BZIP2, runner)
    return Project(tree, runner, plain, launcher_bin, base)


def _share_variant(p: Project, spec: str, name: str, **env: str) -> Coopt:
    """Machine A builds, stores a variant of blocksort.c and uploads it. Returns machine A."""
    a = p.machine(name, spec, **env)
    p.build(a)  # journals the compiles `cache put` needs
    artifact = p.base / (name + "-variant") / TARGET_SOURCE
    artifact.parent.mkdir()
    artifact.write_text((p.tree / TARGET_SOURCE).read_text()
                        + '\n__attribute__((used)) static const char coopt_m[] = "%s";\n' % MARKER.decode())
    out = a.coopt("cache", "put", "--artifact", str(artifact), "--for-object", TARGET, "--unverified",
                  cwd=p.tree).stdout
    assert "uploaded" in out, out
    return a


def _only_target_differs(p: Project, objects: dict[str, bytes], served: bool) -> None:
    from support.builds import differing

    assert differing(p.plain, objects) == ([TARGET] if served else [])
    assert (MARKER in objects[TARGET]) == served


@pytest.mark.slow
def test_real_project_on_two_machines(project: Project, remote: Store) -> None:
    p = project
    _share_variant(p, remote.spec, "a-" + remote.kind, COOPT_CACHE_HMAC_KEY=SECRET)
    b = p.machine("b-" + remote.kind, remote.spec, COOPT_CACHE_HMAC_KEY=SECRET)
    _only_target_differs(p, p.build(b), served=True)
    assert b.stats().get("hit") == 1 and _remote_counts(b, "hit") == 1, b.stats()
    assert b.stats().get("internal_error", 0) == 0

    # Corrupted on the server: machines with a fresh cache build plain objects. Without the team key the checksums
    # catch it; with it, the signature already does.
    entries = list((p.base / ("a-" + remote.kind) / "entries").glob("*/*"))
    assert len(entries) == 1
    remote.corrupt(entries[0].name)
    c = p.machine("c-" + remote.kind, remote.spec, COOPT_DEBUG="1")  # its log is searched for secrets below
    _only_target_differs(p, p.build(c), served=False)
    assert c.stats().get("remote_corrupt") == 1, c.stats()
    assert "refused (corrupt)" in (c.cache_dir / "coopt-cc.log").read_text()
    c_key = p.machine("c-key-" + remote.kind, remote.spec, COOPT_CACHE_HMAC_KEY=SECRET)
    _only_target_differs(p, p.build(c_key), served=False)
    assert c_key.stats().get("remote_bad_signature") == 1, c_key.stats()

    # Signed with another key: refused.
    _share_variant(p, remote.spec, "d-" + remote.kind, COOPT_CACHE_HMAC_KEY=SECRET + "-wrong")
    e = p.machine("e-" + remote.kind, remote.spec, COOPT_CACHE_HMAC_KEY=SECRET)
    _only_target_differs(p, p.build(e), served=False)
    assert e.stats().get("remote_bad_signature") == 1, e.stats()
    _assert_secret_nowhere(p.base)
    # The store's write password (redis, http) is nowhere in the caches, logs, stats or journals either.
    from coopt.cache.remote import parse_spec

    password = parse_spec(remote.spec).password
    for f in p.base.rglob("*"):
        if password and f.is_file():
            assert password.encode() not in f.read_bytes(), f


@pytest.mark.slow
def test_real_project_with_the_server_killed_mid_build(project: Project) -> None:
    require("redis-server")
    servers = _servers()
    p = project
    with servers.remote_store("redis", p.base / "redis-killed") as s:
        _share_variant(p, s.spec, "a-killed")
        b = p.machine("b-killed", s.spec)
        seen: list[int] = []

        def compiles() -> int:
            return sum(1 for r in b.journal() if r.get("type") == "compile")

        def kill_after_three_compiles(finished: threading.Event) -> None:
            while compiles() < 3 and not finished.wait(0.01):
                pass
            seen.append(compiles())
            s.kill()

        objects = p.build(b, during=kill_after_three_compiles)
    # Every object is plain clang's, except the variant's TU, which is either (served before the kill or not).
    from support.builds import differing

    assert set(differing(p.plain, objects)) <= {TARGET}
    assert seen and seen[0] < len(p.plain), "the server was not killed during the build"
    assert b.stats().get("internal_error", 0) == 0
    assert _remote_counts(b, "error") >= 1 and len(list((b.cache_dir / "remote").glob("down-*"))) == 1


# --- the containers: every kind of damage is refused before use ------------------------------------------------


def _packed(tmp_path: Path, sign_key: bytes | None) -> tuple[str, bytes]:
    """A real local entry (a compiled object) packed as a remote blob."""
    from coopt.cache import key as keymod
    from coopt.cache.remote.sync import pack_entry
    from coopt.cache.store import Store as LocalStore

    require("clang")
    (tmp_path / "f.c").write_text("int f(int x) { return x + 1; }\n")
    subprocess.run(["clang", "-O2", "-c", "f.c", "-o", "f.o"], cwd=tmp_path, check=True)
    material = "version=2\nsource-hash=%s\n" % ("0" * 32)
    key = keymod.key_of(material)
    entry = LocalStore(str(tmp_path / "cache")).put(key, material, str(tmp_path / "f.o"), None, {"direct_key": "d"})
    return key, pack_entry(entry.path, key, sign_key)


def _replace_once(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    return lambda blob: blob.replace(old, new, 1)


TAMPER = [
    # (what, how the blob is changed, the reason it must be refused with)
    ("truncated", lambda b: b[: len(b) // 2], "corrupt"),
    ("no signature line", lambda b: b[: b.rindex(b"sig ")], "corrupt"),
    ("another key's header", _replace_once(b"key ", b"key 0"), "corrupt"),
    ("a size that lies", _replace_once(b"file key.txt ", b"file key.txt 1"), "corrupt"),
    ("a path as a file name", _replace_once(b"file key.txt", b"file ../key"), "corrupt"),
    ("trailing bytes", lambda b: b.replace(b"end\n", b"end\nmore\n", 1), "corrupt"),
    ("a file dropped", lambda b: b[: b.index(b"file object.o")] + b[b.index(b"end\n"):], "corrupt"),
]


@pytest.mark.parametrize("what, change, reason", TAMPER, ids=[t[0] for t in TAMPER])
def test_a_damaged_entry_blob_is_refused(tmp_path: Path, what: str, change: Callable[[bytes], bytes],
                                         reason: str) -> None:
    from coopt.cache.remote.sync import BadBlob, unpack_entry

    key, blob = _packed(tmp_path, None)
    assert set(unpack_entry(blob, key, None)) >= {"object.o", "key.txt", "meta.json", "checksums.txt"}
    damaged = change(blob)
    assert damaged != blob, what
    with pytest.raises(BadBlob) as err:
        unpack_entry(damaged, key, None)
    assert err.value.reason == reason


def test_key_material_must_hash_to_the_key_and_signatures_cover_every_byte(tmp_path: Path) -> None:
    from coopt.cache.remote.sync import BadBlob, pack_manifest, unpack_entry, unpack_manifest

    key, blob = _packed(tmp_path, b"k1")
    assert unpack_entry(blob, key, b"k1")
    with pytest.raises(BadBlob) as err:  # asked for under another key: the header and the material disagree
        unpack_entry(blob.replace(key.encode(), b"f" * 32), "f" * 32, None)
    assert err.value.reason == "corrupt"
    for at in (0, len(blob) // 3, len(blob) - 80):  # one flipped byte anywhere before the signature
        flipped = blob[:at] + bytes([blob[at] ^ 1]) + blob[at + 1 :]
        with pytest.raises(BadBlob) as err:
            unpack_entry(flipped, key, b"k1")
        assert err.value.reason in ("bad_signature", "corrupt")
    text = "coopt-manifest 2\nresult %s\ndep %s f.c\n" % (key, "0" * 32)
    m = pack_manifest("d" * 32, text, b"k1")
    assert unpack_manifest(m, "d" * 32, b"k1")[0]["key"] == key
    for bad_key, direct in ((b"k2", "d" * 32), (b"k1", "e" * 32)):
        with pytest.raises(BadBlob):
            unpack_manifest(m, direct, bad_key)
