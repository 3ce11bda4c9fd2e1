"""The trusted driver of the differential run: it runs each side's program over a function's inputs and judges.

The original's program (built from the original's object alone) runs first, every input in a forked child with
the caller's per-input limit; it is the only process whose reports are believed. Inputs on which the original
crashes, exits, or reports UB or a memory error lie outside its contract and are dropped; inputs on which it
times out are inconclusive. The candidate's program then runs over the inputs the original handled, each with a
limit scaled from the original's own time on it (`candidate_limit`), and everything it reports is a claim
checked against the original's: a frame that is missing, malformed, out of order or duplicated, a child that
died, exited, timed out or wrote what the original did not, is the candidate's fault on the first input it did
not answer properly. Nothing either program prints is read as protocol (results go to a file in its scratch).
"""

from __future__ import annotations

import os
import re
import signal
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from coopt.verify import sandbox
from coopt.verify.differential.build import SANITIZER_EXIT, Flavor
from coopt.verify.differential.harness import CAND_PREFIX, ORIG_PREFIX, SIDE_PREFIX
from coopt.verify.differential.results import SIGNALED, TIMED_OUT, Frame, explain, first_difference, read_frames
from coopt.verify.inputs import CallPlan, GeneratedInput
from coopt.verify.signatures import CType
from coopt.verify.verdict import Reason

LIMIT_FACTOR = 10.0  # the candidate may take this many times the original's time on an input ...
LIMIT_SLACK_S = 0.2  # ... plus this
STARTUP_S = 10.0  # wall-clock allowance for a side program's start and exit (sanitizer runtimes, a loaded machine)
MEM_LIMIT_MB = 4096  # per child of a sanitizer build (RLIMIT_DATA above what the runtime mapped at start)


@dataclass
class Fault:
    """The candidate misbehaved on an input the original handles."""

    reason: Reason
    detail: str
    index: int


@dataclass
class Judgement:
    compared: int = 0
    invalid: int = 0
    inconclusive: int = 0
    fault: Fault | None = None
    seconds: float = 0.0
    same: list[int] = field(default_factory=list)  # inputs both sides ran alike
    limits: list[float] = field(default_factory=list)  # the candidate's per-input limits, for the inputs it ran


@dataclass
class SideRun:
    """One run of a side program: its frames in input order, and why they stop early ('' if they do not)."""

    frames: list[Frame]
    problem: str
    timed_out: bool
    returncode: int
    seconds: float
    stdout: str  # what the program printed outside any input's child (constructors, exit handlers)


def write_inputs(path: str, blobs: Sequence[bytes]) -> None:
    with open(path, "wb") as f:
        for b in blobs:
            f.write(struct.pack("<I", len(b)))
            f.write(b)


def candidate_limit(original_seconds: float, input_timeout_s: float) -> float:
    """The candidate's time limit on an input the original ran in `original_seconds`: 10x plus 0.2 s, never more
    than ten times the original's own limit."""
    return min(LIMIT_FACTOR * original_seconds + LIMIT_SLACK_S, LIMIT_FACTOR * input_timeout_s)


def run_side(
    exe: str,
    tag: str,
    fn_index: int,
    blobs: Sequence[bytes],
    scratch: str,
    flavor: Flavor,
    limits_s: Sequence[float],
    box: sandbox.Limits,
    wall_s: float,
) -> SideRun:
    """Run side program `exe` over `blobs`, input k with a limit of `limits_s[k]` seconds, in the sandbox. Each
    side gets a scratch directory of its own (`tag`), so nothing the candidate leaves there reaches the original's
    files."""
    scratch = os.path.join(scratch, tag)
    os.makedirs(scratch, exist_ok=True)
    base = os.path.join(scratch, "fn%d" % fn_index)
    write_inputs(base + ".inputs", blobs)
    with open(base + ".limits", "wb") as f:
        f.write(b"".join(struct.pack("<I", max(1, min(int(s * 1e6), 0xFFFFFFFF))) for s in limits_s))
    results = base + ".results"
    if os.path.exists(results):
        os.unlink(results)
    extra = dict(flavor.env)
    if flavor.env:
        extra["COOPT_MEM_LIMIT_MB"] = str(box.address_space_mb or MEM_LIMIT_MB)
        # Sanitizer runtimes reserve terabytes of shadow: the children get RLIMIT_DATA instead (cz_side_main.h).
        box = sandbox.Limits(box.cpu_s, 0, box.file_size_mb, box.processes, box.wall_s, box.network)
    box = sandbox.Limits(
        max(box.cpu_s, int(wall_s) + 1), box.address_space_mb, box.file_size_mb, box.processes, wall_s, box.network
    )
    res = sandbox.run(
        [exe, "r", str(fn_index), base + ".inputs", results, base + ".limits"],
        scratch,
        box,
        sandbox.scrubbed_env(scratch, extra),
    )
    data = b""
    if os.path.isfile(results):
        with open(results, "rb") as f:
            data = f.read()
    frames, problem = read_frames(data, len(blobs))
    return SideRun(frames, problem, res.timed_out, res.returncode, res.seconds, res.stdout)


