"""Faults never fail a build: a full, read-only or failing cache file system costs coopt-cc a log line at most.

Real file systems: a small tmpfs filled up, or remounted read-only, as COOPT_CACHE_DIR (mounting needs root; the
tests skip with the reason elsewhere). Each write on the compile path is tested on its own, then bzip2's own
`make -j2` runs on such a cache, through the Python wrapper and through coopt-cc-fast replaying a warm cache's
memos: the build succeeds and every object is byte-identical to plain clang's.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import FAST_LAUNCHER, SRC, Coopt, require
from support.builds import BZIP2, BuildResult, Runner, build, clean, differing
from support.tmpfs import fill, remount_read_only, tmpfs


@pytest.fixture
def full_fs(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs with no byte left: files and directories can be created, nothing can be written into them."""
    with tmpfs(tmp_path / "full", "256k") as fs:
        (fs / "cache").mkdir()
        fill(fs)
        yield fs


@pytest.fixture
def ro_fs(tmp_path: Path) -> Iterator[Path]:
    """A read-only tmpfs holding an empty cache directory."""
    with tmpfs(tmp_path / "ro", "256k") as fs:
        (fs / "cache").mkdir()
        remount_read_only(fs)
        yield fs


def _with(co: Coopt, **env: str) -> Coopt:
    return dataclasses.replace(co, env=dict(co.env, **env))


# --- each guarded write on its own ------------------------------------------------------------------------------


def test_stats_on_a_full_file_system(full_fs: Path) -> None:
    from coopt.cache import stats

    stats.bump(str(full_fs / "cache" / "stats"), "miss")  # raised OSError(ENOSPC) before
    stats.add(str(full_fs / "cache" / "stats"), {"remote:us:x": 5})
    assert stats.read(str(full_fs / "cache" / "stats")) == {}


def test_journal_on_a_full_file_system(full_fs: Path) -> None:
    from coopt.journal import log as journal

    assert journal.append(str(full_fs / "cache" / "journal.jsonl"), {"type": "link"}) is False
    assert journal.read(str(full_fs / "cache" / "journal.jsonl")) == []


def test_log_on_full_and_read_only_file_systems(full_fs: Path, ro_fs: Path) -> None:
    from coopt.cache.layout import CacheLayout

    for fs in (full_fs, ro_fs):
        CacheLayout(str(fs / "cache")).append_log(["a line that cannot be written"])


def _tmp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.tmp")]


def test_compiler_memo_on_a_full_file_system(full_fs: Path) -> None:
    from coopt.cache.identity import compiler_identity

    clang = os.path.realpath(shutil.which("clang") or pytest.skip("no clang"))
    memo_dir = full_fs / "cache" / "compilers"
    assert compiler_identity(clang, str(memo_dir)) == compiler_identity(clang, None)
    assert _tmp_files(full_fs) == []  # a failed memo write left its temporary file behind before


def test_replay_memo_on_a_full_file_system(full_fs: Path) -> None:
    from coopt.cache.layout import CacheLayout
    from coopt.wrapper import fastpath

    clang = shutil.which("clang") or pytest.skip("no clang")
    target = fastpath.MemoTarget(CacheLayout(str(full_fs / "cache")), clang, "", "", 0, 0)
    assert fastpath.write_memo(target, "fingerprint", fastpath.Rendering("pass", "preprocess")) is False
    assert _tmp_files(full_fs) == []


def test_manifest_write_names_its_path_and_leaves_nothing(full_fs: Path) -> None:
    from coopt.cache import manifest

    path = full_fs / "cache" / "manifests" / "ab" / "abcd"
    with pytest.raises(OSError) as err:
        manifest.add(str(path), str(full_fs / "cache" / "locks" / "m.lock"), "k" * 32, [("f.c", "0" * 32)])
    assert str(path.parent) in str(err.value.filename), err.value
    assert _tmp_files(full_fs) == []


def test_remote_down_stamp_on_a_read_only_file_system(ro_fs: Path) -> None:
    from coopt.cache.layout import CacheLayout
    from coopt.cache.remote.sync import Tier

    tier = Tier(CacheLayout(str(ro_fs / "cache")), ["file:///nonexistent-coopt-remote/"])
    tier.mark_down(tier.remotes[0], "test")
    assert not tier.is_down(tier.remotes[0])


