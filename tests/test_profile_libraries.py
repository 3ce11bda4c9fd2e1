"""Time spent in libc on behalf of journaled code, through a plain `coopt profile -- ./app` (real perf, real clang).

A program whose hot loops call `strlen`, `memcpy` or `qsort` has most or all of its samples in libc. The default
recording (dwarf call chains) credits them to the journaled function that made the call (`library_share`); with
`--call-graph none`, with frame-pointer chains, or from a recording without chains, nothing can, and the one-line
error names the option that would.

The strlen and memcpy loops do microseconds of work per millisecond-long library call, so their own code gets
practically no sample: only the call chains make them visible.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import Coopt, require
from test_profile import Program, build, functions, one_line_error, profile, require_perf

LIBRARY_CALLS = {
    # The store through dst may alias src, so strlen(src) is measured again on every iteration.
    "every.c": """#include <string.h>
void sample_every(char *dst, const char *src, size_t step) {
    for (size_t i = 0; i < strlen(src); i += step) dst[i / step] = src[i];
}
""",
    "blocks.c": """#include <string.h>
unsigned long copy_blocks(char *dst, const char *src, size_t n, int rounds) {
    unsigned long s = 0;
    for (int r = 0; r < rounds; r++) {
        memcpy(dst, src + (r & 63), n);
        s += (unsigned char)dst[r];  /* read back: no copy is a dead store */
    }
    return s;
}
""",
    "sorted.c": """#include <stdlib.h>
static int by_value(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}
long sort_rounds(int *v, size_t n, int rounds) {
    long s = 0;
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < n; i++) v[i] = (int)((i * 2654435761u + (unsigned)r) % 100003u);
        qsort(v, n, sizeof *v, by_value);
        s += v[n / 2];
    }
    return s;
}
""",
    # Sorting with libc's own strcmp as the comparator: every sample of the sort is in libc, deep in its recursion.
    "rows.c": """#include <stdlib.h>
#include <string.h>
typedef int (*compare)(const void *, const void *);
long sort_rows(char (*rows)[16], size_t n, int rounds) {
    long s = 0;
    for (int r = 0; r < rounds; r++) {
        qsort(rows, n, sizeof rows[0], (compare)strcmp);
        s += rows[n / 2][r & 7];
    }
    return s;
}
""",
    "main.c": """#include <stdio.h>
