"""The store: damaged entries are never served and are removed; a read-only cache serves hits and writes nothing;
LRU eviction keeps what was used last; the `coopt cache` subcommands work on a real cache."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import Coopt, require

HEADER = "#define K 3\n"
TU = '#include "f.h"\nint NAME(int x) { return x * K; }\n'
VARIANT = '#include "f.h"\nint NAME(int x) { return (x << 1) + x; }\n'
FLAGS = ["-O2"]


def _tu(d: Path, name: str) -> None:
    (d / (name + ".c")).write_text(TU.replace("NAME", name))
    (d / (name + "_v.c")).write_text(VARIANT.replace("NAME", name))


def _compile(coopt: Coopt, d: Path, name: str, env: dict | None = None) -> bytes:
    """Compile NAME.c through coopt-cc to NAME.o and return the object."""
    out = d / (name + ".o")
    if out.exists():
        out.unlink()
    cmd = [coopt.cc, *FLAGS, "-c", name + ".c", "-o", name + ".o"]
    subprocess.run(cmd, cwd=d, env=env or coopt.env, check=True)
    return out.read_bytes()


def _put(coopt: Coopt, d: Path, name: str) -> str:
    out = coopt.coopt("cache", "put", "--artifact", name + "_v.c", "--for-object", name + ".o", "--unverified",
                      cwd=d)
    return out.stdout.split()[1]


def _ls(coopt: Coopt) -> list[dict]:
    return json.loads(coopt.coopt("cache", "ls", "--json").stdout)


def _entry_dir(coopt: Coopt, key: str) -> Path:
    return coopt.cache_dir / "entries" / key[:2] / key


@pytest.fixture
def proj(coopt: Coopt, tmp_path: Path) -> Path:
    require("clang")
    d = tmp_path / "p"
    d.mkdir()
    (d / "f.h").write_text(HEADER)
    for name in ("a", "b", "c"):
        _tu(d, name)
    subprocess.run(["clang", *FLAGS, "-c", "a.c", "-o", "plain_a.o"], cwd=d, check=True)
    return d


@pytest.fixture
def stored(coopt: Coopt, proj: Path) -> tuple[Path, str]:
    """`a.c` compiled once through coopt-cc, and a variant stored for it; returns (project, key)."""
    _compile(coopt, proj, "a")
    key = _put(coopt, proj, "a")
    return proj, key


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "flip":
        i = len(data) // 2
        path.write_bytes(data[:i] + bytes([data[i] ^ 0x20]) + data[i + 1 :])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "delete":
        path.unlink()


@pytest.mark.parametrize("how", ["truncate", "flip", "empty", "delete"])
@pytest.mark.parametrize("name", ["object.o", "meta.json", "key.txt", "artifact.c"])
def test_damaged_entry_is_never_served_and_is_removed(coopt: Coopt, stored: tuple[Path, str], name: str,
                                                     how: str) -> None:
    proj, key = stored
    plain = (proj / "plain_a.o").read_bytes()
    entry = _entry_dir(coopt, key)
    served = (entry / "object.o").read_bytes()
    assert _compile(coopt, proj, "a") == served != plain  # intact: served
    assert coopt.stats().get("hit") == 1

    _damage(entry / name, how)
    assert _compile(coopt, proj, "a", dict(coopt.env, COOPT_DEBUG="1")) == plain  # the real compiler's object
    log = coopt.cache_dir / "coopt-cc.log"
    assert not entry.exists(), (coopt.stats(), log.read_text() if log.exists() else "")
    assert coopt.stats().get("hit") == 1
    assert _ls(coopt) == []
    assert _compile(coopt, proj, "a") == plain
    # The cache is usable again: a new put is served.
    _put(coopt, proj, "a")
    assert _compile(coopt, proj, "a") == served


def test_meta_that_parses_but_lies_is_not_served(coopt: Coopt, stored: tuple[Path, str]) -> None:
    proj, key = stored
    meta_path = _entry_dir(coopt, key) / "meta.json"
    for change in ({"key": "0" * 32}, {"format": 99}, {"checksums": {}}):
        meta = json.loads(meta_path.read_text())
        meta_path.write_text(json.dumps({**meta, **change}))
        assert _compile(coopt, proj, "a") == (proj / "plain_a.o").read_bytes()
        assert not meta_path.exists()
        key = _put(coopt, proj, "a")
        meta_path = _entry_dir(coopt, key) / "meta.json"
    assert "hit" not in coopt.stats()


def test_same_key_other_material_is_kept_but_not_served(coopt: Coopt, stored: tuple[Path, str]) -> None:
    # A hash collision stand-in: intact entry whose key material differs from the compile's. Never served, and
    # since nothing is damaged, it is not removed either.
    proj, key = stored
    entry = _entry_dir(coopt, key)
    material = (entry / "key.txt").read_text().replace("arg=-O2", "arg=-O3")
    (entry / "key.txt").write_text(material)
    sums = [line.split(" ", 1) for line in (entry / "checksums.txt").read_text().splitlines()]
    (entry / "checksums.txt").write_text(
        "".join("%s %s\n" % (_xxh(material.encode()) if name == "key.txt" else digest, name) for digest, name in sums)
    )
    assert _compile(coopt, proj, "a") == (proj / "plain_a.o").read_bytes()
    assert entry.exists() and "hit" not in coopt.stats()


def _xxh(data: bytes) -> str:
    from coopt.cache.hashing import hash_bytes

    return hash_bytes(data)


def _tree(root: Path) -> dict[str, tuple]:
    """Everything observable about a directory tree except access times."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = p.lstat()
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
            out[str(p.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    st = root.stat()
    out["."] = (st.st_mode, st.st_mtime_ns)
    return out


def test_readonly_env_serves_hits_and_writes_nothing(coopt: Coopt, stored: tuple[Path, str]) -> None:
    proj, key = stored
    served = (_entry_dir(coopt, key) / "object.o").read_bytes()
    before = _tree(coopt.cache_dir)
    env = dict(coopt.env, COOPT_READONLY="1")
    assert _compile(coopt, proj, "a", env) == served
    assert _compile(coopt, proj, "b", env) == _plain(proj, "b")  # a miss: journals nothing either
    assert _tree(coopt.cache_dir) == before

    # A damaged entry in a read-only cache is skipped (not served) and left for a writer to remove.
    _damage(_entry_dir(coopt, key) / "object.o", "flip")
    before = _tree(coopt.cache_dir)
    assert _compile(coopt, proj, "a", env) == (proj / "plain_a.o").read_bytes()
    assert _tree(coopt.cache_dir) == before


def _plain(d: Path, name: str) -> bytes:
    out = d / ("plain_%s.o" % name)
    subprocess.run(["clang", *FLAGS, "-c", name + ".c", "-o", str(out)], cwd=d, check=True)
    return out.read_bytes()


def _read_only_prefix(cache: Path) -> list[str]:
    """A command prefix under which `cache` cannot be written: a read-only bind mount as root, else chmod."""
    if os.geteuid() != 0:
        subprocess.run(["chmod", "-R", "a-w", str(cache)], check=True)
        return []
    script = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" && exec "$@"'
    probe = subprocess.run(["unshare", "-m", "sh", "-c", script, str(cache), "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("cannot make a read-only mount as root here: %s" % probe.stderr.decode().strip())
    return ["unshare", "-m", "sh", "-c", script, str(cache)]


def test_read_only_cache_directory_serves_hits_and_writes_nothing(coopt: Coopt, stored: tuple[Path, str]) -> None:
    proj, key = stored
    served = (_entry_dir(coopt, key) / "object.o").read_bytes()
    plain_b = _plain(proj, "b")
    before = _tree(coopt.cache_dir)
    prefix = _read_only_prefix(coopt.cache_dir)
    try:
        for name, expected in (("a", served), ("b", plain_b)):
            (proj / (name + ".o")).unlink(missing_ok=True)
            cmd = [*prefix, coopt.cc, *FLAGS, "-c", name + ".c", "-o", name + ".o"]
            proc = subprocess.run(cmd, cwd=proj, env=coopt.env, capture_output=True, text=True)
            assert proc.returncode == 0 and proc.stderr == "", proc.stderr
            assert (proj / (name + ".o")).read_bytes() == expected
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(coopt.cache_dir)], check=True)
    after = _tree(coopt.cache_dir)
    if prefix == []:  # chmod changed the modes; compare everything else
        before = {k: v[1:] for k, v in before.items()}
        after = {k: v[1:] for k, v in after.items()}
    assert after == before


def test_lru_eviction_keeps_recently_used_entries(coopt: Coopt, proj: Path) -> None:
    keys = {}
    for name in ("a", "b", "c"):
        _compile(coopt, proj, name)
        keys[name] = _put(coopt, proj, name)
    # Make the order of use explicit: a oldest, then b, then c; then use a.
    for age, name in ((3000, "a"), (2000, "b"), (1000, "c")):
        t = os.stat(_entry_dir(coopt, keys[name])).st_mtime - age
        os.utime(_entry_dir(coopt, keys[name]), (t, t))
    assert _compile(coopt, proj, "a") == (_entry_dir(coopt, keys["a"]) / "object.o").read_bytes()
    sizes = {e["key"]: e["size"] for e in _ls(coopt)}
    assert set(sizes) == set(keys.values())

    limit = sizes[keys["a"]] + sizes[keys["c"]]
    out = coopt.coopt("cache", "evict", "--max-size", str(limit))
    assert "evicted 1 entries" in out.stdout
    assert {e["key"] for e in _ls(coopt)} == {keys["a"], keys["c"]}
    # b's manifest no longer leads anywhere: its next compile is a plain miss, not a broken lookup.
    before = coopt.stats()
    assert _compile(coopt, proj, "b") == _plain(proj, "b")
    after = coopt.stats()
    assert after.get("miss", 0) == before.get("miss", 0) + 1 and "miss_entry" not in after
    assert _compile(coopt, proj, "a") == (_entry_dir(coopt, keys["a"]) / "object.o").read_bytes()

    coopt.coopt("cache", "evict", "--max-size", "0")
    assert _ls(coopt) == []
    assert not any((coopt.cache_dir / "manifests").rglob("*.tmp"))
    assert [p for p in (coopt.cache_dir / "manifests").rglob("*") if p.is_file()] == []


def test_cache_subcommands(coopt: Coopt, proj: Path) -> None:
    out = json.loads(coopt.coopt("cache", "stats", "--json").stdout)
    assert (out["entries"], out["hits"], out["misses"]) == (0, 0, 0)
    assert "no entries" in coopt.coopt("cache", "ls").stdout

    keys = {}
    for name in ("a", "b"):
        _compile(coopt, proj, name)
        keys[name] = _put(coopt, proj, name)
    _compile(coopt, proj, "a")
    coopt.run([coopt.cc, "-E", "c.c"], cwd=proj)
    out = json.loads(coopt.coopt("cache", "stats", "--json").stdout)
    assert (out["entries"], out["hits"], out["misses"]) == (2, 1, 2)
    assert out["counters"]["preprocess_only"] == 1 and out["size_bytes"] > 0
    text = coopt.coopt("cache", "stats").stdout
    assert "preprocess_only" in text and "-E: preprocessing only" in text

    listing = coopt.coopt("cache", "ls").stdout
    assert keys["a"] in listing and keys["b"] in listing and "(unverified)" in listing
    rows = {r["key"]: r for r in _ls(coopt)}
    assert rows[keys["a"]]["source"] == str(proj / "a.c") and rows[keys["a"]]["level"] == "source"

    shown = json.loads(coopt.coopt("cache", "show", keys["a"][:8]).stdout)
    assert shown["intact"] is True and shown["key"] == keys["a"] and shown["job"]["source"] == "a.c"
    assert shown["evidence"]["verified"] is False

    assert "removed" in coopt.coopt("cache", "rm", keys["a"]).stdout
    assert {r["key"] for r in _ls(coopt)} == {keys["b"]}
    assert _compile(coopt, proj, "a") == (proj / "plain_a.o").read_bytes()
    assert "miss_entry" not in coopt.stats()

    for bad in (("show", "ffffffffffff"), ("rm", "ffffffffffff"), ("evict", "--max-size", "banana")):
        proc = coopt.coopt("cache", *bad, check=False)
        assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
        assert proc.stderr.startswith("coopt cache: error: ")

    assert "removed 1 entries" in coopt.coopt("cache", "clear").stdout
    assert _ls(coopt) == []
    assert _compile(coopt, proj, "b") == _plain(proj, "b")
    coopt.coopt("cache", "stats", "--zero")
    out = json.loads(coopt.coopt("cache", "stats", "--json").stdout)
    assert (out["entries"], out["hits"], out["misses"], out["counters"]) == (0, 0, 0, {})


def test_evict_cleans_what_dead_writers_left_in_tmp(coopt: Coopt, stored: tuple[Path, str]) -> None:
    tmp = coopt.cache_dir / "tmp"
    stale = tmp / "deadbeef.stage"
    stale.mkdir(parents=True)
    (stale / "object.o").write_bytes(b"half")
    fresh = tmp / "cafe.stage"
    fresh.mkdir()
    old = stale.stat().st_mtime - 7200
    os.utime(stale, (old, old))
    coopt.coopt("cache", "evict")
    assert not stale.exists() and fresh.exists()
    assert len(_ls(coopt)) == 1
    shutil.rmtree(fresh)


def test_stats_show_hit_rate_size_against_limit_and_when_zeroed(coopt: Coopt, proj: Path) -> None:
    """Like `ccache -s`: a hit rate, the size against the limit, and since when the counters run."""
    _compile(coopt, proj, "a")  # a miss
    _put(coopt, proj, "a")
    _compile(coopt, proj, "a")  # a hit
    _compile(coopt, proj, "b")  # a miss
    coopt.env["COOPT_CACHE_MAX_SIZE"] = "10M"
    text = coopt.coopt("cache", "stats").stdout
    assert "hit rate          33.3% of 3 candidate compiles" in text, text
    assert "of 10.0 MiB (" in text and "never zeroed" in text
    data = json.loads(coopt.coopt("cache", "stats", "--json").stdout)
    assert round(data["hit_rate"], 3) == 0.333 and data["max_size_bytes"] == 10 << 20 and data["zeroed"] == ""
    coopt.coopt("cache", "stats", "--zero")
    text = coopt.coopt("cache", "stats").stdout
    assert "no candidate compiles yet" in text and "never zeroed" not in text
    assert json.loads(coopt.coopt("cache", "stats", "--json").stdout)["zeroed"]
    ls = coopt.coopt("cache", "ls").stdout.splitlines()
    assert ls[0].split()[:4] == ["KEY", "LEVEL", "STORED", "SIZE"] and " MiB " in ls[1]


def test_evict_older_than_and_trimmed_history(coopt: Coopt, proj: Path) -> None:
    """`--older-than 7d` removes entries unused that long; evict also drops superseded journal records and old
    optimize runs, which otherwise grow with every build and run."""
    keys = {}
    for name in ("a", "b"):
        _compile(coopt, proj, name)
        keys[name] = _put(coopt, proj, name)
    old = os.stat(_entry_dir(coopt, keys["a"])).st_mtime - 8 * 86400
    os.utime(_entry_dir(coopt, keys["a"]), (old, old))
    # Objects kept for compile-and-link calls: one rebuilt recently stays, one no build wrote for 8 days goes.
    for name in ("app", "ztest123"):
        (proj / (name + ".c")).write_text("int main(void) { return 0; }\n")
        coopt.run(["coopt-cc", "-O2", "-o", name, name + ".c"], cwd=proj)
    kept = {p.parent.name: p for p in (coopt.cache_dir / "linked-objects").glob("*/*/*.o")}
    assert len(kept) == 2
    probe = next(p for p in kept.values() if p.name == "ztest123.o")
    os.utime(probe, (old, old))
    for _ in range(3):  # three builds of b: three records, one of which is still true
        _compile(coopt, proj, "b")
    journal = coopt.cache_dir / "journal.jsonl"
    before = [json.loads(line) for line in journal.read_text().splitlines()]
    runs = coopt.cache_dir / "runs"
    for i in range(23):
        d = runs / ("run-%02d" % i)
        d.mkdir(parents=True)
        t = old + i  # all older than 7 days but the last
        os.utime(d, (t, t))
    os.utime(runs / "run-22")
    assert coopt.coopt("cache", "evict", "--older-than", "bad", check=False).returncode == 2
    out = coopt.coopt("cache", "evict", "--older-than", "7d").stdout
    assert "evicted 1 entries" in out and "1 unused kept object(s) removed" in out
    assert not probe.parent.exists() and [p.name for p in (coopt.cache_dir / "linked-objects").glob("*/*/*.o")] == [
        "app.o"]
    assert {e["key"] for e in _ls(coopt)} == {keys["b"]}
    after = [json.loads(line) for line in journal.read_text().splitlines()]
    assert len(after) < len(before)
    newest = {(r["type"], r["cwd"], r["output"]): r for r in before}
    assert after == sorted(newest.values(), key=before.index)
    assert sorted(p.name for p in runs.iterdir()) == ["run-22"]
    assert _compile(coopt, proj, "b")  # the journal still takes records