def run_original(
    exe: str,
    fn_index: int,
    blobs: Sequence[bytes],
    scratch: str,
    flavor: Flavor,
    input_timeout_s: float,
    box: sandbox.Limits,
) -> tuple[list[Frame | None], float, str]:
    """The original's frame per input (None: its program never answered that one), the seconds it took, and
    what its first run printed outside the inputs' children. A program that stops early is started again after
    the input it stopped at, so one input cannot cost the others."""
    out: list[Frame | None] = [None] * len(blobs)
    start, seconds, printed = 0, 0.0, None
    while start < len(blobs):
        rest = blobs[start:]
        wall = min(box.wall_s or 1e9, STARTUP_S + len(rest) * (input_timeout_s + 0.5))
        run = run_side(exe, "o", fn_index, rest, scratch, flavor, [input_timeout_s] * len(rest), box, wall)
        seconds += run.seconds
        printed = run.stdout if printed is None else printed
        for f in run.frames:
            out[start + f.index] = f
        if not run.frames:
            break  # it does not even start: the inputs left stay unanswered (inconclusive)
        start += len(run.frames) + (0 if len(run.frames) == len(rest) else 1)
    return out, seconds, printed or ""


# A side program's functions also carry the harness's alias (SIDE_PREFIX): only the candidate's reports are
# summarized, so that name is the candidate's.
_SIDE_FRAME = re.compile(r"\bin (%s)(\w+)" % "|".join(map(re.escape, (ORIG_PREFIX, CAND_PREFIX, SIDE_PREFIX))))
_NOISE = re.compile(r"\s*\((?:[^()]*\+0x[0-9a-f]+|BuildId: [0-9a-f]+)\)")


def _msan_summary(lines: list[str]) -> str:
    """`MemorySanitizer: use-of-uninitialized-value in the candidate's f; the value was created by ...`."""
    text = "MemorySanitizer: use-of-uninitialized-value"
    origin_at = next((k for k, ln in enumerate(lines) if "Uninitialized value was created" in ln), len(lines))
    use = next((m for m in map(_SIDE_FRAME.search, lines[:origin_at]) if m), None)
    if use is not None:
        text += " in the %s's %s" % ("original" if use.group(1) == ORIG_PREFIX else "candidate", use.group(2))
    if origin_at < len(lines):
        text += "; the value was " + lines[origin_at].strip().split("value was ", 1)[-1]
        frames = lines[origin_at + 1 : origin_at + 6]
        made = next((m for m in map(_SIDE_FRAME.search, frames) if m), None)
        if made is not None:
            text += " in the %s's %s" % ("original" if made.group(1) == ORIG_PREFIX else "candidate", made.group(2))
        elif any(" in cz_" in ln for ln in frames):
            text += " (an argument buffer, bytes the input does not set: padding)"
    return text


def _sanitizer_summary(stderr: str) -> str:
    """`UndefinedBehaviorSanitizer: file:line: runtime error: ...`, MemorySanitizer's finding and where the value
    came from, or ASan's summary line with its location (addresses and build ids left out)."""
    lines = stderr.splitlines()
    for line in lines:
        if "runtime error:" in line:
            return "UndefinedBehaviorSanitizer: " + line.strip()
    if any("MemorySanitizer" in line for line in lines):
        return _msan_summary(lines)
    for line in lines:
        if "SUMMARY: AddressSanitizer" in line:
            return _NOISE.sub("", line.split("SUMMARY:", 1)[1].strip())
    for line in lines:
        if "ERROR: AddressSanitizer" in line:
            return _NOISE.sub("", line.split("ERROR:", 1)[1].strip())
    return "sanitizer report: " + (lines[0].strip() if lines else "(no output)")


def _signal_name(n: int) -> str:
    try:
        return "%d (%s)" % (n, signal.Signals(n).name)
    except ValueError:
        return str(n)


_RUNTIME_WARNING = re.compile(rb"^(==\d+==)?WARNING: \w*Sanitizer")


def _quiet(text: bytes) -> bytes:
    """A child's stderr without the sanitizer runtimes' own warnings (an allocation they refuse, say)."""
    return b"\n".join(ln for ln in text.split(b"\n") if not _RUNTIME_WARNING.match(ln))


