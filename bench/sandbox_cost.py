"""What containment costs per command: `sandbox.run` of /bin/true under bubblewrap (with and without the cgroup
limits), against the old containment (rlimits and `unshare -n`) and a bare subprocess. Every harness run, hook,
fuzzer start and timed benchmark run pays this once.

    .venv/bin/python bench/sandbox_cost.py [--runs N] [--json out.json]

Prints the median and 90th percentile in milliseconds per way of running.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

from coopt.verify import sandbox  # noqa: E402
from coopt.verify.sandbox import bwrap  # noqa: E402


def _times(fn: Callable[[], object], runs: int) -> list[float]:
    fn()  # warm up (the bwrap probe, page cache)
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> int:
    """Time each way of running /bin/true and print a table (or JSON rows)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--json", help="write the rows here")
    a = p.parse_args()
    why = bwrap.unavailable()
    if why:
        print("bubblewrap does not work here: %s" % why, file=sys.stderr)
        return 2
    scratch = tempfile.mkdtemp(prefix="coopt-sandbox-cost-")
    true = ["/bin/true"]
    default = sandbox.Limits()
    no_cgroup = sandbox.Limits(memory_mb=0, processes=0)
    ways: list[tuple[str, Callable[[], object]]] = [
        ("subprocess.run, nothing else", lambda: subprocess.run(true, check=True)),
        ("sandbox.run under bwrap, cgroup limits (default)", lambda: sandbox.run(true, scratch, default)),
        ("sandbox.run under bwrap, rlimits only", lambda: sandbox.run(true, scratch, no_cgroup)),
    ]
    prefix = sandbox.network_namespace_prefix()
    if prefix:
        ways.append(("old containment: rlimits + unshare -n", lambda: subprocess.run([*prefix, *true], check=True)))
    rows = []
    for name, fn in ways:
        ms = sorted(_times(fn, a.runs))
        rows.append({"way": name, "runs": a.runs, "median_ms": round(statistics.median(ms), 2),
                     "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 2)})
    width = max(len(r["way"]) for r in rows)
    print("%-*s  %9s  %9s" % (width, "way (uid %d)" % os.geteuid(), "median ms", "p90 ms"))
    for r in rows:
        print("%-*s  %9.2f  %9.2f" % (width, r["way"], r["median_ms"], r["p90_ms"]))
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
