"""Issue 12's before/after: what the verifier costs on correct candidates and what it does with hostile ones.

Two parts, both on by default:

- correct: every `expect = "accepted"` case of tests/verify_corpus (every case with --all), verified in-process
  with the optimizer's defaults: verdict, wall seconds, CPU seconds (this process and every child it waited
  for: compilers, harnesses, the forked input runs) and input runs (inputs generated per build, summed over the
  builds). The false-rejection rate is the share of correct candidates not accepted.
- hostile: every case of tests/hostile_corpus, each verified in a process of its own with fake secrets in its
  environment (tests/support/hostile.py), screen on (or --screen off/both): verdict, whether it is one the
  manifest allows, and what escaped (probe files outside the scratch directory, the secret in a file, processes
  left alive, bytes on the test's port).

Run it before and after a change on the same machine; CPU seconds are steadier than wall seconds on a loaded one.

    .venv/bin/python bench/verify_hostile.py [--part correct|hostile] [--all] [--screen on|off|both]
                                             [--max-inputs N] [--json out.json] [CASE ...]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from coopt.verify.pipeline import VerifyOptions, verify  # noqa: E402
from support import hostile  # noqa: E402

CORRECT = ROOT / "tests" / "verify_corpus"
HOSTILE = ROOT / "tests" / "hostile_corpus"


def cpu_seconds() -> float:
    """User+system seconds of this process and of every child it has waited for (recursively)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


def correct_part(names: list[str], everything: bool, max_inputs: int) -> list[dict]:
    cases = tomllib.loads((CORRECT / "manifest.toml").read_text())["case"]
    rows = []
    for c in cases:
        if (names and c["name"] not in names) or (not everything and c["expect"] != "accepted"):
            continue
        wall, cpu = time.perf_counter(), cpu_seconds()
        ev = verify(str(CORRECT / c["original"]), str(CORRECT / c["candidate"]), functions=c.get("functions", []),
                    options=VerifyOptions(max_inputs=max_inputs, fuzz_seconds=c.get("fuzz", 0)))
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        v = ev.verdict
        got = v.reason.value if v.reason else v.code.value
        rows.append({"name": c["name"], "expect": c["expect"], "verdict": v.code.value, "reason": got,
                     "correct": got == c.get("reason", "accepted"), "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                     "input_runs": sum(fi.generated for fi in ev.inputs),
                     "compared": sum(fi.compared for fi in ev.inputs), "detail": v.detail[:200]})
        print("%-34s %-9s %-14s wall %6.2f s  cpu %6.2f s  %5d input runs" % (
            c["name"], c["expect"], got, wall, cpu, rows[-1]["input_runs"]), flush=True)
    return rows


def hostile_part(names: list[str], screens: list[bool], max_inputs: int) -> list[dict]:
    cases = tomllib.loads((HOSTILE / "manifest.toml").read_text())["case"]
    rows = []
    for c in cases:
        if names and c["name"] not in names:
            continue
        for screen in screens:
            tmp = Path(tempfile.mkdtemp(prefix="cz-hostile-bench-"))
            try:
                rows.append(_hostile_case(c, screen, tmp, max_inputs))
            finally:
                hostile.kill_survivors(tmp)
                hostile.remove_probes([tmp.parent])
                shutil.rmtree(tmp, ignore_errors=True)
            r = rows[-1]
            print("%-24s screen %-3s %-22s %-7s wall %6.1f s  %s" % (
                c["name"], "on" if screen else "off", r["got"], "ok" if r["as_expected"] else "NOT OK", r["wall_s"],
                "; ".join(r["escaped"]) or "contained"), flush=True)
    return rows


