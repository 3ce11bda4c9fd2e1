#!/usr/bin/env python3
"""How much coopt-cc costs a build: per-compile latency and whole-build wall time against plain clang and ccache.

In one run, with interleaved repetitions and medians:
  - added latency per call of the installed coopt-cc over plain clang for a pass-through (-E), a link, a miss and
    a hit (a variant stored with `coopt cache put --unverified`; served directly, and with the compiler run a hit
    keeps when it cannot prove it unneeded), on a 3-line TU, a small TU and on Lua's lvm.c with Lua's own
    flags; the same calls through ccache (direct hit; miss with a fresh cache directory) when it is installed;
  - the wall time of a whole Lua build (upstream Makefile, make -j2) with plain clang, coopt-cc (cold cache:
    journal only) and ccache (cold and warm);
  - where coopt-cc's own time goes on a miss (interpreter start-up, import, main() step by step).
coopt is pip-installed into a private venv first, so the launcher users get is what is measured.

Results: bench/results/wrapper_overhead.json and docs/bench-wrapper.md (or both in --output-dir), and the same
tables on stdout. Nothing here asserts a time: the targets of issue 2 are reported as met or not.

    python bench/wrapper_overhead.py [--quick] [--reps N] [--build-reps N] [--output-dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# bench/ for the `overhead` package when imported (the smoke test), tests/ for the Debian source helper.
for _p in (ROOT / "tests", ROOT / "bench"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from overhead import breakdown, builds, compiles, report  # noqa: E402
from overhead.install import install_coopt  # noqa: E402
from overhead.machine import load_average, machine_info, tool_version  # noqa: E402
from overhead.timing import BenchError, progress  # noqa: E402
from overhead.workloads import LUA_TARGET, lua_tu, small_tu, tiny_tu  # noqa: E402

DEFAULT_JSON = ROOT / "bench" / "results" / "wrapper_overhead.json"
DEFAULT_MARKDOWN = ROOT / "docs" / "bench-wrapper.md"

# (per-compile repetitions, warm-up rounds, build repetitions, build warm-ups) for a full run and for --quick
FULL = (15, 2, 5, 1)
QUICK = (3, 1, 1, 0)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="wrapper_overhead.py", description="Measure coopt-cc's overhead against plain clang and ccache."
    )
    p.add_argument("--quick", action="store_true", help="few repetitions: a smoke run, not a measurement")
    p.add_argument("--reps", type=int, help="repetitions of each per-compile case (default 15; 3 with --quick)")
    p.add_argument("--build-reps", type=int, help="repetitions of each Lua build (default 5; 1 with --quick)")
    p.add_argument("--output-dir", type=Path, help="write wrapper_overhead.json and bench-wrapper.md here "
                   "instead of bench/results/ and docs/")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (venv, trees, caches)")
    p.add_argument("--seed", type=int, default=1, help="seed of the interleaving order (default 1)")
    a = p.parse_args(argv)
    for name in ("reps", "build_reps"):
        value = getattr(a, name)
        if value is not None and value < 1:
            p.error("--%s must be at least 1" % name.replace("_", "-"))
    return a


def checkout_state() -> str:
    """The commit measured, and whether the working tree had uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True)
    except OSError:
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


def run(a: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    reps, warmup, build_reps, build_warmup = QUICK if a.quick else FULL
    reps = a.reps or reps
    build_reps = a.build_reps or build_reps
    for tool in ("clang", "make"):
        if shutil.which(tool) is None:
            raise BenchError("`%s` is not installed (make setup installs it)" % tool)
    with_ccache = shutil.which("ccache") is not None
    load_start = load_average()

    installed = install_coopt(ROOT, workdir)
    tiny = tiny_tu(workdir)
    small = small_tu(workdir)
    lua = lua_tu(workdir)
    tus = [tiny, small, lua]

    progress("miss breakdown (%d repetitions)" % reps)
    miss = breakdown.measure(installed, tus, lua, workdir, reps, warmup, a.seed)
    progress("per-compile latency (%d repetitions)" % reps)
    compile_samples, compile_checks = compiles.measure(installed, tus, workdir, with_ccache, reps, warmup, a.seed + 1)
    progress("whole Lua builds (%d repetitions)" % build_reps)
    build_samples, build_checks, calls = builds.measure(
        installed, workdir, with_ccache, build_reps, build_warmup, a.seed + 2
    )

    machine = machine_info()
    machine["load_average_start"] = load_start
    machine["load_average_end"] = load_average()
    results: dict[str, Any] = {
        "format_version": report.FORMAT_VERSION,
        "benchmark": "wrapper_overhead",
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "mode": "quick" if a.quick else "full",
        "options": {"reps": reps, "warmup": warmup, "build_reps": build_reps, "build_warmup": build_warmup,
                    "seed": a.seed},
        "machine": machine,
        "tools": {
            "clang": tool_version(["clang", "--version"]),
            "ccache": tool_version(["ccache", "--version"]) if with_ccache else None,
            "make": tool_version(["make", "--version"]),
            "python": tool_version([str(installed.python), "-c", "import sys; print(sys.version.split()[0])"]),
            "coopt": checkout_state(),
        },
        "workloads": {tu.label: ["clang", *tu.compile_args] for tu in tus},
        "compile": compiles.rows(compile_samples, tus),
        "compile_checks": compile_checks,
        "build": {
            "command": "make -C src -j%d %s CC=<cc>" % (builds.JOBS, LUA_TARGET),
            "rows": builds.rows(build_samples, installed, with_ccache),
            "checks": build_checks,
            "calls_through_cc": calls,
            "jobs": builds.JOBS,
        },
        "miss_breakdown": miss,
    }
    results["build"]["projection"] = report.projection(results)
    results["targets"] = report.targets(results)
    return results


def main(argv: list[str] | None = None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    json_path = a.output_dir / DEFAULT_JSON.name if a.output_dir else DEFAULT_JSON
    markdown_path = a.output_dir / DEFAULT_MARKDOWN.name if a.output_dir else DEFAULT_MARKDOWN
    workdir = Path(tempfile.mkdtemp(prefix="coopt-bench-"))
    try:
        results = run(a, workdir)
    except BenchError as exc:
        sys.stderr.write("wrapper_overhead: error: %s\n" % exc)
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("wrapper_overhead: interrupted\n")
        return 130
    finally:
        if a.keep:
            progress("kept %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report.write(results, json_path, markdown_path)
    print(report.render_terminal(results))
    print("results: %s\n         %s" % (json_path, markdown_path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
