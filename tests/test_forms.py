"""The three ways a build meets coopt-cc (CC=coopt-cc, prefix, masquerading shims) and the guard against calling
itself."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import Coopt, require

F_C = "int f(int x) { return x * 3; }\n"
MAIN_C = "int f(int);\nint main(void) { return f(1) - 3; }\n"
MAKEFILE = """\
app: main.o f.o
\t$(CC) $(CFLAGS) -o $@ main.o f.o
%.o: %.c
\t$(CC) $(CFLAGS) -c $< -o $@
"""


@pytest.fixture
def src(tmp_path: Path) -> Path:
    require("clang")
    d = tmp_path / "src"
    d.mkdir()
    (d / "f.c").write_text(F_C)
    (d / "main.c").write_text(MAIN_C)
    (d / "Makefile").write_text(MAKEFILE)
    return d


def _plain_object(compiler: str, d: Path, *flags: str) -> bytes:
    out = d / ("plain-%s.o" % os.path.basename(compiler))
    subprocess.run([compiler, *flags, "-c", "f.c", "-o", str(out)], cwd=d, check=True)
    data = out.read_bytes()
    out.unlink()
    return data


def _real(name: str, env: dict, skip: str = "") -> str:
    """`name` as the shell would find it on env's PATH, leaving out the directory `skip`."""
    path = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p and p != skip)
    found = shutil.which(name, path=path)
    assert found, name
    return found


def test_cc_form_uses_coopt_compiler(coopt: Coopt, src: Path) -> None:
    real = shutil.which("clang-14") or shutil.which("clang")
    assert real
    env = dict(coopt.env, COOPT_COMPILER=real)
    subprocess.run(["make", "-s", "CC=coopt-cc", "CFLAGS=-O2"], cwd=src, env=env, check=True)
    assert subprocess.run(["./app"], cwd=src).returncode == 0
    recs = coopt.journal()
    compiles = sorted(r["source"] for r in recs if r["type"] == "compile")
    assert compiles == ["f.c", "main.c"]
    assert {r["compiler"] for r in recs} == {real}
    assert [r["output"] for r in recs if r["type"] == "link"] == ["app"]
    assert (src / "f.o").read_bytes() == _plain_object(real, src, "-O2")

    # The compiler may also come from coopt.toml when the environment does not name one.
    (src / "coopt.toml").write_text('[compiler]\npath = "%s"\n' % real)
    coopt.run(["coopt-cc", "-O1", "-c", "f.c", "-o", "f1.o"], cwd=src)
    assert coopt.journal()[-1]["compiler"] == real


@pytest.mark.parametrize("name", ["clang", "/usr/bin/clang", "gcc", "cc"])
def test_prefix_form(coopt: Coopt, src: Path, name: str) -> None:
    if shutil.which(name) is None:
        pytest.skip("no %s" % name)
    coopt.run([coopt.cc, name, "-O2", "-c", "f.c", "-o", "f.o"], cwd=src)
    (rec,) = coopt.journal()
    assert rec["compiler"] == (name if "/" in name else _real(name, coopt.env))
    assert rec["args"] == ["-O2", "-c", "f.c", "-o", "f.o"]
    assert (src / "f.o").read_bytes() == _plain_object(name, src, "-O2")


