"""Is the candidate faster? Interleaved A/B timing with a bootstrap interval, or callgrind instruction counts.

Wall-clock: the two commands alternate (A B A B ...; the order flips every round so drift and caches hit both
alike), the speed-up is median(A) / median(B), and its confidence interval comes from resampling both sample
sets (percentile bootstrap). Accepted only when the interval's lower bound clears `min_gain`.

Instruction counts (`valgrind --tool=callgrind`): deterministic, for noisy machines and for tests; optionally
limited to the functions under test (`--toggle-collect`). The interval is the point itself.
"""

from __future__ import annotations

import os
import random
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from coopt.verify import sandbox
from coopt.verify.evidence import Interval

DEFAULT_MIN_GAIN = 1.02


@dataclass(frozen=True)
class PerfSettings:
    rounds: int = 11
    warmup: int = 1
    bootstrap: int = 2000
    confidence: float = 0.95
    min_gain: float = DEFAULT_MIN_GAIN
    seed: int = 1


def bootstrap_interval(
    a: Sequence[float], b: Sequence[float], n: int = 2000, confidence: float = 0.95, seed: int = 1
) -> tuple[float, float, float]:
    """(ratio of medians a/b, low, high) with a percentile bootstrap interval."""
    rng = random.Random(seed)
    point = statistics.median(a) / statistics.median(b)
    ratios = []
    for _ in range(n):
        ra = [a[rng.randrange(len(a))] for _ in a]
        rb = [b[rng.randrange(len(b))] for _ in b]
        ratios.append(statistics.median(ra) / statistics.median(rb))
    ratios.sort()
    lo_i = int((1 - confidence) / 2 * n)
    hi_i = min(n - 1, int((1 + confidence) / 2 * n))
    return point, ratios[lo_i], ratios[hi_i]


def interleaved(run_a: Callable[[], float], run_b: Callable[[], float], settings: PerfSettings) -> Interval:
    """Time A (the original) and B (the candidate) alternately; speed-up of B over A."""
    for _ in range(settings.warmup):
        run_a()
        run_b()
    sa: list[float] = []
    sb: list[float] = []
    for k in range(settings.rounds):
        if k % 2 == 0:
            sa.append(run_a())
            sb.append(run_b())
        else:
            sb.append(run_b())
            sa.append(run_a())
    point, low, high = bootstrap_interval(sa, sb, settings.bootstrap, settings.confidence, settings.seed)
    return Interval(point, low, high, "wall", sa, sb)


def timed(
    argv: Sequence[str],
    scratch: str,
    env: dict[str, str],
    limits: sandbox.Limits,
    shell: bool = False,
    cpu: bool = False,
    cwd: str | None = None,
    readonly: Sequence[str] = (),
) -> float:
    """Seconds of one contained run (sandbox.run: `cwd` and `readonly` as there): wall time, or with `cpu` the
    user + system CPU time of it and every process it waited for (what the program-level A/B measures by
    default); raises RuntimeError when the command fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    res = sandbox.run(argv, scratch, limits, env, shell=shell, cwd=cwd, readonly=readonly, keep_stdout=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0 or res.timed_out:
        raise RuntimeError("benchmark command failed (%s): %s" % (res.returncode, res.stderr.strip()[-300:]))
    if cpu:
        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed


def callgrind_instructions(
    argv: Sequence[str], scratch: str, env: dict[str, str], limits: sandbox.Limits, toggle: Sequence[str] = ()
) -> int:
    """Instructions executed (Ir) by one run under callgrind, only inside `toggle` functions when given."""
    out = os.path.join(scratch, "callgrind.out.%d" % time.monotonic_ns())
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out]
    cmd += ["--toggle-collect=%s" % t for t in toggle]
    big = sandbox.Limits(limits.cpu_s, 0, limits.file_size_mb, limits.processes, limits.wall_s, limits.network)
    res = sandbox.run([*cmd, *argv], scratch, big, env)
    if res.returncode != 0:
        raise RuntimeError("callgrind run failed (%s): %s" % (res.returncode, res.stderr.strip()[-300:]))
    with open(out, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError("callgrind wrote no instruction total")


def count_interval(orig: int, cand: int) -> Interval:
    ratio = orig / cand if cand else float("inf")
    return Interval(ratio, ratio, ratio, "callgrind", [float(orig)], [float(cand)])
