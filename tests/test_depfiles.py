"""A hit writes the dependency file a real compile would write, and passes the compiler's output and exit code
through unchanged, on a miss and on a hit alike."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import Coopt, require

F_C = '#include <stddef.h>\n#include "f.h"\nint f(int x) { return x * K + (int)sizeof(size_t); }\n'
VARIANT = '#include <stddef.h>\n#include "f.h"\nint f(int x) { return (x << 1) + x + 8; }\n'
# Warns under -Wall (unused variable, a Sema warning); the variant is clean.
W_C = "int w(int x) {\n  int unused;\n  return x + 1;\n}\n"
W_VARIANT = "int w(int x) { return 1 + x; }\n"


def _files(d: Path) -> dict[str, bytes]:
    return {str(f.relative_to(d)): f.read_bytes() for f in sorted(d.rglob("*")) if f.is_file()}


def _run(cmd: list[str], cwd: Path, env: dict | None = None) -> tuple[int, bytes, bytes]:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True)
    return proc.returncode, proc.stdout, proc.stderr


def _plain_then_wrapped(coopt: Coopt, d: Path, args: list[str]) -> tuple[tuple, dict, tuple, dict]:
    """Run plain clang, note what it printed and wrote, undo its writes, then run coopt-cc the same way."""
    before = _files(d)
    plain = _run(["clang", *args], d)
    plain_files = _files(d)
    for name in set(plain_files) - set(before):
        (d / name).unlink()
    for name, data in before.items():
        (d / name).write_bytes(data)
    wrapped = _run([coopt.cc, *args], d, env=coopt.env)
    return plain, plain_files, wrapped, _files(d)


@pytest.fixture
def served(coopt: Coopt, tmp_path: Path) -> Path:
    """A project whose f.c has a stored variant for `-O2` (any output name, any dependency options)."""
    require("clang")
    d = tmp_path / "dep project"  # a space in the path: dependency files must escape it the same way
    (d / "out").mkdir(parents=True)
    (d / "f.h").write_text("#define K 3\n")
    (d / "f.c").write_text(F_C)
    (d / "v.c").write_text(VARIANT)
    coopt.coopt("cache", "put", "--artifact", "v.c", "--unverified", "--", "clang", "-O2", "-c", "f.c", cwd=d)
    subprocess.run(["clang", "-O2", "-c", "v.c", "-o", str(tmp_path / "variant.o")], cwd=d, check=True)
    return d


DEP_CASES = [
    "-MD",
    "-MMD -o out/f.o",
    "-MD -MF x.d",
    "-MMD -MF x.d -MT tgt1 -MT tgt2 -MQ q$x",
    "-MD -MFjoined.d -MTjoined",
    "-MMD -MP -MF mp.d",
    "-MD -MP -MQ out/q.o -o out/q.o",
    "-Wp,-MD,wp.d",
    "-Wp,-MMD,out/wpm.d -o out/o2.o",
]


@pytest.mark.parametrize("deps", DEP_CASES)
def test_hit_writes_the_same_depfile_as_clang(coopt: Coopt, served: Path, deps: str) -> None:
    args = ["-O2", "-c", "f.c", *deps.split()]
    plain, plain_files, wrapped, wrapped_files = _plain_then_wrapped(coopt, served, args)
    assert coopt.stats() == {"hit": 1}  # a dependency file is asked for: the compiler run writes it
    assert wrapped == plain == (0, b"", b"")
    assert sorted(wrapped_files) == sorted(plain_files)
    depfiles = [n for n in plain_files if n.endswith(".d")]
    assert len(depfiles) == 1
    assert wrapped_files[depfiles[0]] == plain_files[depfiles[0]]
    objects = [n for n in plain_files if n.endswith(".o")]
    assert len(objects) == 1
    variant = (served.parent / "variant.o").read_bytes()
    assert wrapped_files[objects[0]] == variant != plain_files[objects[0]]


@pytest.fixture
def warns(coopt: Coopt, tmp_path: Path) -> Path:
    require("clang")
    d = tmp_path / "w"
    d.mkdir()
    (d / "w.c").write_text(W_C)
    (d / "v.c").write_text(W_VARIANT)
    return d


FLAGS = [
    ["-O2", "-Wall"],
    ["-O2", "-Wall", "-fcolor-diagnostics"],
    ["-O2", "-Wall", "-fdiagnostics-color=always", "-fno-caret-diagnostics"],
    ["-O2", "-Wall", "-Werror"],
    ["-O2", "-Wall", "-Werror", "-fcolor-diagnostics"],
]


@pytest.mark.parametrize("flags", FLAGS, ids=" ".join)
def test_diagnostics_and_exit_code_unchanged_on_miss_and_hit(coopt: Coopt, warns: Path, flags: list[str]) -> None:
    args = [*flags, "-c", "w.c", "-o", "w.o"]
    plain, plain_files, miss, miss_files = _plain_then_wrapped(coopt, warns, args)
    assert plain[2] and b"unused" in plain[2]  # it does warn
    assert plain[0] == (1 if "-Werror" in flags else 0)
    if "-fcolor-diagnostics" in flags or "-fdiagnostics-color=always" in flags:
        assert b"\x1b[" in plain[2]
    assert miss == plain
    assert miss_files == plain_files
    assert coopt.stats() == {"miss": 1}

    put = coopt.coopt("cache", "put", "--artifact", "v.c", "--unverified", "--", "clang", *args, cwd=warns,
                      check="-Werror" not in flags)
    plain, plain_files, hit, hit_files = _plain_then_wrapped(coopt, warns, args)
    assert hit == plain
    stats = coopt.stats()
    if "-Werror" in flags:
        # A TU whose original compile fails never gets a variant: the build fails the same way, from clang itself.
        assert put.returncode == 1 and "the original compile fails" in put.stderr
        assert hit_files == plain_files and "w.o" not in hit_files
        assert "hit" not in stats and stats.get("miss") == 2
    else:
        assert stats.get("hit") == 1
        assert sorted(hit_files) == sorted(plain_files) and hit_files["w.o"] != plain_files["w.o"]


def test_hit_never_replaces_a_device_named_by_o(coopt: Coopt, served: Path) -> None:
    # `-o /dev/null` in a build's flag checks: a real compile writes through the device. A hit must not put a file in
    # its place (as root that would replace /dev/null for the whole machine). A private device node stands in.
    if os.geteuid() != 0:
        pytest.skip("creating a device node needs root")
    dev = served / "null"
    os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    for args in (["-O2", "-c", "f.c", "-o", "null"], ["-O2", "-c", "f.c", "-o", "null", "-MD"]):
        plain, plain_files, wrapped, _ = _plain_then_wrapped(coopt, served, args)
        assert wrapped == plain
        if plain[0] != 0:
            pytest.skip("device nodes do not work on this file system (nodev): %r" % plain[2][-200:])
        assert stat.S_ISCHR(dev.lstat().st_mode)
    os.symlink(dev, served / "link.o")
    assert _run([coopt.cc, "-O2", "-c", "f.c", "-o", "link.o"], served, env=coopt.env)[0] == 0
    assert stat.S_ISCHR(dev.lstat().st_mode) and (served / "link.o").is_symlink()
    assert "hit" not in coopt.stats()
    # A plain output path is still served.
    _run([coopt.cc, "-O2", "-c", "f.c", "-o", "f.o"], served, env=coopt.env)
    assert coopt.stats().get("hit") == 1