def test_the_fallback_itself_cannot_raise(full_fs: Path) -> None:
    from coopt.cache.layout import CacheLayout
    from coopt.wrapper import main as mainmod
    from coopt.wrapper.settings import Settings

    try:
        raise RuntimeError("a bug in coopt-cc")
    except RuntimeError as exc:
        mainmod._record_internal_error(CacheLayout(str(full_fs / "cache")), Settings(), [], exc)


def test_put_error_names_the_cache_file(coopt: Coopt, full_fs: Path, tmp_path: Path) -> None:
    """A put into a full cache says which cache file could not be written (it named the variant's temporary
    object, in /tmp, before)."""
    require("clang")
    (tmp_path / "f.c").write_text("int f(int x) { return x + 1; }\n")
    (tmp_path / "v.c").write_text("int f(int x) { return 1 + x; }\n")
    proc = _with(coopt, COOPT_CACHE_DIR=str(full_fs / "cache")).coopt(
        "cache", "put", "--artifact", "v.c", "--unverified", "--", "clang", "-O2", "-c", "f.c", cwd=tmp_path,
        check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0], proc.stderr
    assert lines[0].startswith("coopt cache put: error: %s/" % (full_fs / "cache")), proc.stderr


def test_evict_removes_staging_of_a_killed_put(coopt: Coopt, tmp_path: Path) -> None:
    """A put killed mid-way leaves its staging directory; `coopt cache evict` removes it once its writer is gone
    (after a short grace), and leaves a live writer's alone."""
    from coopt.cache.store import Store

    store = Store(str(coopt.cache_dir))
    code = ("import os, signal, sys; sys.path[:0] = %r; from coopt.cache.store import Store; "
            "d = Store(%r).staging_dir('0' * 32); open(os.path.join(d, 'object.o'), 'wb').write(b'x'); "
            "os.kill(os.getpid(), signal.SIGKILL)" % ([str(SRC)], str(coopt.cache_dir)))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    live = store.staging_dir("1" * 32)  # this process: alive
    (dead,) = [p for p in Path(store.layout.tmp_dir).iterdir() if str(p) != live]
    for p in (dead, Path(live)):
        os.utime(p, (p.stat().st_mtime - 300, p.stat().st_mtime - 300))  # past the grace, well within the hour
    coopt.coopt("cache", "evict")
    assert not dead.exists()
    assert Path(live).exists()


# --- single coopt-cc calls ------------------------------------------------------------------------------------


CALLS = {
    "compile": ["-O2", "-c", "t.c", "-o", "t.o"],
    "link": ["t.c", "-o", "t"],
    "preprocess": ["-E", "t.c", "-o", "t.i"],
}


@pytest.mark.parametrize("fault", ["full", "read-only", "disabled-full"])
def test_calls_on_a_faulty_cache(coopt: Coopt, tmp_path: Path, fault: str, request: pytest.FixtureRequest) -> None:
    """Every kind of call succeeds, prints nothing and writes what clang writes (each raised ENOSPC before)."""
    require("clang")
    fs = request.getfixturevalue("ro_fs" if fault == "read-only" else "full_fs")
    src = tmp_path / "src"
    src.mkdir()
    (src / "t.c").write_text("#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n")
    faulty = _with(coopt, COOPT_CACHE_DIR=str(fs / "cache"), **({"COOPT_DISABLE": "1"} if fault == "disabled-full"
                                                                else {}))
    for name, args in CALLS.items():
        out = args[args.index("-o") + 1]
        subprocess.run(["clang", *args], cwd=src, check=True)
        expected = (src / out).read_bytes()
        (src / out).unlink()
        proc = faulty.run([coopt.cc, *args], cwd=src, check=False)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", ""), name
        if name != "link":  # a link's output holds nothing reproducible to compare beyond success
            assert (src / out).read_bytes() == expected, name