def _compare(
    o: Frame, c: Frame, limit: float, ret: CType, plan: CallPlan, tol: float, names: Sequence[str]
) -> tuple[Reason, str] | None:
    """The candidate's frame against the original's clean one for the same input."""
    if c.status == TIMED_OUT:
        return Reason.HANG, (
            "the candidate ran past its per-input time limit (%.2f s: %g x the original's %.4f s + %g s); the "
            "original did not" % (limit, LIMIT_FACTOR, o.seconds, LIMIT_SLACK_S)
        )
    if c.status == SIGNALED:
        return Reason.CRASH, "the candidate died with signal %s" % _signal_name(c.code)
    if c.code == SANITIZER_EXIT:
        return Reason.SANITIZER, _sanitizer_summary(c.stderr.decode("utf-8", "replace"))
    if c.code != 0:
        return Reason.CRASH, "the candidate exited with status %d" % c.code
    if not c.payload.endswith(b"Z"):
        return Reason.CRASH, "the candidate's call ended without a complete result (its process exited early)"
    try:
        d = first_difference(o.payload, c.payload, tol)
    except ValueError:
        return Reason.OUTPUT, "the candidate's process wrote a malformed result for this input"
    if d is not None:
        return explain(d, ret, plan, names)
    for stream, a, b in (("stdout", o.stdout, c.stdout), ("stderr", _quiet(o.stderr), _quiet(c.stderr))):
        if a != b:
            return Reason.OUTPUT, "the candidate wrote other output to %s than the original: %r, original %r" % (
                stream,
                b[:120],
                a[:120],
            )
    return None


def judge(
    exes: tuple[str, str],
    fn_index: int,
    inputs: Sequence[GeneratedInput],
    ret: CType,
    plan: CallPlan,
    scratch: str,
    flavor: Flavor,
    input_timeout_s: float,
    box: sandbox.Limits,
    tolerance: float = 0.0,
    globals_: Sequence[str] = (),
) -> Judgement:
    """Differential run of one function over its inputs with the original's and the candidate's programs
    (`exes`); stops at the first input that shows a fault of the candidate."""
    blobs = [gi.blob for gi in inputs]
    j = Judgement()
    orig, secs, printed = run_original(exes[0], fn_index, blobs, scratch, flavor, input_timeout_s, box)
    j.seconds += secs
    ok: list[int] = []
    for i, f in enumerate(orig):
        if f is not None and f.clean:
            ok.append(i)
        elif f is None or f.status == TIMED_OUT or (f.status == SIGNALED and f.code == signal.SIGXCPU):
            j.inconclusive += 1
        else:
            j.invalid += 1
    if not ok:
        return j
    j.limits = [candidate_limit(orig[i].seconds, input_timeout_s) for i in ok]  # type: ignore[union-attr]
    wall = STARTUP_S + sum(j.limits) + 0.05 * len(ok)
    cand = run_side(exes[1], "c", fn_index, [blobs[i] for i in ok], scratch, flavor, j.limits, box, wall)
    j.seconds += cand.seconds
    for pos, i in enumerate(ok):
        o = orig[i]
        assert o is not None
        if pos >= len(cand.frames):
            if cand.problem:
                fault = Reason.OUTPUT, "the candidate's process wrote %s instead of this input's result" % cand.problem
            elif cand.timed_out:
                fault = Reason.HANG, "the candidate's process ran past its time limit without answering this input"
            else:
                fault = (
                    Reason.CRASH,
                    ("the candidate's process ended (status %d) without answering this input" % cand.returncode),
                )
        else:
            found = _compare(o, cand.frames[pos], j.limits[pos], ret, plan, tolerance, globals_)
            if found is None:
                j.same.append(i)
                continue
            fault = found
            if fault[0] is Reason.SANITIZER:
                fault = _loud(exes[1], fn_index, blobs[i], scratch, flavor, j.limits[pos], box) or fault
        j.fault = Fault(fault[0], fault[1], i)
        break
    if j.fault is None and (cand.problem or cand.stdout != printed):
        what = cand.problem or "%r to stdout outside any call (the original printed %r)" % (
            cand.stdout[:120],
            printed[:120],
        )
        j.fault = Fault(Reason.OUTPUT, "the candidate's process wrote %s" % what, ok[-1])
        j.same.pop()
    j.compared = len(j.same)
    return j


def _loud(
    exe: str, fn_index: int, blob: bytes, scratch: str, flavor: Flavor, limit: float, box: sandbox.Limits
) -> tuple[Reason, str] | None:
    """The candidate once more on one input with symbols on, for a readable sanitizer report."""
    env = {k: v.replace("symbolize=0", "symbolize=1") for k, v in flavor.env.items()}
    loud = Flavor(flavor.name, flavor.cflags, flavor.ldflags, env)
    # Symbolizing takes far longer than the call: the limit here only bounds the report.
    run = run_side(exe, "c", fn_index, [blob], scratch, loud, [limit + 30], box, STARTUP_S + limit + 60)
    if run.frames and run.frames[0].code == SANITIZER_EXIT:
        return Reason.SANITIZER, _sanitizer_summary(run.frames[0].stderr.decode("utf-8", "replace"))
    return None