def _hostile_case(c: dict, screen: bool, tmp: Path, max_inputs: int) -> dict:
    work = tmp / "run" / "work"  # the directories above the scratch are tmp/run and tmp: both checked
    work.parent.mkdir(parents=True)
    with hostile.canaries() as can:
        argv = [sys.executable, hostile.__file__, str(HOSTILE / c["original"]), str(HOSTILE / c["candidate"]),
                "--workdir", str(work), "--screen", "on" if screen else "off", "--max-inputs", str(max_inputs)]
        wall, cpu = time.perf_counter(), cpu_seconds()
        proc = subprocess.run(argv, env={**os.environ, **can.env}, capture_output=True, text=True, timeout=1800,
                              check=False)
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        escaped = []
        outside = hostile.escaped_files([tmp, tmp / "run", work])
        if outside:
            escaped.append("files: " + " ".join(outside))
        leaked = can.leaks([tmp, *map(Path, hostile.escaped_files())])
        if can.token in proc.stdout + proc.stderr:
            leaked.append("(the verifier's output)")
        if leaked:
            escaped.append("secret in: " + " ".join(leaked))
        alive = hostile.survivors(tmp)
        if alive:
            escaped.append("%d processes alive" % len(alive))
        if can.received:
            escaped.append("port received %d connections" % len(can.received))
    if proc.returncode != 0:
        got, detail = "verifier-died", "exit %d: %s" % (proc.returncode, proc.stderr[-300:])
        escaped.append("the verifier died")
    else:
        v = json.loads(proc.stdout)["evidence"]["verdict"]
        got, detail = v["reason"] or v["code"], v["detail"][:300]
    allowed = c.get("reasons" if screen else "unscreened")
    return {"name": c["name"], "screen": screen, "attack": c["attack"], "got": got, "detail": detail,
            "allowed": allowed, "gap": c.get("gap", ""), "as_expected": allowed is None or got in allowed,
            "escaped": escaped, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}


def summary(correct: list[dict], host: list[dict]) -> dict:
    out: dict[str, object] = {}
    good = [r for r in correct if r["expect"] == "accepted"]
    if good:
        rejected = [r["name"] for r in good if r["verdict"] != "accepted"]
        out["correct"] = {
            "candidates": len(good), "false_rejections": len(rejected), "false_rejected": rejected,
            "false_rejection_rate": round(len(rejected) / len(good), 4),
            "wall_s": _stats([r["wall_s"] for r in good]), "cpu_s": _stats([r["cpu_s"] for r in good]),
            "input_runs": _stats([r["input_runs"] for r in good]),
        }
    if host:
        counted = [r for r in host if not r["gap"]]
        out["hostile"] = {
            "runs": len(host), "accepted": sum(1 for r in counted if r["got"] == "accepted"),
            "as_expected": sum(1 for r in counted if r["as_expected"]), "judged": len(counted),
            "escaped": sum(1 for r in host if r["escaped"]),
            "verdicts": {g: sum(1 for r in counted if r["got"] == g) for g in sorted({r["got"] for r in counted})},
        }
    return out


def _stats(xs: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(xs), 2), "mean": round(statistics.mean(xs), 2),
            "max": round(max(xs), 2), "sum": round(sum(xs), 2)}


def machine() -> dict[str, object]:
    def out(*argv: str) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=False, cwd=ROOT).stdout.strip()
        except OSError:
            return ""

    # src_tree: the hash of src/ at HEAD; equal hashes mean the same verifier whatever the branch.
    return {"commit": out("git", "rev-parse", "HEAD"), "branch": out("git", "rev-parse", "--abbrev-ref", "HEAD"),
            "src_tree": out("git", "rev-parse", "HEAD:src"), "src_dirty": bool(out("git", "status", "--short", "src")),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "host": platform.node(), "cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg(),
            "clang": out("clang", "--version").splitlines()[0] if out("clang", "--version") else ""}


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--part", choices=("correct", "hostile"), help="only this part")
    p.add_argument("--all", action="store_true", help="correct part: the wrong candidates too")
    p.add_argument("--screen", choices=("on", "off", "both"), default="on", help="hostile part")
    p.add_argument("--max-inputs", type=int, default=VerifyOptions.max_inputs)
    p.add_argument("--json", help="write the machine, every row and the summary here")
    p.add_argument("cases", nargs="*")
    a = p.parse_args()
    info = machine()
    correct = correct_part(a.cases, a.all, a.max_inputs) if a.part in (None, "correct") else []
    screens = {"on": [True], "off": [False], "both": [True, False]}[a.screen]
    host = hostile_part(a.cases, screens, a.max_inputs) if a.part in (None, "hostile") else []
    s = summary(correct, host)
    info["load_avg_at_end"] = os.getloadavg()
    print()
    print(json.dumps(s, indent=2, sort_keys=True))
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump({"version": 1, "machine": info, "max_inputs": a.max_inputs, "summary": s, "correct": correct,
                       "hostile": host}, f, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