def test_remote_hit_into_a_full_cache(coopt: Coopt, full_fs: Path, tmp_path: Path) -> None:
    """A variant fetched from a remote that cannot be stored locally is a miss: the real compiler runs."""
    require("clang")
    remote = tmp_path / "remote"
    remote.mkdir()
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "f.c").write_text("int f(int x) { return x + 1; }\n")
    (proj / "v.c").write_text("int f(int x) { return x + 2; }\n")
    team = _with(coopt, COOPT_REMOTE_STORAGE="file://%s" % remote, COOPT_SERVE_UNVERIFIED="1")
    team.coopt("cache", "put", "--artifact", "v.c", "--unverified", "--", "clang", "-O2", "-c", "f.c", cwd=proj)
    assert any(remote.rglob("*")), "the put uploaded nothing"
    subprocess.run(["clang", "-O2", "-c", "f.c", "-o", "plain.o"], cwd=proj, check=True)
    proc = _with(team, COOPT_CACHE_DIR=str(full_fs / "cache")).run([coopt.cc, "-O2", "-c", "f.c"], cwd=proj,
                                                                   check=False)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert (proj / "f.o").read_bytes() == (proj / "plain.o").read_bytes()
    assert list(full_fs.rglob("coopt-*")) == [] and list((full_fs / "cache").rglob("*.tmp")) == []


# --- a real project on a faulty cache -------------------------------------------------------------------------


FAULTS = ("full", "read-only", "disabled-full")


@pytest.fixture(scope="module")
def bzip2_plain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BuildResult]:
    """bzip2's tree, built once with plain clang (its objects) and cleaned."""
    require("clang", "make")
    from test_real_projects import source_tree

    tree = source_tree("bzip2", tmp_path_factory.mktemp("bzip2") / "tree")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOPT_")}
    runner = Runner(tree, dict(env, LC_ALL="C"))
    plain = build(BZIP2, runner, "clang")
    clean(BZIP2, runner)
    return tree, plain


def _counting_fast_launcher(bindir: Path, fast_binary: Path, counter: Path) -> None:
    """coopt-cc as installed (coopt-cc-fast first), with a Python that notes each call coopt-cc-fast hands over."""
    python = bindir / "python-counting"
    python.write_text('#!/bin/sh\necho x >> "%s"\nexec "%s" "$@"\n' % (counter, sys.executable))
    python.chmod(0o755)
    paths = sysconfig.get_paths()
    launcher = bindir / "coopt-cc"
    launcher.write_text(FAST_LAUNCHER.format(fast=fast_binary, python=python, src=str(SRC),
                                             purelib=paths["purelib"], platlib=paths["platlib"]))
    launcher.chmod(0o755)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["python", "coopt-cc-fast"])
@pytest.mark.parametrize("fault", FAULTS)
def test_bzip2_builds_on_a_faulty_cache(
    bzip2_plain: tuple[Path, BuildResult], fault: str, mode: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """bzip2's `make -j2` (which runs its own tests) with COOPT_CACHE_DIR on a full or read-only tmpfs, or with
    COOPT_DISABLE=1 on a full one: the build succeeds and every object equals plain clang's. Through coopt-cc-fast,
    a first build on the roomy file system leaves the memos, so the faulty rebuild is replayed in C."""
    tree, plain = bzip2_plain
    bindir = tmp_path / "bin"
    bindir.mkdir()
    counter = tmp_path / "python-calls"
    if mode == "python":
        shutil.copy2(request.getfixturevalue("launcher_bin") / "coopt-cc", bindir / "coopt-cc")
    else:
        _counting_fast_launcher(bindir, request.getfixturevalue("fast_binary"), counter)
    with tmpfs(tmp_path / "fs", "2m") as fs:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COOPT_")}
        env.update(PATH="%s%s%s" % (bindir, os.pathsep, env.get("PATH", "")), COOPT_CACHE_DIR=str(fs / "cache"),
                   LC_ALL="C")
        runner = Runner(tree, env)
        try:
            if mode != "python":
                build(BZIP2, runner, "coopt-cc")  # the warm cache: memos for every call
                clean(BZIP2, runner)
                assert any((fs / "cache").glob("fast-*/*/*")), "no replay memos written"
                counter.unlink(missing_ok=True)
            if fault == "read-only":
                remount_read_only(fs)
            else:
                fill(fs)
            if fault == "disabled-full":
                runner.env["COOPT_DISABLE"] = "1"
            faulty = build(BZIP2, runner, "coopt-cc")
        finally:
            clean(BZIP2, runner)
    assert differing(plain.objects, faulty.objects) == []
    if mode != "python" and fault != "disabled-full":  # COOPT_DISABLE is Python's to decide
        calls = counter.read_text().count("x") if counter.exists() else 0
        assert calls == 0, "coopt-cc-fast handed %d calls to Python: the C path was not what ran" % calls
