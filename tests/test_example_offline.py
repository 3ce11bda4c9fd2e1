"""The README's first example, offline: examples/blend-modes with the default levels (flags, PGO) and no LLM.

Built with CC=coopt-cc, profiled with perf, `coopt optimize` with its defaults stores a variant of blend.c that
the judge accepted, a clean rebuild serves it, and the program's own `make check` still passes. Nothing here asserts
a timing: the speed-up is asserted only through the judge's verdict (its interval cleared min gain).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, Coopt, require

pytestmark = pytest.mark.slow

EXAMPLE = ROOT / "examples" / "blend-modes"


def test_offline_default_keeps_a_compiler_variant_and_the_rebuild_serves_it(coopt: Coopt, tmp_path: Path) -> None:
    require("clang", "make", "perf")
    tree = tmp_path / "blend-modes"
    shutil.copytree(EXAMPLE, tree)
    coopt.run(["make", "CC=coopt-cc"], cwd=tree)
    expected = coopt.run(["./blend"], cwd=tree).stdout
    coopt.coopt("profile", "--quiet", "-o", "profile.json", "--", "./blend", cwd=tree)
    run_dir = tmp_path / "run"
    proc = coopt.coopt("optimize", "--budget", "4", "--run-dir", str(run_dir), cwd=tree)
    state = json.loads((run_dir / "state.json").read_text())
    kept = [k for k in state["kept"].values() if not k["withdrawn"]]
    assert [Path(k["source"]).name for k in kept] == ["blend.c"]
    assert kept[0]["level"] in ("flags", "pgo") and kept[0]["interval"]["low"] >= state["min_gain"]
    assert "stored 1 variant(s): blend.c" in proc.stdout

    coopt.run(["make", "clean"], cwd=tree)
    coopt.run(["make", "CC=coopt-cc"], cwd=tree)
    stats = coopt.coopt("cache", "stats", cwd=tree).stdout
    assert "hits              1" in stats, stats
    assert coopt.run(["./blend"], cwd=tree).stdout == expected
    coopt.run(["make", "check"], cwd=tree)
