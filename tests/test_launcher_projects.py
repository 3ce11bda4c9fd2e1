"""Launcher chains on real projects: Lua (its own Makefile) and zlib (CMake, Makefiles and Ninja generators) from
Debian's sources, built through `coopt-cc ccache clang` / `coopt-cc sccache clang` and CMake's
`CMAKE_C_COMPILER_LAUNCHER="coopt-cc;ccache"`, with coopt-cc as installed (coopt-cc-fast first).

Each chain builds the project three times from clean, with private ccache/sccache directories:
1. first build: every object byte-identical to plain clang's with the same flags, the project's tests pass, every
   TU journaled under the real compiler, the launcher compiled every TU (its misses);
2. second build: the same, and every TU is a launcher hit (ccache -s / sccache --show-stats);
3. after a variant is stored for one TU: that TU is served by coopt-cc (its object carries the variant's marker,
   the launcher is not asked for it), every other TU is still a launcher hit, the tests still pass.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import Coopt, require
from support.builds import LUA, ZLIB, BuildResult, Runner, build, clean, compile_outputs, differing, snapshot
from support.servers import free_port

pytestmark = pytest.mark.slow

MARKER = b"coopt-test-variant-through-a-launcher"


class Tool:
    """A launcher with a private cache: its environment, its hit and miss counters, and its shutdown."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        if name == "ccache":
            self.env = {"CCACHE_DIR": str(root / "ccache")}
        else:  # sccache: a server of its own on a free port, stopped by close()
            self.env = {"SCCACHE_DIR": str(root / "sccache"), "SCCACHE_SERVER_PORT": str(free_port()),
                        "SCCACHE_IDLE_TIMEOUT": "900"}

    def counts(self, env: dict) -> tuple[int, int]:
        """(hits, misses) so far."""
        if self.name == "ccache":
            out = subprocess.run(["ccache", "--print-stats"], env=env, capture_output=True, text=True,
                                 check=True).stdout
            s = {k: int(v) for k, v in (line.split("\t") for line in out.splitlines() if "\t" in line)
                 if v.isdigit()}
            # `ccache -s` shows the same counters; its "Hits" line is the sum of these two.
            return s.get("direct_cache_hit", 0) + s.get("preprocessed_cache_hit", 0), s.get("cache_miss", 0)
        out = subprocess.run(["sccache", "--show-stats", "--stats-format", "json"], env=env, capture_output=True,
                             text=True, check=True).stdout
        stats = json.loads(out)["stats"]
        return sum(stats["cache_hits"]["counts"].values()), sum(stats["cache_misses"]["counts"].values())

    def close(self, env: dict) -> None:
        if self.name == "sccache":
            subprocess.run(["sccache", "--stop-server"], env=env, capture_output=True, timeout=120)


@dataclass
class Build:
    result: BuildResult
    records: list[dict]
    coopt_stats: dict[str, int]
    hits: int
    misses: int


@dataclass
class ChainBuilds:
    project: str
    tree: Path
    plain: BuildResult
    builds: list[Build]  # first, second, with a variant for one TU
    target: str  # the object (relative to the tree) a variant was stored for


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    names = set(before) | set(after)
    return {k: after.get(k, 0) - before.get(k, 0) for k in names if after.get(k, 0) != before.get(k, 0)}


CHAINS = [("make", "ccache"), ("make", "sccache"), ("cmake-make", "ccache"), ("cmake-ninja", "ccache"),
          ("cmake-ninja", "sccache")]


