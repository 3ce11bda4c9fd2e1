#!/usr/bin/env python3
"""Whole-build cost of coopt-cc against plain clang for a project whose Makefiles compile several sources in one
call and link programs from sources in one call: lz4 from Debian's sources.

lz4's lib/Makefile builds liblz4.a with one `$(COMPILE.c) $^` call (five sources, one `-c`), and tests/Makefile
links its programs from sources in one call (`$(CC) $(FLAGS) $^ -o $@`, e.g. fullbench-lib from fullbench.c and
liblz4.a, datagen from two sources). The build measured is `make -C lib liblz4.a` then `make -C tests
fullbench-lib datagen`, with the project's own flags, first build each time: a clean tree and, for coopt-cc, an
empty cache (so every TU is a miss: journal, and for the compile-and-link calls, objects kept in the cache). The
two builds alternate in a fresh random order each repetition. Both wall time and CPU time (user + system of every
process the build ran, from getrusage) are taken: on a machine shared with other work the wall time mostly measures
the others, the CPU time much less so. The result is the median of each, their ratio and a 95% bootstrap interval
of that ratio. coopt is pip-installed into a private venv first, so the
launcher users get is what is measured.

Results: bench/results/multi_source_build.json and docs/bench-multi-source.md (or both in --output-dir), and the
table on stdout. Nothing here asserts a time; the target (within 5% of plain clang) is reported as met or not.

    python bench/multi_source_build.py [--reps N] [--output-dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT / "tests", ROOT / "bench"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from overhead.install import install_coopt  # noqa: E402
from overhead.machine import load_average, machine_info, tool_version  # noqa: E402
from overhead.timing import BenchError, Samples, clean_env, progress  # noqa: E402

DEFAULT_JSON = ROOT / "bench" / "results" / "multi_source_build.json"
DEFAULT_MARKDOWN = ROOT / "docs" / "bench-multi-source.md"
TARGET = 1.05  # issue 13: within 5% of plain clang on the first build
BUILD = "make -s -C lib liblz4.a CC={cc} && make -s -C tests fullbench-lib datagen CC={cc}"
PROGRAMS = ("tests/fullbench-lib", "tests/datagen")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="multi_source_build.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=5, help="timed builds of each kind (default 5)")
    p.add_argument("--output-dir", type=Path, help="write the JSON and markdown here instead of bench/results/ "
                   "and docs/")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (venv, trees, caches)")
    return p.parse_args(argv)


def _clean(tree: Path) -> None:
    subprocess.run(["make", "-s", "-C", "lib", "clean"], cwd=tree, capture_output=True, check=False)
    subprocess.run(["make", "-s", "-C", "tests", "clean"], cwd=tree, capture_output=True, check=False)
    for leftover in [*tree.glob("lib/*.o"), *tree.glob("tests/*.o"), *(tree / p for p in PROGRAMS)]:
        leftover.unlink(missing_ok=True)


def ratio_interval(base: list[float], other: list[float], seed: int, rounds: int = 2000) -> tuple[float, float]:
    """A 95% bootstrap interval of median(other) / median(base), each resampled on its own."""
    rng = random.Random(seed)
    ratios = sorted(
        statistics.median(rng.choices(other, k=len(other))) / statistics.median(rng.choices(base, k=len(base)))
        for _ in range(rounds)
    )
    return ratios[int(0.025 * rounds)], ratios[int(0.975 * rounds) - 1]


def run(a: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from support.debian_sources import copy_tree

    installed = install_coopt(ROOT, workdir)
    tree = copy_tree("lz4", workdir / "lz4")
    cache = workdir / "cache"

    def fresh() -> None:
        _clean(tree)
        shutil.rmtree(cache, ignore_errors=True)

    env = clean_env({"PATH": "%s:%s" % (installed.coopt_cc.parent, clean_env().get("PATH", "")),
                     "COOPT_CACHE_DIR": str(cache)})
    builds = {"clang": BUILD.format(cc="clang"), "coopt-cc": BUILD.format(cc=installed.coopt_cc)}
    wall = {name: Samples(name) for name in builds}
    cpu = {name: Samples(name) for name in builds}
    load_start = load_average()
    rng = random.Random(1)
    records: list[dict[str, Any]] = []
    for rep in range(a.reps + 1):  # the first round is an untimed warm-up
        order = list(builds)
        rng.shuffle(order)
        for name in order:
            fresh()
            w, c = _timed(builds[name], tree, env)
            if name == "coopt-cc":  # what the coopt-cc build journaled: one TU per source of the one-call builds
                records = [json.loads(line) for line in (cache / "journal.jsonl").read_text().splitlines()]
            if rep:
                wall[name].ms.append(w)
                cpu[name].ms.append(c)
        progress("lz4 build: round %d/%d done" % (rep, a.reps))
    load_end = load_average()
    compiles = sum(1 for r in records if r["type"] == "compile")
    links = sum(1 for r in records if r["type"] == "link")
    result = {
        "format": "coopt-bench-multi-source", "version": 1,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(), "load_average": {"start": load_start, "end": load_end},
        "clang": tool_version(["clang", "--version"]), "build": BUILD.format(cc="CC"), "reps": a.reps,
        "target": TARGET, "journaled": {"compiles": compiles, "links": links},
    }
    for label, samples in (("wall", wall), ("cpu", cpu)):
        base, other = samples["clang"], samples["coopt-cc"]
        low, high = ratio_interval(base.ms, other.ms, seed=2)
        result[label] = {"clang_ms": base.as_dict(), "coopt_cc_ms": other.as_dict(),
                         "ratio": round(other.median / base.median, 4), "interval": [round(low, 4), round(high, 4)]}
    return result


def _timed(command: str, cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Run one build; its wall time and CPU time (user + system of all its processes), in ms."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(["sh", "-c", command], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = (time.perf_counter() - t0) * 1000.0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise BenchError("`%s` failed (exit %d): %s" % (command, proc.returncode,
                                                        proc.stderr.decode(errors="replace").strip()[-300:]))
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, used * 1000.0


def markdown(r: dict[str, Any]) -> str:
    lines = [
        "# Whole-build cost with several sources per call (lz4)",
        "",
        "Written by `bench/multi_source_build.py` (`.venv/bin/python bench/multi_source_build.py [--reps N]`). "
        "lz4's own Makefiles: `liblz4.a` from one `-c` call with five sources, test programs linked from sources "
        "in one call. Each build is a first build (clean tree; for coopt-cc an empty cache), the two kinds "
        "alternating in random order. Ratio: median coopt-cc / median clang, with a 95% bootstrap interval. "
        "CPU time is user + system of every process of the build (getrusage of the children).",
        "",
        "- date: %s; reps: %d; load average at start / end: %s / %s" % (
            r["date"], r["reps"], r["load_average"]["start"], r["load_average"]["end"]),
        "- machine: %s" % ", ".join("%s: %s" % kv for kv in r["machine"].items()),
        "- clang: %s" % r["clang"],
        "- build: `%s`" % r["build"],
        "- the coopt-cc build journaled %d compiles and %d links" % (
            r["journaled"]["compiles"], r["journaled"]["links"]),
        "",
        "| build | measure | median s | min s | max s | x clang (95% interval) |",
        "|-------|---------|----------|-------|-------|------------------------|",
    ]
    for label in ("wall", "cpu"):
        m = r[label]
        for name, key in (("clang", "clang_ms"), ("coopt-cc", "coopt_cc_ms")):
            s = m[key]
            ratio = "1.000" if name == "clang" else "%.3f (%.3f-%.3f)" % (m["ratio"], *m["interval"])
            lines.append("| %s | %s | %.2f | %.2f | %.2f | %s |" % (
                name, label, s["median_ms"] / 1e3, s["min_ms"] / 1e3, s["max_ms"] / 1e3, ratio))
    lines += ["", "Target: within %.0f%% of plain clang (x clang <= %.2f)." % ((r["target"] - 1) * 100, r["target"]),
              ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    workdir = Path(tempfile.mkdtemp(prefix="coopt-bench-multi-"))
    try:
        result = run(a, workdir)
    except BenchError as exc:
        sys.stderr.write("multi_source_build.py: error: %s\n" % exc)
        return 1
    finally:
        if not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    out_json = a.output_dir / DEFAULT_JSON.name if a.output_dir else DEFAULT_JSON
    out_md = a.output_dir / DEFAULT_MARKDOWN.name if a.output_dir else DEFAULT_MARKDOWN
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    text = markdown(result)
    out_md.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
