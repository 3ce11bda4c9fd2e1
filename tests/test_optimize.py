"""`coopt optimize` and `coopt report` end to end on upstream Lua from Debian's sources, built with CC=coopt-cc.

One Lua build and one perf profile are shared by the module. Each optimize run has a small evaluation budget and
few A/B pairs. Whether a candidate is really faster is noise on a shared 2-core machine, so the runs that must
store something pass `--min-gain 0.5` (accept anything not twice as slow): these tests prove the plumbing (budget,
evidence, cache, rebuild, report, interruption), not speed-ups; the statistics are the verifier's, tested there,
and bench/optimize_results.py measures real gains. Nothing here asserts a timing.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import Coopt, require
from coopt.cache.store import Store

pytestmark = pytest.mark.slow

SUPPORT = Path(__file__).resolve().parent / "support"
# About a tenth of a second: tables, sorting, strings, calls. Its output is the test the candidates must pass.
BENCH_LUA = """local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
local t = {}
for i = 1, 60000 do t[i] = (i * 7919) % 10007 end
table.sort(t)
local s = 0
for i = 1, #t do s = s + t[i] end
local parts = {}
for i = 1, 20000 do parts[#parts + 1] = tostring(i) .. ":" .. (i % 10) end
print(fib(22), s, #table.concat(parts, ","))
"""


@dataclass
class LuaProject:
    tree: Path
    coopt: Coopt
    profile: Path
    journal: Path
    expected: str  # the bench script's output with the original build

    def run_optimize(self, *args: str, cache: Path | None = None) -> subprocess.CompletedProcess:
        env = dict(self.coopt.env, COOPT_CACHE_DIR=str(cache)) if cache else self.coopt.env
        return subprocess.run([str(self.coopt.bin / "coopt"), "optimize", "--profile", str(self.profile), *args],
                              cwd=self.tree, env=env, capture_output=True, text=True, timeout=900)


def profiled_lua(launcher_bin: Path, base: Path) -> tuple[Path, Coopt]:
    """Lua from Debian's sources in `base`, built with coopt-cc into its own cache and profiled on BENCH_LUA."""
    require("clang", "make", "perf")
    from support.debian_sources import SourceUnavailable, copy_tree

    try:
        tree = copy_tree("lua5.4", base / "lua", pristine=True)
    except SourceUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOPT_")}
    env.update(PATH="%s%s%s" % (launcher_bin, os.pathsep, env.get("PATH", "")), COOPT_CACHE_DIR=str(base / "cache"),
               LC_ALL="C")
    co = Coopt(bin=launcher_bin, cache_dir=base / "cache", env=env)
    co.run(["make", "-j2", "linux-noreadline", "CC=coopt-cc"], cwd=tree / "src")
    (tree / "bench.lua").write_text(BENCH_LUA)
    co.coopt("profile", "--quiet", "-o", "profile.json", "--", "src/lua", "bench.lua", cwd=tree)
    return tree, co


@pytest.fixture(scope="module")
def lua(launcher_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> LuaProject:
    base = tmp_path_factory.mktemp("optimize-lua")
    tree, co = profiled_lua(launcher_bin, base)
    expected = co.run(["src/lua", "bench.lua"], cwd=tree).stdout
    return LuaProject(tree, co, tree / "profile.json", base / "cache" / "journal.jsonl", expected)


def _state(run_dir: Path) -> dict:
    return json.loads((run_dir / "state.json").read_text())


def _check_evidence(meta: dict) -> None:
    ev = meta["evidence"]
    assert ev["verified"] is True and ev["verdict"]["code"] == "accepted"
    iv = ev["interval"]
    assert iv["method"] == "cpu" and iv["low"] <= iv["ratio"] <= iv["high"]
    assert len(iv["samples_original"]) == len(iv["samples_candidate"]) == ev["pairs"]
    assert {c["name"] for c in ev["checks"]} >= {"build", "test", "bench"} and all(c["ok"] for c in ev["checks"])
    assert ev["proposer"]["agent"].startswith("compiler-tools/") and ev["proposer"]["level"] == meta["level"]
    if meta["level"] == "pgo":
        assert ev["training"]["workload"] and ev["training"]["same_as_bench"] is True
    else:
        assert meta["level"] == "flags" and ev["proposer"]["flags"]


def test_nothing_that_clears_min_gain_stores_nothing_and_says_so(lua: LuaProject, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    # 1.2x for the whole program: within reach of the hottest TU's share (the guide spends nothing on a TU that
    # could not reach it), far beyond what flags do on Lua (a few percent at most).
    proc = lua.run_optimize("--budget", "2", "--pairs", "3", "--levels", "flags", "--min-gain", "1.2",
                            "--run-dir", str(run_dir), cache=tmp_path / "cache")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no variant stored" in proc.stdout and "min_gain 1.20" in proc.stdout
    assert "\x1b" not in proc.stdout and "\r" not in proc.stdout  # not a terminal: plain lines only
    state = _state(run_dir)
    # Budget spent, or (where the shares leave one TU above the Amdahl bound and its flag rows build only a few
    # distinct objects) every direction tried first.
    assert state["status"] in ("budget-spent", "finished") and 1 <= state["spent"]["evaluations"] <= 2
    # A flag set that builds the same code as the baseline or an earlier one is a duplicate and costs nothing; so
    # do the rows a compiler sweep screened out (docs/guide.md, step 10): one evaluation per sweep, for its pick.
    judged = [a for a in state["attempts"] if a["verdict"] != "duplicate" and not a["swept"]]
    assert len(judged) == state["spent"]["evaluations"]
    assert all(a["level"] == "flags" for a in state["attempts"])
    assert all(a["verdict"] in ("rejected", "inconclusive") for a in judged)
    assert all(a["verdict"] in ("screened out", "duplicate") and (a["screen"] or a["verdict"] == "duplicate")
               for a in state["attempts"] if a["swept"])
    assert state["kept"] == {} and state["final"] is None
    assert Store(str(tmp_path / "cache")).entries() == []
    env = dict(lua.coopt.env, COOPT_CACHE_DIR=str(tmp_path / "cache"))
    report = subprocess.run([str(lua.coopt.bin / "coopt"), "report"], env=env, capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    # One row per TU, each with its own tries: the two may have gone to two TUs above the Amdahl bound.
    tried = [int(n) for n in re.findall(r"\bflags x(\d+)\b", report.stdout)]
    assert "Nothing was stored" in report.stdout and sum(tried) == len(state["attempts"]), report.stdout


def test_a_time_budget_spent_in_the_set_up_evaluates_nothing(lua: LuaProject, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = lua.run_optimize("--budget-seconds", "0.001", "--pairs", "3", "--run-dir", str(run_dir),
                            cache=tmp_path / "cache")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    state = _state(run_dir)
    assert state["status"] == "budget-spent" and state["budget"]["seconds"] == 0.001
    assert state["attempts"] == [] and state["spent"]["evaluations"] == 0
    assert "nothing was evaluated" in proc.stdout
    assert Store(str(tmp_path / "cache")).entries() == []


def test_interrupted_run_keeps_what_was_verified(lua: LuaProject, tmp_path: Path) -> None:
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    env = dict(lua.coopt.env, COOPT_CACHE_DIR=str(cache))
    proc = subprocess.Popen(
        [str(lua.coopt.bin / "coopt"), "optimize", "--profile", str(lua.profile), "--budget", "30", "--pairs", "3",
         "--min-gain", "0.5", "--run-dir", str(run_dir)],
        cwd=lua.tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if _state(run_dir)["kept"]:
                    break
            except (OSError, ValueError):
                pass  # not written yet
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err and "interrupt" in out
    state = _state(run_dir)
    assert state["status"] == "interrupted" and state["spent"]["evaluations"] < 30
    kept = {k["key"] for k in state["kept"].values() if not k["withdrawn"]}
    assert kept
    entries = Store(str(cache)).entries()
    assert {e.key for e in entries} == kept
    for e in entries:
        _check_evidence(e.meta)
    assert not (run_dir / "work").exists()
    report = subprocess.run([str(lua.coopt.bin / "coopt"), "report", "--run", str(run_dir)], env=env,
                            capture_output=True, text=True)
    assert report.returncode == 0 and "interrupted" in report.stdout, report.stderr


def test_optimize_stores_verified_variants_that_a_rebuild_serves(lua: LuaProject) -> None:
    run_dir = lua.tree / "opt-run"
    # No final measurement: at min_gain 0.5 the kept variants are noise-level, and the final measurement may
    # withdraw them all (it did, once in a few runs); tests/test_lineage.py's first test checks a final measurement
    # of a real speed-up.
    proc = lua.run_optimize("--budget", "3", "--pairs", "4", "--min-gain", "0.5", "--no-final", "--run-dir",
                            str(run_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    state = _state(run_dir)
    assert state["format"] == "coopt-optimize-run" and state["version"] == 1
    # Never past the budget (a compiler sweep's screened rows cost nothing); the guide went to PGO on the hottest TU
    # first (the sweep builds the picked level's row first).
    assert state["spent"]["evaluations"] <= 3 and len([a for a in state["attempts"] if not a["swept"]]) <= 3
    first = state["attempts"][0]
    assert first["level"] == "pgo" and first["object"] == state["tus"][0]["object"]
    assert state["same_workload"] is True
    kept = {k["object"]: k for k in state["kept"].values() if not k["withdrawn"]}
    assert kept, proc.stdout
    entries = {e.key: e for e in Store(str(lua.coopt.cache_dir)).entries()}
    assert set(entries) == {k["key"] for k in kept.values()}
    for e in entries.values():
        _check_evidence(e.meta)
    assert state["final"] is None

    # Rebuild from clean with coopt-cc: the kept TUs are served from the cache, byte for byte.
    lua.coopt.run(["make", "clean"], cwd=lua.tree)
    before = lua.coopt.stats()
    lua.coopt.run(["make", "-j2", "linux-noreadline", "CC=coopt-cc"], cwd=lua.tree / "src")
    after = lua.coopt.stats()
    assert after.get("hit", 0) - before.get("hit", 0) == len(kept)
    for obj, k in kept.items():
        assert Path(obj).read_bytes() == Path(entries[k["key"]].object_path).read_bytes()
    # The project's tests pass with the variants, and the workload's output is unchanged.
    lua.coopt.run(["make", "test"], cwd=lua.tree)
    lua.coopt.run(["src/lua", str(SUPPORT / "test_real_lua_check.lua")], cwd=lua.tree)
    assert lua.coopt.run(["src/lua", "bench.lua"], cwd=lua.tree).stdout == lua.expected

    # The report in every format.
    md = lua.coopt.coopt("report", "--run", str(run_dir)).stdout
    assert "Whole program against plain clang" in md and "same workload" in md
    for k in kept.values():
        assert Path(k["source"]).name in md
        # What each kept compiler-tools variant changed: its flags, and for PGO the profile and its training.
        assert "### %s: %s `%s`" % (Path(k["source"]).name, k["level"], k["label"]) in md
    changes = md.split("## What the kept variants changed", 1)[1]
    # A variant on the journaled compile, or one built on another (flags on top of a PGO node: a lineage).
    assert changes.count("source unchanged; built with the TU's own flags (") + len(
        re.findall(r"- built on #\d+ with the TU's own flags plus: ", changes)) == len(kept)
    if any(k["level"] == "pgo" for k in kept.values()):
        assert "PGO profile merged.profdata (" in changes and "trained on `" in changes
    data = json.loads(lua.coopt.coopt("report", "--format", "json", "--run", str(run_dir)).stdout)
    assert data["format"] == "coopt-optimize-report" and data["version"] == 1
    assert {t["object"] for t in data["tus"] if t["kept"]} == set(kept)
    html_file = lua.tree / "report.html"
    lua.coopt.coopt("report", "--format", "html", "--run", str(run_dir), "-o", str(html_file))
    html = html_file.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "</svg>" in html
