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
exit status and every file named in `compare_files` equal the original's. Floating-point numbers in stdout
compare exactly unless a tolerance is set ([optimize] float_tolerance, `coopt verify --fp-tolerance`): then each
one may differ from the original's by tolerance x max(1, |original|); the text around them and integers must
still be identical.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from coopt.verify import sandbox
from coopt.verify.evidence import Interval
from coopt.verify.perfstats import PerfSettings, interleaved, timed

KEEP_FILE_BYTES = 1 << 20  # a file a run leaves is compared by content up to this size, by SHA-256 beyond it


@dataclass(frozen=True)
class Side:
    name: str  # original | candidate
    source: str
    obj: str
    directory: str
    readonly: tuple[str, ...] = ()  # what the hook may read besides the system and its directory (sandbox.run)


@dataclass(frozen=True)
class Observation:
    """What a hook produced on one side."""

    returncode: int
    stdout: str
    files: tuple[tuple[str, bytes | None], ...]
    timed_out: bool
    stderr_tail: str
    output_exceeded: bool = False  # stopped for writing more than the sandbox keeps (sandbox.Limits.output_mb)


def file_content(path: str) -> bytes:
    """A file a run left, as compared: its bytes up to KEEP_FILE_BYTES, else its size and SHA-256 (a candidate
    that writes large files must not make the judge hold them)."""
    with open(path, "rb") as f:
        head = f.read(KEEP_FILE_BYTES + 1)
        if len(head) <= KEEP_FILE_BYTES:
            return head
        digest = hashlib.sha256(head)
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
        return b"\0coopt: %d bytes, sha256 %s" % (f.tell(), digest.hexdigest().encode())


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


def run_line(line: str, scratch: str, limits: sandbox.Limits, env: dict[str, str], cwd: str | None = None,
             readonly: Sequence[str] = (), compare_files: Sequence[str] = ()) -> Observation:
    """The one way a project command line (a test, a bench, a workload of the program) runs on one side:
    contained by the sandbox, writing only in `scratch`; `compare_files` are read back from `scratch`."""
    res = sandbox.run([line], scratch, limits, env, shell=True, cwd=cwd, readonly=list(readonly))
    files: list[tuple[str, bytes | None]] = []
    for name in compare_files:
        try:
            files.append((name, file_content(os.path.join(scratch, name))))
        except OSError:
            files.append((name, None))
    return Observation(res.returncode, res.stdout, tuple(files), res.timed_out, sandbox.stderr_with_notes(res),
                       res.output_exceeded)


def observe(
    cmd: str, side: Side, cflags: Sequence[str], compare_files: Sequence[str], limits: sandbox.Limits
) -> Observation:
    """The hook `cmd` on one TU's side (its directory the scratch and working directory)."""
    return run_line(cmd, side.directory, limits, side_env(side, cflags), readonly=side.readonly,
                    compare_files=compare_files)


# A number in program output, as printf writes them: integers, fixed and exponent forms, inf and nan.
_NUMBER = re.compile(r"([-+]?(?:(?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|\d+|inf(?:inity)?|nan))",
                     re.IGNORECASE)


def _is_float(token: str) -> bool:
    return any(c in token for c in ".eEnN")  # a point, an exponent, inf or nan: not an integer


def floats_close(x: float, y: float, tolerance: float) -> bool:
    """The harness's rule (harness.py cz_tol_d): NaNs match each other; otherwise |x - y| <= tolerance *
    max(1, |x|), a relative tolerance for magnitudes above 1 and an absolute one below."""
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if x == y:
        return True
    return abs(x - y) <= tolerance * max(1.0, abs(x))


def numbers_close(a: str, b: str, tolerance: float) -> bool:
    """Whether text `b` equals `a` but for floating-point numbers within `tolerance` of `a`'s. Everything else
    must be identical: the text between numbers, integers on both sides (a count off by one is a bug, not
    rounding), and the number of numbers. A number is floating-point when either side writes it so (%g prints 1.0
    as "1")."""
    pa, pb = _NUMBER.split(a), _NUMBER.split(b)
    if len(pa) != len(pb):
        return False
    for i, (x, y) in enumerate(zip(pa, pb, strict=True)):
        if x == y:
            continue
        if i % 2 == 0 or not (_is_float(x) or _is_float(y)):  # text between numbers, or two integers
            return False
        if not floats_close(float(x), float(y), tolerance):
            return False
    return True


def compare(orig: Observation, cand: Observation, tolerance: float = 0.0) -> str:
    """Empty when the candidate's run matches the original's, else what differs. `tolerance` (0: exact) applies
    to floating-point numbers in stdout (`numbers_close`)."""
    if orig.output_exceeded:
        return "the original wrote more output than coopt keeps (%d MB): the two cannot be compared" % (
            sandbox.Limits.output_mb)
    if cand.output_exceeded:
        return "the candidate wrote more than %d MB of output, the original did not" % sandbox.Limits.output_mb
    if cand.timed_out and not orig.timed_out:
        return "the test command timed out with the candidate"
    if orig.returncode != cand.returncode:
        return "exit status %d with the original, %d with the candidate" % (orig.returncode, cand.returncode)
    if orig.stdout != cand.stdout and not (tolerance > 0 and numbers_close(orig.stdout, cand.stdout, tolerance)):
        for n, (x, y) in enumerate(zip(orig.stdout.splitlines(), cand.stdout.splitlines(), strict=False), 1):
            if x != y:
                return "stdout line %d: original %r, candidate %r" % (n, x[:120], y[:120])
        return "stdout differs in length (%d vs %d bytes)" % (len(orig.stdout), len(cand.stdout))
    theirs, ours = dict(orig.files), dict(cand.files)
    for name in sorted(set(theirs) | set(ours)):
        if name not in ours:
            return "file %s: the original leaves it, the candidate does not" % name
        if name not in theirs:
            return "file %s: the candidate leaves it, the original does not" % name
        if theirs[name] != ours[name]:
            return "file %s differs" % name
    return ""


def bench(
    cmd: str, orig: Side, cand: Side, cflags: Sequence[str], limits: sandbox.Limits, settings: PerfSettings
) -> Interval:
    """Interleaved timing of the bench hook on both sides."""
    env_o, env_c = side_env(orig, cflags), side_env(cand, cflags)
    return interleaved(
        lambda: timed([cmd], orig.directory, env_o, limits, shell=True, readonly=orig.readonly),
        lambda: timed([cmd], cand.directory, env_c, limits, shell=True, readonly=cand.readonly),
        settings,
    )
