"""lz4 from Debian's sources, built by its own Makefiles: a library compiled in one `-c` call with five sources
(lib/Makefile: `$(COMPILE.c) $^`) and test programs compiled and linked in one call (tests/Makefile:
`$(CC) $(FLAGS) $^ -o $@`, e.g. fullbench-lib from fullbench.c and that library).

One build with plain clang and one with coopt-cc, in the same tree: objects, the archive and the programs must be
byte-identical; every source is a journaled TU; lz4's own test commands pass; `coopt profile` attributes the
benchmark's samples to the library's TUs; `coopt optimize --levels flags` (offline, no LLM) stores a variant for
the hottest of them, and a rebuild serves it inside the several-source call while the tests still pass.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import Coopt, require
from coopt.cache.store import Store

pytestmark = pytest.mark.slow

LIB_SOURCES = ["lz4.c", "lz4file.c", "lz4frame.c", "lz4hc.c", "xxhash.c"]
PROGRAMS = ["tests/fullbench-lib", "tests/datagen", "tests/roundTripTest"]
# (program, the sources its one compile-and-link call compiles)
LINKED_FROM_SOURCES = {
    "fullbench-lib": ["fullbench.c"],
    "datagen": ["../programs/datagen.c", "datagencli.c"],
    "roundTripTest": ["roundTripTest.c"],
}


def build(co: Coopt, tree: Path, cc: str) -> None:
    co.run(["make", "-s", "-C", "lib", "liblz4.a", "CC=%s" % cc], cwd=tree)
    co.run(["make", "-s", "-C", "tests", "fullbench-lib", "datagen", "roundTripTest", "CC=%s" % cc], cwd=tree)


def clean(tree: Path) -> None:
    for p in [*tree.glob("lib/*.o"), tree / "lib" / "liblz4.a", *tree.glob("tests/*.o"), *(tree / p for p in PROGRAMS)]:
        p.unlink(missing_ok=True)


def outputs(tree: Path) -> dict[str, bytes]:
    files = [*tree.glob("lib/*.o"), tree / "lib" / "liblz4.a", *tree.glob("tests/*.o"), *(tree / p for p in PROGRAMS)]
    return {str(p.relative_to(tree)): p.read_bytes() for p in files if p.exists()}


def run_tests(co: Coopt, tree: Path) -> None:
    """lz4's own test commands for these programs (tests/Makefile: test-fullbench with NB_LOOPS=-i1, on the
    library build), and a round trip of generated data."""
    t = tree / "tests"
    co.run(["./fullbench-lib", "--no-prompt", "-i1", "COPYING"], cwd=t, timeout=1800)
    co.run(["sh", "-c", "./datagen -g3MB -P50 > data.bin"], cwd=t)
    co.run(["./roundTripTest", "data.bin"], cwd=t)
    co.run(["./roundTripTest", "-9", "COPYING"], cwd=t)


@dataclass
class Lz4:
    tree: Path
    coopt: Coopt
    plain: dict[str, bytes]
    built: dict[str, bytes]
    records: list[dict]
    stats: dict[str, int]


@pytest.fixture(scope="module")
def lz4(launcher_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Lz4:
    require("clang", "make")
    from test_real_projects import private_coopt, source_tree

    base = tmp_path_factory.mktemp("lz4")
    tree = source_tree("lz4", base / "lz4")
    co = private_coopt(launcher_bin, base / "cache")
    build(co, tree, "clang")
    plain = outputs(tree)
    assert co.journal() == []
    clean(tree)
    build(co, tree, "coopt-cc")
    return Lz4(tree, co, plain, outputs(tree), co.journal(), co.stats())


def test_objects_archive_and_programs_identical_to_plain_clang(lz4: Lz4) -> None:
    assert {"lib/lz4.o", "lib/liblz4.a", *PROGRAMS} <= set(lz4.plain)
    assert set(lz4.built) == set(lz4.plain)
    assert [name for name in lz4.plain if lz4.plain[name] != lz4.built[name]] == []


def test_every_source_of_the_one_call_builds_is_a_journaled_tu(lz4: Lz4) -> None:
    compiles = [r for r in lz4.records if r["type"] == "compile"]
    lib = lz4.tree / "lib"
    in_lib = [r for r in compiles if r["cwd"] == str(lib)]
    assert [r["source"] for r in in_lib] == LIB_SOURCES
    assert [r["output"] for r in in_lib] == [s[:-2] + ".o" for s in LIB_SOURCES]
    links = {Path(r["output"]).name: r for r in lz4.records if r["type"] == "link"}
    assert set(links) == set(LINKED_FROM_SOURCES)
    for program, sources in LINKED_FROM_SOURCES.items():
        kept = [r for r in compiles if r["source"] in sources and r["cwd"] == str(lz4.tree / "tests")]
        assert [r["source"] for r in kept] == sources
        assert all(r["output"].startswith(str(lz4.coopt.cache_dir)) for r in kept)
        assert all(r["output"] in links[program]["args"] for r in kept)
    assert not any(k.startswith("multiple_sources") for k in lz4.stats)
    assert lz4.stats.get("internal_error", 0) == 0


def test_lz4s_own_tests_pass(lz4: Lz4) -> None:
    run_tests(lz4.coopt, lz4.tree)


def test_profile_and_optimize_serve_a_variant_inside_the_several_source_call(lz4: Lz4) -> None:
    require("perf")
    co, tree = lz4.coopt, lz4.tree
    t = tree / "tests"
    co.run(["sh", "-c", "./datagen -g24MB -P60 > bench.bin"], cwd=t)
    bench = ["./fullbench-lib", "--no-prompt", "-i1", "-c1", "bench.bin"]
    co.coopt("profile", "--quiet", "-o", "profile.json", "--", *bench, cwd=t)
    prof = json.loads((t / "profile.json").read_text())
    assert prof["journaled_samples"] > 0.5 * prof["samples"], prof["outside"]
    top = prof["tus"][0]
    assert top["object"] == str(tree / "lib" / "lz4.o") and top["source"] == str(tree / "lib" / "lz4.c")
    assert top["share"] > 0.5

    run_dir = t / "opt-run"
    proc = subprocess.run(
        [str(co.bin / "coopt"), "optimize", "--profile", str(t / "profile.json"), "--levels", "flags",
         "--budget", "2", "--pairs", "3", "--min-gain", "0.5", "--no-final", "--run-dir", str(run_dir)],
        cwd=t, env=co.env, capture_output=True, text=True, timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    state = json.loads((run_dir / "state.json").read_text())
    kept = {k["object"]: k for k in state["kept"].values() if not k["withdrawn"]}
    assert str(tree / "lib" / "lz4.o") in kept, proc.stdout
    entries = {e.key: e for e in Store(str(co.cache_dir)).entries()}

    # Rebuild from clean: the variant is served inside lib/Makefile's one -c call; the other sources compile.
    clean(tree)
    before = co.stats()
    build(co, tree, "coopt-cc")
    after = co.stats()
    assert after.get("hit", 0) - before.get("hit", 0) == len(kept)
    for obj, k in kept.items():
        assert Path(obj).read_bytes() == Path(entries[k["key"]].object_path).read_bytes()
    rebuilt = outputs(tree)
    assert rebuilt["lib/lz4.o"] != lz4.plain["lib/lz4.o"]
    unchanged = [n for n in lz4.plain if n.startswith("lib/") and n.endswith(".o") and str(tree / n) not in kept]
    assert all(rebuilt[n] == lz4.plain[n] for n in unchanged)
    run_tests(co, tree)
    assert os.path.getsize(t / "fullbench-lib") > 0
