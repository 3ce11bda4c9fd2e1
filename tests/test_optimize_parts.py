"""The parts of `coopt optimize` that need no real project: workload commands, the run state file, the report's
forms, bad input on the command line, and relinking through `-L. -lNAME` (a tiny program built with coopt-cc)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import Coopt, require
from coopt.agents.levels import LevelUnavailable, check_levels
from coopt.hooks.workload import PLACEHOLDER, WorkloadError, from_argv, from_line
from coopt.journal.relink import RelinkError, find_link, linked_objects, relink
from coopt.optimize.state import (
    AttemptRecord,
    CommandRecord,
    KeptRecord,
    MeasurementRecord,
    Outcome,
    RunState,
    RunStateError,
    TuRecord,
    latest_run,
    load,
    remember_run,
    save,
)
from coopt.report.render import render
from coopt.verify.evidence import Interval


@pytest.fixture
def program(tmp_path: Path) -> Path:
    (tmp_path / "bin").mkdir()
    p = tmp_path / "bin" / "app"
    p.write_text("#!/bin/sh\n")
    p.chmod(0o755)
    return p


def test_workload_names_the_program_by_path_or_placeholder(tmp_path: Path, program: Path) -> None:
    w = from_line("bin/app -v in.txt > /dev/null 2>&1", str(tmp_path), str(program), "--bench")
    assert w.line == "%s -v in.txt > /dev/null 2>&1" % PLACEHOLDER
    assert w.render("/x y/app") == "'/x y/app' -v in.txt > /dev/null 2>&1"
    assert from_line("./bin/app", str(tmp_path), str(program), "--test").line == PLACEHOLDER
    assert from_line("cat in | {program} -d", str(tmp_path), str(program), "--test").line == "cat in | {program} -d"
    # A recorded argv: elements with spaces are quoted, the program found by path from the recorded cwd.
    w2 = from_argv([str(program), "a file.txt"], "/", str(program), "profile workload")
    assert w2.line == "%s 'a file.txt'" % PLACEHOLDER
    with pytest.raises(WorkloadError, match="does not run .*app.*name the program"):
        from_line("other/app x", str(tmp_path), str(program), "--bench")


def _state() -> RunState:
    iv = Interval(1.05, 1.03, 1.08, "wall", [1.0, 1.1, 1.05], [0.95, 1.0, 1.0])
    s = RunState(
        created="2026-01-01T00:00:00Z", program="/p/app", profile="/p/profile.json", journal="/c/journal.jsonl",
        cache_dir="/c", levels=["flags", "pgo"], min_gain=1.02, pairs=3, llm="none",
        budget={"evaluations": 4, "seconds": 0}, bench=CommandRecord("{program} <in>", "/p", "profile workload"),
        train=CommandRecord("{program} <in>", "/p", "profile workload"),
        tests=[CommandRecord("{program} <in>", "/p", "bench command")], same_workload=True,
    )
    s.tus = [TuRecord("/p/hot.o", "/p/hot.c", 0.6), TuRecord("/p/warm.o", "/p/warm.c", 0.3),
             TuRecord("/p/cold.o", "/p/cold.c", 0.004, "under 1% of the samples")]
    s.attempts = [
        AttemptRecord(1, "/p/hot.o", "/p/hot.c", "pgo", "pgo <x>", "compiler-tools/pgo", Outcome.ACCEPTED, "ok", iv,
                      4.0, kept=True, entry_key="k1"),
        AttemptRecord(2, "/p/warm.o", "/p/warm.c", "flags", "-O3", "compiler-tools/flags", Outcome.REJECTED,
                      "not faster", Interval(0.98, 0.96, 1.0, "wall"), 3.0),
    ]
    s.kept = {"/p/hot.o": KeptRecord("/p/hot.o", "/p/hot.c", 1, "k1", "pgo", "pgo <x>", iv)}
    s.noise = MeasurementRecord(Interval(1.0, 0.99, 1.01, "wall"), 3, 1.0)
    s.final = MeasurementRecord(Interval(1.04, 1.02, 1.06, "wall"), 3, 2.0)
    s.spent = {"evaluations": 2, "seconds": 12.0}
    return s


def test_run_state_round_trips_and_refuses_other_versions(tmp_path: Path) -> None:
    s = _state()
    save(s, str(tmp_path))
    back = load(str(tmp_path))
    assert back.kept["/p/hot.o"].interval == s.kept["/p/hot.o"].interval
    assert back.attempts[1].interval == s.attempts[1].interval and back.final == s.final
    # An attempt's outcome is a closed set: read back as the enum, written as its plain name.
    assert back.attempts[0].verdict is Outcome.ACCEPTED and back.attempts[1].verdict is Outcome.REJECTED
    data = json.loads((tmp_path / "state.json").read_text())
    assert data["attempts"][0]["verdict"] == "accepted"
    data["attempts"][0]["verdict"] = "maybe"
    (tmp_path / "state.json").write_text(json.dumps(data))
    with pytest.raises(RunStateError, match="damaged run state.*maybe"):
        load(str(tmp_path))
    data["attempts"][0]["verdict"] = "accepted"
    data["version"] = 99
    (tmp_path / "state.json").write_text(json.dumps(data))
    with pytest.raises(RunStateError, match="version 99.*upgrade"):
        load(str(tmp_path))
    (tmp_path / "state.json").write_text('{"format": "something-else"}')
    with pytest.raises(RunStateError, match="not a coopt optimize run state"):
        load(str(tmp_path))
    with pytest.raises(RunStateError, match="no run state"):
        load(str(tmp_path / "nowhere"))


def test_latest_run_is_the_remembered_one(tmp_path: Path) -> None:
    with pytest.raises(RunStateError, match="no optimize run found"):
        latest_run(str(tmp_path / "cache"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    save(_state(), str(elsewhere))
    remember_run(str(tmp_path / "cache"), str(elsewhere))
    assert latest_run(str(tmp_path / "cache")) == str(elsewhere)


def test_report_forms() -> None:
    s = _state()
    md = render(s, "md")
    assert "1.040x [1.020, 1.060]" in md  # whole program
    assert "| hot.c | 60.0% | pgo x1 | pgo `pgo <x>` | 1.050x [1.030, 1.080] |" in md
    assert "under 1% of the samples" in md and "same workload" in md
    data = json.loads(render(s, "json"))
    assert data["format"] == "coopt-optimize-report" and data["whole_program"]["ratio"] == 1.04
    assert [t["source"] for t in data["tus"]] == ["/p/hot.c", "/p/warm.c", "/p/cold.c"]
    html = render(s, "html")
    assert "<svg" in html and "pgo &lt;x&gt;" in html and "pgo <x>" not in html  # labels are escaped
    # Nothing kept, nothing measured: the report says so instead of showing a number.
    s.kept, s.final = {}, None
    assert "no variant kept" in render(s, "md") and "Nothing was stored" in render(s, "html")


def test_llm_levels_need_an_llm() -> None:
    with pytest.raises(LevelUnavailable, match="needs an LLM"):
        check_levels(["source", "flags"], "none")
    with pytest.raises(LevelUnavailable, match="unknown level magic"):
        check_levels(["magic"], "none")
    check_levels(["flags", "pgo"], "none")


@pytest.mark.parametrize("args, message", [
    (["--profile", "missing.json"], "profile missing.json not found"),
    (["--levels", "source"], "needs an LLM"),
    (["--levels", "pgo,magic"], "unknown level magic"),
    (["--pairs", "1"], "--pairs must be at least 3"),
    (["--budget", "0"], "--budget must be at least 1"),
    (["--guide", "llm"], "--guide llm needs an LLM"),
    (["--fuzz-seconds", "-1"], "--fuzz-seconds must be 0"),
])
def test_bad_input_is_one_line(coopt: Coopt, tmp_path: Path, args: list[str], message: str) -> None:
    proc = coopt.coopt("optimize", *args, cwd=tmp_path, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_read_only_cache_is_refused(coopt: Coopt, tmp_path: Path) -> None:
    coopt.env["COOPT_READONLY"] = "1"
    proc = coopt.coopt("optimize", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "read-only" in proc.stderr and proc.stderr.count("\n") == 1


def test_report_without_a_run_is_one_line(coopt: Coopt, tmp_path: Path) -> None:
    proc = coopt.coopt("report", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "no optimize run found" in proc.stderr and proc.stderr.count("\n") == 1
    proc = coopt.coopt("report", "--run", str(tmp_path), check=False)
    assert proc.returncode == 2 and "no run state" in proc.stderr


LIB_C = "int lib_value(void) { return %d; }\n"
MAIN_C = '#include <stdio.h>\nint lib_value(void);\nint main(void) { printf("%d\\n", lib_value()); return 0; }\n'


def test_relink_through_dash_l_replaces_an_archive_member(coopt: Coopt, tmp_path: Path) -> None:
    require("clang", "ar")
    (tmp_path / "lib.c").write_text(LIB_C % 1)
    (tmp_path / "main.c").write_text(MAIN_C)
    (tmp_path / "variant.c").write_text(LIB_C % 2)
    for name in ("lib", "main"):
        coopt.run(["coopt-cc", "-O2", "-c", "%s.c" % name, "-o", "%s.o" % name], cwd=tmp_path)
    coopt.run(["ar", "rcs", "libval.a", "lib.o"], cwd=tmp_path)
    coopt.run(["coopt-cc", "-o", "app", "main.o", "-L.", "-lval"], cwd=tmp_path)
    subprocess.run(["clang", "-O2", "-c", "variant.c", "-o", "variant.o"], cwd=tmp_path, check=True)
    link = find_link(str(coopt.cache_dir / "journal.jsonl"), str(tmp_path / "app"))
    assert linked_objects(link, [str(tmp_path / "lib.o"), str(tmp_path / "other.o")]) == {str(tmp_path / "lib.o")}
    relink(link, {str(tmp_path / "lib.o"): str(tmp_path / "variant.o")}, str(tmp_path / "app2"),
           workdir=str(tmp_path / "work"))
    assert subprocess.run([str(tmp_path / "app2")], capture_output=True, text=True).stdout == "2\n"
    assert subprocess.run([str(tmp_path / "app")], capture_output=True, text=True).stdout == "1\n"
    # With libval.so beside it, ld takes the shared library: the archive's member is not in the program.
    subprocess.run(["clang", "-shared", "-fPIC", "lib.c", "-o", "libval.so"], cwd=tmp_path, check=True)
    assert linked_objects(link, [str(tmp_path / "lib.o")]) == set()
    with pytest.raises(RelinkError, match="not found in the link"):
        relink(link, {str(tmp_path / "lib.o"): str(tmp_path / "variant.o")}, str(tmp_path / "app3"),
               workdir=str(tmp_path / "work3"))


HOT_C = """#include <stdio.h>
static unsigned long spin(unsigned long n) { unsigned long s = 0; for (unsigned long i = 0; i < n; i++) s += i % 7;
    return s; }
