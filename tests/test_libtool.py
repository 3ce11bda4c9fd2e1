"""An autotools and libtool project end to end: libyaml from Debian's sources, static and shared.

libyaml builds `src/libyaml.la` through libtool (every source compiled twice: `-fPIC -DPIC -o .libs/x.o` and
`-o x.o`) and links its test programs against it. Configured `--disable-shared`, `tests/run-parser` is a program
with the static archive in it. Configured as it comes (shared), `tests/run-parser` is libtool's wrapper script
running `tests/.libs/run-parser` with LD_LIBRARY_PATH set to `src/.libs`, where `libyaml-0.so.2.0.9` holds the
hot code. For each build:

1. plain clang, then coopt-cc, in the same tree: objects, the library and the programs byte-identical, `make check`
   passes with the same output, the journal has every compile (both of each pair) and every link;
2. `coopt profile` of run-parser on a large document attributes most samples to the library's TUs, the objects
   that are in the binary that ran (the PIC ones in the shared build);
3. `coopt optimize` (offline: flags for the static build, PGO for the shared one, which trains an instrumented copy
   of the library) stores a variant of the hottest TU, and a rebuild with coopt-cc serves it: only that object
   changes, `make check` passes and run-parser's output is the same.

The optimize runs accept anything not twice as slow (--min-gain 0.5): they prove the plumbing, not a speed-up.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import Coopt, require
from coopt.cache.store import Store
from support.builds import (
    BuildResult,
    Recipe,
    Runner,
    build,
    clean,
    compile_outputs,
    differing,
    link_outputs,
    snapshot,
    stats_delta,
)
from test_real_projects import private_coopt, source_tree

pytestmark = pytest.mark.slow

CC = "coopt-cc"
OBJECTS = ("src/*.o", "src/.libs/*.o", "tests/*.o")


def recipe(mode: str) -> Recipe:
    """libyaml's own build; the shared build is its default, the static one `--disable-shared`."""
    shared = mode == "shared"
    return Recipe(
        name="libyaml-" + mode,
        package="libyaml",
        pristine=False,
        configure=(("./configure", *(() if shared else ("--disable-shared",))),),
        build=(("make", "-j2"),),
        test=(("make", "check"),),
        clean=(("make", "distclean"),),
        objects=OBJECTS,
        links=("src/.libs/libyaml-0.so.2.0.9", "tests/.libs/run-parser") if shared else ("tests/run-parser",),
    )


@dataclass(frozen=True)
class Mode:
    name: str
    level: str  # the optimize level tried
    target: str  # the object the hot code ran in (relative to the tree)
    runs_in: str  # the binary perf saw the library's code run in


MODES = {
    "static": Mode("static", "flags", "src/scanner.o", "tests/run-parser"),
    "shared": Mode("shared", "pgo", "src/.libs/scanner.o", "src/.libs/libyaml-0.so.2.0.9"),
}


def big_document(path: Path) -> None:
    """About 4 MB of YAML: sequences, mappings, flow collections, quoted and block scalars."""
    with path.open("w") as f:
        for i in range(30000):
            values = (i, i, i % 7, (i * 7919) % 100003, "z" * (i % 13), i)
            f.write('- id: %d\n  name: "item %d"\n  tags: [a%d, b, c]\n  nested: {x: %d, y: \'%s\'}\n'
                    "  text: |\n    line one %d\n    line two\n" % values)


def results(check_output: str) -> list[str]:
    """What `make check` reported of its tests (its output also echoes the compiles of the test programs)."""
    return [ln for ln in check_output.splitlines() if ln.startswith(("PASS:", "FAIL:", "XFAIL:", "ERROR:", "# "))]


@dataclass
class Libyaml:
    mode: Mode
    recipe: Recipe
    tree: Path
    coopt: Coopt
    runner: Runner
    plain: BuildResult
    built: BuildResult
    plain_links: dict[str, bytes]
    built_links: dict[str, bytes]
    records: list[dict]
    parsed: str  # run-parser's output on the big document