@pytest.fixture(scope="module", params=CHAINS, ids=lambda p: "%s-%s" % p)
def chain_builds(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                 fast_launcher_bin: Path) -> ChainBuilds:
    from test_real_projects import private_coopt, source_tree

    project, launcher = request.param
    require("clang", launcher, "make", *(("cmake", "ctest") if "cmake" in project else ()),
            *(("ninja",) if project == "cmake-ninja" else ()))
    base = tmp_path_factory.mktemp("chain-%s-%s" % request.param)
    co = private_coopt(fast_launcher_bin, base / "cache")
    tool = Tool(launcher, base)
    env = dict(co.env, **tool.env)
    env = {k: v for k, v in env.items() if not (k.startswith("CCACHE_") and k not in tool.env)}
    co = Coopt(bin=co.bin, cache_dir=co.cache_dir, env=env)
    clang = shutil.which("clang") or "clang"

    if project == "make":
        tree = source_tree(LUA.package, base / "tree", pristine=True)
        runner = Runner(tree, env)

        def one(cc: str) -> BuildResult:
            clean(LUA, runner)
            return build(LUA, runner, cc)

        chain_cc = "coopt-cc %s clang" % launcher  # make CC="coopt-cc ccache clang" (Lua's Makefile adds -std)
        target = "src/lctype.o"
    else:
        generator = "Ninja" if project == "cmake-ninja" else "Unix Makefiles"
        tree = source_tree(ZLIB.package, base / "tree")
        (tree / "win32").mkdir(exist_ok=True)
        (tree / "win32" / "zlib1.rc").touch()  # Debian's tarball drops win32/, which CMakeLists.txt names
        runner = Runner(tree, env)

        def one(cc: str) -> BuildResult:
            shutil.rmtree(tree / "build", ignore_errors=True)
            extra = ["-DCMAKE_C_COMPILER_LAUNCHER=coopt-cc;%s" % launcher] if cc != "clang" else []
            runner.run(["cmake", "-S", ".", "-B", "build", "-G", generator, "-DCMAKE_C_COMPILER=" + clang,
                        "-DCMAKE_BUILD_TYPE=RelWithDebInfo", *extra])
            runner.run(["cmake", "--build", "build", "-j2"])
            out = runner.run(["ctest", "--test-dir", "build", "--output-on-failure"])
            assert "100% tests passed" in out, out
            # ctest's output has timings: what is compared is its summary line.
            summary = next(line for line in out.splitlines() if "tests passed" in line)
            return BuildResult(snapshot(tree, ("build/**/*.o",)), summary)

        chain_cc = "chain"
        target = ""  # zlib.dir's object of adler32.c, named as this CMake names it (adler32.o or adler32.c.o)

    try:
        plain = one("clang")
        assert co.journal() == [], "the plain build went through coopt-cc"
        if not target:
            (target,) = [o for o in plain.objects if "/zlib.dir/" in o and os.path.basename(o).startswith("adler32.")]
        builds = []
        for i in range(3):
            if i == 2:  # a variant for one TU: its source plus a retained marker string
                source = {"make": "src/lctype.c"}.get(project, "adler32.c")
                artifact = base / "variant" / os.path.basename(source)
                artifact.parent.mkdir()
                artifact.write_text((tree / source).read_text() + '\n__attribute__((used)) static const char '
                                    'coopt_variant_marker[] = "%s";\n' % MARKER.decode())
                co.coopt("cache", "put", "--artifact", str(artifact), "--for-object", str(tree / target),
                         "--unverified", cwd=tree)
            journal_before, stats_before = len(co.journal()), co.stats()
            hits_before, misses_before = tool.counts(env)
            result = one(chain_cc)
            hits, misses = tool.counts(env)
            builds.append(Build(result, co.journal()[journal_before:], _delta(stats_before, co.stats()),
                                hits - hits_before, misses - misses_before))
    finally:
        tool.close(env)
    return ChainBuilds(project, tree, plain, builds, target)


def test_objects_identical_to_plain_clang_and_tests_pass(chain_builds: ChainBuilds) -> None:
    b = chain_builds
    assert b.plain.objects, "the plain build produced no objects"
    for built in b.builds[:2]:
        assert differing(b.plain.objects, built.result.objects) == []
        assert built.result.test_output == b.plain.test_output  # (and they passed: the build checks that)


def test_every_tu_is_journaled_under_the_real_compiler(chain_builds: ChainBuilds) -> None:
    b = chain_builds
    wanted = {os.path.normpath(os.path.join(b.tree, o)) for o in b.plain.objects}
    clang = os.path.realpath(shutil.which("clang") or "clang")
    for built in b.builds:
        assert wanted - compile_outputs(built.records) == set()
        compilers = {os.path.realpath(r["compiler"]) for r in built.records if r["type"] == "compile"}
        assert compilers == {clang}
        assert built.coopt_stats.get("internal_error", 0) == 0, built.coopt_stats


def test_the_launcher_compiles_then_hits_on_the_second_build(chain_builds: ChainBuilds) -> None:
    b = chain_builds
    first, second = b.builds[0], b.builds[1]
    n = len(b.plain.objects)
    assert first.misses >= n and first.hits == 0, (first.hits, first.misses)
    assert second.hits >= n and second.misses == 0, (second.hits, second.misses)
    # coopt-cc-fast replayed the second build's compiles through the launcher (only Python serves hits).
    assert second.coopt_stats.get("miss_fast", 0) >= n, second.coopt_stats


def test_a_variant_is_served_through_the_chain(chain_builds: ChainBuilds) -> None:
    b = chain_builds
    third = b.builds[2]
    assert third.coopt_stats.get("hit", 0) == 1, third.coopt_stats
    assert differing(b.plain.objects, third.result.objects) == [b.target]
    assert MARKER in third.result.objects[b.target]
    # Every other TU still came from the launcher's cache; the variant's TU never reached it.
    assert third.hits == len(b.plain.objects) - 1 and third.misses == 0, (third.hits, third.misses)
    assert third.result.test_output == b.plain.test_output
