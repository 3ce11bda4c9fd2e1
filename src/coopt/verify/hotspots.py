"""Where a candidate function spends its time: perf samples of its side program on the speed inputs, per
instruction.

Cheap by design: one more run of the candidate's side program (the micro-benchmark's), under `perf record -e
cpu-clock` inside the sandbox like every run of candidate code; `perf annotate` then reads the samples and the
binary outside it (it runs nothing of the candidate). The result is a few lines, hottest instructions first, that
the LLM agents are shown with a timing. Nothing here decides a verdict; any failure gives "".
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence

from coopt.verify import sandbox

TOP = 12  # instructions shown
TARGET_S = 0.5  # how long the profiled run should take (the harness decoding its inputs takes its share)
FREQUENCY = 20_000  # samples per second, at most the kernel's perf_event_max_sample_rate
MAX_ITERATIONS = 1_000_000
CALIBRATED_S = 0.05  # work a calibration run must show above the start-up before its time is trusted
MAX_WALL_S = 10.0
_LINE = re.compile(r"^\s*(\d+\.\d+)\s*:\s*([0-9a-f]+):\s*(.+?)\s*$")


def iterations(run_for: Callable[[int], float], few: int) -> int:
    """How many iterations over the speed inputs make the profiled run last about TARGET_S. A run of a fast
    function is mostly process and sandbox start-up, so calibration runs (`run_for(n)`: seconds of a run of n
    iterations) grow tenfold until the work stands out of the start-up (a run of `few`): the start-up cancels in
    the difference."""
    try:
        base = run_for(few)
        n = few * 10
        while True:
            work = run_for(n) - base
            if work >= CALIBRATED_S or n * 10 > MAX_ITERATIONS:
                break
            n *= 10
    except (RuntimeError, OSError):
        return few * 10
    if work <= 0:
        return MAX_ITERATIONS
    return int(min(MAX_ITERATIONS, max(few, TARGET_S * n / work)))


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
        # A miscalibrated run is cut at MAX_WALL_S (and then has no profile) rather than holding up the verdict.
        res = sandbox.run([perf, "record", "-q", "-e", "cpu-clock", "-F", str(_frequency()), "-o", data, "--",
                           *argv], scratch,
                          dataclasses.replace(limits, wall_s=min(limits.wall_s or MAX_WALL_S, MAX_WALL_S)),
                          dict(env), keep_stdout=False)
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


def _frequency() -> int:
    """FREQUENCY, or the kernel's limit when it is lower (perf refuses a rate above it)."""
    try:
        with open("/proc/sys/kernel/perf_event_max_sample_rate", encoding="ascii") as f:
            return max(100, min(FREQUENCY, int(f.read().strip())))
    except (OSError, ValueError):
        return 1000
