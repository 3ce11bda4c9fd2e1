"""The program-level judge against a candidate that floods its output: a wrong rewrite that loops printing (a
bzip2 assembly candidate once made the optimizer hold 23 GB of it until the kernel's OOM killer ended the run).
Real clang, real program, real sandbox; the judge runs in this process, so its peak memory is this process's.
"""

from __future__ import annotations

import resource
import subprocess
from pathlib import Path

import pytest

from conftest import require
from coopt.hooks.workload import Workload
from coopt.journal.relink import LinkRecord
from coopt.verify import sandbox
from coopt.verify.evidence import Evidence
from coopt.verify.program_level.differential import ProgramContext, ProgramJudge
from coopt.verify.program_level.inputs import ProgramInput
from coopt.verify.sandbox import bwrap
from coopt.verify.verdict import Verdict

PROG_C = r"""
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    long s = 0;
    for (int i = 1; i < argc; i++)
        s += atol(argv[i]);
    printf("%ld\n", s);
    return 0;
}
"""
# The right sum after an endless stream of bytes on stdout (or stderr).
FLOOD_C = PROG_C.replace("    long s = 0;", "    static char buf[1 << 16];\n    for (;;)\n"
                         "        if (fwrite(buf, 1, sizeof buf, STREAM) == 0) break;\n    long s = 0;")
# What the judge may hold beyond what it held before: the two sides' output up to the cap, and slack.
MAX_GROWTH_MB = 4 * sandbox.Limits.output_mb + 256


def peak_rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


@pytest.mark.skipif(bool(bwrap.unavailable()), reason="bubblewrap does not work here")
@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_a_candidate_that_floods_its_output_is_rejected_without_holding_it(tmp_path: Path, stream: str) -> None:
    require("clang")
    (tmp_path / "prog.c").write_text(PROG_C)
    (tmp_path / "flood.c").write_text(FLOOD_C.replace("STREAM", stream))
    for name in ("prog", "flood"):
        subprocess.run(["clang", "-O2", "-c", name + ".c", "-o", name + ".o"], cwd=tmp_path, check=True)
    subprocess.run(["clang", "prog.o", "-o", "prog"], cwd=tmp_path, check=True)
    link = LinkRecord(str(tmp_path), "clang", ["prog.o", "-o", "prog"], "prog", ["prog.o"])
    before = peak_rss_mb()
    # Short time limits: without the output cap the flood lasts until them, gigabytes a second.
    tests = (Workload("{program} 1 2 3", str(tmp_path), "--test"),)
    for ctx, inputs in ((ProgramContext(link, str(tmp_path / "c1"), tests, run_timeout_s=8), []),
                        (ProgramContext(link, str(tmp_path / "c2"), input_timeout_s=8, fuzz_runs=0),
                         [ProgramInput(("4", "5"), b"", (), "llm")])):
        judge = ProgramJudge(ctx, ctx.workdir + "-judge")
        ev = Evidence("prog.c", "flood.c", Verdict.inconclusive("not run"))
        verdict = judge.judge(str(tmp_path / "prog.o"), str(tmp_path / "prog.o"), str(tmp_path / "flood.o"),
                              inputs, ev)
        assert verdict.code.value == "rejected", verdict
        assert "more than %d MB of output" % sandbox.Limits.output_mb in verdict.detail, verdict.detail
    assert peak_rss_mb() - before < MAX_GROWTH_MB, (before, peak_rss_mb())
