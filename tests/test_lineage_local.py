"""Issue 15 end to end with the real local model (Qwen2.5-Coder 1.5B through xllamacpp's HTTP server): a kept
variant whose lineage has two steps at different levels, each verified, stored and served by the rebuild.

examples/naive-strlen built at -O1: the source level (the model) can hoist the string length out of the loop
(O(n^2) -> O(n)), and the flags level can then vectorize the rewritten loop (-O1 does not vectorize), so a flags
node on top of the rewrite beats the rewrite alone. The guide expands what paid: after an accepted rewrite it
offers the flags level on that node first. The model's answers vary; the budget gives it several samples. Nothing
here asserts a timing: speed enters only through the judge's verdicts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, Coopt, require
from coopt.cache.store import Store

pytestmark = pytest.mark.slow


def test_the_local_model_and_the_compiler_make_a_two_level_lineage_that_the_rebuild_serves(
        coopt: Coopt, tmp_path: Path) -> None:
    require("clang", "make", "perf")
    pytest.importorskip("xllamacpp", reason="the local provider needs xllamacpp (make test installs it)")
    from coopt.llm import fetch as llm_fetch

    try:
        model = llm_fetch.fetch(llm_fetch.PINNED["1.5b"])
    except llm_fetch.FetchError as exc:
        pytest.fail("cannot fetch the 1.5B model: %s" % exc)
    tree = tmp_path / "naive-strlen"
    shutil.copytree(ROOT / "examples" / "naive-strlen", tree)
    coopt.run(["make", "CC=coopt-cc", "CFLAGS=-O1 -g"], cwd=tree)
    expected = coopt.run(["./upcase", "20000", "6"], cwd=tree).stdout
    coopt.coopt("profile", "--quiet", "-o", "profile.json", "--", "./upcase", "20000", "6", cwd=tree)
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [str(coopt.bin / "coopt"), "optimize", "--levels", "source,flags", "--llm", "local", "--budget", "6",
         "--pairs", "10", "--run-dir", str(run_dir), "--profile", "profile.json", "--bench", "./upcase 20000 6",
         "--test", "./upcase 100 3", "--test", "./upcase 2000 5"],
        cwd=tree, env={**coopt.env, "COOPT_MODEL_PATH": model}, capture_output=True, text=True, timeout=2400)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    state = json.loads((run_dir / "state.json").read_text())
    attempts = {a["number"]: a for a in state["attempts"]}
    [kept] = [k for k in state["kept"].values() if not k["withdrawn"]]
    leaf = attempts[kept["attempt"]]
    assert leaf["level"] == "flags" and leaf["verdict"] == "accepted" and leaf["parent"]
    parent = attempts[leaf["parent"]]
    assert parent["level"] == "source" and parent["verdict"] == "accepted" and parent["parent"] == 0
    assert kept["interval"]["low"] >= parent["interval"]["low"]  # the best of the run is the two-step leaf
    [entry] = [e for e in Store(str(coopt.cache_dir)).entries() if e.key == kept["key"]]
    ev = entry.meta["evidence"]
    assert [s["level"] for s in ev["lineage"]] == ["source", "flags"]
    assert all(s["verdict"] == "accepted" and s["interval"]["low"] >= state["min_gain"] for s in ev["lineage"])
    assert "qwen2.5-coder-1.5b" in json.dumps(ev["lineage"][0])
    # The rebuild at the same flags serves the judged object; the program's output and checks are unchanged.
    coopt.run(["make", "clean"], cwd=tree)
    coopt.run(["make", "CC=coopt-cc", "CFLAGS=-O1 -g"], cwd=tree)
    assert (tree / "text.o").read_bytes() == Path(entry.object_path).read_bytes()
    assert coopt.run(["./upcase", "20000", "6"], cwd=tree).stdout == expected
    coopt.run(["make", "check", "CC=coopt-cc", "CFLAGS=-O1 -g"], cwd=tree)
