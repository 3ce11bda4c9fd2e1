"""What the verifier costs and how often it is wrong, measured on tests/verify_corpus.

For every case in the manifest: the verdict, whether it is the expected one, and the wall seconds one `verify`
call takes (both builds, every input, defaults of the optimizer except perf). Prints a summary and, with
--json, every row. The false-rejection rate is the share of correct candidates that are not accepted; the
detection rate the share of wrong ones rejected for their stated reason.

    .venv/bin/python bench/verify_cost.py [--max-inputs N] [--json out.json] [CASE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from coopt.verify.api import VerifyOptions, verify  # noqa: E402

CORPUS = os.path.join(ROOT, "tests", "verify_corpus")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--max-inputs", type=int, default=300)
    p.add_argument("--json", help="write every row here")
    p.add_argument("cases", nargs="*")
    a = p.parse_args()
    with open(os.path.join(CORPUS, "manifest.toml"), "rb") as f:
        cases = tomllib.load(f)["case"]
    rows = []
    for c in cases:
        if a.cases and c["name"] not in a.cases:
            continue
        start = time.perf_counter()
        ev = verify(
            os.path.join(CORPUS, c["original"]),
            os.path.join(CORPUS, c["candidate"]),
            functions=c.get("functions", []),
            options=VerifyOptions(max_inputs=a.max_inputs),
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
            }
        )
        print("%-34s %-9s %-14s %6.2f s %s" % (c["name"], c["expect"], got, secs, "" if got == want else "MISMATCH"))
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


if __name__ == "__main__":
    sys.exit(main())
