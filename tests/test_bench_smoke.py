"""bench/wrapper_overhead.py runs end to end (--quick) and writes well-formed results.

No time is asserted: numbers from a shared 2-core machine mean nothing in a test. What is checked is the shape of
the JSON and markdown, and the benchmark's own proof that it measured what it claims (the hit case hit, the miss
case missed, the coopt-cc build journaled every compile).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, require

BENCH = ROOT / "bench" / "wrapper_overhead.py"
CALLS = ("preprocess", "link", "miss", "hit", "hit-checked")
TUS = ("tiny", "small", "lua")


def _lua_available() -> None:
    from support.debian_sources import SourceUnavailable, upstream

    try:
        upstream("lua5.4")
    except SourceUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))


def _check_samples(stats: dict, reps: int) -> None:
    assert stats["n"] == reps == len(stats["samples_ms"])
    assert all(isinstance(x, float) and x > 0 for x in stats["samples_ms"])
    assert stats["min_ms"] <= stats["median_ms"] <= stats["max_ms"]


@pytest.mark.slow
def test_quick_run_writes_wellformed_results(tmp_path: Path) -> None:
    require("clang", "make")
    _lua_available()
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--output-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "wrapper_overhead.json").read_text())

    assert data["format_version"] == 1
    assert data["mode"] == "quick"
    assert data["machine"]["nproc"] >= 1 and data["machine"]["cpu_model"]
    assert "clang" in data["tools"]["clang"]
    with_ccache = data["tools"]["ccache"] is not None
    reps, build_reps = data["options"]["reps"], data["options"]["build_reps"]

    # Every TU x call, each with plain clang's samples and the wrappers' samples, added ms and ratio.
    assert sorted((r["tu"], r["call"]) for r in data["compile"]) == sorted(
        (tu, call) for tu in TUS for call in CALLS
    )
    for row in data["compile"]:
        _check_samples(row["clang"], reps)
        for tool in ("coopt-cc", "ccache") if with_ccache and row["call"] != "hit-checked" else ("coopt-cc",):
            _check_samples(row[tool], reps)
            assert row[tool]["ratio"] > 0
            assert row[tool]["added_ms"] == pytest.approx(row[tool]["median_ms"] - row["clang"]["median_ms"], abs=0.01)
    # The hit cases hit and the miss cases missed, every run, by the caches' own counters.
    checks = data["compile_checks"]
    for tu in TUS:
        assert checks["%s/hit/coopt-cc" % tu]["counter"] == "hits"
        assert checks["%s/hit-checked/coopt-cc" % tu]["direct"] == 0
        assert checks["%s/miss/coopt-cc" % tu]["counter"] == "misses"
    for name, check in checks.items():
        assert check["expected"] >= reps
        if name.endswith("/coopt-cc"):
            assert check["counted"] == check["expected"]
        else:
            assert check["counted"] >= check["expected"]

    build = data["build"]
    configs = {r["config"]: r for r in build["rows"]}
    expected = {"clang", "coopt-cc (cold)", "coopt-cc (rebuild)"} | (
        {"ccache (cold)", "ccache (warm)"} if with_ccache else set()
    )
    assert set(configs) == expected
    assert configs["clang"]["ratio"] == 1.0
    for row in configs.values():
        _check_samples(row, build_reps)
    journaled = build["checks"]["coopt-cc (cold)"]
    assert journaled["counted"] == journaled["expected"] > 30  # Lua 5.4: 32 library TUs, lua.c, luac.c
    assert build["calls_through_cc"] > journaled["expected"]  # the links too
    replayed = build["checks"]["coopt-cc (rebuild)"]  # every rebuild compile went through coopt-cc-fast
    assert replayed["counted"] == replayed["expected"] >= journaled["expected"]
    for stat in ("median", "min"):
        assert set(build["projection"][stat]) >= {"projected_added_pct", "projected_added_pct_without_python_share"}

    miss = data["miss_breakdown"]
    assert miss["tu"] == "lua" and set(miss["own_ms"]) == set(TUS)
    assert any(step["calls"] > 0 for step in miss["steps"].values())
    assert isinstance(miss["site_imported"], bool)
    assert "coopt.wrapper.main" not in miss["lazy_imports"]
    assert {"startup", "launcher", "main"} <= set(miss["importtime"])

    assert len(data["targets"]) >= 5 and all(isinstance(t["met"], bool) for t in data["targets"])

    page = (tmp_path / "bench-wrapper.md").read_text()
    assert page.startswith("# coopt-cc wrapper overhead")
    assert data["tools"]["clang"] in page and data["machine"]["cpu_model"] in page and data["date"] in page
    for heading in ("## Per-compile latency", "## Whole build: Lua", "## Where coopt-cc's time goes on a miss",
                    "## Targets"):
        assert heading in page
    assert "| small | compile, hit" in page
