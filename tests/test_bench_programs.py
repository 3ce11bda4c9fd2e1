"""The bench programs (bench/programs/) build with coopt-cc, run, and pass their own self-check; a wrong variant
fails it. No time is measured here: bench/cooperation.py does that."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, Coopt, require

PROGRAMS_DIR = ROOT / "bench" / "programs"


def _programs() -> list[str]:
    text = (PROGRAMS_DIR / "Makefile").read_text()
    names = re.search(r"^PROGRAMS = (.*?)(?<!\\)\n", text, re.S | re.M)
    assert names, "bench/programs/Makefile has no PROGRAMS line"
    return names.group(1).replace("\\", " ").split()


def test_the_set_is_what_the_bench_promises() -> None:
    programs = _programs()
    assert len(programs) >= 10
    kinds = set()
    for p in programs:
        src = (PROGRAMS_DIR / (p + ".c")).read_text()
        kind = re.match(r"/\* Kind: ([^.]+)\.", src)
        assert kind, "%s.c does not say its kind in its first comment" % p
        kinds.add(kind.group(1))
        assert re.search(r"#define EXPECT \d+ULL", src) and "bench_report(" in src, p
    assert len(kinds) >= 6, kinds


@pytest.mark.slow
def test_each_program_builds_with_coopt_cc_runs_and_self_checks(coopt: Coopt, tmp_path: Path) -> None:
    require("clang", "make")
    tree = tmp_path / "programs"
    shutil.copytree(PROGRAMS_DIR, tree)
    programs = _programs()
    coopt.run(["make", "-j2", "CC=coopt-cc"], cwd=tree)
    compiled = {Path(r["source"]).name for r in coopt.journal() if r["type"] == "compile"}
    assert compiled == {p + ".c" for p in programs}  # every TU went through coopt-cc and was journaled
    check = coopt.run(["make", "check"], cwd=tree)
    assert check.stdout.split() == [w for p in programs for w in (p + ":", "ok")]
    for p in programs:
        out = subprocess.run(["./" + p], cwd=tree, capture_output=True, text=True, timeout=120)
        name, value = out.stdout.split()
        assert (out.returncode, name, out.stderr) == (0, p, "")
        assert re.search(r"#define EXPECT %sULL" % value, (tree / (p + ".c")).read_text())
        # A smaller scale runs too, and does not claim a self-check it cannot make.
        small = subprocess.run(["./" + p, "2"], cwd=tree, capture_output=True, text=True, timeout=120)
        assert small.returncode == 0 and small.stdout.startswith(p + " ")


@pytest.mark.slow
@pytest.mark.parametrize(("program", "old", "new"), [
    ("popcount_bits", "b < 64", "b < 63"),  # misses the top bit
    ("strlen_loop", "i < strlen(src)", "i + 1 < strlen(src)"),  # leaves the last character lowercase
    ("crc_table", "0xEDB88320u", "0xEDB88321u"),  # another polynomial
])
def test_a_wrong_variant_fails_the_self_check(tmp_path: Path, program: str, old: str, new: str) -> None:
    require("clang")
    src = (PROGRAMS_DIR / (program + ".c")).read_text()
    assert old in src
    (tmp_path / "common.h").write_text((PROGRAMS_DIR / "common.h").read_text())
    (tmp_path / "wrong.c").write_text(src.replace(old, new))
    subprocess.run(["clang", "-O2", "wrong.c", "-o", "wrong", "-lm"], cwd=tmp_path, check=True)
    out = subprocess.run(["./wrong"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "self-check failed" in out.stderr


@pytest.mark.slow
def test_cooperation_bench_measures_a_row_and_resumes(tmp_path: Path) -> None:
    """bench/cooperation.py end to end on one program and one level: the row is measured against plain clang,
    written at once, shown in the table, and not measured again by a second run."""
    require("clang", "make", "perf")
    results = tmp_path / "rows.json"
    cmd = [sys.executable, str(ROOT / "bench" / "cooperation.py"), "--programs", "popcount_bits", "--configs",
           "flags,source", "--budget", "1", "--pairs", "3", "--final-pairs", "3", "--results", str(results)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert first.returncode == 0, first.stderr[-3000:]
    rows = json.loads(results.read_text())["rows"]
    assert list(rows) == ["popcount_bits/flags"]  # source needs --llm: skipped, and the table says not run
    row = rows["popcount_bits/flags"]
    assert "error" not in row, row
    assert row["evaluations"] == 1 and row["levels"] == ["flags"]
    # the one evaluation is a compiler sweep: its rows are built and screened, one is judged in full (or rejected on
    # the screen's word), the rest are recorded as swept rows that cost nothing of their own
    judged = [x for x in row["attempts"] if not x["swept"]]
    assert len(judged) == 1 and all(x["level"] == "flags" for x in row["attempts"]), row["attempts"]
    assert all(x["verdict"] in ("screened out", "duplicate", "failed") for x in row["attempts"] if x["swept"])
    v = row["vs_plain"]
    assert v["pairs"] == 3 and v["low"] <= v["ratio"] <= v["high"] and v["plain_median_s"] > 0
    assert "[popcount_bits/source] skipped: needs --llm" in first.stdout
    assert "| popcount_bits (bit counting done bit by bit) | %.3f [%.3f, %.3f]" % (
        v["ratio"], v["low"], v["high"]) in first.stdout
    assert "Not run: popcount_bits/source." in first.stdout
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "[popcount_bits/flags] already measured" in again.stdout
    assert json.loads(results.read_text())["rows"] == rows


def _row(program: str, config: str, ratio: float, low: float, high: float, cpu: str) -> dict:
    return {"program": program, "config": config, "budget": 3, "pairs": 7, "min_gain": 1.02, "tokens": 0,
            "optimize_seconds": 10.0, "kept": [], "date": "2026-12-07 17:00", "load": "1.00 1.00 1.00", "cpu": cpu,
            "vs_plain": {"ratio": ratio, "low": low, "high": high, "pairs": 11}}


def test_the_table_says_what_its_rows_were_measured_with_and_where() -> None:
    """bench/cooperation.py's table, from rows alone: the header takes the budget, pairs and machine from the rows
    (not from the invocation), a row from another machine is marked and named, and the comparison of the levels
    together with the best alone counts worse, same and better by the intervals."""
    sys.path.insert(0, str(ROOT / "bench"))
    import cooperation as bench

    rows = [_row("popcount_bits", "flags", 1.00, 0.99, 1.01, "CPU A"),
            _row("popcount_bits", "compilers", 1.22, 1.20, 1.24, "CPU A"),
            _row("popcount_bits", "compiler-levels", 1.10, 1.08, 1.12, "CPU A"),
            _row("crc_table", "flags", 1.00, 0.99, 1.01, "CPU A"),
            _row("crc_table", "compilers", 1.18, 1.17, 1.19, "CPU B"),
            _row("crc_table", "compiler-levels", 1.18, 1.17, 1.20, "CPU A")]
    configs = [bench.BY_NAME[c] for c in ("flags", "compilers", "compiler-levels")]
    info = {"cpu": "this machine", "cores": "2", "load": "", "date": "", "clang": "clang 14", "budget": 9,
            "pairs": 9, "final_pairs": 15, "min_gain": 1.05, "llm": "none"}
    text = bench.table({"%s/%s" % (r["program"], r["config"]): r for r in rows}, ["popcount_bits", "crc_table"],
                       configs, info)
    assert " on CPU A (2 cores" in text and "11 interleaved pairs" in text, text
    assert "`coopt optimize --budget 3 --pairs 7 --min-gain 1.02`" in text, text
    assert "| 1.180 [1.170, 1.190]\u2020; nothing kept |" in text and "\u2020: measured on CPU B." in text, text
    assert "| 1.220 [1.200, 1.240]; nothing kept |" in text, text
    assert ("`compiler-levels` against the best of its levels alone as far as they were measured (not run alone on "
            "some or all programs: pgo), 2 programs: worse on 1 (popcount_bits (compiler-levels 1.10 vs `compilers` "
            "1.22)); the same within the intervals on 1; better on 0.") in text
    assert "Every cell was run." in text, text
