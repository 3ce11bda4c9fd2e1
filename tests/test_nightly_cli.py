"""`coopt nightly` on a tiny Make project, up to the steps that stop it: configuration errors (exit 2, nothing
run), a build that compiles nothing through coopt-cc, a failing build and a failing profile (exit 1, resumable),
Ctrl-C (exit 130, resumable, the hook's process group stopped), a hook timeout, a second run at the same time.
The whole pipeline on a real project is tests/test_nightly.py."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import Coopt, require
from coopt.nightly.state import STEPS

APP = r"""#include <stdio.h>
#include <stdlib.h>
long work(long n);
int main(int argc, char **argv) { long n = argc > 1 ? atol(argv[1]) : 1000; printf("sum %ld\n", work(n)); return 0; }
"""
WORK = "long work(long n) { long s = 0; for (long i = 0; i < n; i++) s += (i * 7) % 13; return s; }\n"
MAKEFILE = """app: app.o work.o
\t$(CC) -o app app.o work.o
%.o: %.c
\t$(CC) -O2 -c $< -o $@
clean:
\trm -f app *.o
test: app
\t./app 1000 | grep -q '^sum [0-9]'
"""
CONFIG = """[hooks]
clean = "make clean"
build = "make"
test = "make test"
profile = "./app 100000000"
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    require("clang", "make")
    d = tmp_path / "tiny"
    d.mkdir()
    (d / "app.c").write_text(APP)
    (d / "work.c").write_text(WORK)
    (d / "Makefile").write_text(MAKEFILE)
    (d / "coopt.toml").write_text(CONFIG)
    return d


def _state(proj: Path) -> dict:
    return json.loads((proj / ".coopt-nightly" / "state.json").read_text())


def _no_control_characters(text: str) -> None:
    assert all(c.isprintable() or c == "\n" for c in text), repr([c for c in text if not c.isprintable()][:5])


def test_help_documents_the_exit_codes(coopt: Coopt) -> None:
    out = coopt.coopt("nightly", "--help").stdout
    for code, meaning in (("0", "done"), ("1", "a step failed"), ("2", "configuration error"),
                          ("3", "tests failed"), ("4", "nothing improved"), ("130", "interrupted")):
        assert any(ln.split()[:1] == [code] and meaning in ln for ln in out.splitlines()), (code, out)
    assert "COOPT_READONLY" in out and "docs/nightly.md" in out