int main(void) { printf("%lu\\n", spin(60000000UL)); return 0; }
"""


def test_pgo_without_the_profile_runtime_spends_no_budget(coopt: Coopt, tmp_path: Path) -> None:
    """A clang that cannot link instrumented programs (copied away from its resource directory): the pgo level
    is not tried, says why once, and no evaluation is spent on it."""
    import os
    import shutil

    require("clang", "perf")
    lone = tmp_path / "lone-clang"
    lone.mkdir()
    shutil.copy2(os.path.realpath(shutil.which("clang") or ""), lone / "clang")
    coopt.env["COOPT_COMPILER"] = str(lone / "clang")
    (tmp_path / "hot.c").write_text(HOT_C)
    coopt.run(["coopt-cc", "-O2", "-c", "hot.c", "-o", "hot.o"], cwd=tmp_path)
    coopt.run(["coopt-cc", "hot.o", "-o", "app"], cwd=tmp_path)
    coopt.coopt("profile", "--quiet", "-o", "profile.json", "--", "./app", cwd=tmp_path)
    proc = coopt.coopt("optimize", "--levels", "pgo", "--budget", "3", "--pairs", "3", "--run-dir", "run",
                       cwd=tmp_path)
    assert "level pgo not tried" in proc.stdout and "libclang-rt-" in proc.stdout, proc.stdout
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["attempts"] == [] and state["spent"]["evaluations"] == 0
    assert any(n.startswith("level pgo not tried") for n in state["notes"])


def test_progress_off_a_terminal_says_what_runs_at_least_every_heartbeat() -> None:
    """A CI log (no terminal) gets a whole line while a step runs silently; a terminal gets the status line only."""
    import io
    import time

    from coopt.optimize.progress import Progress

    log = io.StringIO()
    with Progress(log, tty=False, heartbeat_s=0.1) as progress:
        progress.line("lvm.c: 3 candidates")
        progress.status("lvm.c: source level, asking the model")
        time.sleep(0.5)
    lines = log.getvalue().splitlines()
    assert lines[0] == "lvm.c: 3 candidates"
    beats = lines[1:]
    assert beats and all(b.startswith("... lvm.c: source level, asking the model (") for b in beats)
    assert "\r" not in log.getvalue() and "\033" not in log.getvalue()
    term = io.StringIO()
    with Progress(term, tty=True, heartbeat_s=0.1) as progress:
        progress.status("lvm.c: building")
        time.sleep(0.3)
    assert "..." not in term.getvalue() and term.getvalue().startswith("\r\033[K")


def test_a_run_that_kept_nothing_says_what_happened() -> None:
    """Five duplicates are not "no interval cleared min_gain": nothing was timed, and the line says why."""
    from coopt.optimize.final import nothing_stored
    from coopt.optimize.state import AttemptRecord, Outcome
    from coopt.verify.evidence import Interval

    def rec(n: int, verdict: Outcome, interval: Interval | None = None) -> AttemptRecord:
        return AttemptRecord(n, "a.o", "a.c", "flags", "-O3", "flags", verdict, interval=interval)

    dups = [rec(i, Outcome.DUPLICATE) for i in range(1, 6)]
    line = nothing_stored(dups, 1.02)
    assert "min_gain" not in line and "nothing was timed" in line and "(5)" in line
    assert "baseline's object" in line
    mixed = nothing_stored([*dups[:2], rec(3, Outcome.FAILED)], 1.02)
    assert "2 produced the baseline's object" in mixed and "1 failed" in mixed
    timed = nothing_stored([*dups, rec(6, Outcome.REJECTED, Interval(1.01, 0.99, 1.03, "wall"))], 1.02)
    assert "1 of 6 candidate(s) were timed" in timed and "min_gain 1.02" in timed
    # A compiler sweep's screened rows were timed too, briefly; the best may be a screen.
    screened = rec(7, Outcome.SCREENED)
    screened.screen = Interval(1.015, 1.005, 1.025, "cpu")
    both = nothing_stored([*dups, rec(6, Outcome.REJECTED, Interval(1.01, 0.99, 1.03, "wall")), screened], 1.02)
    assert "2 of 7 candidate(s) were timed" in both and "1.015 [1.005, 1.025], on a sweep's screen)" in both
    assert nothing_stored([], 1.02) == "no variant stored: nothing was evaluated"
    # Accepted, then withdrawn by the final measurement: that is the reason, not min_gain.
    accepted = rec(7, Outcome.ACCEPTED, Interval(1.07, 0.95, 1.10, "cpu"))
    why = "the final program measured slower than the baseline: 0.936 [0.836, 0.972]"
    withdrawn = nothing_stored([accepted], 0.5, [why])
    assert withdrawn == "no variant stored: 1 accepted variant(s) withdrawn: " + why and "min_gain" not in withdrawn


MACRO_C = """#define DEFINE_SPIN(name) unsigned long name(unsigned long n) \\
    { unsigned long s = 0; for (unsigned long i = 0; i < n; i++) s += i % 7; return s; }
