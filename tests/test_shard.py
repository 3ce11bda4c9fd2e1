"""Sharded optimize (`coopt optimize --shard K/N`) and the merged report (`coopt report --results`).

The split is checked as a function (stable under reordering and Python's hash seed, every TU exactly once, the LPT
balance bound, N=1 is the unsharded plan); bad --shard values and COOPT_SHARD through the real CLI; merging through
the real CLI on state files written by the real `save` (missing shard, another split, a plain run among shards);
and end to end on Lua from Debian's sources: two `--shard K/2` processes run at once against one cache directory
select exactly what one unsharded run selects, and their variants land in the shared cache.
"""

from __future__ import annotations

import fnmatch
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Coopt
from coopt.cache.store import Store
from coopt.cli import COMMANDS
from coopt.optimize import shard
from coopt.optimize.state import (
    AttemptRecord,
    CommandRecord,
    KeptRecord,
    Outcome,
    RunState,
    ShardRecord,
    TuRecord,
    save,
)
from coopt.verify.evidence import Interval
from test_nightly_ci import CI, coopt_commands, load_yaml
from test_optimize import profiled_lua

SHARDED = CI / "coopt-sharded.yml"

# (weights, N): Lua-like profiles, one dominant TU, equal weights (ties), more shards than TUs, many small TUs.
CASES = [
    ([0.35, 0.17, 0.11, 0.05, 0.04, 0.03, 0.02, 0.01], 2),
    ([0.35, 0.17, 0.11, 0.05, 0.04, 0.03, 0.02, 0.01], 3),
    ([0.96, 0.02, 0.01], 2),
    ([0.25, 0.25, 0.25, 0.25], 3),
    ([0.5, 0.3], 5),
    ([0.8], 1),
    ([round(0.01 + 0.001 * i, 4) for i in range(40)], 7),
]


def _items(weights: list[float]) -> list[tuple[str, float]]:
    return [("/build/src/tu%02d.o" % i, w) for i, w in enumerate(weights)]


@pytest.mark.parametrize("weights,n", CASES)
def test_every_tu_in_exactly_one_shard_and_balanced(weights: list[float], n: int) -> None:
    items = _items(weights)
    parts = shard.partition(items, n)
    assert len(parts) == n
    flat = [k for p in parts for k in p]
    assert sorted(flat) == sorted(k for k, _ in items) and len(flat) == len(set(flat))
    w = dict(items)
    loads = [sum(shard.weight(w[k]) for k in p) for p in parts]
    ideal = sum(shard.weight(x) for x in weights) / n
    assert max(loads) <= ideal + max(shard.weight(x) for x in weights)
    assert shard.assignment(items, n) == {k: i + 1 for i, p in enumerate(parts) for k in p}


@pytest.mark.parametrize("weights,n", CASES)
def test_the_split_does_not_depend_on_the_order_of_the_tus(weights: list[float], n: int) -> None:
    items = _items(weights)
    first = shard.partition(items, n)
    rng = random.Random(7)
    for _ in range(5):
        shuffled = list(items)
        rng.shuffle(shuffled)
        assert shard.partition(shuffled, n) == first
        assert shard.plan_id(shuffled, n) == shard.plan_id(items, n)


def test_the_split_is_the_same_in_other_processes_whatever_the_hash_seed() -> None:
    items = _items(CASES[1][0] + [0.03, 0.03])  # ties
    code = ("import json, sys; from coopt.optimize import shard; items = [tuple(x) for x in json.loads(sys.argv[1])]; "
            "print(json.dumps([shard.partition(items, 3), shard.plan_id(items, 3)]))")
    src = str(Path(shard.__file__).resolve().parents[2])
    outs = set()
    for seed in ("1", "2", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=src)
        proc = subprocess.run([sys.executable, "-c", code, json.dumps(items)], env=env, capture_output=True,
                              text=True, check=True)
        outs.add(proc.stdout)
    assert len(outs) == 1
    assert json.loads(outs.pop()) == [shard.partition(items, 3), shard.plan_id(items, 3)]