@pytest.mark.parametrize("config, env, expected", [
    ('[hooks]\nprofile = "./app"\n', {}, "no build hook: set [hooks] build in"),
    ('[hooks]\nbuild = "make"\n', {}, "no profile workload: set [hooks] profile"),
    (CONFIG, {"COOPT_READONLY": "1"}, "the cache is read-only (read_only from env COOPT_READONLY)"),
    (CONFIG, {"COOPT_COMPILER": "no-such-clang"}, "the real compiler 'no-such-clang' (from env COOPT_COMPILER) is "
     "not found"),
])
def test_configuration_that_cannot_drive_a_run(coopt: Coopt, tiny: Path, config: str, env: dict[str, str],
                                                expected: str) -> None:
    (tiny / "coopt.toml").write_text(config)
    coopt.env.update(env)
    proc = coopt.coopt("nightly", cwd=tiny, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and expected in proc.stderr, proc.stderr
    assert not (tiny / ".coopt-nightly" / "state.json").exists() and not (tiny / "app.o").exists()


def test_build_that_bypasses_coopt_cc(coopt: Coopt, tiny: Path) -> None:
    (tiny / "coopt.toml").write_text(CONFIG.replace('build = "make"', 'build = "make CC=clang"'))
    proc = coopt.coopt("nightly", cwd=tiny, check=False)
    assert proc.returncode == 2, proc.stdout
    assert "[2/8] build: failed" in proc.stdout and "compiled nothing through coopt-cc" in proc.stdout
    assert (tiny / "app").exists()  # the build itself ran (with plain clang)
    st = _state(tiny)
    assert st["status"] == "failed" and st["exit_code"] == 2 and st["steps"]["build"]["status"] == "failed"


def test_failing_build_stops_the_run_and_a_rerun_resumes_to_the_end(coopt: Coopt, tiny: Path) -> None:
    coopt.env.update(COOPT_HOOK_BUILD="test -f fixed || { echo 'work.c:1: error: not fixed yet'; exit 2; }; make",
                     COOPT_BUDGET="1", COOPT_PAIRS="3", COOPT_MIN_GAIN="10")
    first = coopt.coopt("nightly", cwd=tiny, check=False)
    assert first.returncode == 1, first.stdout + first.stderr
    _no_control_characters(first.stdout)
    assert "[1/8] clean: done" in first.stdout and "[2/8] build: failed" in first.stdout
    assert "  | work.c:1: error: not fixed yet" in first.stdout  # the log's tail
    assert "resume" in first.stdout.splitlines()[-1]
    st = _state(tiny)
    assert [st["steps"][s]["status"] for s in STEPS[:3]] == ["done", "failed", "pending"]
    assert st["status"] == "failed" and st["exit_code"] == 1

    (tiny / "fixed").write_text("")
    second = coopt.coopt("nightly", cwd=tiny, check=False)
    out = second.stdout
    _no_control_characters(out)
    assert second.returncode == 4, out + second.stderr  # nothing cleared min_gain 10 (90% of samples in work.c)
    # A failed build is redone from the clean step: the nightly build is a clean build.
    assert "(no step finished earlier); starting at clean" in out and "[1/8] clean: done (" in out
    for step in ("build", "baseline-test", "profile", "optimize", "report"):
        assert "] %s: done (" % step in out, step
    assert "[6/8] rebuild: skipped" in out and "[7/8] test: skipped" in out
    # One evaluation: a compiler sweep of the default levels (docs/guide.md, step 10), its rows timed at least by
    # the sweep's screen.
    assert re.search(r"nightly: nothing improved: \d+ of \d+ candidate\(s\) were timed and none's speed-up "
                     r"interval cleared min_gain 10.00 \(best: ", out) and "(1 evaluation(s))" in out, out
    assert out.splitlines()[-1] == "nightly: report .coopt-nightly/report.md; exit 4"
    st2 = _state(tiny)
    assert st2["status"] == "finished" and st2["exit_code"] == 4 and st2["resumed"] == 1
    assert st2["started"] == st["started"]
    assert st2["steps"]["optimize"]["data"]["kept"] == [] and st2["steps"]["optimize"]["data"]["attempts"] >= 1
    assert (tiny / ".coopt-nightly" / "report.md").read_text().startswith("# coopt nightly")


def test_resume_skips_finished_steps(coopt: Coopt, tiny: Path) -> None:
    (tiny / "coopt.toml").write_text(CONFIG.replace("./app 100000000", "./app-gone 1"))
    first = coopt.coopt("nightly", cwd=tiny, check=False)
    assert first.returncode == 1 and "[4/8] profile: failed" in first.stdout
    st1 = _state(tiny)
    build_log = tiny / ".coopt-nightly" / "logs" / "build.log"
    log_text, compiles = build_log.read_text(), len(coopt.journal())
    second = coopt.coopt("nightly", cwd=tiny, check=False)
    assert second.returncode == 1
    lines = second.stdout.splitlines()
    assert lines[1].startswith("resuming the run started %s (clean, build, baseline-test finished earlier); "
                               "starting at profile" % st1["started"])
    assert "[1/8] clean: done earlier" in lines and "[2/8] build: done earlier" in lines
    assert "[3/8] baseline-test: done earlier" in lines
    st2 = _state(tiny)
    assert st2["resumed"] == 1 and st2["started"] == st1["started"]
    for name in ("clean", "build", "baseline-test"):
        assert st2["steps"][name] == st1["steps"][name]
    assert build_log.read_text() == log_text and len(coopt.journal()) == compiles  # nothing was rebuilt
    # A step whose output is gone is redone, with everything after it.
    os.unlink(coopt.cache_dir / "journal.jsonl")
    third = coopt.coopt("nightly", cwd=tiny, check=False)
    assert "starting at clean" in third.stdout and "[2/8] build: done" in third.stdout
    # --fresh starts over whatever the state.
    fresh = coopt.coopt("nightly", "--fresh", cwd=tiny, check=False)
    assert "resuming" not in fresh.stdout and "[1/8] clean: done (" in fresh.stdout


def _wait_for(path: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the hook never started"
        time.sleep(0.05)


def _pid_alive(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_ctrl_c_stops_the_hook_and_a_rerun_resumes(coopt: Coopt, tiny: Path) -> None:
    coopt.env["COOPT_HOOK_BUILD"] = "echo $$ > build.pid; sleep 300; make"
    proc = subprocess.Popen([str(coopt.bin / "coopt"), "nightly"], cwd=tiny, env=coopt.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(tiny / "build.pid", proc)
        time.sleep(0.3)
        # A second run while this one holds the directory is refused.
        other = coopt.coopt("nightly", cwd=tiny, check=False)
        assert other.returncode == 2 and "another coopt nightly is running" in other.stderr
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err and "[2/8] build: interrupted; run `coopt nightly` again to resume here" in out
    shell = int((tiny / "build.pid").read_text())
    deadline = time.monotonic() + 10
    while _pid_alive(shell) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _pid_alive(shell), "the build hook survived Ctrl-C"
    st = _state(tiny)
    assert st["status"] == "interrupted" and st["exit_code"] == 130
    assert st["steps"]["build"]["status"] == "interrupted" and st["steps"]["clean"]["status"] == "done"
    coopt.env["COOPT_HOOK_BUILD"] = "echo $$ > build.pid; make; exit 9"  # a changed hook: a new run
    again = coopt.coopt("nightly", cwd=tiny, check=False)
    assert again.returncode == 1 and "configuration changed" in again.stdout


def test_hook_timeout(coopt: Coopt, tiny: Path) -> None:
    (tiny / "coopt.toml").write_text(CONFIG.replace('build = "make"', 'build = "sleep 300"') + "timeout = 2\n")
    proc = coopt.coopt("nightly", cwd=tiny, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "[2/8] build: failed" in proc.stdout and "(sleep 300: timed out after " in proc.stdout
    # A test suite that runs out of time is a failed test suite.
    (tiny / "coopt.toml").write_text(CONFIG.replace('test = "make test"', 'test = "sleep 300"') + "timeout = 2\n")
    proc = coopt.coopt("nightly", cwd=tiny, check=False)
    assert proc.returncode == 3 and "[3/8] baseline-test: failed" in proc.stdout and "timed out" in proc.stdout


def test_a_finished_run_is_not_resumed(tmp_path: Path) -> None:
    from coopt.config import load
    from coopt.nightly import run as nightly_run
    from coopt.nightly import state as st
    from coopt.nightly.console import Console

    (tmp_path / "coopt.toml").write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOPT_")}
    cfg = load(str(tmp_path), environ=env)
    d = str(tmp_path / "nd")
    old = st.new_state(cfg)
    for rec in old.steps.values():
        rec.status = "done"
    old.status = "finished"
    st.save(old, d)
    (tmp_path / "nd" / "report.md").write_text("old report")
    (tmp_path / "nd" / "keep.txt").write_text("not ours")

    class Lines:
        def __init__(self) -> None:
            self.text = ""

        def write(self, s: str) -> None:
            self.text += s

        def flush(self) -> None:
            pass

        def isatty(self) -> bool:
            return False

    out = Lines()
    state, first = nightly_run._start(cfg, d, Console(out), fresh=False)  # type: ignore[arg-type]
    assert first == 0 and state.started >= old.started and all(r.status == "pending" for r in state.steps.values())
    assert not (tmp_path / "nd" / "report.md").exists() and (tmp_path / "nd" / "keep.txt").exists()
    # The same state left unfinished is resumed where it stopped.
    old.status = "failed"
    old.steps["optimize"].status = "failed"
    st.save(old, d)
    state, first = nightly_run._start(cfg, d, Console(out), fresh=False)  # type: ignore[arg-type]
    assert STEPS[first] == "optimize" and state.resumed == 1 and "starting at optimize" in out.text


# Once the optimize run has saved a judged attempt, every later bench run waits, and the test (watching the same
# file) interrupts the nightly: Ctrl-C lands in the middle of the optimize step at a known point, with no race
# against the clock. The workload cannot send the signal itself: it runs contained, in a PID namespace of its
# own, and cannot write into the project. The test marks the interruption done before the resumed run.
INTERRUPT = """if [ ! -e interrupted ] && grep -q '"verdict"' .coopt-nightly/run/state.json 2>/dev/null; then
  sleep 600
fi
"""


# A TU whose object differs under each of the first flag sets (clang 14 at -O2: -O3, a higher inline threshold,
# a higher unroll threshold each change the code), so every candidate is built, checked and timed.
WORK_FLAGS = """static long big(long x) {
    long h = x;
    for (int r = 0; r < 8; r++) {
        h ^= h >> 13; h *= 0xff51afd7ed558ccdL; h ^= h >> 29; h += r * 0x9E37L;
        h ^= h << 7; h *= 0xc4ceb9fe1a85ec53L; h ^= h >> 31; h -= r;
    }
    if (h & 1) h = ~h; else h = h * 3 + 1;
    if (h & 2) h ^= 0x5555; else h ^= 0xAAAA;
    if (h & 4) h += 17; else h -= 23;
    return h;
}
long work(long n) {
    long s = 0, t[48];
    for (int j = 0; j < 48; j++) t[j] = j * 7;
    for (long i = 0; i < n; i++) {
        s += big(i) % 13;
        s ^= big(s + i) & 7;
        for (int j = 0; j < 48; j++) s += t[j] * (i & j);
    }
    return s;
}
"""


def test_interrupted_optimize_resumes_without_redoing_judged_candidates(coopt: Coopt, tiny: Path) -> None:
    from coopt.agents.levels import FLAG_SETS

    (tiny / "work.c").write_text(WORK_FLAGS)
    (tiny / "interrupt.sh").write_text(INTERRUPT)
    config = CONFIG.replace("./app 100000000", "./app 5000000")
    (tiny / "coopt.toml").write_text(config + 'bench = "sh interrupt.sh; ./app 5000000"\n\n[optimize]\nlevels = '
                                     '["flags"]\nbudget = 3\npairs = 3\nmin_gain = 10\nfloat_tolerance = 1e-9\n'
                                     'sweep = false\n')  # one flag set per evaluation: the resume is what is tested
    proc = subprocess.Popen([str(coopt.bin / "coopt"), "nightly"], cwd=tiny, env=coopt.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    state_file = tiny / ".coopt-nightly" / "run" / "state.json"
    try:
        deadline = time.monotonic() + 600
        while not (state_file.exists() and '"verdict"' in state_file.read_text(errors="replace")):
            assert proc.poll() is None and time.monotonic() < deadline, "no judged attempt was saved"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    (tiny / "interrupted").touch()
    assert proc.returncode == 130, out + err
    assert "[5/8] optimize: interrupted" in out
    run_state = tiny / ".coopt-nightly" / "run" / "state.json"
    first = json.loads(run_state.read_text())
    assert first["status"] == "interrupted" and first["float_tolerance"] == 1e-9 and first["assume_cpu"] is False
    judged = [a for a in first["attempts"] if a["verdict"] != "interrupted"]
    # The interrupt lands in the second attempt (its bench sleeps until then), or, when it comes within the moment
    # between the first attempt's save and the second's start, between the two: then no attempt is in flight.
    assert 1 <= len(judged) < 3, first["attempts"]
    assert [a["verdict"] for a in first["attempts"][len(judged):]] in ([], ["interrupted"]), first["attempts"]

    again = coopt.coopt("nightly", cwd=tiny, check=False)
    assert again.returncode == 4, again.stdout + again.stderr  # min_gain 10: nothing improved, but it finished
    assert "starting at optimize" in again.stdout
    assert "resuming the run of %s: %d judged attempt(s)" % (first["created"], len(judged)) in again.stdout
    last = json.loads(run_state.read_text())
    assert last["status"] == "finished" and last["resumed"] == 1 and last["created"] == first["created"]
    # The judged attempts are kept as they were, and none of their candidates was built and timed again.
    assert last["attempts"][:len(judged)] == judged
    assert [a["label"] for a in last["attempts"]] == [" ".join(fs) for fs in FLAG_SETS[:3]]
    assert [a["number"] for a in last["attempts"]] == [1, 2, 3]
    assert all(a["verdict"] == "rejected" for a in last["attempts"]), last["attempts"]  # each one timed
    assert last["spent"]["evaluations"] == 3
    log = (tiny / ".coopt-nightly" / "logs" / "optimize.log").read_text()
    assert log.count("coopt optimize: ") == 2  # both attempts' progress, in one log
    assert json.loads((tiny / ".coopt-nightly" / "state.json").read_text())["steps"]["optimize"]["data"][
        "attempts"] == 3
