"""bench/ccache_chain.py runs end to end (one repetition) and writes well-formed results.

No time is asserted. What is checked is the shape of the JSON and markdown and the benchmark's own proof that it
measured what it claims: the hit rebuilds were ccache hits for every compile, the first builds ccache misses, the
chain journaled every compile (through coopt-cc-fast on the rebuild).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, require

BENCH = ROOT / "bench" / "ccache_chain.py"


@pytest.mark.slow
def test_one_repetition_writes_wellformed_results(tmp_path: Path) -> None:
    require("clang", "make", "ccache")
    from support.debian_sources import SourceUnavailable, upstream

    try:
        upstream("lua5.4")
    except SourceUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--reps", "1", "--warmup", "0", "--call-reps", "3", "--output-dir",
         str(tmp_path)], capture_output=True, text=True, timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "ccache_chain.json").read_text())
    rows = {r["config"]: r for r in data["rows"]}
    assert set(rows) == {"clang", "ccache (first build)", "coopt-cc + ccache (first build)", "ccache (hit rebuild)",
                         "coopt-cc + ccache (hit rebuild)"}
    for name, row in rows.items():
        assert row["n"] == 1 and row["median_ms"] > 0
        if name.startswith("coopt-cc"):
            assert row["x_ccache_low"] <= row["x_ccache"] <= row["x_ccache_high"]
    n = data["checks"]["compiles_per_build"]
    assert n > 30  # Lua 5.4: 32 library TUs, lua.c, luac.c
    rebuild = data["checks"]["coopt-cc + ccache (hit rebuild)"]
    # The priming build missed every compile, the timed one hit every one.
    assert rebuild["ccache_misses"] == n and rebuild["ccache_hits"] == n
    assert rebuild["coopt_misses"] == 2 * n and rebuild["coopt_miss_fast"] >= n
    first = data["checks"]["coopt-cc + ccache (first build)"]
    assert first["ccache_misses"] == n and first["coopt_misses"] == n
    per_call = data["per_call"]
    assert per_call["ccache clang"]["n"] == per_call["coopt-cc + ccache clang"]["n"] == 3
    page = (tmp_path / "bench-ccache.md").read_text()
    assert page.startswith("# coopt-cc in front of ccache") and "Target (issue 13)" in page
