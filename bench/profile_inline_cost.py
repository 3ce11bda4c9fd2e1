"""What attributing samples to inlined source functions (profile/inline.py) costs when resolving a profile.

Generates a single-file program whose work is spread over 60 small static functions that clang inlines into
`main` (many distinct hot addresses, all inside `main`), builds it with this working tree's coopt-cc at -O2 -g,
records one perf.data with coopt's default call graphs (dwarf, 1000 Hz), then times, interleaved and repeated:

    symbolizer on    coopt profile --perf-data perf.data                       (llvm-symbolizer --inlining)
    symbolizer off   COOPT_SYMBOLIZER=/nonexistent coopt profile --perf-data ... (samples stay with `main`)

and prints a markdown table with medians and ranges, the samples, and how many functions each profile names.

    .venv/bin/python bench/profile_inline_cost.py [--seconds 5] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from profile_overhead import machine, make_bin  # noqa: E402

N_FUNCS = 60


def program() -> str:
    funcs = "".join(
        "static unsigned f%d(const unsigned char *p, int n) { unsigned h = %du; "
        "for (int i = 0; i < n; i++) h = (h ^ p[i]) * %du + %d; return h; }\n"
        % (k, 2166136261 + k, 16777619 + 2 * k, k)
        for k in range(N_FUNCS))
    calls = "".join("        t += f%d(buf, 512 + %d);\n" % (k, k) for k in range(N_FUNCS))
    return ("#include <stdio.h>\n#include <stdlib.h>\n" + funcs + "int main(int argc, char **argv) {\n"
            "    int rounds = atoi(argv[1]); unsigned char buf[1024]; unsigned t = 0;\n"
            "    for (int i = 0; i < 1024; i++) buf[i] = (unsigned char)(i * 7);\n"
            "    for (int r = 0; r < rounds; r++) {\n        buf[r & 1023]++;\n" + calls + "    }\n"
            "    printf(\"%u\\n\", t);\n    return 0;\n}\n")


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit("bench: `%s` failed: %s" % (" ".join(cmd), proc.stderr[-500:]))
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="about how long the recorded run takes")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="coopt-inline-bench-") as tmp:
        work = Path(tmp)
        env = make_bin(work / "bin")
        env["COOPT_CACHE_DIR"] = str(work / "cache")
        (work / "prog.c").write_text(program())
        subprocess.run(["coopt-cc", "-O2", "-g", "-c", "prog.c", "-o", "prog.o"], cwd=work, env=env, check=True)
        subprocess.run(["coopt-cc", "prog.o", "-o", "prog"], cwd=work, env=env, check=True)
        one = run(["./prog", "200"], work, env)
        rounds = max(200, int(200 * args.seconds / max(one, 1e-3)))
        subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "1000", "--call-graph", "dwarf", "-o",
                        "perf.data", "./prog", str(rounds)], cwd=work, env=env, check=True, capture_output=True)
        sides = {"symbolizer on": dict(env), "symbolizer off": dict(env, COOPT_SYMBOLIZER="/nonexistent")}
        times: dict[str, list[float]] = {k: [] for k in sides}
        named: dict[str, int] = {}
        samples = 0
        for _ in range(args.repeat):
            for name, e in sides.items():
                out = "%s.json" % name.replace(" ", "-")
                times[name].append(run(["coopt", "profile", "-o", out, "--perf-data", "perf.data"], work, e))
                prof = json.loads((work / out).read_text())
                named[name] = len(prof["functions"])
                samples = prof["samples"]
    print("machine: %s" % machine())
    print("%d samples (dwarf call graphs, 1000 Hz), %d functions inlined into main, %d repeats\n"
          % (samples, N_FUNCS, args.repeat))
    print("| resolve | median s | range s | functions named |")
    print("|---|---|---|---|")
    for name, ts in times.items():
        print("| %s | %.2f | %.2f-%.2f | %d |" % (name, statistics.median(ts), min(ts), max(ts), named[name]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
