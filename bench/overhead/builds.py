"""Whole-build wall time: Lua's upstream Makefile (make -j2) with plain clang, coopt-cc and ccache.

Each configuration builds in its own copy of the tree, after an untimed `make clean`. coopt-cc is measured cold (a
fresh cache directory for every build: nothing is served; the Python wrapper decides the first compiles and
coopt-cc-fast the rest, from the shape memo they leave) and as a rebuild (the cache kept from an untimed first
build: every TU is journaled by coopt-cc-fast replaying the Python wrapper's decisions, the usual case of a
developer's or CI's next build); ccache is measured cold (a fresh cache
directory) and warm (every compile a hit). After timing, every tree's `lua` must run and coopt-cc's last build
must have journaled every compile.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from overhead.compiles import coopt_stats
from overhead.install import Installed
from overhead.timing import BenchError, Case, Samples, clean_env, interleave, progress
from overhead.workloads import copy_lua, lua_commands, lua_make

BASELINE = "clang"
JOBS = 2  # make -j2: the machines this runs on have 2 cores


@dataclass(frozen=True)
class Config:
    """One way of building Lua: the CC given to make and the cache set-up before each build."""

    name: str
    cc: str
    cache_var: str  # "", COOPT_CACHE_DIR or CCACHE_DIR
    fresh_cache: bool


def configs(installed: Installed, with_ccache: bool) -> list[Config]:
    out = [
        Config(BASELINE, "clang", "", False),
        Config("coopt-cc (cold)", str(installed.coopt_cc), "COOPT_CACHE_DIR", True),
        Config("coopt-cc (rebuild)", str(installed.coopt_cc), "COOPT_CACHE_DIR", False),
    ]
    if with_ccache:
        out.append(Config("ccache (cold)", "ccache clang", "CCACHE_DIR", True))
        out.append(Config("ccache (warm)", "ccache clang", "CCACHE_DIR", False))
    return out


def _make_clean(tree: Path) -> None:
    proc = subprocess.run(["make", "-C", str(tree / "src"), "clean"], env=clean_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError("make clean failed in %s: %s" % (tree, proc.stderr.strip()[-300:]))


def _preparer(tree: Path, cfg: Config, root: Path, used: list[Path]) -> Callable[[], Mapping[str, str]]:
    def prepare() -> Mapping[str, str]:
        _make_clean(tree)
        if not cfg.cache_var:
            return {}
        if cfg.fresh_cache:
            used.append(Path(tempfile.mkdtemp(dir=root, prefix="cache-")))
        return {cfg.cache_var: str(used[-1])}

    return prepare


def _check_lua(tree: Path, name: str) -> None:
    proc = subprocess.run([str(tree / "src" / "lua"), "-e", "print(6*7)"], capture_output=True, text=True)
    if proc.returncode != 0 or proc.stdout.strip() != "42":
        raise BenchError("%s: the lua it built does not run (%r)" % (name, (proc.stdout + proc.stderr)[-200:]))


def measure(
    installed: Installed, workdir: Path, with_ccache: bool, reps: int, warmup: int, seed: int
) -> tuple[dict[str, Samples], dict[str, dict[str, object]], int]:
    """Time Lua builds; returns samples by configuration, the checks made, and how many calls one build makes
    through CC (compiles and links)."""
    cases: list[Case] = []
    trees: dict[str, Path] = {}
    caches: dict[str, list[Path]] = {}
    primings: dict[str, dict[str, int]] = {}  # coopt's counters after the untimed priming build
    ccache_conf = workdir / "ccache.conf"
    ccache_conf.write_text("")
    for i, cfg in enumerate(configs(installed, with_ccache)):
        root = workdir / "builds" / ("%d" % i)
        tree = copy_lua(root / "lua")
        used: list[Path] = []
        if cfg.cache_var and not cfg.fresh_cache:
            used.append(root / "cache")
            if cfg.cache_var:
                progress("priming %s with one build" % cfg.name)
                env = clean_env({cfg.cache_var: str(used[0]), "CCACHE_CONFIGPATH": str(ccache_conf)})
                proc = subprocess.run(lua_make(tree, cfg.cc, JOBS), env=env, capture_output=True, text=True)
                if proc.returncode != 0:
                    raise BenchError("priming %s failed: %s" % (cfg.name, proc.stderr.strip()[-300:]))
                if cfg.cache_var == "COOPT_CACHE_DIR":
                    primings[cfg.name] = coopt_stats(installed, used[0])
        env = clean_env({"CCACHE_CONFIGPATH": str(ccache_conf)})
        cases.append(Case(cfg.name, lua_make(tree, cfg.cc, JOBS), str(tree), env, _preparer(tree, cfg, root, used)))
        trees[cfg.name] = tree
        caches[cfg.name] = used
    # Counted on a tree not built yet: `make -n` in a built one prints nothing.
    commands = lua_commands(trees[BASELINE])
    expected = sum(1 for c in commands if "-c" in c)
    samples = interleave(cases, reps, warmup, seed, "whole Lua build")

    checks: dict[str, dict[str, object]] = {}
    for cfg in configs(installed, with_ccache):
        _check_lua(trees[cfg.name], cfg.name)
        if cfg.cache_var == "COOPT_CACHE_DIR" and not cfg.fresh_cache:
            # Every build after the priming one journals each compile through coopt-cc-fast.
            stats = coopt_stats(installed, caches[cfg.name][-1])
            replayed = stats.get("miss_fast", 0) - primings[cfg.name].get("miss_fast", 0)
            checks[cfg.name] = {"counter": "miss_fast (compiles replayed in C)", "expected": expected * (reps + warmup),
                                "counted": replayed}
            if replayed != expected * (reps + warmup):
                raise BenchError("%s: coopt-cc-fast replayed %d of %d compiles; is it installed?"
                                 % (cfg.name, replayed, expected * (reps + warmup)))
        elif cfg.cache_var == "COOPT_CACHE_DIR":
            last = coopt_stats(installed, caches[cfg.name][-1])
            counted = last.get("misses", 0)
            checks[cfg.name] = {"counter": "misses (journaled compiles)", "expected": expected, "counted": counted,
                                "decided_in_c": last.get("miss_fast", 0)}
            if counted != expected:
                raise BenchError(
                    "%s: the last build journaled %d of Lua's %d compiles" % (cfg.name, counted, expected)
                )
    return samples, checks, len(commands)


def rows(samples: Mapping[str, Samples], installed: Installed, with_ccache: bool) -> list[dict[str, object]]:
    """One row per configuration: its median and min, and its ratio and added percent against plain clang."""
    base = samples[BASELINE]
    out: list[dict[str, object]] = []
    for cfg in configs(installed, with_ccache):
        got = samples[cfg.name]
        out.append(
            {
                "config": cfg.name,
                "cc": "coopt-cc" if cfg.cache_var == "COOPT_CACHE_DIR" else cfg.cc,
                **got.as_dict(),
                "ratio": round(got.median / base.median, 4),
                "added_pct": round((got.median / base.median - 1.0) * 100.0, 2),
            }
        )
    return out
