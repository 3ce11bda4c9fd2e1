"""Running the harness over a function's inputs and judging each input.

The differential run (mode `d`) calls both sides per input. An input where anything but "same" happened is run
again with the original alone: if the original fails on it too (crash, sanitizer report, exit), the input lies
outside the function's contract and is discarded; if the original alone times out it is inconclusive; only when
the original runs cleanly is the candidate at fault. A timeout of the pair is checked once more with the
candidate alone, so a slow input is not mistaken for a hang.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from coopt.verify import sandbox
from coopt.verify.build import SANITIZER_EXIT, Flavor
from coopt.verify.harness import CAND_PREFIX, ORIG_PREFIX
from coopt.verify.inputs import CallPlan, GeneratedInput
from coopt.verify.signatures import CType
from coopt.verify.verdict import Reason


@dataclass
class Outcome:
    """What happened to one input in one harness run."""

    status: str  # same, diff, timeout, exit N, signal N, missing
    diffs: list[str] = field(default_factory=list)
    stderr: str = ""


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


def write_inputs(path: str, blobs: Sequence[bytes]) -> None:
    with open(path, "wb") as f:
        for b in blobs:
            f.write(struct.pack("<I", len(b)))
            f.write(b)


def run_mode(
    exe: str,
    mode: str,
    fn_index: int,
    blobs: Sequence[bytes],
    scratch: str,
    flavor: Flavor,
    input_timeout_s: int,
    limits: sandbox.Limits,
) -> tuple[dict[int, Outcome], float]:
    """Run the harness in `mode` over `blobs`; outcome per input index."""
    os.makedirs(scratch, exist_ok=True)
    path = os.path.join(scratch, "inputs-%s-%d.bin" % (mode, fn_index))
    write_inputs(path, blobs)
    env = sandbox.scrubbed_env(scratch, {**flavor.env, "COOPT_INPUT_TIMEOUT": str(input_timeout_s)})
    if flavor.env:
        limits = sandbox.Limits(limits.cpu_s, 0, limits.file_size_mb, limits.processes, limits.wall_s, limits.network)
    res = sandbox.run([exe, mode, str(fn_index), path], scratch, limits, env)
    outcomes: dict[int, Outcome] = {}
    pending: list[str] = []
    for line in res.stdout.splitlines():
        if line.startswith("@@diff "):
            pending.append(line[7:])
        elif line.startswith("@@res "):
            parts = line.split(None, 2)
            if len(parts) == 3 and parts[1].isdigit():
                outcomes[int(parts[1])] = Outcome(parts[2].strip(), pending)
            pending = []
    # Sanitizer reports and crash messages, split by the parent's per-input markers.
    current = -1
    chunks: dict[int, list[str]] = {}
    for line in res.stderr.splitlines():
        if line.startswith("@@coopt-input "):
            tail = line.split()[-1]
            current = int(tail) if tail.isdigit() else -1
            continue
        chunks.setdefault(current, []).append(line)
    for i in range(len(blobs)):
        o = outcomes.setdefault(i, Outcome("missing" if not res.timed_out else "timeout"))
        o.stderr = "\n".join(chunks.get(i, [])[:60])
    return outcomes, res.seconds


def _value(t: CType | None, hexs: str) -> str:
    raw = bytes.fromhex(hexs)
    if t is None:
        return "0x" + hexs
    if t.kind == "float" and len(raw) in (4, 8):
        return repr(struct.unpack("<f" if len(raw) == 4 else "<d", raw)[0])
    if t.kind in ("int", "enum", "bool") and len(raw) <= 8:
        return str(int.from_bytes(raw, "little", signed=t.signed))
    if t.kind == "pointer":
        return "pointer 0x%x" % int.from_bytes(raw, "little")
    return "bytes " + hexs


def explain(diff: str, ret: CType, plan: CallPlan) -> tuple[Reason, str]:
    """A `@@diff` line from the harness in words, and its reason."""
    words = diff.split()
    kv = dict(w.split("=", 1) for w in words if "=" in w)
    o, c = kv.get("o", ""), kv.get("c", "")
    if words[0] == "ret":
        return Reason.RETURN_VALUE, "return value differs: original %s, candidate %s" % (_value(ret, o), _value(ret, c))
    if words[0].startswith("mem"):
        i = int(words[0][3:])
        role = plan.roles[i]
        name = plan.names[i] or "argument %d" % (i + 1)
        return Reason.MEMORY, "memory behind `%s` differs at element %s: original %s, candidate %s" % (
            name,
            words[1],
            _value(role.elem, o),
            _value(role.elem, c),
        )
    if words[0].startswith("sub"):
        return Reason.MEMORY, (
            "memory a pointer field of an argument points to (buffer %s of the call) differs at element %s: "
            "original 0x%s, candidate 0x%s" % (words[0][3:], words[1], o, c)
        )
    if words[0] == "global":
        return Reason.GLOBAL, "global `%s` differs at byte %s after the call: original 0x%s, candidate 0x%s" % (
            words[1],
            words[2],
            o,
            c,
        )
    return Reason.RETURN_VALUE, diff


_SIDE_FRAME = re.compile(r"\bin (%s|%s)(\w+)" % (re.escape(ORIG_PREFIX), re.escape(CAND_PREFIX)))
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


def _fault(o: Outcome, ret: CType, plan: CallPlan) -> tuple[Reason, str]:
    st = o.status
    if st == "diff" and o.diffs:
        return explain(o.diffs[0], ret, plan)
    if st == "timeout":
        return Reason.HANG, "the candidate ran past the per-input time limit; the original did not"
    if st.startswith("exit "):
        code = int(st.split()[1])
        if code == SANITIZER_EXIT:
            return Reason.SANITIZER, _sanitizer_summary(o.stderr)
        return Reason.CRASH, "the candidate exited with status %d" % code
    if st.startswith("signal "):
        return Reason.CRASH, "the candidate died with signal %s" % st.split()[1]
    return Reason.CRASH, "the harness lost the input (%s)" % st


def judge(
    exe: str,
    fn_index: int,
    inputs: Sequence[GeneratedInput],
    ret: CType,
    plan: CallPlan,
    scratch: str,
    flavor: Flavor,
    input_timeout_s: int,
    limits: sandbox.Limits,
) -> Judgement:
    """Differential run of one function over its inputs; stops at the first input that shows a fault."""
    blobs = [gi.blob for gi in inputs]
    j = Judgement()
    d, secs = run_mode(exe, "d", fn_index, blobs, scratch, flavor, input_timeout_s, limits)
    j.seconds += secs
    failing = [i for i in range(len(blobs)) if d[i].status != "same"]
    j.same = [i for i in range(len(blobs)) if d[i].status == "same"]
    j.compared = len(blobs) - len(failing)
    if not failing:
        return j
    alone, secs = run_mode(exe, "o", fn_index, [blobs[i] for i in failing], scratch, flavor, input_timeout_s, limits)
    j.seconds += secs
    suspects = []
    for k, i in enumerate(failing):
        st = alone[k].status
        if st == "timeout":
            j.inconclusive += 1
        elif st != "same":
            j.invalid += 1
        else:
            suspects.append(i)
    for i in suspects:
        if d[i].status == "timeout":
            c_alone, secs = run_mode(exe, "c", fn_index, [blobs[i]], scratch, flavor, input_timeout_s, limits)
            j.seconds += secs
            if c_alone[0].status != "timeout":
                j.inconclusive += 1  # each side alone finishes; together they ran out of time
                continue
        outcome = d[i]
        if flavor.env and outcome.status.startswith("exit "):
            # Once more with symbols, for a readable sanitizer report.
            env = {k: v.replace("symbolize=0", "symbolize=1") for k, v in flavor.env.items()}
            loud = Flavor(flavor.name, flavor.cflags, flavor.ldflags, env)
            again, secs = run_mode(exe, "d", fn_index, [blobs[i]], scratch, loud, input_timeout_s, limits)
            j.seconds += secs
            if again[0].status == outcome.status:
                outcome = again[0]
        reason, detail = _fault(outcome, ret, plan)
        j.fault = Fault(reason, detail, i)
        break
    return j
