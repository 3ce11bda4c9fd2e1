"""Where a candidate function spends its time: perf samples of its side program on the speed inputs, per
instruction.

Cheap by design: one more run of the candidate's side program (the micro-benchmark's), under `perf record -e
cpu-clock` inside the sandbox like every run of candidate code; `perf annotate` then reads the samples and the
binary outside it (it runs nothing of the candidate). The result is a few lines, hottest instructions first, that
the LLM agents are shown with a timing. Nothing here decides a verdict; any failure gives "".
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
from collections.abc import Mapping, Sequence

from coopt.verify import sandbox
from coopt.verify.evidence import Interval

TOP = 12  # instructions shown
TARGET_S = 0.3  # how long the profiled run should take: perf's cpu-clock samples every 0.25 ms
MAX_ITERATIONS = 100_000
_LINE = re.compile(r"^\s*(\d+\.\d+)\s*:\s*([0-9a-f]+):\s*(.+?)\s*$")


def iterations(timing: Interval | None, timed_iterations: int) -> int:
    """How many iterations over the speed inputs make the profiled run last about TARGET_S, from the micro-
    benchmark's candidate runs of `timed_iterations` (their median includes the process start, so this errs
    short, never long)."""
    if timing is None or timing.method != "wall" or not timing.samples_candidate:
        return timed_iterations * 10
    per = statistics.median(timing.samples_candidate) / max(1, timed_iterations)
    return int(min(MAX_ITERATIONS, max(timed_iterations, TARGET_S / max(per, 1e-9))))


def hot_spots(argv: Sequence[str], scratch: str, env: Mapping[str, str], limits: sandbox.Limits,
              symbols: Sequence[str], top: int = TOP) -> str:
    """The hottest instructions of the first of `symbols` perf saw while `argv` ran (percent of the function's
    samples, address, instruction), in address order; "" when perf is missing or saw nothing there."""
    perf = shutil.which("perf")
    if perf is None:
        return ""
    os.makedirs(scratch, exist_ok=True)
    data = os.path.join(scratch, "hot-spots.data")
    try:
        res = sandbox.run([perf, "record", "-q", "-e", "cpu-clock", "-o", data, "--", *argv], scratch, limits,
                          dict(env))
    except (OSError, sandbox.SandboxUnavailable):
        return ""
    if res.returncode != 0 or not os.path.isfile(data):
        return ""
    for symbol in symbols:
        try:
            # -f: the data file belongs to the sandbox's user.
            proc = subprocess.run([perf, "annotate", "-f", "-i", data, "--stdio", "--no-source", symbol],
                                  capture_output=True, text=True, timeout=120, errors="replace")
        except (OSError, subprocess.TimeoutExpired):
            return ""
        rows = [(float(m.group(1)), int(m.group(2), 16), " ".join(m.group(3).split()))
                for m in map(_LINE.match, proc.stdout.splitlines()) if m]
        hot = sorted((r for r in rows if r[0] > 0), key=lambda r: -r[0])[:top]
        if hot:
            total = sum(r[0] for r in rows)
            lines = ["%5.1f%%  %x:  %s" % (pct, addr, ins) for pct, addr, ins in sorted(hot, key=lambda r: r[1])]
            return "%d hottest instructions (%.0f%% of the function's samples):\n%s" % (
                len(hot), sum(r[0] for r in hot) * 100 / max(total, 1e-9), "\n".join(lines))
    return ""