DEFINE_SPIN(spin)
"""
MACRO_MAIN = """#include <stdio.h>
unsigned long spin(unsigned long n);
int main(void) { printf("%lu\\n", spin(60000000UL)); return 0; }
"""


def test_a_proposal_that_spends_nothing_costs_no_evaluation(coopt: Coopt, tmp_path: Path) -> None:
    """The hot function (alone in its TU) is defined through a macro: the source level refuses it before asking the
    model and builds nothing. That costs no evaluation (the record is `free`), so the budget of one still goes to
    the flags level; the state's spent count is what the charged attempts cost, and a resume counts the same."""
    from test_llm_client import ProtocolServer

    require("clang", "perf")
    (tmp_path / "hot.c").write_text(MACRO_C)
    (tmp_path / "main.c").write_text(MACRO_MAIN)
    for name in ("hot", "main"):
        coopt.run(["coopt-cc", "-O0", "-g", "-c", name + ".c", "-o", name + ".o"], cwd=tmp_path)
    coopt.run(["coopt-cc", "hot.o", "main.o", "-o", "app"], cwd=tmp_path)
    coopt.coopt("profile", "--quiet", "-o", "profile.json", "--", "./app", cwd=tmp_path)
    with ProtocolServer() as server:  # unscripted: any question would be answered with an error and no tokens
        coopt.env.update({"COOPT_LLM_BASE_URL": server.url, "COOPT_LLM_MODEL": "scripted",
                          "COOPT_LLM_API_KEY_ENV": "", "COOPT_LLM_RETRIES": "0"})
        args = ["optimize", "--levels", "source,flags", "--no-sweep", "--llm", "openai", "--pairs", "3", "--run-dir",
                "run"]
        proc = coopt.coopt(*args, "--budget", "1", cwd=tmp_path)
        state = json.loads((tmp_path / "run" / "state.json").read_text())
        # Resumed with a larger budget: the free attempt is carried over and still costs nothing.
        again = coopt.coopt(*args, "--budget", "2", "--resume", "--no-final", cwd=tmp_path)
    first, second = state["attempts"][:2]
    assert first["level"] == "source" and first["verdict"] == "failed" and first["free"], state["attempts"]
    assert "defined through a macro" in first["detail"] and "no evaluation charged" in first["detail"]
    assert first["tokens"] == 0 and "no evaluation charged" in proc.stdout
    assert second["level"] == "flags" and not second["free"] and second["verdict"] != "failed", second
    assert state["spent"]["evaluations"] == 1
    assert sum(not a["free"] for a in state["attempts"]) == 1
    assert "2 judged attempt(s)" in again.stdout and "1 evaluation(s) already spent" in again.stdout, again.stdout
