"""Program-level checks: the project's own test and bench hooks, run on the program built with each side.

A hook is a shell command line. It runs contained (sandbox.py) in a scratch directory per side, with these
variables telling it what to build with:

  COOPT_SIDE      original | candidate
  COOPT_SOURCE    the side's TU (.c, .ll or .s)
  COOPT_OBJECT    that TU compiled with the original's flags (symbols not renamed)
  COOPT_CFLAGS    the flags, shell-quoted
  COOPT_SIDE_DIR  the scratch directory (also the working directory)

The optimizer passes hooks that rebuild the project with the variant; `coopt verify --test` passes whatever the
user writes, e.g. `cc $COOPT_OBJECT main.c -o app && ./app < input.txt`. The candidate passes when stdout, the
exit status and every file named in `compare_files` equal the original's. Floating-point numbers in the output
compare exactly unless a tolerance is set.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from coopt.verify import sandbox
from coopt.verify.evidence import Interval
from coopt.verify.perfstats import PerfSettings, interleaved, timed


@dataclass(frozen=True)
class Side:
    name: str  # original | candidate
    source: str
    obj: str
    directory: str


@dataclass(frozen=True)
class Observation:
    """What a hook produced on one side."""

    returncode: int
    stdout: str
    files: tuple[tuple[str, bytes | None], ...]
    timed_out: bool
    stderr_tail: str


def side_env(side: Side, cflags: Sequence[str]) -> dict[str, str]:
    return sandbox.scrubbed_env(
        side.directory,
        {
            "COOPT_SIDE": side.name,
            "COOPT_SOURCE": side.source,
            "COOPT_OBJECT": side.obj,
            "COOPT_CFLAGS": " ".join(shlex.quote(f) for f in cflags),
            "COOPT_SIDE_DIR": side.directory,
        },
    )


def observe(
    cmd: str, side: Side, cflags: Sequence[str], compare_files: Sequence[str], limits: sandbox.Limits
) -> Observation:
    res = sandbox.run([cmd], side.directory, limits, side_env(side, cflags), shell=True)
    files: list[tuple[str, bytes | None]] = []
    for name in compare_files:
        path = os.path.join(side.directory, name)
        try:
            with open(path, "rb") as f:
                files.append((name, f.read()))
        except OSError:
            files.append((name, None))
    return Observation(res.returncode, res.stdout, tuple(files), res.timed_out, res.stderr[-2000:])


def _numbers_close(a: str, b: str, tolerance: float) -> bool:
    ta, tb = a.split(), b.split()
    if len(ta) != len(tb):
        return False
    for x, y in zip(ta, tb, strict=False):
        if x == y:
            continue
        try:
            fx, fy = float(x), float(y)
        except ValueError:
            return False
        if abs(fx - fy) > tolerance * max(1.0, abs(fx)):
            return False
    return True


def compare(orig: Observation, cand: Observation, tolerance: float = 0.0) -> str:
    """Empty when the candidate's run matches the original's, else what differs."""
    if cand.timed_out and not orig.timed_out:
        return "the test command timed out with the candidate"
    if orig.returncode != cand.returncode:
        return "exit status %d with the original, %d with the candidate" % (orig.returncode, cand.returncode)
    if orig.stdout != cand.stdout and not (tolerance > 0 and _numbers_close(orig.stdout, cand.stdout, tolerance)):
        for n, (x, y) in enumerate(zip(orig.stdout.splitlines(), cand.stdout.splitlines(), strict=False), 1):
            if x != y:
                return "stdout line %d: original %r, candidate %r" % (n, x[:120], y[:120])
        return "stdout differs in length (%d vs %d bytes)" % (len(orig.stdout), len(cand.stdout))
    for (name, a), (_, b) in zip(orig.files, cand.files, strict=False):
        if a != b:
            return "file %s differs" % name
    return ""


def bench(
    cmd: str, orig: Side, cand: Side, cflags: Sequence[str], limits: sandbox.Limits, settings: PerfSettings
) -> Interval:
    """Interleaved timing of the bench hook on both sides."""
    env_o, env_c = side_env(orig, cflags), side_env(cand, cflags)
    return interleaved(
        lambda: timed([cmd], orig.directory, env_o, limits, shell=True),
        lambda: timed([cmd], cand.directory, env_c, limits, shell=True),
        settings,
    )
