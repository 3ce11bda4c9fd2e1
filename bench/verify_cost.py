"""What the verifier costs and how often it is wrong, measured on tests/verify_corpus.

For every case in the manifest: the verdict, whether it is the expected one, and the wall seconds one `verify`
call takes (every build, every input, defaults of the optimizer except perf). Prints a summary and, with
--json, every row. The false-rejection rate is the share of correct candidates that are not accepted; the
detection rate the share of wrong ones rejected for their stated reason. The libFuzzer source runs where the
manifest asks for it (`fuzz = SECONDS`); `--fuzz SECONDS` fuzzes every case for that long per function instead,
`--no-fuzz` none (the cases only the fuzzer finds then count as missed).

Per wrong case it also reports how many input runs it took to find it (`runs_to_find`: every input run in the
builds and functions before the failing one, plus the failing input's position in its run) and which source made
the input. `--src DIR` imports coopt from another checkout's src/ (e.g. main's, for the cost before a change) and
judges this checkout's corpus with it; `--only correct|wrong` and `--prefix P` pick cases.

    .venv/bin/python bench/verify_cost.py [--max-inputs N] [--fuzz S | --no-fuzz] [--json out.json]
        [--src DIR] [--only correct|wrong] [--prefix P] [CASE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SRC = sys.argv[sys.argv.index("--src") + 1] if "--src" in sys.argv[:-1] else os.path.join(ROOT, "src")
sys.path.insert(0, os.path.abspath(_SRC))  # before coopt is imported: --src picks the code under measure

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from coopt.verify.evidence import Evidence  # noqa: E402

try:
    from coopt.verify.pipeline import VerifyOptions, verify
except ImportError:  # --src of a checkout from before api.py became pipeline.py
    from coopt.verify.api import VerifyOptions, verify  # type: ignore[no-redef]

CORPUS = os.path.join(ROOT, "tests", "verify_corpus")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--max-inputs", type=int, default=300)
    p.add_argument("--json", help="write every row here")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--fuzz", type=float, help="libFuzzer seconds per function for every case")
    how.add_argument("--no-fuzz", action="store_true", help="no fuzzing, whatever the manifest says")
    p.add_argument("--src", help="import coopt from this src/ directory (default: this checkout's)")
    p.add_argument("--only", choices=("correct", "wrong"), help="only the correct or only the wrong candidates")
    p.add_argument("--prefix", default="", help="only cases whose name starts with this")
    p.add_argument("cases", nargs="*")
    a = p.parse_args()
    with open(os.path.join(CORPUS, "manifest.toml"), "rb") as f:
        cases = tomllib.load(f)["case"]
    rows = []
    for c in cases:
        if a.cases and c["name"] not in a.cases:
            continue
        if not c["name"].startswith(a.prefix) or (a.only and (c["expect"] == "accepted") != (a.only == "correct")):
            continue
        fuzz_s = 0.0 if a.no_fuzz else a.fuzz if a.fuzz is not None else c.get("fuzz", 0.0)
        start = time.perf_counter()
        ev = verify(
            os.path.join(CORPUS, c["original"]),
            os.path.join(CORPUS, c["candidate"]),
            functions=c.get("functions", []),
            options=VerifyOptions(max_inputs=a.max_inputs, fuzz_seconds=fuzz_s),
        )
        secs = time.perf_counter() - start
        v = ev.verdict
        got = v.reason.value if v.reason else v.code.value
        want = c.get("reason", "accepted")
        rows.append(
            {
                "name": c["name"],
                "expect": c["expect"],
                "verdict": v.code.value,
                "reason": got,
                "correct": got == want,
                "seconds": round(secs, 2),
                "inputs": sum(fi.generated for fi in ev.inputs),
                "fuzz_seconds": round(sum(r.seconds for r in ev.fuzz), 2),
                "fuzz_executions": sum(r.executions for r in ev.fuzz),
                "found_by": v.reproducer.source if v.reproducer else "",
                "runs_to_find": _runs_to_find(ev),
            }
        )
        fz = " (fuzzed %.1f s)" % rows[-1]["fuzz_seconds"] if ev.fuzz else ""
        found = " after %d input runs (%s)" % (rows[-1]["runs_to_find"], rows[-1]["found_by"]) if v.reproducer else ""
        print(
            "%-34s %-9s %-14s %6.2f s%s%s %s"
            % (c["name"], c["expect"], got, secs, fz, found, "" if got == want else "MISMATCH")
        )
    good = [r for r in rows if r["expect"] == "accepted"]
    bad = [r for r in rows if r["expect"] == "rejected"]
    secs = [r["seconds"] for r in rows]
    print()
    if good:
        fr = sum(1 for r in good if r["verdict"] != "accepted")
        print("false rejections: %d of %d correct candidates (%.0f%%)" % (fr, len(good), 100.0 * fr / len(good)))
    if bad:
        caught = sum(1 for r in bad if r["verdict"] == "rejected")
        right = sum(1 for r in bad if r["correct"])
        print("wrong candidates rejected: %d of %d (%d for the stated reason)" % (caught, len(bad), right))
    fuzzed = [r for r in rows if r["fuzz_seconds"] or r["found_by"] == "libfuzzer"]
    if fuzzed:
        by_fuzzer = sum(1 for r in bad if r["found_by"] == "libfuzzer" and r["correct"])
        fuzz_s, execs = sum(r["fuzz_seconds"] for r in fuzzed), sum(r["fuzz_executions"] for r in fuzzed)
        print(
            "fuzzed: %d cases, %.1f s fuzzing in all, %d executions; wrong candidates rejected on a fuzzer input: %d"
            % (len(fuzzed), fuzz_s, execs, by_fuzzer)
        )
    if secs:
        print(
            "seconds per candidate: median %.2f, mean %.2f, max %.2f (accepted: median %.2f)"
            % (
                statistics.median(secs),
                statistics.mean(secs),
                max(secs),
                statistics.median([r["seconds"] for r in good]) if good else 0.0,
            )
        )
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump({"version": 1, "rows": rows}, f, indent=2, sort_keys=True)
    return 0


def _runs_to_find(ev: Evidence) -> int:
    """Input runs until the one that showed the fault: all runs of the builds and functions judged before, plus
    the failing input's position in its own run (0 when no input showed it: compile, interface, screen)."""
    v = ev.verdict
    index = getattr(v.reproducer, "index", -1) if v.reproducer else -1  # older checkouts (--src) lack it
    runs = ev.inputs
    if index < 0 or not runs:
        return 0
    before = sum(fi.compared + fi.invalid + fi.inconclusive for fi in runs[:-1])
    return before + index + 1


if __name__ == "__main__":
    sys.exit(main())
