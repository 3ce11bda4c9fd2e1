"""The program-level judge and what a program outputs, with real clang, real programs and the real sandbox:

- a candidate that floods stdout or stderr (a wrong rewrite looping over a write) is rejected, and the judge,
  which runs in this process, does not hold the flood (without the output limit this test passed 5 GB);
- a candidate that leaves other files than the original (another name, none, one more, an input removed) is
  rejected (it was accepted when the judge paired the two sides' files by position);
- a large file is compared whole by size and SHA-256 without being held.
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
from test_hotcode_agents import FILES_C

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


# Each prints what the original prints; the files it leaves differ in name or number, not in the bytes of one.
FILE_CANDIDATES = {
    "renamed": FILES_C.replace('fopen("out.txt", "w")', 'fopen("result.txt", "w")'),
    "none": FILES_C.replace('fopen("out.txt", "w")', 'fopen("/dev/null", "w")'),
    "extra": FILES_C.replace("    printf(", '    fclose(fopen("stray.log", "w"));\n    printf('),
    "removes its input": FILES_C.replace("    printf(", "    remove(argc > 1 ? argv[1] : \"in.txt\");\n    printf("),
}


@pytest.mark.skipif(bool(bwrap.unavailable()), reason="bubblewrap does not work here")
@pytest.mark.parametrize("name", sorted(FILE_CANDIDATES))
def test_a_candidate_that_leaves_other_files_is_rejected(tmp_path: Path, name: str) -> None:
    require("clang")
    (tmp_path / "prog.c").write_text(FILES_C)
    (tmp_path / "cand.c").write_text(FILE_CANDIDATES[name])
    for stem in ("prog", "cand"):
        subprocess.run(["clang", "-O2", "-c", stem + ".c", "-o", stem + ".o"], cwd=tmp_path, check=True)
    subprocess.run(["clang", "prog.o", "-o", "prog"], cwd=tmp_path, check=True)
    link = LinkRecord(str(tmp_path), "clang", ["prog.o", "-o", "prog"], "prog", ["prog.o"])
    runs = [ProgramInput(("data.txt",), b"", (("data.txt", b"a banana, a cab\n"),), "llm")]
    judge = ProgramJudge(ProgramContext(link, str(tmp_path / "c"), fuzz_runs=0), str(tmp_path / "j"))
    ev = Evidence("prog.c", "cand.c", Verdict.inconclusive("not run"))
    verdict = judge.judge(str(tmp_path / "prog.o"), str(tmp_path / "prog.o"), str(tmp_path / "cand.o"), runs, ev)
    assert verdict.code.value == "rejected" and "file" in verdict.detail, verdict


BIG_C = r"""#include <stdio.h>
int main(int argc, char **argv)
{
    FILE *out = fopen("big.bin", "w");
    for (long i = 0; i < (3L << 20); i++)
        fputc('x', out);
    fputc(argc > 1 ? argv[1][0] : '-', out);
    return fclose(out) != 0;
}
"""


@pytest.mark.skipif(bool(bwrap.unavailable()), reason="bubblewrap does not work here")
def test_a_large_file_is_compared_whole_without_being_held(tmp_path: Path) -> None:
    """Files past KEEP_FILE_BYTES are compared by size and SHA-256: a difference in the last byte of 3 MiB is
    still found, and the same bytes are still the same."""
    from coopt.verify.program_level.hooks import KEEP_FILE_BYTES

    require("clang")
    assert KEEP_FILE_BYTES < 3 << 20
    (tmp_path / "prog.c").write_text(BIG_C)
    (tmp_path / "same.c").write_text(BIG_C.replace("i < (3L << 20); i++", "i < (3L << 20); ++i"))
    (tmp_path / "last.c").write_text(BIG_C.replace("argv[1][0] : '-'", "argv[1][0] + 1 : '-'"))
    for stem in ("prog", "same", "last"):
        subprocess.run(["clang", "-O2", "-c", stem + ".c", "-o", stem + ".o"], cwd=tmp_path, check=True)
    subprocess.run(["clang", "prog.o", "-o", "prog"], cwd=tmp_path, check=True)
    link = LinkRecord(str(tmp_path), "clang", ["prog.o", "-o", "prog"], "prog", ["prog.o"])
    runs = [ProgramInput(("a",), b"", (), "llm")]
    codes = {}
    for stem in ("same", "last"):
        judge = ProgramJudge(ProgramContext(link, str(tmp_path / "c"), fuzz_runs=0), str(tmp_path / ("j" + stem)))
        ev = Evidence("prog.c", stem + ".c", Verdict.inconclusive("not run"))
        v = judge.judge(str(tmp_path / "prog.o"), str(tmp_path / "prog.o"), str(tmp_path / (stem + ".o")), runs, ev)
        codes[stem] = (v.code.value, v.detail)
    assert codes["same"][0] == "accepted", codes
    assert codes["last"][0] == "rejected" and "file big.bin differs" in codes["last"][1], codes
