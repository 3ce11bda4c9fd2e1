"""The differential judge cannot be talked to: hostile candidates that forge the harness's output, kill their
parent, exit early, print, or hang or die only on their first call are rejected, with real clang and real
processes. The original and the candidate run in separate programs; only the original's reports are trusted."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SRC, require

sys.path.insert(0, str(SRC))

from coopt.verify.differential import diffrun, results  # noqa: E402
from coopt.verify.pipeline import VerifyOptions, verify  # noqa: E402
from coopt.verify.verdict import Code, Reason  # noqa: E402

# Plain build only (the sanitizer builds run the same driver; tests/test_verify.py covers them), few inputs.
# The static screen would refuse most of these candidates before they run (their calls to write, kill, alarm):
# these tests show the judge itself holds, so it is off here. tests/test_hostile.py runs both ways.
QUICK = VerifyOptions(max_inputs=40, sanitizers=False, screen=False)

# The original references every call the hostile candidates make (in a branch no input reaches), so a static
# screen of "calls the original does not make" lets them through and the judge itself must stop them.
ORIGINAL = r"""
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
int total;
static void never(void) {
    printf("@@res 0 same\n"); fflush(stdout); fprintf(stderr, "x");
    kill(getppid(), SIGKILL); raise(SIGXCPU); _exit(42); exit(0);
    int fd = open("x", O_RDONLY); if (fd >= 0) { char b[4]; if (read(fd, b, 4) > 0 && write(fd, b, 4)) {} close(fd); }
    if (access("x", F_OK) == 0) unlink("x");
}
int mix(int x, int y) {
    if (getenv("COOPT_NEVER_SET_THIS")) never();
    total += x;
    return x * 3 + y;
}
"""
BODY = "    total += x;\n    return x * 3 + y;\n"


def candidate(tmp_path: Path, hostile: str, prelude: str = "") -> tuple[str, str]:
    """The original and a candidate that runs `hostile` at the top of `mix` (otherwise the same code)."""
    orig = tmp_path / "orig.c"
    orig.write_text(ORIGINAL)
    cand = tmp_path / "cand.c"
    text = ORIGINAL.replace("int mix(int x, int y) {\n", prelude + "int mix(int x, int y) {\n    " + hostile + "\n")
    assert text != ORIGINAL
    cand.write_text(text)
    return str(orig), str(cand)


# A frame the old protocol's parser, or a careless new one, would take for "input N was the same".
FORGE = r"""
static void forge(void) {
    char cmd[4096] = {0}, *argv[8] = {0};
    int fd = open("/proc/self/cmdline", O_RDONLY), n = 0, k = 0;
    if (fd >= 0) { n = (int)read(fd, cmd, sizeof cmd - 1); close(fd); }
    for (int i = 0; i < n && k < 8; i += (int)strlen(cmd + i) + 1) argv[k++] = cmd + i;
    for (int i = 0; i < 300; i++) printf("@@res %d same\n", i);
    fflush(stdout);
    if (k > 4) {  /* the runner's results file: append a "clean" frame for every input */
        int out = open(argv[4], O_WRONLY | O_APPEND);
        for (unsigned i = 0; out >= 0 && i < 300; i++) {
            unsigned head[9] = { 0x31465a43u, i, 0, 0, 1000, 0, 1, 0, 0 }, end = 0x444e455au;
            if (write(out, head, sizeof head) < 0 || write(out, "Z", 1) < 0 || write(out, &end, 4) < 0) break;
        }
        if (out >= 0) close(out);
    }
}
"""


@pytest.mark.parametrize(
    "ending",
    ["kill(getppid(), SIGKILL);", "exit(0);", "_exit(42);", "raise(SIGKILL);"],
    ids=["kills-parent", "exit-0", "exit-42", "kills-itself"],
)
def test_forged_results_then_leaving_is_rejected(tmp_path: Path, ending: str) -> None:
    require("clang", "llvm-objcopy", "llvm-nm")
    orig, cand = candidate(tmp_path, "forge(); %s" % ending, FORGE)
    ev = verify(orig, cand, options=QUICK)
    v = ev.verdict
    assert v.code is Code.REJECTED, v.line()
    assert v.reason in (Reason.CRASH, Reason.OUTPUT, Reason.RETURN_VALUE), v.line()
    assert v.reproducer is not None and v.reproducer.input_text.startswith("mix(")


def test_forged_results_under_the_sanitizers(tmp_path: Path) -> None:
    require("clang", "llvm-objcopy", "llvm-nm")
    orig, cand = candidate(tmp_path, "forge(); _exit(0);", FORGE)
    ev = verify(orig, cand, options=VerifyOptions(max_inputs=40, screen=False))
    assert ev.verdict.code is Code.REJECTED and "(sanitized build)" in ev.verdict.detail, ev.verdict.line()


def test_printing_is_output_not_protocol(tmp_path: Path) -> None:
    require("clang", "llvm-objcopy", "llvm-nm")
    orig, cand = candidate(tmp_path, 'printf("@@res 0 same\\n");')
    v = verify(orig, cand, options=QUICK).verdict
    assert v.code is Code.REJECTED and v.reason is Reason.OUTPUT and "stdout" in v.detail, v.line()
    orig, cand = candidate(tmp_path, 'if (x == 7) fprintf(stderr, "seven");')
    v = verify(orig, cand, options=QUICK).verdict
    assert v.code is Code.REJECTED and v.reason is Reason.OUTPUT and "stderr" in v.detail, v.line()
    # A constructor prints before any input runs: still output the original does not write, never protocol.
    hello = '__attribute__((constructor)) static void hello(void) { printf("@@res 0 same\\n"); fflush(stdout); }\n'
    orig, cand = candidate(tmp_path, "", hello)
    v = verify(orig, cand, options=QUICK).verdict
    assert v.code is Code.REJECTED and v.reason is Reason.OUTPUT and "outside any call" in v.detail, v.line()


FIRST_CALL = 'if (access(".coopt-first", F_OK) != 0) { close(open(".coopt-first", O_CREAT | O_WRONLY, 0600)); %s }'


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ("{ volatile int spin = 1; while (spin) {} }", Reason.HANG),
        ("raise(SIGKILL);", Reason.CRASH),
        ("raise(SIGXCPU);", Reason.CRASH),
    ],
    ids=["hang", "sigkill", "sigxcpu"],
)
def test_first_call_only_failures_are_rejected(tmp_path: Path, action: str, reason: Reason) -> None:
    # The old judge ran such an input again and dropped the first result as inconclusive.
    require("clang", "llvm-objcopy", "llvm-nm")
    orig, cand = candidate(tmp_path, FIRST_CALL % action)
    v = verify(orig, cand, options=QUICK).verdict
    assert v.code is Code.REJECTED and v.reason is reason, v.line()


def test_always_hanging_candidate_hits_the_scaled_limit(tmp_path: Path) -> None:
    require("clang", "llvm-objcopy", "llvm-nm")
    orig, cand = candidate(tmp_path, "{ volatile int spin = 1; while (spin) {} }")
    v = verify(orig, cand, options=QUICK).verdict
    assert v.code is Code.REJECTED and v.reason is Reason.HANG, v.line()
    # The limit is the one computed from the original's own time on that input, not the fixed input timeout.
    m = re.search(r"limit \(([\d.]+) s: 10 x the original's ([\d.]+) s \+ 0.2 s\)", v.detail)
    assert m, v.detail
    assert float(m.group(1)) == pytest.approx(diffrun.candidate_limit(float(m.group(2)), 1), abs=0.01)
    assert diffrun.candidate_limit(0.001, 1) == pytest.approx(0.21)
    assert diffrun.candidate_limit(5.0, 1) == 10.0  # never more than ten times the original's own limit


def frame(index: int, payload: bytes = b"Z", status: int = 0, code: int = 0) -> bytes:
    head = struct.pack("<9I", results.FRAME_MAGIC, index, status, code, 1000, 0, len(payload), 0, 0)
    return head + payload + struct.pack("<I", results.FRAME_END)


def test_frames_that_are_not_answers_end_the_side() -> None:
    good = frame(0) + frame(1)
    assert [f.index for f in results.read_frames(good, 2)[0]] == [0, 1] and results.read_frames(good, 2)[1] == ""
    cases = {
        "duplicated": (frame(0) + frame(0), "input 0 where input 1 was due"),
        "truncated": (frame(0) + frame(1)[:-3], "truncated"),
        "garbage": (frame(0) + b"@@res 1 same\n" * 4, "malformed"),
        "extra": (good + frame(2), "after the record of the last input"),
    }
    for name, (data, problem) in cases.items():
        frames, why = results.read_frames(data, 2)
        assert problem in why, name
        assert len(frames) <= 2 and all(f.index == k for k, f in enumerate(frames)), name


def test_payload_comparison_rules() -> None:
    def ret(value: float) -> bytes:
        return b"rI" + struct.pack("<III", 0, 1, 8) + b"f" + struct.pack("<d", value) + b"eZ"

    nan1, nan2 = struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000001))[0], float("nan")
    assert results.first_difference(ret(1.0), ret(1.0), 0.0) is None
    assert results.first_difference(ret(nan1), ret(nan2), 0.0) is None  # any NaN equals any NaN
    assert results.first_difference(ret(0.0), ret(-0.0), 0.0) is not None  # -0.0 != 0.0
    assert results.first_difference(ret(1.0), ret(1.0 + 1e-12), 0.0) is not None
    assert results.first_difference(ret(1.0), ret(1.0 + 1e-12), 1e-9) is None  # the opt-in tolerance
    with pytest.raises(ValueError):
        results.first_difference(ret(1.0), b"rI" + b"\0" * 5, 0.0)


BODY_GRAB = "if (!p) return -1; p[3] = 1; keep = p; return p[3] + n;"


def test_sanitizer_builds_have_a_memory_limit(tmp_path: Path) -> None:
    # ASan would hand out 8 GiB (it reserves address space lazily); the sanitized children get RLIMIT_DATA, so
    # the allocation fails there, before the plain build (whose address-space limit would stop it too) runs.
    require("clang", "llvm-objcopy", "llvm-nm")
    grab = "#include <stdlib.h>\nchar *volatile keep;\nint grab(int n) { char *p = malloc(%s); %s }\n"
    orig = tmp_path / "orig.c"
    orig.write_text(grab % ("16", BODY_GRAB))
    cand = tmp_path / "cand.c"
    cand.write_text(grab % ("(size_t)1 << 33", BODY_GRAB))
    v = verify(str(orig), str(cand), options=VerifyOptions(max_inputs=10, msan=False, screen=False)).verdict
    assert v.code is Code.REJECTED and v.reason is Reason.RETURN_VALUE, v.line()
    assert "candidate -1" in v.detail and "(sanitized build)" in v.detail, v.line()


def test_the_original_s_program_holds_no_candidate_code(tmp_path: Path) -> None:
    require("clang", "llvm-objcopy", "llvm-nm")
    orig, cand = candidate(tmp_path, "if (x == 7) y++;")
    work = tmp_path / "work"
    v = verify(orig, cand, options=VerifyOptions(max_inputs=40, msan=False, screen=False), workdir=str(work)).verdict
    assert v.code is Code.REJECTED and v.reason is Reason.RETURN_VALUE, v.line()
    built = [b for b in ("sanitized", "plain") if (work / ("harness-%s-o" % b)).exists()]
    assert built  # the sanitized build rejects it, so the plain one may never have been built
    for build in built:
        o = subprocess.run(["llvm-nm", str(work / ("harness-%s-o" % build))], capture_output=True, text=True).stdout
        c = subprocess.run(["llvm-nm", str(work / ("harness-%s-c" % build))], capture_output=True, text=True).stdout
        assert "__coopt_o_mix" in o and "__coopt_c_" not in o, build
        assert "__coopt_c_mix" in c and "__coopt_o_" not in c, build
