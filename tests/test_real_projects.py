"""coopt-cc in real builds: Lua, zlib and bzip2 from Debian's source packages, built by their own Makefiles,
configure script and CMake project.

Lua is built from the package's .orig tarball (upstream's own Makefile; Debian's patch switches it to libtool),
zlib and bzip2 from Debian's patched trees.

1. Each project is built with plain clang, then with CC=coopt-cc on a cold cache, then again on the warm cache,
   always in the same tree at the same path: with no variant stored every object must be byte-identical to plain
   clang's, the project's own tests must pass, the journal must hold every compile and link, and
   `coopt compdb` must write a compile_commands.json that names every TU.
2. A variant stored for one bzip2 TU is served by the next build (and bzip2's tests still pass), and stops being
   served when the TU's source, an included header, a -D flag or the compiler changes.
3. zlib built by CMake with coopt-cc as the compiler launcher, under the Makefile and Ninja generators.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import Coopt, require
from support.builds import (
    BZIP2,
    MAKE_RECIPES,
    ZLIB,
    BuildResult,
    Recipe,
    Runner,
    build,
    clean,
    compile_outputs,
    differing,
    journal_output,
    link_outputs,
    load_compdb,
    misses,
    snapshot,
    stats_delta,
)

pytestmark = pytest.mark.slow

CC = "coopt-cc"  # as users write it: found on PATH, where the fixtures put this working tree's launcher


def source_tree(package: str, dest: Path, pristine: bool = False) -> Path:
    """A private copy of a Debian source tree for a module-scoped fixture (the `debian_source` fixture's
    module-scoped twin: expensive builds are shared by the tests of a module)."""
    from support.debian_sources import SourceUnavailable, copy_tree

    try:
        return copy_tree(package, dest, pristine=pristine)
    except SourceUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))


def private_coopt(launcher_bin: Path, cache_dir: Path) -> Coopt:
    """The `coopt` fixture's set-up (own cache, this working tree's coopt-cc first on PATH), for a module-scoped
    fixture."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOPT_")}
    env["PATH"] = "%s%s%s" % (launcher_bin, os.pathsep, env.get("PATH", ""))
    env["COOPT_CACHE_DIR"] = str(cache_dir)
    env["LC_ALL"] = "C"
    env["COOPT_SERVE_UNVERIFIED"] = "1"  # the variant tests store with --unverified (as the `coopt` fixture)
    return Coopt(bin=launcher_bin, cache_dir=cache_dir, env=env)


def abs_in(tree: Path, rel: str) -> str:
    return os.path.normpath(os.path.join(tree, rel))


# --- 1. Make and configure builds: identical objects, tests pass, journal and compdb complete -------------------


@dataclass
class MakeBuilds:
    """One project built three times in one tree: plain clang, coopt-cc on a cold cache, coopt-cc again."""

    recipe: Recipe
    mode: str  # one of LAUNCHERS
    tree: Path
    coopt: Coopt
    plain: BuildResult
    cold: BuildResult
    warm: BuildResult
    plain_records: int  # journal records written during the plain build (must be none)
    cold_records: list[dict]
    warm_records: list[dict]
    cold_stats: dict[str, int]
    warm_stats: dict[str, int]


# coopt-cc as the Python wrapper alone, and as installed: coopt-cc-fast first, which decides most compiles of a
# first build from the shape memo of the first, and replays everything on the next.
LAUNCHERS = ("python", "coopt-cc-fast")


def launcher_dir(request: pytest.FixtureRequest, mode: str) -> Path:
    return request.getfixturevalue("launcher_bin" if mode == "python" else "fast_launcher_bin")


@pytest.fixture(scope="module", params=[(r, m) for r in MAKE_RECIPES for m in LAUNCHERS],
                ids=lambda p: "%s-%s" % (p[0].name, p[1]))
