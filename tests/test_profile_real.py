"""`coopt profile` on real projects from Debian sources, built with CC=coopt-cc by their own build systems.

1. Lua (upstream Makefile) running a CPU-bound script: most samples in the interpreter's core TUs, lvm.c first;
   with call graphs, the VM's callers carry the time as children.
2. bzip2 (Debian's Makefile, which links bzip2 against its own libbz2.so) compressing a file: blocksort.c and
   compress.c on top, attributed inside the shared library; with the system's libbz2 loaded instead, none of it
   is (same names, other code).
3. zlib built as a shared library by CMake (static and shared objects from the same sources), called by a small
   program of our own: the hot functions go to the shared library's objects, not the static twins.

Each project is built once per module; each workload runs a second or two.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import Coopt, require

pytestmark = pytest.mark.slow

LUA_SCRIPT = """-- CPU-bound, almost all of it in the VM: calls, arithmetic, tables, a little string building and GC.
local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
local s = 0
for i = 1, 60000000 do s = s + (i % 7) * (i % 13) end
local t = {}
for i = 1, 200000 do t[i] = i * 2 end
local acc = 0
for _ = 1, 40 do for i = 1, #t do acc = acc + t[i] end end
local parts = {}
for i = 1, 100000 do parts[#parts + 1] = tostring(i) .. ":" .. (i % 10) end
print(fib(32), s, acc, #table.concat(parts, ","))
"""
# Lua's core (CORE_O in its Makefile): the VM and runtime, as opposed to the standard libraries and lua.c.
LUA_CORE = {
    "lapi.c", "lcode.c", "lctype.c", "ldebug.c", "ldo.c", "ldump.c", "lfunc.c", "lgc.c", "llex.c", "lmem.c",
    "lobject.c", "lopcodes.c", "lparser.c", "lstate.c", "lstring.c", "ltable.c", "ltm.c", "lundump.c", "lvm.c",
    "lzio.c",
}

ZBENCH = r"""/* Compress and decompress a generated buffer with zlib, and check the round trip. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "zlib.h"

int main(int argc, char **argv) {
    size_t n = 4u << 20;
    int rounds = argc > 1 ? atoi(argv[1]) : 2;
    unsigned char *in = malloc(n), *back = malloc(n);
    uLongf cap = compressBound(n);
    unsigned char *z = malloc(cap);
    unsigned x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        in[i] = (unsigned char)("abcdefghij klmnop\n"[(x >> 16) % 18]);
    }
    for (int r = 0; r < rounds; r++) {
        uLongf zn = cap, bn = n;
        if (compress2(z, &zn, in, n, 9) != Z_OK || uncompress(back, &bn, z, zn) != Z_OK || bn != n ||
            memcmp(in, back, n) != 0) {
            fprintf(stderr, "zbench: round trip failed\n");
            return 1;
        }
        printf("round %d: %lu -> %lu bytes\n", r, (unsigned long)n, (unsigned long)zn);
    }
    return 0;
}
"""


def source_tree(package: str, dest: Path, pristine: bool = False) -> Path:
    """The `debian_source` fixture's module-scoped twin: one build shared by a module's tests."""
    from support.debian_sources import SourceUnavailable, copy_tree

    try:
        return copy_tree(package, dest, pristine=pristine)
    except SourceUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))


def private_coopt(launcher_bin: Path, cache_dir: Path) -> Coopt:
    """The `coopt` fixture's set-up (own cache, this tree's coopt-cc first on PATH) for a module-scoped fixture."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOPT_")}
    env["PATH"] = "%s%s%s" % (launcher_bin, os.pathsep, env.get("PATH", ""))
    env["COOPT_CACHE_DIR"] = str(cache_dir)
    env["LC_ALL"] = "C"
    return Coopt(bin=launcher_bin, cache_dir=cache_dir, env=env)


@dataclass
class Built:
    tree: Path
    coopt: Coopt


def profile(b: Built, cwd: Path, *args: str, out: str = "profile.json", env: dict | None = None) -> dict:
    """Run `coopt profile -o out ARGS` in `cwd` (with `env`, default the build's) and return the profile."""
    proc = subprocess.run(
        [str(b.coopt.bin / "coopt"), "profile", "-o", out, *args],
        cwd=cwd, env=env or b.coopt.env, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads((cwd / out).read_text())


def by_source(prof: dict) -> dict[str, dict]:
    return {Path(t["source"]).name: t for t in prof["tus"]}


def journaled_sources(co: Coopt) -> set[str]:
    return {Path(r["cwd"], r["source"]).name for r in co.journal() if r["type"] == "compile"}


# --- 1. Lua ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lua(launcher_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    require("clang", "make", "perf", "nm")
    base = tmp_path_factory.mktemp("lua")
    tree = source_tree("lua5.4", base / "lua", pristine=True)
    co = private_coopt(launcher_bin, base / "cache")
    # Lua's Makefile sets CC (with -std=gnu99) itself: CC goes on the command line.
    co.run(["make", "-j2", "-C", "src", "linux-noreadline", "CC=coopt-cc -std=gnu99"], cwd=tree)
    (tree / "cpu.lua").write_text(LUA_SCRIPT)
    return Built(tree, co)


def test_lua_cpu_bound_script_is_mostly_in_core_tus_lvm_first(lua: Built) -> None:
    prof = profile(lua, lua.tree, "--", str(lua.tree / "src" / "lua"), "cpu.lua")
    tus = by_source(prof)
    assert Path(prof["tus"][0]["source"]).name == "lvm.c", [t["source"] for t in prof["tus"][:5]]
    core = sum(t["share"] for name, t in tus.items() if name in LUA_CORE)
    assert core > 0.8, {n: t["share"] for n, t in tus.items()}
    assert prof["functions"][0]["name"] == "luaV_execute"
    # Every TU is a journaled compile, with its record, and its object is the one the build wrote.
    assert set(tus) <= journaled_sources(lua.coopt)
    for t in prof["tus"]:
        assert t["compile"]["type"] == "compile" and Path(t["compile"]["cwd"], t["compile"]["source"]).resolve() == \
            Path(t["source"]).resolve()
        assert Path(t["object"]).is_file() and t["object"].startswith(str(lua.tree / "src"))
    # What is not journaled code is still counted, and everything adds up.
    outside = sum(o["samples"] for o in prof["outside"])
    assert prof["journaled_samples"] + outside == prof["samples"]
    assert {o["reason"] for o in prof["outside"]} <= {"kernel", "not-journaled"}

    shown = lua.coopt.coopt("profile", "show", "profile.json", cwd=lua.tree).stdout
    first = next(ln for ln in shown.splitlines() if "lvm.c" in ln or "ldo.c" in ln)
    assert "src/lvm.c" in first and "luaV_execute" in first


def test_lua_call_graph_children(lua: Built) -> None:
    prof = profile(lua, lua.tree, "--call-graph", "--freq", "1000", "--", "src/lua", "cpu.lua", out="graph.json")
    assert prof["call_graph"] == "dwarf"
    tus = by_source(prof)
    # lua.c's main and the protected-call machinery in ldo.c sit below the VM on every stack.
    assert tus["lua.c"]["children_share"] > 0.8
    assert tus["ldo.c"]["children_share"] > 0.8
    assert tus["lvm.c"]["share"] > tus["lvm.c"]["children_share"]
    fn = {f["name"]: f for f in prof["functions"]}
    assert fn["main"]["source"].endswith("lua.c") and fn["main"]["children_share"] > 0.8


# --- 2. bzip2 and its shared library --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bzip2(launcher_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    require("clang", "make", "perf", "nm")
    base = tmp_path_factory.mktemp("bzip2")
    tree = source_tree("bzip2", base / "bzip2")
    co = private_coopt(launcher_bin, base / "cache")
    co.run(["make", "-j2", "bzip2", "CC=coopt-cc"], cwd=tree)
    # About 6 MB of text-like data: words drawn from the sources, fixed seed.
    words = " ".join(p.read_text(errors="replace") for p in sorted(tree.glob("*.c"))).split()
    rng = random.Random(42)
    (tree / "input.txt").write_text(" ".join(rng.choice(words) for _ in range(900_000)))
    return Built(tree, co)


def test_bzip2_hot_functions_in_blocksort_and_compress(bzip2: Built) -> None:
    env = dict(bzip2.coopt.env, LD_LIBRARY_PATH=str(bzip2.tree))
    prof = profile(bzip2, bzip2.tree, "--", "./bzip2", "-k", "-f", "-9", "input.txt", env=env)
    top2 = [Path(t["source"]).name for t in prof["tus"][:2]]
    assert set(top2) == {"blocksort.c", "compress.c"}, top2
    assert sum(t["share"] for t in prof["tus"][:2]) > 0.6
    lib = os.path.realpath(bzip2.tree / "libbz2.so.1.0.4")
    hot = [f for f in prof["functions"][:5] if Path(f["source"]).name in ("blocksort.c", "compress.c")]
    assert hot and all(os.path.realpath(f["dso"]) == lib for f in hot), prof["functions"][:5]
    # The library's objects are the -fPIC .sho files the shared library was linked from.
    assert all(f["object"].endswith(".sho") for f in hot)


def test_bzip2_with_the_systems_libbz2_is_not_attributed(bzip2: Built) -> None:
    """Without LD_LIBRARY_PATH, bzip2 loads the system's libbz2: same function names, other code."""
    system = [p for p in ("/lib/x86_64-linux-gnu/libbz2.so.1.0", "/usr/lib/x86_64-linux-gnu/libbz2.so.1.0")
              if os.path.exists(p)]
    if not system:
        pytest.skip("no system libbz2")
    cmd = [str(bzip2.coopt.bin / "coopt"), "profile", "-o", "system.json", "--", "./bzip2", "-k", "-f", "input.txt"]
    proc = subprocess.run(cmd, cwd=bzip2.tree, env=bzip2.coopt.env, capture_output=True, text=True)
    if proc.returncode == 0:  # some samples fell in bzip2.c's own code: the library's must all be outside
        prof = json.loads((bzip2.tree / "system.json").read_text())
        assert not {"blocksort.c", "compress.c", "huffman.c", "bzlib.c"} & set(by_source(prof))
        assert any(o["reason"] in ("different-build", "unresolved") and "libbz2" in o["dso"] for o in prof["outside"])
    else:
        assert "rebuilt without coopt-cc" in proc.stderr and "LD_LIBRARY_PATH" in proc.stderr
        assert "Traceback" not in proc.stderr


# --- 3. zlib as a shared library ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zlib(launcher_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    require("clang", "make", "cmake", "perf", "nm")
    base = tmp_path_factory.mktemp("zlib")
    tree = source_tree("zlib", base / "zlib")
    co = private_coopt(launcher_bin, base / "cache")
    (tree / "win32").mkdir(exist_ok=True)
    (tree / "win32" / "zlib1.rc").touch()  # CMakeLists names it; the Debian tarball drops it
    build = tree / "build"
    build.mkdir()
    co.run(["cmake", "..", "-DCMAKE_C_COMPILER=coopt-cc", "-DCMAKE_BUILD_TYPE=Release"], cwd=build)
    # Both libraries: every source is compiled twice, to CMakeFiles/zlib.dir and CMakeFiles/zlibstatic.dir.
    co.run(["make", "-j2", "zlib", "zlibstatic"], cwd=build)
    app = base / "app"
    app.mkdir()
    (app / "zbench.c").write_text(ZBENCH)
    co.run(["coopt-cc", "-O2", "-I%s" % tree, "-I%s" % build, "-c", "zbench.c", "-o", "zbench.o"], cwd=app)
    co.run(["coopt-cc", "zbench.o", "-L%s" % build, "-lz", "-Wl,-rpath,%s" % build, "-o", "zbench"], cwd=app)
    return Built(tree, co)


def test_zlib_shared_library_functions_go_to_the_shared_objects(zlib: Built) -> None:
    app = zlib.tree.parent / "app"
    build = zlib.tree / "build"
    prof = profile(zlib, app, "--", "./zbench", "2")
    tus = by_source(prof)
    assert Path(prof["tus"][0]["source"]).name == "deflate.c"
    assert {"deflate.c", "trees.c", "inffast.c"} <= set(tus)
    assert tus["zbench.c"]["object"] == str(app / "zbench.o")
    lib = os.path.realpath(build / "libz.so.1.2.13")
    for f in prof["functions"]:
        if Path(f["source"]).name == "zbench.c":
            continue
        assert os.path.realpath(f["dso"]) == lib
        # The shared library's objects, never their static twins compiled from the same source.
        assert "/CMakeFiles/zlib.dir/" in f["object"], f
    (longest,) = [f for f in prof["functions"] if f["name"] == "longest_match"]
    assert longest["how"] in ("link", "size", "symbol")
    assert prof["functions"][0]["name"] in ("longest_match", "deflate_slow")