@pytest.fixture(scope="module", params=sorted(MODES))
def libyaml(request: pytest.FixtureRequest, launcher_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Libyaml:
    require("clang", "make", "autoreconf", "libtoolize", "perf")
    mode = MODES[request.param]
    rec = recipe(mode.name)
    base = tmp_path_factory.mktemp("libyaml-" + mode.name)
    base.chmod(0o755)  # contained runs (uid 65534) read the tree
    tree = source_tree("libyaml", base / "tree")
    co = private_coopt(launcher_bin, base / "cache")
    runner = Runner(tree, co.env)
    runner.run(["autoreconf", "-fi"])  # upstream's tarball has no configure (its ./bootstrap does this)
    big_document(tree / "big.yaml")

    plain = build(rec, runner, "clang")
    plain_links = snapshot(tree, rec.links)
    assert len(co.journal()) == 0, "the plain build went through coopt-cc"
    clean(rec, runner)
    built = build(rec, runner, CC)
    return Libyaml(mode, rec, tree, co, runner, plain, built, plain_links, snapshot(tree, rec.links), co.journal(),
                   runner.run(["tests/run-parser", "big.yaml"]))


def test_builds_identical_and_tests_pass(libyaml: Libyaml) -> None:
    b = libyaml
    assert len(b.plain.objects) >= 20, sorted(b.plain.objects)
    pic = [o for o in b.plain.objects if o.startswith("src/.libs/")]
    assert (len(pic) == 8) == (b.mode.name == "shared"), sorted(b.plain.objects)
    assert differing(b.plain.objects, b.built.objects) == []
    assert set(b.plain_links) == set(b.recipe.links)
    assert differing(b.plain_links, b.built_links) == []
    assert results(b.built.test_output) == results(b.plain.test_output) == [
        "PASS: test-version", "PASS: test-reader", "# TOTAL: 2", "# PASS:  2", "# SKIP:  0", "# XFAIL: 0",
        "# FAIL:  0", "# XPASS: 0", "# ERROR: 0"], b.built.test_output
    if b.mode.name == "shared":
        with open(b.tree / "tests" / "run-parser", "rb") as f:
            assert b"Generated by libtool" in f.read(300)  # the program users run is libtool's wrapper


def test_journal_has_every_compile_and_link(libyaml: Libyaml) -> None:
    b = libyaml
    wanted = {os.path.join(b.tree, o) for o in b.plain.objects}
    assert wanted - compile_outputs(b.records) == set()
    assert {os.path.join(b.tree, link) for link in b.recipe.links} - link_outputs(b.records) == set()
    # libtool's two compiles of one source are two TUs with two keys.
    if b.mode.name == "shared":
        scanner = [r for r in b.records if r["type"] == "compile" and r["source"] == "scanner.c"]
        assert sorted(r["output"] for r in scanner) == [".libs/scanner.o", "scanner.o"]
        assert len({r["key"] for r in scanner}) == 2


@pytest.fixture(scope="module")
def profiled(libyaml: Libyaml) -> dict:
    b = libyaml
    b.coopt.coopt("profile", "--quiet", "-o", "profile.json", "--", "tests/run-parser", "big.yaml", cwd=b.tree)
    return json.loads((b.tree / "profile.json").read_text())


def test_profile_attributes_the_library_tus(libyaml: Libyaml, profiled: dict) -> None:
    b, p = libyaml, profiled
    lib_dir = os.path.dirname(os.path.join(b.tree, b.mode.target))
    library = [t for t in p["tus"] if os.path.dirname(t["object"]) == lib_dir]
    assert p["tus"][0]["object"] == os.path.join(b.tree, b.mode.target), p["tus"][:3]
    assert sum(t["samples"] for t in library) > p["samples"] / 2, p["tus"]
    # No sample went to the library's other build of the same sources (the non-PIC twin, or the PIC one).
    twins = [t for t in p["tus"] if t["object"].startswith(str(b.tree / "src")) and t not in library]
    assert twins == [], twins
    dsos = {f["dso"] for f in p["functions"] if os.path.dirname(f["object"]) == lib_dir}
    assert dsos == {os.path.join(b.tree, b.mode.runs_in)}, dsos


def test_optimize_stores_a_variant_that_a_rebuild_serves(libyaml: Libyaml, profiled: dict) -> None:
    b = libyaml
    run_dir = b.tree.parent / "run"
    proc = b.coopt.coopt("optimize", "--levels", b.mode.level, "--budget", "1", "--pairs", "3", "--min-gain", "0.5",
                         "--max-tus", "1", "--run-dir", str(run_dir), cwd=b.tree, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    state = json.loads((run_dir / "state.json").read_text())
    # The workloads ran the program users run: libtool's wrapper in the shared build, against each relinked copy.
    assert state["program"] == str(b.tree / "tests" / "run-parser"), state["program"]
    target = str(b.tree / b.mode.target)
    kept = [k for k in state["kept"].values() if not k["withdrawn"]]
    assert [(k["object"], k["level"]) for k in kept] == [(target, b.mode.level)], proc.stdout
    entries = list(Store(str(b.coopt.cache_dir)).entries())
    assert [e.key for e in entries] == [kept[0]["key"]]

    clean(b.recipe, b.runner)
    before = b.coopt.stats()
    served = build(b.recipe, b.runner, CC)  # configure, make, make check (which must pass)
    moved = stats_delta(before, b.coopt.stats())
    assert moved.get("hit", 0) == 1 and moved.get("internal_error", 0) == 0, moved
    assert differing(b.plain.objects, served.objects) == [b.mode.target]
    assert served.objects[b.mode.target] == Path(entries[0].object_path).read_bytes()
    assert results(served.test_output) == results(b.plain.test_output)
    assert b.runner.run(["tests/run-parser", "big.yaml"]) == b.parsed
    served_links = snapshot(b.tree, b.recipe.links)
    library = b.recipe.links[0]
    assert served_links[library] != b.plain_links[library]  # the variant is in the library (or static program)


def test_a_program_that_does_not_load_the_library_is_refused(libyaml: Libyaml, profiled: dict) -> None:
    b = libyaml
    if b.mode.name != "shared":
        pytest.skip("the static build has no library to load")
    other = b.tree / "tests" / "run-scanner.o"  # not a program at all, then a program that loads no libyaml
    for program in (str(other), "/bin/true"):
        proc = b.coopt.coopt("optimize", "--budget", "1", "--program", program, cwd=b.tree, check=False)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "does not load" in lines[0] and "libyaml-0.so.2.0.9" in lines[0], proc.stderr