#include <stdlib.h>
#include <string.h>
void sample_every(char *dst, const char *src, size_t step);
unsigned long copy_blocks(char *dst, const char *src, size_t n, int rounds);
long sort_rounds(int *v, size_t n, int rounds);
long sort_rows(char (*rows)[16], size_t n, int rounds);
int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "strlen";
    size_t n = 32u << 20;
    char *src = NULL, *dst = NULL;
    if (strcmp(mode, "strlen") == 0 || strcmp(mode, "memcpy") == 0) {
        src = malloc(n + 64), dst = malloc(n + 64);
        memset(src, 'x', n + 64);
        src[n] = 0;
    }
    if (strcmp(mode, "strlen") == 0) {
        for (int r = 0; r < 40; r++) sample_every(dst, src, 8u << 20);
        printf("%d\\n", dst[1]);
    } else if (strcmp(mode, "memcpy") == 0) {
        printf("%lu\\n", copy_blocks(dst, src, n / 2, 150));
    } else if (strcmp(mode, "rows") == 0) {
        /* Eight letters A..P per row, in two stores: no library call (its time would be credited to main). */
        char (*rows)[16] = malloc(200000 * sizeof *rows);
        for (size_t i = 0; i < 200000; i++) {
            unsigned long w = 0x4141414141414141ul + ((i * 0x9E3779B97F4A7C15ul) & 0x0F0F0F0F0F0F0F0Ful);
            memcpy(rows[i], &w, 8);
            rows[i][8] = 0;
        }
        printf("%ld\\n", sort_rows(rows, 200000, 20));
    } else {
        int *v = malloc(200000 * sizeof *v);
        printf("%ld\\n", sort_rounds(v, 200000, 15));
    }
    return 0;
}
""",
}


@pytest.fixture
def app(coopt: Coopt, tmp_path: Path) -> Program:
    require_perf()
    return build(coopt, tmp_path / "app", LIBRARY_CALLS, ["-O2"], name="app")


def _tus(prof: dict) -> dict[str, dict]:
    return {Path(t["source"]).name: t for t in prof["tus"]}


@pytest.mark.parametrize("mode,caller,source", [
    ("strlen", "sample_every", "every.c"),
    ("memcpy", "copy_blocks", "blocks.c"),
    ("qsort", "sort_rounds", "sorted.c"),
])
def test_plain_profile_credits_library_time_to_the_journaled_caller(
    coopt: Coopt, app: Program, mode: str, caller: str, source: str
) -> None:
    prof = profile(coopt, app.dir, "--", str(app.exe), mode)
    assert prof["call_graph"] == "dwarf"
    libc = sum(o["share"] for o in prof["outside"] if o["reason"] == "not-journaled" and "libc" in o["dso"])
    (fn,) = functions(prof, caller)
    tus = _tus(prof)
    # The libc time is the caller's: most of it credited to this function and its TU, not to main, which is on
    # every stack too but is not the nearest journaled frame.
    assert fn["library_share"] > 0.3 and fn["library_share"] > 0.6 * libc
    assert tus[source]["library_share"] == pytest.approx(fn["library_share"], abs=1e-6)
    assert tus["main.c"]["library_share"] < 0.1 * fn["library_share"]
    # What `coopt optimize` ranks by (share + library_share): the caller's TU first.
    assert max(prof["tus"], key=lambda t: t["share"] + t["library_share"])["source"].endswith(source)
    if mode == "qsort":
        # The comparator runs as the leaf, called back from libc: its samples are its own, and no library time
        # is credited to it (it calls nothing).
        (cmp,) = functions(prof, "by_value")
        assert cmp["share"] > 0.05 and cmp["library_share"] < 0.01
    else:
        assert fn["library_share"] > 20 * fn["share"]


def test_without_call_chains_the_error_names_the_option(coopt: Coopt, app: Program) -> None:
    for flags in (["--call-graph", "none"], ["--no-call-graph"]):
        proc = coopt.coopt("profile", *flags, "--", str(app.exe), "strlen", cwd=app.dir, check=False)
        line = one_line_error(proc)
        assert "fell in code built with coopt-cc" in line
        assert "samples are in shared libraries (__strlen" in line and "libc.so" in line
        assert "drop --call-graph none" in line
        assert not (app.dir / "profile.json").exists()
    bad = coopt.coopt("profile", "--call-graph", "frames", "--", str(app.exe), "strlen", cwd=app.dir, check=False)
    assert "--call-graph takes one of dwarf, fp, lbr, none (got 'frames')" in one_line_error(bad)


def test_frame_pointer_chains_lose_the_caller_and_the_error_says_dwarf(coopt: Coopt, tmp_path: Path) -> None:
    """Even with the program built with frame pointers, an fp chain from libc's frameless strlen skips
    sample_every (its return address is on the stack, not in a frame) and names main as the caller: so fp credits
    no library time, and the error asks for dwarf chains."""
    require_perf()
    prog = build(coopt, tmp_path / "fp", LIBRARY_CALLS, ["-O2", "-fno-omit-frame-pointer"], name="app")
    line = one_line_error(coopt.coopt("profile", "--call-graph", "fp", "--", str(prog.exe), "memcpy", cwd=prog.dir,
                                      check=False))
    assert "frame-pointer call chains skip the caller" in line and "use --call-graph dwarf (the default)" in line


def test_dwarf_chains_cut_short_inside_libc_ask_for_more_stack(coopt: Coopt, app: Program) -> None:
    """qsort's merge sort recurses inside libc: with 64 bytes of stack per sample instead of perf's 8 KB, the
    chains stop there, short of sort_rows, and the error asks for the largest stack dump perf takes."""
    prof = profile(coopt, app.dir, "--", str(app.exe), "rows")
    (fn,) = functions(prof, "sort_rows")
    assert fn["library_share"] > 0.5
    (app.dir / "profile.json").unlink()
    line = one_line_error(coopt.coopt("profile", "--call-graph", "dwarf,64", "--", str(app.exe), "rows", cwd=app.dir,
                                      check=False))
    assert "stop inside the libraries" in line and "--call-graph dwarf,65528" in line
    assert not (app.dir / "profile.json").exists()


def test_recordings_made_with_perf_credit_library_time_when_they_have_dwarf_chains(
    coopt: Coopt, app: Program
) -> None:
    """--perf-data reads the recording's call graph mode from perf.data itself."""
    dwarf = app.dir / "dwarf.data"
    coopt.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "1000", "--call-graph", "dwarf", "-o", str(dwarf),
               str(app.exe), "strlen"], cwd=app.dir)
    prof = profile(coopt, app.dir, "--perf-data", str(dwarf))
    assert prof["call_graph"] == "dwarf"
    (fn,) = functions(prof, "sample_every")
    assert fn["library_share"] > 0.5

    plain = app.dir / "plain.data"
    coopt.run(["perf", "record", "-q", "-e", "cpu-clock", "-o", str(plain), str(app.exe), "strlen"], cwd=app.dir)
    line = one_line_error(coopt.coopt("profile", "--perf-data", str(plain), cwd=app.dir, check=False))
    assert "record it with `perf record --call-graph dwarf`" in line

    # The same dwarf recording as perf script text: the text cannot say how it was recorded, the option can.
    text = coopt.run(["perf", "script", "-i", str(dwarf)], cwd=app.dir).stdout
    (app.dir / "dwarf.txt").write_text(text)
    line = one_line_error(coopt.coopt("profile", "--perf-script", "dwarf.txt", cwd=app.dir, check=False))
    assert "pass --call-graph dwarf" in line
    from_text = profile(coopt, app.dir, "--perf-script", "dwarf.txt", "--call-graph", "dwarf", out="text.json")
    assert json.dumps(functions(from_text, "sample_every")[0]["library_samples"]) == json.dumps(fn["library_samples"])