@pytest.mark.parametrize("name", ["cc", "clang", "gcc"])
def test_shims_masquerade_as_the_next_real_compiler(coopt: Coopt, src: Path, tmp_path: Path, name: str) -> None:
    if shutil.which(name) is None:
        pytest.skip("no %s" % name)
    shims = tmp_path / "shims"
    out = coopt.coopt("shims", str(shims))
    assert str(shims) in out.stdout
    for n in ("cc", "clang", "gcc"):
        assert os.path.realpath(shims / n) == os.path.realpath(coopt.cc)
    env = dict(coopt.env, PATH="%s%s%s" % (shims, os.pathsep, coopt.env["PATH"]))
    assert shutil.which(name, path=env["PATH"]) == str(shims / name)
    real = _real(name, env, skip=str(shims))

    subprocess.run([name, "-O2", "-c", "f.c", "-o", "f.o"], cwd=src, env=env, check=True)
    (rec,) = coopt.journal()
    assert rec["compiler"] == real
    assert (src / "f.o").read_bytes() == _plain_object(real, src, "-O2")

    # A build that hard-codes the name goes through the shim too, and the prefix form sees through shims.
    subprocess.run(["make", "-s", "CC=%s" % name], cwd=src, env=env, check=True)
    assert {r["compiler"] for r in coopt.journal()} == {real}
    subprocess.run([coopt.cc, name, "-c", "f.c", "-o", "p.o"], cwd=src, env=env, check=True)
    assert coopt.journal()[-1]["compiler"] == real


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("coopt-cc: error: ") and "Traceback" not in proc.stderr
    return lines[0]


def test_coopt_compiler_pointing_at_coopt_cc_is_refused(coopt: Coopt, src: Path, tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    alias.mkdir()
    (alias / "clang").symlink_to(coopt.cc)
    for configured in ("coopt-cc", coopt.cc, str(alias / "clang")):
        env = dict(coopt.env, COOPT_COMPILER=configured)
        proc = subprocess.run([coopt.cc, "-c", "f.c"], cwd=src, env=env, capture_output=True, text=True)
        line = _one_error_line(proc)
        assert "COOPT_COMPILER" in line and configured in line
    assert not (src / "f.o").exists()
    assert coopt.journal() == []


def test_compiler_that_loops_back_is_stopped(coopt: Coopt, src: Path, tmp_path: Path) -> None:
    # A script named like the compiler that calls coopt-cc again: no path check can see through it.
    loop = tmp_path / "loop"
    loop.mkdir()
    (loop / "clang").write_text('#!/bin/sh\nexec coopt-cc "$@"\n')
    (loop / "clang").chmod(0o755)
    env = dict(coopt.env, PATH="%s%s%s" % (loop, os.pathsep, coopt.env["PATH"]))
    proc = subprocess.run(["coopt-cc", "-c", "f.c"], cwd=src, env=env, capture_output=True, text=True)
    assert "called itself" in _one_error_line(proc)
    assert not (src / "f.o").exists()


def test_shim_with_no_real_compiler_behind_it(coopt: Coopt, src: Path, tmp_path: Path) -> None:
    shims = tmp_path / "shims"
    coopt.coopt("shims", str(shims), "nosuchcc")
    env = dict(coopt.env, PATH="%s%s%s" % (shims, os.pathsep, coopt.env["PATH"]))
    proc = subprocess.run(["nosuchcc", "-c", "f.c"], cwd=src, env=env, capture_output=True, text=True)
    line = _one_error_line(proc)
    assert "nosuchcc" in line and str(shims) in line
    # The same shim directory named twice on PATH (once with a trailing slash) still finds nothing but itself.
    env["PATH"] = "%s%s%s/%s%s" % (shims, os.pathsep, shims, os.pathsep, coopt.env["PATH"])
    proc = subprocess.run(["nosuchcc", "-c", "f.c"], cwd=src, env=env, capture_output=True, text=True)
    _one_error_line(proc)
    assert not (src / "f.o").exists()
    assert not coopt.cache_dir.exists() or coopt.journal() == []


def test_another_installations_coopt_cc_is_never_the_real_compiler(coopt: Coopt, src: Path, tmp_path: Path) -> None:
    # A second coopt-cc (another virtualenv's, a copy, not a link) named `clang` first on PATH: it must be skipped,
    # or each would call the other until the depth guard stops the build.
    other = tmp_path / "other-venv-bin"
    other.mkdir()
    shutil.copyfile(coopt.cc, other / "clang")
    (other / "clang").chmod(0o755)
    env = dict(coopt.env, PATH="%s:%s" % (other, coopt.env["PATH"]))
    proc = subprocess.run([coopt.cc, "-O2", "-c", "f.c", "-o", "f.o"], cwd=src, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert [r["compiler"] for r in coopt.journal()] == [shutil.which("clang")]
