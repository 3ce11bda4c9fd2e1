"""`coopt nightly` end to end on bzip2 from Debian's sources (upstream's Makefile: a static libbz2.a linked into
./bzip2), with a coopt.toml holding its build, clean, test and profile hooks, a small budget, compiler tools only.

The module's run starts with tests that fail (a marker file is missing), so the run stops at the baseline tests
with exit 3; the marker is created and the rerun resumes there and goes to the end. Every step's output is then
checked: the journal, the profile, cache entries with evidence, the rebuild serving them, the tests, the report,
the state file. Two more runs: tests that fail only with the variants (exit 3, the variants withdrawn from the
cache) and a min_gain nothing can clear (exit 4, nothing stored). As in test_optimize.py, min_gain 0.5 makes a
variant that is not twice as slow count (and final_check = false keeps the whole-program check, which rightly
withdraws variants that make bzip2 slower, from undoing that): these tests prove the plumbing, not a speed-up; no
timing is asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import Coopt, require
from coopt.cache.store import Store

pytestmark = pytest.mark.slow

TUS = ("blocksort.c", "huffman.c", "crctable.c", "randtable.c", "compress.c", "decompress.c", "bzlib.c", "bzip2.c")
CONFIG = """# bzip2's nightly coopt run (the test writes this file)
[cache]
dir = "../cache"

[optimize]
budget = 2
pairs = 3
min_gain = 0.5
levels = ["flags", "pgo"]
final_check = false  # the whole-program check would withdraw variants that min_gain 0.5 let through

