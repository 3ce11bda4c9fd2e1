"""Bad input: compiler input errors come out exactly as the real compiler reports them; coopt's own broken
configuration is one clear `coopt-cc: error:` line; nothing reaches the cache either way."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import Coopt, require
from coopt.cache import manifest as manifest_mod

GOOD = '#include "f.h"\nint f(int x) { return x * K; }\n'


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    require("clang")
    d = tmp_path / "p"
    d.mkdir()
    (d / "f.h").write_text("#define K 3\n")
    (d / "f.c").write_text(GOOD)
    (d / "syntax.c").write_text("int f(int x) { return x * ; }\n")
    (d / "noheader.c").write_text('#include "missing.h"\nint g;\n')
    (d / "warn.c").write_text("int w(void) { int u; return 0; }\n")
    return d


def _run(cmd: list[str], cwd: Path, env: dict | None = None) -> tuple[int, bytes, bytes]:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True)
    return proc.returncode, proc.stdout, proc.stderr


def _cache_content(coopt: Coopt) -> list[str]:
    """Entries and manifests: what a bad call must never add to."""
    return sorted(
        str(p.relative_to(coopt.cache_dir))
        for sub in ("entries", "manifests")
        for p in (coopt.cache_dir / sub).rglob("*")
        if p.is_file()
    )


COMPILER_ERRORS = [
    "-fbogus-option -c f.c",
    "--bogus -c f.c",
    "-c nope.c",
    "-c nope.c -o nope.o -MD",
    "-c syntax.c",
    "-c syntax.c -fcolor-diagnostics",
    "-c noheader.c -MD",
    "-std=c1234 -c f.c",
    "-c f.c -o no/such/dir/f.o",
    "-Wall -Werror -c warn.c",
    "-O2 -march=bogus-cpu -c f.c",
]


@pytest.mark.parametrize("argv", COMPILER_ERRORS)
def test_compiler_input_errors_are_the_compilers_own(coopt: Coopt, proj: Path, argv: str) -> None:
    args = argv.split()
    plain = _run(["clang", *args], proj)
    assert plain[0] != 0
    wrapped = _run([coopt.cc, *args], proj, env=coopt.env)
    assert wrapped == plain
    assert not list(proj.glob("*.o")) and not list(proj.glob("*.d"))
    assert _cache_content(coopt) == []
    assert "internal_error" not in coopt.stats()


def test_an_error_is_never_masked_by_a_stored_variant(coopt: Coopt, proj: Path) -> None:
    (proj / "v.c").write_text('#include "f.h"\nint f(int x) { return (x << 1) + x; }\n')
    coopt.coopt("cache", "put", "--artifact", "v.c", "--unverified", "--", "clang", "-O2", "-c", "f.c", cwd=proj)
    stored = _cache_content(coopt)
    # The header the variant was keyed on now breaks the build: the wrapper must fail exactly like clang.
    (proj / "f.h").write_text("#define K 3 +\n")
    plain = _run(["clang", "-O2", "-c", "f.c"], proj)
    assert plain[0] != 0
    assert _run([coopt.cc, "-O2", "-c", "f.c"], proj, env=coopt.env) == plain
    assert not (proj / "f.o").exists()
    assert _cache_content(coopt) == stored and "hit" not in coopt.stats()


BROKEN_CONFIGS = [
    ("invalid toml", b"[compiler\npath = 1\n"),
    ("path not a string", b"[compiler]\npath = 3\n"),
    ("compiler not a table", b'compiler = "clang"\n'),
    ("read_only not a bool", b'[cache]\nread_only = "yes"\n'),
    ("dir not a string", b"[cache]\ndir = 5\n"),
    ("not utf-8", b'[compiler]\npath = "\xff\xfe"\n'),
]


@pytest.mark.parametrize("text", [c[1] for c in BROKEN_CONFIGS], ids=[c[0] for c in BROKEN_CONFIGS])
def test_broken_coopt_toml_is_one_clear_line(coopt: Coopt, proj: Path, text: bytes) -> None:
    (proj / "coopt.toml").write_bytes(text)
    sub = proj / "deeper"
    sub.mkdir()
    (sub / "f.c").write_text("int f(void) { return 1; }\n")
    for cwd in (proj, sub):  # found from the working directory upwards
        proc = subprocess.run([coopt.cc, "-c", "f.c"], cwd=cwd, env=coopt.env, capture_output=True, text=True)
        assert proc.returncode == 2
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("coopt-cc: error: bad config "), proc.stderr
        assert str(proj / "coopt.toml") in lines[0] and "Traceback" not in proc.stderr
        assert not list(cwd.glob("*.o"))
    assert not coopt.cache_dir.exists()
    proc = coopt.coopt("cache", "stats", cwd=proj, check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("coopt cache: error: bad config ")
    assert len(proc.stderr.splitlines()) == 1


def test_config_named_by_coopt_config_that_is_missing(coopt: Coopt, proj: Path) -> None:
    for target in (proj / "nope.toml", proj):  # missing, and a directory
        env = dict(coopt.env, COOPT_CONFIG=str(target))
        proc = subprocess.run([coopt.cc, "-c", "f.c"], cwd=proj, env=env, capture_output=True, text=True)
        assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1
        assert proc.stderr.startswith("coopt-cc: error: bad config %s: cannot read" % target)
    assert not (proj / "f.o").exists() and not coopt.cache_dir.exists()


@pytest.mark.parametrize("compiler", ["nonexistent", "/no/such/clang", "__file__"])
def test_missing_real_compiler_is_one_clear_line(coopt: Coopt, proj: Path, compiler: str) -> None:
    if compiler == "__file__":
        compiler = str(proj / "f.h")  # exists, is not executable
    env = dict(coopt.env, COOPT_COMPILER=compiler)
    proc = subprocess.run([coopt.cc, "-c", "f.c"], cwd=proj, env=env, capture_output=True, text=True)
    assert proc.returncode == 127
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("coopt-cc: error: compiler '%s'" % compiler), proc.stderr
    assert "COOPT_COMPILER" in lines[0] or "not executable" in lines[0]
    assert not (proj / "f.o").exists() and not coopt.cache_dir.exists()


def test_unusable_cache_directory_never_breaks_the_build(coopt: Coopt, proj: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    plain = _run(["clang", "-O2", "-c", "f.c", "-o", "plain.o"], proj)
    for cache in (blocker, blocker / "below-a-file"):
        env = dict(coopt.env, COOPT_CACHE_DIR=str(cache))
        assert _run([coopt.cc, "-O2", "-c", "f.c"], proj, env=env) == plain
        assert (proj / "f.o").read_bytes() == (proj / "plain.o").read_bytes()
        (proj / "f.o").unlink()
    assert blocker.read_text() == "not a directory\n"


@pytest.mark.parametrize(
    "manifest",
    [b"\x00\xff garbage", b'{"format": 1, "results": [', b'{"format": 1, "results": [{"key": "k", "deps": [["a"]]}]}',
     b'{"format": 1, "results": [{"key": 5, "deps": 7}, "x", {"key": "k", "deps": [[1, 2]]}]}', b"[]",
     b"coopt-manifest 2\nresult k\ndep short f.c\n", b"coopt-manifest 2\nresult k\nnot a line\n",
     b"coopt-manifest 2\nresult k\ndep " + b"0" * 32],
    ids=["binary", "truncated", "short dep", "wrong types", "not an object", "text bad hash", "text bad line",
         "text torn"],
)
def test_corrupt_manifest_is_a_miss_not_a_failure(coopt: Coopt, proj: Path, manifest: bytes) -> None:
    (proj / "v.c").write_text('#include "f.h"\nint f(int x) { return (x << 1) + x; }\n')
    coopt.coopt("cache", "put", "--artifact", "v.c", "--unverified", "--", "clang", "-O2", "-c", "f.c", cwd=proj)
    (path,) = [p for p in (coopt.cache_dir / "manifests").rglob("*") if p.is_file()]
    assert manifest_mod.load(str(path))  # it was a real manifest
    path.write_bytes(manifest)
    plain = _run(["clang", "-O2", "-c", "f.c", "-o", "plain.o"], proj)
    assert _run([coopt.cc, "-O2", "-c", "f.c"], proj, env=coopt.env) == plain
    assert (proj / "f.o").read_bytes() == (proj / "plain.o").read_bytes()
    stats = coopt.stats()
    assert "hit" not in stats and "internal_error" not in stats, stats
    # The next put repairs it.
    coopt.coopt("cache", "put", "--artifact", "v.c", "--unverified", "--", "clang", "-O2", "-c", "f.c", cwd=proj)
    assert manifest_mod.load(str(path))
    _run([coopt.cc, "-O2", "-c", "f.c"], proj, env=coopt.env)
    assert coopt.stats().get("hit") == 1