def make_builds(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> MakeBuilds:
    require("clang", "make")
    recipe: Recipe = request.param[0]
    base = tmp_path_factory.mktemp(recipe.name)
    tree = source_tree(recipe.package, base / "tree", pristine=recipe.pristine)
    co = private_coopt(launcher_dir(request, request.param[1]), base / "cache")
    runner = Runner(tree, co.env)

    plain = build(recipe, runner, "clang")
    plain_records = len(co.journal())
    clean(recipe, runner)

    cold = build(recipe, runner, CC)
    cold_records = co.journal()
    cold_stats = co.stats()
    clean(recipe, runner)

    warm = build(recipe, runner, CC)
    all_records = co.journal()
    return MakeBuilds(
        recipe=recipe,
        mode=request.param[1],
        tree=tree,
        coopt=co,
        plain=plain,
        cold=cold,
        warm=warm,
        plain_records=plain_records,
        cold_records=cold_records,
        warm_records=all_records[len(cold_records) :],
        cold_stats=cold_stats,
        warm_stats=stats_delta(cold_stats, co.stats()),
    )


def test_objects_identical_to_plain_clang(make_builds: MakeBuilds) -> None:
    b = make_builds
    assert b.plain.objects, "the plain build produced no objects"
    assert differing(b.plain.objects, b.cold.objects) == []
    assert differing(b.plain.objects, b.warm.objects) == []


def test_project_tests_pass_with_same_output(make_builds: MakeBuilds) -> None:
    # The tests ran (and passed, or the build fixture would have failed) after each build; their output must not
    # change either.
    b = make_builds
    assert b.cold.test_output == b.plain.test_output
    assert b.warm.test_output == b.plain.test_output


def test_every_compile_was_a_miss_and_nothing_failed(make_builds: MakeBuilds) -> None:
    b = make_builds
    n_objects = len(b.plain.objects)
    for counters in (b.cold_stats, b.warm_stats):
        assert counters.get("internal_error", 0) == 0, counters
        assert counters.get("hit", 0) == 0, counters
        assert misses(counters) >= n_objects, counters
        assert counters.get("link", 0) >= len(b.recipe.links), counters
    if b.mode == "coopt-cc-fast":
        # The next build is decided in C, compile by compile; most of the first one too (from shape memos). Only a
        # compile and link in one call (zlib's configure checks `cc -o ztest$$ ztest$$.c`, a new name each run)
        # goes through Python: its object is one coopt keeps (wrapper/compile_link.py).
        kept = [r for r in b.warm_records if r["type"] == "compile" and "/linked-objects/" in r["output"]]
        assert misses(b.warm_stats) - b.warm_stats.get("miss_fast", 0) == len(kept), (b.warm_stats, kept)
        assert b.cold_stats.get("miss_fast", 0) > misses(b.cold_stats) // 2, b.cold_stats


def test_journal_records_every_compile_and_link(make_builds: MakeBuilds) -> None:
    b = make_builds
    assert b.plain_records == 0, "the plain clang build went through coopt-cc"
    wanted_objects = {abs_in(b.tree, journal_output(b.recipe, obj)) for obj in b.plain.objects}
    wanted_links = {abs_in(b.tree, link) for link in b.recipe.links}
    for records in (b.cold_records, b.warm_records):
        assert wanted_objects - compile_outputs(records) == set()
        assert wanted_links - link_outputs(records) == set()
        # The journal names the real compiler, so the optimizer can replay the compile without coopt-cc.
        compilers = {os.path.basename(r["compiler"]) for r in records if r["type"] == "compile"}
        assert compilers == {"clang"}


def test_compdb_names_every_tu(make_builds: MakeBuilds) -> None:
    b = make_builds
    out = b.tree / "compile_commands.json"
    b.coopt.coopt("compdb", "-o", str(out), cwd=b.tree)
    db = load_compdb(out)
    by_output = {abs_in(Path(e["directory"]), e["output"]): e for e in db if "output" in e}
    for obj in sorted(b.plain.objects):
        entry = by_output.get(abs_in(b.tree, journal_output(b.recipe, obj)))
        assert entry is not None, "compile_commands.json has no entry for %s" % obj
        source = Path(entry["directory"], entry["file"])
        assert source.suffix == ".c" and source.is_file(), entry

    # Replaying an entry as written must rebuild the same object: the database is usable, not just well-formed.
    obj = min(o for o in b.plain.objects if journal_output(b.recipe, o) == o)
    entry = by_output[abs_in(b.tree, obj)]
    (b.tree / obj).unlink()
    subprocess.run(entry["arguments"], cwd=entry["directory"], env=b.coopt.env, check=True, capture_output=True)
    assert (b.tree / obj).read_bytes() == b.plain.objects[obj]


# --- 2. a stored variant for one bzip2 TU: served, then not served after each kind of change -------------------

TARGET = "blocksort.sho"  # the PIC object of blocksort.c, linked into libbz2.so, which ./bzip2 runs with
TARGET_SOURCE = "blocksort.c"
LIBRARY = "libbz2.so.1.0.4"
MARKER = b"coopt-test-variant-of-blocksort"


def variant_source(original: str) -> str:
    """The original TU plus a harmless addition: a retained string that proves which object was linked."""
    return original + '\n__attribute__((used)) static const char coopt_variant_marker[] = "%s";\n' % MARKER.decode()


@dataclass
class VariantBuilds:
    tree: Path
    coopt: Coopt
    runner: Runner
    plain: BuildResult
    served: BuildResult
    served_stats: dict[str, int]
    plain_library: bytes
    served_library: bytes


@pytest.fixture(scope="module", params=LAUNCHERS)
def bzip2_variant(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> VariantBuilds:
    """Everything below, once per LAUNCHERS: coopt-cc-fast must hand the variant's TU to Python, and decide the
    other TUs as Python would."""
    require("clang", "make")
    base = tmp_path_factory.mktemp("bzip2-variant")
    tree = source_tree(BZIP2.package, base / "tree")
    co = private_coopt(launcher_dir(request, request.param), base / "cache")
    runner = Runner(tree, co.env)

    plain = build(BZIP2, runner, "clang")
    plain_library = (tree / LIBRARY).read_bytes()
    clean(BZIP2, runner)
    build(BZIP2, runner, CC)  # journals the compiles `cache put` needs

    artifact = base / "variant" / TARGET_SOURCE
    artifact.parent.mkdir()
    artifact.write_text(variant_source((tree / TARGET_SOURCE).read_text()))
    co.coopt("cache", "put", "--artifact", str(artifact), "--for-object", TARGET, "--unverified", cwd=tree)

    clean(BZIP2, runner)
    before = co.stats()
    served = build(BZIP2, runner, CC)  # bzip2's `all` runs its tests against the freshly linked libbz2.so
    return VariantBuilds(
        tree=tree,
        coopt=co,
        runner=runner,
        plain=plain,
        served=served,
        served_stats=stats_delta(before, co.stats()),
        plain_library=plain_library,
        served_library=(tree / LIBRARY).read_bytes(),
    )


def test_variant_is_served_linked_and_tests_pass(bzip2_variant: VariantBuilds) -> None:
    v = bzip2_variant
    assert v.served_stats.get("hit", 0) == 1, v.served_stats
    assert v.served_stats.get("internal_error", 0) == 0, v.served_stats
    # Only the TU with a variant changed; its non-PIC twin (blocksort.o, other flags, another key) did not.
    assert differing(v.plain.objects, v.served.objects) == [TARGET]
    assert MARKER in v.served.objects[TARGET] and MARKER not in v.plain.objects[TARGET]
    assert MARKER in v.served_library and MARKER not in v.plain_library


@dataclass(frozen=True)
class Change:
    """One way the TU's inputs can move after its variant was stored, and how to build it for real after it."""

    name: str
    edit: str = ""  # a file (relative to the tree) that gets a line prepended
    make_vars: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    real_cc: str = "clang"


CHANGES = (
    Change("source", edit=TARGET_SOURCE),
    Change("header", edit="bzlib_private.h"),
    Change("define", make_vars=("CPPFLAGS=-DCOOPT_TEST_EXTRA=1",)),
    Change("compiler", env=(("COOPT_COMPILER", "gcc"),), real_cc="gcc"),
)


def rebuild_target(v: VariantBuilds, cc: str, change: Change | None = None) -> tuple[bytes, dict[str, int]]:
    """Remove and remake the target object alone with `cc`; its bytes and the stats counters that moved."""
    make_vars = change.make_vars if change else ()
    env = dict(change.env) if change else {}
    (v.tree / TARGET).unlink()
    before = v.coopt.stats()
    v.runner.run(["make", "CC=" + cc, *make_vars, TARGET], env)
    return (v.tree / TARGET).read_bytes(), stats_delta(before, v.coopt.stats())


@pytest.mark.parametrize("change", CHANGES, ids=lambda c: c.name)
def test_variant_not_served_after_change(bzip2_variant: VariantBuilds, change: Change) -> None:
    v = bzip2_variant
    if change.real_cc != "clang":
        require(change.real_cc)
    variant_object = v.served.objects[TARGET]
    edited = v.tree / change.edit if change.edit else None
    original = edited.read_bytes() if edited else b""
    try:
        if edited:
            edited.write_bytes(b"/* edited after the variant was stored */\n" + original)
        via_coopt, moved = rebuild_target(v, CC, change)
        real, _ = rebuild_target(v, change.real_cc, change)
    finally:
        if edited:
            edited.write_bytes(original)

    assert moved.get("hit", 0) == 0 and misses(moved) == 1, moved
    assert via_coopt == real, "coopt-cc's object differs from %s's after the %s change" % (change.real_cc, change.name)
    assert via_coopt != variant_object

    # Control: with the change undone the same variant is served again, so the miss above was the change's doing.
    again, moved = rebuild_target(v, CC)
    assert moved.get("hit", 0) == 1, moved
    assert again == variant_object


# --- 3. zlib through CMake with coopt-cc as the compiler launcher --------------------------------------------

GENERATORS = {"Unix Makefiles": "make", "Ninja": "ninja"}


@dataclass
class CMakeBuilds:
    mode: str  # one of LAUNCHERS
    tree: Path
    coopt: Coopt
    plain: BuildResult
    launched: BuildResult
    plain_records: int
    records: list[dict]
    stats: dict[str, int]


@pytest.fixture(scope="module", params=[(g, m) for g in sorted(GENERATORS) for m in LAUNCHERS],
                ids=lambda p: "%s-%s" % (p[0].split()[-1].lower(), p[1]))
def cmake_builds(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> CMakeBuilds:
    generator: str = request.param[0]
    require("clang", "cmake", "ctest", GENERATORS[generator])
    base = tmp_path_factory.mktemp("zlib-cmake")
    tree = source_tree(ZLIB.package, base / "tree")
    # Debian's tarball drops win32/, which zlib's CMakeLists.txt names for its Windows resource file.
    (tree / "win32").mkdir(exist_ok=True)
    (tree / "win32" / "zlib1.rc").touch()
    co = private_coopt(launcher_dir(request, request.param[1]), base / "cache")
    runner = Runner(tree, co.env)

    def cmake_build(*extra: str) -> BuildResult:
        shutil.rmtree(tree / "build", ignore_errors=True)
        runner.run(
            ["cmake", "-S", ".", "-B", "build", "-G", generator, "-DCMAKE_C_COMPILER=clang",
             "-DCMAKE_BUILD_TYPE=RelWithDebInfo", *extra]
        )
        runner.run(["cmake", "--build", "build", "-j2"])
        out = runner.run(["ctest", "--test-dir", "build", "--output-on-failure"])
        assert "100% tests passed" in out, out
        return BuildResult(snapshot(tree, ("build/**/*.o",)), out)

    plain = cmake_build()
    plain_records = len(co.journal())
    launched = cmake_build("-DCMAKE_C_COMPILER_LAUNCHER=" + CC)
    return CMakeBuilds(request.param[1], tree, co, plain, launched, plain_records, co.journal(), co.stats())


def test_cmake_launcher_objects_identical_and_ctest_passes(cmake_builds: CMakeBuilds) -> None:
    b = cmake_builds
    assert b.plain.objects, "the plain CMake build produced no objects"
    assert differing(b.plain.objects, b.launched.objects) == []


def test_cmake_launcher_journals_every_compile(cmake_builds: CMakeBuilds) -> None:
    b = cmake_builds
    assert b.plain_records == 0, "the plain CMake build went through coopt-cc"
    wanted = {abs_in(b.tree, obj) for obj in b.plain.objects}
    assert wanted - compile_outputs(b.records) == set()
    assert b.stats.get("internal_error", 0) == 0 and b.stats.get("hit", 0) == 0, b.stats
    assert misses(b.stats) >= len(b.plain.objects), b.stats
    if b.mode == "coopt-cc-fast":  # the prefix form, -MD -MT -MF and absolute sources: most decided in C
        assert b.stats.get("miss_fast", 0) > misses(b.stats) // 2, b.stats