[hooks]
clean = "make clean"
build = "make -j2 bzip2 CC=$CC"
test = "test -f tests-enabled && make test"
profile = "./bzip2 -9 -c input.dat | cksum"
timeout = 900
"""


@dataclass
class Nightly:
    tree: Path
    coopt: Coopt
    cache: Path
    first: subprocess.CompletedProcess
    second: subprocess.CompletedProcess
    state_after_first: dict

    @property
    def nd(self) -> Path:
        return self.tree / ".coopt-nightly"

    def state(self) -> dict:
        return json.loads((self.nd / "state.json").read_text())

    def nightly(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.coopt.bin / "coopt"), "nightly", *args], cwd=self.tree,
                              env=dict(self.coopt.env, **env), capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def bz(launcher_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Nightly:
    require("clang", "make", "perf")
    from support.debian_sources import SourceUnavailable, copy_tree

    base = tmp_path_factory.mktemp("nightly-bzip2")
    try:
        tree = copy_tree("bzip2", base / "bzip2", pristine=True)
    except SourceUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    # About 2 MB of text: a fraction of a second of bzip2 -9, enough samples for a profile.
    text = b"".join((tree / n).read_bytes() for n in sorted(os.listdir(tree)) if n.endswith((".c", ".h", ".html")))
    (tree / "input.dat").write_bytes(text * max(1, (2 << 20) // len(text)))
    (tree / "coopt.toml").write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOPT_") and k != "CC"}
    # No COOPT_CACHE_DIR: the cache directory comes from coopt.toml, as it would in a CI job.
    env.update(PATH="%s%s%s" % (launcher_bin, os.pathsep, env.get("PATH", "")), LC_ALL="C")
    co = Coopt(bin=launcher_bin, cache_dir=base / "cache", env=env)
    run = Nightly(tree, co, base / "cache", None, None, {})  # type: ignore[arg-type]
    run.first = run.nightly()
    run.state_after_first = run.state()
    (tree / "tests-enabled").write_text("")
    run.second = run.nightly()
    return run


def test_first_run_stops_at_failing_baseline_tests(bz: Nightly) -> None:
    out = bz.first.stdout
    assert bz.first.returncode == 3, out + bz.first.stderr
    assert "[3/8] baseline-test: failed" in out and "fix them, then run `coopt nightly` again to resume" in out
    st = bz.state_after_first
    assert st["format"] == "coopt-nightly" and st["version"] == 1
    assert st["status"] == "failed" and st["exit_code"] == 3
    assert [st["steps"][s]["status"] for s in ("clean", "build", "baseline-test", "profile")] == [
        "done", "done", "failed", "pending"]


def test_rerun_resumes_and_finishes(bz: Nightly) -> None:
    out = bz.second.stdout
    assert bz.second.returncode == 0, out + bz.second.stderr
    lines = out.splitlines()
    assert lines[1] == "resuming the run started %s (clean, build finished earlier); starting at baseline-test" % (
        bz.state_after_first["started"])
    assert "[1/8] clean: done earlier" in lines and "[2/8] build: done earlier" in lines
    st = bz.state()
    assert st["status"] == "finished" and st["exit_code"] == 0 and st["resumed"] == 1
    assert st["started"] == bz.state_after_first["started"]
    for name in ("clean", "build"):  # not run again
        assert st["steps"][name] == bz.state_after_first["steps"][name]
    assert all(st["steps"][s]["status"] == "done" for s in st["steps"]), st["steps"]
    assert all(c.isprintable() for c in out.replace("\n", ""))  # no control characters in a CI log
    assert lines[-1] == "nightly: report .coopt-nightly/report.md; exit 0"


def test_build_journaled_every_tu(bz: Nightly) -> None:
    from coopt.journal import log as journal

    records = journal.read(str(bz.cache / "journal.jsonl"))
    compiled = {os.path.basename(r["source"]) for r in records if r["type"] == "compile"}
    assert compiled >= set(TUS)
    links = [r for r in records if r["type"] == "link" and os.path.basename(r["output"]) == "bzip2"]
    assert links
    assert bz.state()["steps"]["build"]["data"]["compiles"] == len(TUS)
    assert "CC=coopt-cc" not in CONFIG  # the build reached coopt-cc through $CC, which the nightly run sets


def test_profile_names_the_hot_tus(bz: Nightly) -> None:
    prof = json.loads((bz.nd / "profile.json").read_text())
    shares = {os.path.basename(t["source"]): t["share"] for t in prof["tus"]}
    assert "blocksort.c" in shares and max(shares, key=lambda n: shares[n]) in ("blocksort.c", "compress.c")
    assert prof["journal"] == str(bz.cache / "journal.jsonl")
    assert bz.state()["steps"]["profile"]["data"]["hot"][0][0] in shares


def test_cache_entries_carry_evidence(bz: Nightly) -> None:
    opt = bz.state()["steps"]["optimize"]["data"]
    # The budget bounds evaluations; duplicates (the same object as the baseline or an earlier attempt) are free
    # attempts since lineages (docs/guide.md), so attempts may outnumber it.
    assert 1 <= opt["spent"]["evaluations"] <= 2 and opt["attempts"] >= opt["spent"]["evaluations"]
    kept = {k["key"]: k for k in opt["kept"]}
    assert kept, bz.second.stdout
    entries = {e.key: e for e in Store(str(bz.cache)).entries()}
    assert set(kept) <= set(entries)
    for key in kept:
        meta = entries[key].meta
        ev = meta["evidence"]
        assert ev["verified"] is True and ev["verdict"]["code"] == "accepted" and ev["by"] == "coopt optimize"
        assert {c["name"] for c in ev["checks"]} >= {"build", "test", "bench"} and all(c["ok"] for c in ev["checks"])
        assert ev["interval"]["low"] <= ev["interval"]["ratio"] <= ev["interval"]["high"]
        assert ev["proposer"]["agent"].startswith("compiler-tools/") and meta["level"] in ("flags", "pgo")
        assert ev["bench"]["line"] == "{program} -9 -c input.dat | cksum"
        assert ev["run"] == str(bz.nd / "run")


def test_rebuild_served_the_variants_and_tests_pass(bz: Nightly) -> None:
    st = bz.state()
    kept = st["steps"]["optimize"]["data"]["kept"]
    assert st["steps"]["rebuild"]["data"] == {"hits": len(kept), "variants": len(kept)}
    entries = {e.key: e for e in Store(str(bz.cache)).entries()}
    for k in kept:
        assert Path(k["object"]).read_bytes() == Path(entries[k["key"]].object_path).read_bytes()
    assert st["steps"]["test"]["status"] == "done"
    bz.coopt.run(["make", "test"], cwd=bz.tree)  # and they still pass now
    log = (bz.nd / "logs" / "test.log").read_text()
    assert "cmp sample3.tst sample3.ref" in log and log.splitlines()[-1].startswith("# coopt exit 0")


def test_report_in_three_formats(bz: Nightly) -> None:
    md = (bz.nd / "report.md").read_text()
    assert md.startswith("# coopt nightly") and "| baseline-test | done |" in md and "resumed 1 time(s)" in md
    assert "# coopt optimize report" in md
    for k in bz.state()["steps"]["optimize"]["data"]["kept"]:
        assert os.path.basename(k["source"]) in md
    assert (bz.nd / "report.html").read_text().startswith("<!DOCTYPE html>")
    data = json.loads((bz.nd / "report.json").read_text())
    assert data["format"] == "coopt-optimize-report"
    assert bz.state()["steps"]["report"]["files"] == [str(bz.nd / n) for n in ("report.md", "report.html",
                                                                                "report.json")]


def test_tests_failing_with_the_variants_withdraw_them(bz: Nightly) -> None:
    """A test hook that passes before optimizing and fails after (a stand-in for a bug only the project's own
    tests find): the run's variants leave the cache, and the run is finished, not resumable."""
    before = {e.key for e in Store(str(bz.cache)).entries()}
    proc = bz.nightly("--fresh", COOPT_HOOK_TEST="make test && test ! -d .coopt-nightly/run")
    out = proc.stdout
    assert proc.returncode == 3, out + proc.stderr
    st = bz.state()
    kept = [k["key"] for k in st["steps"]["optimize"]["data"]["kept"]]
    assert kept and st["steps"]["baseline-test"]["status"] == "done" and st["steps"]["test"]["status"] == "failed"
    assert st["steps"]["test"]["data"]["withdrawn"] == kept
    assert "withdrew %d variant(s) from the cache" % len(kept) in out
    assert not set(kept) & {e.key for e in Store(str(bz.cache)).entries()}
    assert {e.key for e in Store(str(bz.cache)).entries()} <= before  # nothing new stayed
    assert st["status"] == "finished" and st["exit_code"] == 3 and (bz.nd / "report.md").exists()


def test_nothing_improved(bz: Nightly) -> None:
    before = {e.key for e in Store(str(bz.cache)).entries()}
    proc = bz.nightly("--budget", "1", COOPT_MIN_GAIN="50")
    out = proc.stdout
    assert proc.returncode == 4, out + proc.stderr
    assert "resuming" not in out  # the last run finished: this is a new one
    assert "[6/8] rebuild: skipped" in out and "nothing improved" in out and "min_gain 50.00" in out
    assert {e.key for e in Store(str(bz.cache)).entries()} == before
    st = bz.state()
    assert st["steps"]["optimize"]["data"]["kept"] == [] and st["exit_code"] == 4