# A benchmark of the paper's kind: the loop that calls strlen is a static function clang inlines into main at -O2.
INLINED_CALLER = """#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static char text[4000];
static void upper_copy(char *dst, const char *src) {
    for (size_t i = 0; i < strlen(src); i++)
        dst[i] = (char)(src[i] >= 'a' && src[i] <= 'z' ? src[i] - 32 : src[i]);
}
int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 400;
    static char out[4000];
    unsigned long s = 0;
    memset(text, 'a', sizeof text - 1);
    for (int r = 0; r < rounds; r++) {
        text[r % 3000] = (char)('a' + r % 26);
        upper_copy(argc > 5 ? text : out, text);  /* may alias: strlen stays in the loop */
        s += out[r % 3000];
    }
    printf("%lu\\n", s);
    return 0;
}
"""


def test_library_time_of_a_loop_inlined_into_main_goes_to_its_source_function(coopt: Coopt, tmp_path: Path) -> None:
    require_perf()
    require("llvm-symbolizer")
    where = tmp_path / "inl"
    where.mkdir()
    (where / "prog.c").write_text(INLINED_CALLER)
    coopt.run([coopt.cc, "-O2", "-g", "-c", "prog.c", "-o", "prog.o"], cwd=where)
    coopt.run([coopt.cc, "prog.o", "-o", "prog"], cwd=where)
    assert " upper_copy" not in coopt.run(["nm", "prog"], cwd=where).stdout  # the premise: clang inlined it
    prof = profile(coopt, where, "--", str(where / "prog"))
    libc = sum(o["share"] for o in prof["outside"] if o["reason"] == "not-journaled")
    by_label = {(f["name"], f["inlined_into"]): f for f in prof["functions"]}
    inner = by_label[("upper_copy", "main")]
    # strlen is called from upper_copy's loop: its time is upper_copy's to remove, not main's (which the source
    # agent could only rewrite whole, judged by the program).
    assert inner["library_share"] > 0.6 * libc > 0.3
    assert by_label.get(("main", None), {}).get("library_share", 0.0) < 0.1 * inner["library_share"]
    from coopt.optimize.plan import plan

    [tu] = plan(str(where / "profile.json"), str(where / "prog"), None, 5).hot
    assert tu.functions[0] == "upper_copy"