def test_known_splits() -> None:
    # LPT by hand: a(35) -> 1; b(17) -> 2; c(11) -> 2 (28); d(5) -> 2 (33 < 35).
    assert shard.partition([("a", 0.35), ("b", 0.17), ("c", 0.11), ("d", 0.05)], 2) == [["a"], ["b", "c", "d"]]
    # Equal weights: by key, then the lower shard number.
    assert shard.partition([("z", 0.2), ("y", 0.2), ("x", 0.2)], 2) == [["x", "z"], ["y"]]
    # More shards than TUs: the last shards get nothing.
    assert shard.partition([("a", 0.5), ("b", 0.3)], 4) == [["a"], ["b"], [], []]


def test_one_shard_is_the_unsharded_plan() -> None:
    items = _items(CASES[0][0])
    assert shard.partition(items, 1) == [[k for k, _ in items]]  # everything, hottest first
    assert set(shard.assignment(items, 1).values()) == {1}
    assert shard.plan_id(items, 1) != shard.plan_id(items, 2)


@pytest.mark.parametrize("text,k,n", [("1/2", 1, 2), ("2/2", 2, 2), ("1/1", 1, 1), (" 3 / 10 ", 3, 10)])
def test_parse_good_values(text: str, k: int, n: int) -> None:
    spec = shard.parse(text)
    assert (spec.index, spec.count, str(spec), spec.name) == (k, n, "%d/%d" % (k, n), "shard-%d-of-%d" % (k, n))


BAD = [("0/2", "between 1 and 2"), ("3/2", "between 1 and 2"), ("1/0", "at least 1"), ("-1/2", "not K/N"),
       ("a/b", "not K/N"), ("1", "not K/N"), ("1/2/3", "not K/N"), ("", "not K/N"), ("1.5/2", "not K/N")]


@pytest.mark.parametrize("text,why", BAD)
def test_bad_shard_values_are_one_line_and_exit_2(coopt: Coopt, tmp_path: Path, text: str, why: str) -> None:
    with pytest.raises(shard.ShardError, match=why):
        shard.parse(text)
    proc = coopt.coopt("optimize", "--shard=" + text, cwd=tmp_path, check=False)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith("coopt optimize: error: --shard %r" % text) and why in line
    env = dict(coopt.env, COOPT_SHARD=text or " ")
    proc = subprocess.run([str(coopt.bin / "coopt"), "optimize"], cwd=tmp_path, env=env, capture_output=True,
                          text=True)
    if text.strip():
        [line] = proc.stderr.splitlines()
        assert proc.returncode == 2 and line.startswith("coopt optimize: error: COOPT_SHARD") and why in line
    else:  # an empty variable means no sharding: the run goes on (to the missing profile)
        assert "COOPT_SHARD" not in proc.stderr and "profile" in proc.stderr


