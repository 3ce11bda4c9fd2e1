"""Timing commands: one run of a command as wall-clock milliseconds, and interleaved repetitions of many.

Interleaving (each repetition runs every case once, in a fresh random order) spreads the noise of a shared
machine over all cases alike, so ratios of medians stay meaningful when absolute numbers drift.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence


class BenchError(Exception):
    """The benchmark cannot go on; the message says why in one line."""


@dataclass(frozen=True)
class Case:
    """One command to time. `prepare` runs untimed before each run and returns extra environment variables
    (a fresh cache directory, a `make clean`)."""

    name: str
    argv: Sequence[str]
    cwd: str
    env: Mapping[str, str]
    prepare: Callable[[], Mapping[str, str]] | None = None


@dataclass
class Samples:
    """Wall-clock times of one case, in milliseconds, in the order they were taken."""

    name: str
    ms: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.ms)

    @property
    def minimum(self) -> float:
        return min(self.ms)

    def as_dict(self) -> dict[str, object]:
        return {
            "median_ms": round(self.median, 3),
            "min_ms": round(self.minimum, 3),
            "max_ms": round(max(self.ms), 3),
            "n": len(self.ms),
            "samples_ms": [round(x, 3) for x in self.ms],
        }


def run_once(case: Case) -> float:
    """Run `case` once; return its wall-clock time in ms. Raises BenchError when the command fails."""
    env = dict(case.env)
    if case.prepare is not None:
        env.update(case.prepare())
    t0 = time.perf_counter()
    proc = subprocess.run(
        list(case.argv), cwd=case.cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    elapsed = (time.perf_counter() - t0) * 1000.0
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise BenchError(
            "%s: `%s` failed (exit %d) in %s: %s"
            % (case.name, " ".join(case.argv), proc.returncode, case.cwd, " | ".join(tail))
        )
    return elapsed


def interleave(cases: Sequence[Case], reps: int, warmup: int, seed: int, label: str) -> dict[str, Samples]:
    """Time every case `reps` times, each repetition in a fresh random order, after `warmup` untimed rounds."""
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        raise BenchError("duplicate case names in %s" % label)
    rng = random.Random(seed)
    for _ in range(warmup):
        for case in cases:
            run_once(case)
    samples = {c.name: Samples(c.name) for c in cases}
    for rep in range(reps):
        order = list(cases)
        rng.shuffle(order)
        for case in order:
            samples[case.name].ms.append(run_once(case))
        progress("%s: repetition %d/%d done" % (label, rep + 1, reps))
    return samples


def progress(line: str) -> None:
    """One progress line on stderr (stdout carries the result tables)."""
    sys.stderr.write("  .. %s\n" % line)
    sys.stderr.flush()


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without coopt's and ccache's settings, in the C locale, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COOPT_", "CCACHE_"))}
    env["LC_ALL"] = "C"
    # The hits measured are of variants stored with `coopt cache put --unverified`: opt in to serving them.
    env["COOPT_SERVE_UNVERIFIED"] = "1"
    if extra:
        env.update(extra)
    return env