def test_the_option_wins_over_the_variable(coopt: Coopt, tmp_path: Path) -> None:
    env = dict(coopt.env, COOPT_SHARD="9/2")
    proc = subprocess.run([str(coopt.bin / "coopt"), "optimize", "--shard", "1/2"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "COOPT_SHARD" not in proc.stderr and "profile" in proc.stderr, proc.stderr


# Merging, on state files written by the real save().

TUS = {"/p/a.o": 0.5, "/p/b.o": 0.3, "/p/c.o": 0.15}


def _shard_state(k: int, n: int, tmp: Path, plan: str | None = None) -> RunState:
    items = list(TUS.items())
    assigned = shard.assignment(items, n)
    iv = Interval(1.05, 1.03, 1.07, "cpu")
    st = RunState(
        created="2026-11-24T00:00:0%dZ" % k, program="/p/app", profile="/p/profile.json", journal="/p/j.jsonl",
        cache_dir=str(tmp / "cache"), levels=["flags"], min_gain=1.02, pairs=5, llm="none",
        budget={"evaluations": 4, "seconds": 0}, bench=CommandRecord("{program} x", "/p", "--bench"), train=None,
        tests=[CommandRecord("{program} x", "/p", "bench command")], same_workload=False, status="budget-spent",
        stop_reason="budget spent", spent={"evaluations": 0, "seconds": 1.0},
        tus=[TuRecord(o, o[:-2] + ".c", s, "" if assigned[o] == k else "shard %d/%d's share" % (assigned[o], n))
             for o, s in items],
        shard=ShardRecord(k, n, plan or shard.plan_id(items, n), assigned),
    )
    for o in sorted(o for o in TUS if assigned[o] == k):
        num = len(st.attempts) + 1
        st.attempts.append(AttemptRecord(num, o, o[:-2] + ".c", "flags", "-O3", "compiler-tools/flags",
                                         Outcome.ACCEPTED, interval=iv, kept=True, entry_key="key-%s" % Path(o).stem))
        st.kept[o] = KeptRecord(o, o[:-2] + ".c", num, "key-%s" % Path(o).stem, "flags", "-O3", iv)
    st.spent["evaluations"] = len(st.attempts)
    return st


def _write(st: RunState, d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    return Path(save(st, str(d)))


def test_merge_of_all_shards_shows_each_tu_once_with_its_shard(coopt: Coopt, tmp_path: Path) -> None:
    # As downloaded artifacts: one directory per shard.
    paths = [_write(_shard_state(k, 2, tmp_path), tmp_path / "results" / ("coopt-shard-%d" % k)) for k in (1, 2)]
    assert [p.name for p in paths] == ["shard-1-of-2.json", "shard-2-of-2.json"]
    data = json.loads(coopt.coopt("report", "--format", "json", "--results", str(tmp_path / "results")).stdout)
    assert data["shards"]["count"] == 2 and data["shards"]["missing"] == [] and data["shards"]["contributed"] == [1, 2]
    assert [t["object"] for t in data["tus"]] == list(TUS)
    assigned = shard.assignment(list(TUS.items()), 2)
    assert {t["object"]: t["shard"] for t in data["tus"]} == assigned
    assert all(t["tried"] == {"flags": 1} and t["kept"] and t["note"] == "" for t in data["tus"])
    assert sorted(a["number"] for a in data["run"]["attempts"]) == [1, 2, 3]  # renumbered, each once
    assert data["whole_program"] is None and "variants from shard 1/2, shard 2/2" in data["whole_program_note"]
    md = coopt.coopt("report", "--results", str(paths[0]), str(paths[1])).stdout
    assert "## Shards" in md and "Merged from 2 of 2 shard result(s)" in md and "Missing" not in md
    assert "| a.c | 1/2 |" in md and "| b.c | 2/2 |" in md
    html = coopt.coopt("report", "--format", "html", "--results", str(tmp_path / "results")).stdout
    assert "<h2>Shards</h2>" in html and "a.c (shard 1/2)" in html


def test_a_missing_shard_is_reported_as_missing(coopt: Coopt, tmp_path: Path) -> None:
    _write(_shard_state(1, 3, tmp_path), tmp_path / "r")
    _write(_shard_state(3, 3, tmp_path), tmp_path / "r")
    proc = coopt.coopt("report", "--format", "json", "--results", str(tmp_path / "r"))
    assert "no result from shard(s) 2 of 3" in proc.stderr
    data = json.loads(proc.stdout)
    assert data["shards"]["missing"] == [2] and data["status"] == "incomplete"
    owed = shard.partition(list(TUS.items()), 3)[1]
    assert owed and [r["tus"] for r in data["shards"]["results"] if r["missing"]] == [owed]
    for t in data["tus"]:
        if t["object"] in owed:
            assert t["tried"] == {} and "shard 2/3 sent no result" in t["note"] and t["shard"] == 2
        else:
            assert t["tried"] == {"flags": 1}
    md = coopt.coopt("report", "--results", str(tmp_path / "r")).stdout
    assert "**Missing: shard 2/3**" in md and "MISSING: no result file" in md and "MISSING: shard 2/3" in md


def test_results_of_different_splits_or_a_plain_run_are_refused(coopt: Coopt, tmp_path: Path) -> None:
    a = _write(_shard_state(1, 2, tmp_path), tmp_path / "a")
    b = _write(_shard_state(2, 2, tmp_path, plan="0123456789ab"), tmp_path / "b")
    proc = coopt.coopt("report", "--results", str(a), str(b), check=False)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1 and "different plans" in proc.stderr
    c = _write(_shard_state(1, 3, tmp_path), tmp_path / "c")
    proc = coopt.coopt("report", "--results", str(a), str(c), check=False)
    assert proc.returncode == 2 and "cannot be merged" in proc.stderr
    plain = _shard_state(1, 1, tmp_path)
    plain.shard = None
    p = _write(plain, tmp_path / "plain")
    assert p.name == "state.json"
    proc = coopt.coopt("report", "--results", str(a), str(p), check=False)
    assert proc.returncode == 2 and "not a shard's result" in proc.stderr
    assert "Merged" not in coopt.coopt("report", "--results", str(p)).stdout  # a plain run alone is as before
    proc = coopt.coopt("report", "--results", str(tmp_path / "nothing-here"), check=False)
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_a_shard_reported_twice_uses_the_newer_result(coopt: Coopt, tmp_path: Path) -> None:
    _write(_shard_state(1, 2, tmp_path), tmp_path / "old")
    _write(_shard_state(2, 2, tmp_path), tmp_path / "old")
    newer = _shard_state(1, 2, tmp_path)
    newer.stop_reason = "the rerun"
    path = _write(newer, tmp_path / "new")
    saved = json.loads(path.read_text())
    saved["updated"] = "2099-01-01T00:00:00Z"  # a later rerun (save() stamps whole seconds: make it unambiguous)
    path.write_text(json.dumps(saved))
    for order in ([tmp_path / "old", tmp_path / "new"], [tmp_path / "new", tmp_path / "old"]):
        data = json.loads(coopt.coopt("report", "--format", "json", "--results", *map(str, order)).stdout)
        [note] = data["shards"]["notes"]
        assert "shard 1/2: two results" in note and note.endswith("the newer one, %s, is used" % path)
        assert data["shards"]["results"][0]["file"] == str(path)
        assert data["shards"]["results"][0]["stop_reason"] == "the rerun"


# The GitHub Actions matrix workflow (integration/ci/github/coopt-sharded.yml): its shape and commands are checked,
# and the report job's own steps run for real on downloaded-artifact-shaped results (tests/test_ci_workflows.py runs
# every job of it on a small project).


def _job_steps(data: dict, job: str) -> list[dict]:
    steps: list[dict] = data["jobs"][job]["steps"]
    return steps


def _commands(data: dict, job: str, shard_number: int = 1) -> list[list[str]]:
    """The job's `coopt` commands as the shell of matrix entry `shard_number` sees them (Actions substitutes the
    expression first)."""
    out = []
    for s in _job_steps(data, job):
        for words in coopt_commands(s.get("run", "").replace("${{ matrix.shard }}", str(shard_number))):
            redirect = [i for i, w in enumerate(words) if w and set(w) <= set("<>&")]
            out.append(words[:redirect[0]] if redirect else words)  # `>> FILE` is the shell's, not an argument
    return out


def test_the_matrix_workflow_shards_optimize_and_merges_the_results() -> None:
    data = load_yaml(SHARDED)
    jobs = data["jobs"]
    assert set(jobs) == {"profile", "optimize", "report"} and data["name"] and data["on"]
    for step in [s for j in jobs for s in _job_steps(data, j)]:
        assert ("uses" in step) != ("run" in step), step
        assert "run" in step or re.fullmatch(r"[\w-]+/[\w/-]+@v\d+", step["uses"]), step
    assert jobs["optimize"]["needs"] == "profile" and jobs["report"]["needs"] == "optimize"
    assert jobs["report"]["if"] == "always()"  # merges (and names the missing) when a shard failed
    strategy = jobs["optimize"]["strategy"]
    assert strategy["fail-fast"] is False
    matrix = strategy["matrix"]["shard"]
    n = len(matrix)
    assert matrix == list(range(1, n + 1)) and n == 3
    assert jobs["optimize"]["env"]["COOPT_REMOTE_STORAGE"] == "${{ secrets.COOPT_REMOTE_STORAGE }}"
    assert data["env"]["COOPT_CACHE_DIR"] == "${{ github.workspace }}/.coopt-cache"
    for k in matrix:
        [opt] = [c for c in _commands(data, "optimize", k) if c[0] == "optimize"]
        assert opt[0] == "optimize" and opt[opt.index("--shard") + 1] == "%d/%d" % (k, n)
    # The profile job hands over the journal and the profile; every shard restores them.
    uploads = {j: [s for s in _job_steps(data, j) if s.get("uses", "").startswith("actions/upload-artifact")]
               for j in jobs}
    downloads = {j: [s for s in _job_steps(data, j) if s.get("uses", "").startswith("actions/download-artifact")]
                 for j in jobs}
    [handed] = uploads["profile"]
    assert [d["with"]["name"] for d in downloads["optimize"]] == [handed["with"]["name"]]
    # Each shard uploads its result under its own name; the report job downloads all of them.
    [result] = uploads["optimize"]
    assert result["if"] == "always()" and "${{ matrix.shard }}" in result["with"]["name"]
    run_dir = opt[opt.index("--run-dir") + 1]
    assert result["with"]["path"] == run_dir + "/shard-*.json"
    [fetch] = downloads["report"]
    names = [result["with"]["name"].replace("${{ matrix.shard }}", str(k)) for k in matrix]
    assert all(fnmatch.fnmatch(name, fetch["with"]["pattern"]) for name in names)
    reports = [c for c in _commands(data, "report") if c[0] == "report"]
    assert reports and all(c[:3] == ["report", "--results", fetch["with"]["path"]] for c in reports)


def test_every_coopt_command_of_the_matrix_workflow_parses() -> None:
    from coopt.cli.doctor_cmd import _parser as doctor_parser
    from coopt.cli.optimize_cmd import _parser as optimize_parser
    from coopt.cli.optimize_cmd import _shard
    from coopt.cli.report_cmd import _parser as report_parser

    data = load_yaml(SHARDED)
    seen = set()
    for k in data["jobs"]["optimize"]["strategy"]["matrix"]["shard"]:
        for words in [c for job in data["jobs"] for c in _commands(data, job, k)]:
            assert words[0] in COMMANDS, words
            seen.add(words[0])
            if words[0] == "optimize":
                spec = _shard(optimize_parser().parse_args(words[1:]).shard, {})
                assert spec is not None and spec.index == k
            elif words[0] == "report":
                report_parser().parse_args(words[1:])
            elif words[0] == "doctor":
                doctor_parser().parse_args(words[1:])  # installing coopt shows its fast path
            else:
                assert words[:3] == ["profile", "-o", "profile.json"]
    assert seen == {"doctor", "profile", "optimize", "report"}


def test_the_report_job_merges_downloaded_results_and_names_a_missing_shard(coopt: Coopt, tmp_path: Path) -> None:
    data = load_yaml(SHARDED)
    [step] = [s for s in _job_steps(data, "report") if s.get("id") == "report"]
    [fetch] = [s for s in _job_steps(data, "report") if s.get("uses", "").startswith("actions/download-artifact")]
    n = len(data["jobs"]["optimize"]["strategy"]["matrix"]["shard"])
    for present in ([1, 2, 3], [1, 3]):
        ws = tmp_path / ("ws-%d" % len(present))
        for k in present:  # what download-artifact makes of the shards' uploads: one directory per artifact
            _write(_shard_state(k, n, tmp_path), ws / fetch["with"]["path"] / ("coopt-shard-%d" % k))
        summary = tmp_path / ("summary-%d.md" % len(present))
        env = dict(coopt.env, GITHUB_STEP_SUMMARY=str(summary))
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=ws,
                              env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        md = summary.read_text()
        assert "Merged from %d of 3 shard result(s)" % len(present) in md
        report = json.loads((ws / "coopt-report.json").read_text())
        assert report["shards"]["missing"] == sorted(set(range(1, n + 1)) - set(present))
        assert (ws / "coopt-report.html").read_text().startswith("<!DOCTYPE html>")
        if len(present) < n:
            assert "**Missing: shard 2/3**" in md and "no result from shard(s) 2 of 3" in proc.stderr


# End to end on Lua.


@pytest.fixture(scope="module")
def lua(launcher_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Coopt]:
    return profiled_lua(launcher_bin, tmp_path_factory.mktemp("shard-lua"))


def _optimize_at_once(tree: Path, co: Coopt, cache: Path, runs: list[list[str]]) -> list[tuple[int, str, str]]:
    """`coopt optimize` with each argument list, all at once (machines of a CI matrix), against one cache."""
    env = dict(co.env, COOPT_CACHE_DIR=str(cache))
    procs = [subprocess.Popen([str(co.bin / "coopt"), "optimize", "--profile", "profile.json", *args], cwd=tree,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for args in runs]
    out = []
    for p in procs:
        try:
            o, e = p.communicate(timeout=900)
        finally:
            if p.poll() is None:
                p.kill()
        out.append((p.returncode, o, e))
    return out


def _selection(report: dict) -> dict[str, list[tuple[str, str]]]:
    """Per TU worked on: what was tried, in order (level, candidate)."""
    return {t["object"]: [(a["level"], a["label"]) for a in t["attempts"]] for t in report["tus"] if t["attempts"]}


# Flags only and a min gain flags never reach on Lua (1.1x of the whole program), yet below the Amdahl bound of the
# TUs above ~9% of the samples (so they get arms): every arm fails `patience` times and retires, so which TUs are
# worked on, and in which order each gets the flag rows, is decided by the guide and the flag rows, not by the noise
# of the timings (only how many rows: a promising measurement earns a retry).
DETERMINISTIC = ["--levels", "flags", "--min-gain", "1.1", "--pairs", "3", "--budget", "40", "--max-tus", "4",
                 "--no-final"]


@pytest.mark.slow
def test_two_shards_at_once_select_what_one_unsharded_run_selects(lua: tuple[Path, Coopt], tmp_path: Path) -> None:
    tree, co = lua
    [(rc, out, err)] = _optimize_at_once(tree, co, tmp_path / "one", [[*DETERMINISTIC, "--run-dir",
                                                                       str(tmp_path / "unsharded")]])
    assert rc == 0, out + err
    whole = json.loads(co.coopt("report", "--format", "json", "--run", str(tmp_path / "unsharded")).stdout)
    assert whole["status"] == "finished" and whole["shards"] is None
    expected = _selection(whole)
    assert len(expected) >= 2, out  # else there is nothing to split

    cache = tmp_path / "shared-cache"
    results = _optimize_at_once(tree, co, cache, [[*DETERMINISTIC, "--shard", "1/2"], [*DETERMINISTIC, "--shard",
                                                                                        "2/2"]])
    for k, (rc, out, err) in enumerate(results, 1):
        assert rc == 0, out + err
        assert out and all(line.startswith("shard %d/2: " % k) for line in out.splitlines()), out
    [run_dir] = (cache / "runs").glob("shards-*")
    files = sorted(p.name for p in run_dir.iterdir() if p.suffix == ".json")
    assert files == ["shard-1-of-2.json", "shard-2-of-2.json"]
    states = [json.loads((run_dir / f).read_text()) for f in files]
    assignment = states[0]["shard"]["assignment"]
    assert states[1]["shard"]["assignment"] == assignment and states[0]["shard"]["plan"] == states[1]["shard"]["plan"]
    # TUs under the Amdahl bound are assigned too (a shard notes them) but get no evaluation anywhere.
    assert set(expected) <= set(assignment) and set(assignment.values()) == {1, 2}
    for k, st in enumerate(states, 1):  # each shard worked on its own TUs only
        assert {a["object"] for a in st["attempts"]} == {o for o, s in assignment.items() if s == k and o in expected}
        assert st["status"] == "finished"

    # The merged report, found without arguments (the newest run under the cache): the same selection.
    env = dict(co.env, COOPT_CACHE_DIR=str(cache))
    proc = subprocess.run([str(co.bin / "coopt"), "report", "--format", "json"], env=env, capture_output=True,
                          text=True, check=True)
    merged = json.loads(proc.stdout)
    assert merged["shards"]["count"] == 2 and merged["shards"]["missing"] == [] and proc.stderr == ""
    # The same TUs, each tried with the flag rows in the same order; how many rows depends on the timings alone
    # (a candidate measured near min_gain is promising and retried, policy step 5), so one list is the other's start.
    selected = _selection(merged)
    assert set(selected) == set(expected)
    for tu, tried in selected.items():
        n = min(len(tried), len(expected[tu]))
        assert tried[:n] == expected[tu][:n] and n >= 3, (tu, tried, expected[tu])
    assert {t["object"] for t in merged["tus"] if t["tried"]} == {t["object"] for t in whole["tus"] if t["tried"]}
    assert {t["object"]: t["shard"] for t in merged["tus"] if t["object"] in assignment} == assignment
    assert merged["run"]["spent"]["evaluations"] == sum(st["spent"]["evaluations"] for st in states)

    # One machine's result lost: the report says which shard and which TUs.
    (run_dir / "shard-2-of-2.json").unlink()
    proc = subprocess.run([str(co.bin / "coopt"), "report", "--results", str(run_dir)], env=env,
                          capture_output=True, text=True, check=True)
    assert "no result from shard(s) 2 of 2" in proc.stderr and "**Missing: shard 2/2**" in proc.stdout


@pytest.mark.slow
def test_shards_write_their_variants_into_one_shared_cache(lua: tuple[Path, Coopt], tmp_path: Path) -> None:
    tree, co = lua
    cache = tmp_path / "shared-cache"
    # --min-gain 0.5 accepts anything not twice as slow: this proves where variants go, not speed-ups. Two
    # evaluations per shard, in case a flag row rebuilds the very same object (a duplicate is not stored).
    args = ["--levels", "flags", "--min-gain", "0.5", "--pairs", "3", "--budget", "2", "--max-tus", "2",
            "--no-final"]
    results = _optimize_at_once(tree, co, cache, [[*args, "--shard", "1/2"], [*args, "--shard", "2/2"]])
    for rc, out, err in results:
        assert rc == 0, out + err
    env = dict(co.env, COOPT_CACHE_DIR=str(cache))
    merged = json.loads(subprocess.run([str(co.bin / "coopt"), "report", "--format", "json"], env=env,
                                       capture_output=True, text=True, check=True).stdout)
    kept = {t["object"]: t["kept"]["key"] for t in merged["tus"] if t["kept"]}
    assert len(kept) == 2 and merged["shards"]["contributed"] == [1, 2], merged["shards"]
    assert {e.key for e in Store(str(cache)).entries()} == set(kept.values())
