"""What `coopt optimize` with the compiler tools alone gains on real programs, measured against plain clang.

For each project (Lua, bzip2, zlib from Debian's sources) this runs the whole workflow a user runs:

    CC=coopt-cc <the project's own build>            journal every TU (the project's own flags)
    coopt profile -- <workload>                      hot TUs
    coopt optimize --budget N --bench ... --test ...  flags and per-TU PGO, judged on the whole program
    <clean>; CC=coopt-cc <build>                     the rebuild serves the verified variants
    <the project's own tests>                        must pass with the variants

then builds a second copy of the tree with plain clang (same flags: the project's own) and times the bench
workload on the two programs in interleaved pairs: speed-up = ratio of medians, 95% bootstrap interval (the
verifier's statistics). Prints a markdown table; `--write-docs` puts it into docs/optimize.md.

    .venv/bin/python bench/optimize_results.py [--budget 8] [--pairs 15] [--final-pairs 21] [--min-gain 1.01]
        [--only lua,zlib] [--compiler clang-19] [--json results.json] [--write-docs]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from profile_overhead import machine, make_bin  # noqa: E402  (same directory; sys.path[0] when run as a script)

LUA_BENCH = """-- Mixed Lua: calls, closures, tables, sorting, string building and matching; about half a second.
local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
local t = {}
for i = 1, 1000000 do t[i] = (i * 7919) % 100003 end
table.sort(t)
local s = 0
for i = 1, #t, 3 do s = s + t[i] end
local words, parts = {}, {}
for i = 1, 200000 do parts[#parts + 1] = string.format("%d:%x", i, i * 31) end
local text = table.concat(parts, " ")
for w in text:gmatch("%d+:(%x+)") do words[w] = (words[w] or 0) + 1 end
local n = 0
for _ in pairs(words) do n = n + 1 end
local acc = 0
for _ = 1, 100 do local add = function(x) return x + 1 end for i = 1, 20000 do acc = add(acc) + (i & 7) end end
print(fib(30), s, n, acc, #text)
"""


def text_data(tree: Path, size: int, seed: int = 7) -> bytes:
    """Deterministic text made of the project's own source lines, shuffled: compresses like real text."""
    lines: list[bytes] = []
    for p in sorted(tree.rglob("*")):
        if p.suffix in (".c", ".h", ".txt", ".html", ".xml", ".1") and p.is_file():
            lines += p.read_bytes().splitlines(keepends=True)
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        out += lines[rng.randrange(len(lines))]
    return bytes(out[:size])


@dataclass(frozen=True)
class Project:
    name: str
    package: str
    pristine: bool
    build: list[list[str]]  # {cc}: the C compiler of this build
    clean: list[list[str]]
    program: str  # relative to the tree
    profile: list[str]  # argv given to `coopt profile --`
    bench: str  # shell line, in the tree
    tests: list[str]  # shell lines whose output must not change
    project_tests: list[list[str]]  # the project's own tests after the rebuild
    setup: Callable[[Path], None]
    configure: list[list[str]] = field(default_factory=list)  # run with CC={cc} in the environment


def _lua_setup(tree: Path) -> None:
    (tree / "bench.lua").write_text(LUA_BENCH)


def _data_setup(size: int) -> Callable[[Path], None]:
    def setup(tree: Path) -> None:
        (tree / "data.txt").write_bytes(text_data(tree, size))

    return setup


PROJECTS = {
    "lua": Project(
        "Lua 5.4.4 (upstream Makefile, -O2)", "lua5.4", True,
        build=[["make", "-j2", "-C", "src", "linux-noreadline", "CC={cc}"]], clean=[["make", "clean"]],
        program="src/lua", profile=["src/lua", "bench.lua"], bench="src/lua bench.lua",
        tests=["src/lua bench.lua", "src/lua %s" % (ROOT / "tests" / "support" / "test_real_lua_check.lua")],
        project_tests=[["make", "test"], ["src/lua", str(ROOT / "tests" / "support" / "test_real_lua_check.lua")]],
        setup=_lua_setup,
    ),
    "bzip2": Project(
        "bzip2 1.0.8 (upstream Makefile, -O2 -g, static libbz2.a)", "bzip2", True,
        build=[["make", "-j2", "CC={cc}", "bzip2"]], clean=[["make", "clean"]],
        program="bzip2", profile=["sh", "-c", "./bzip2 -9 -c data.txt > /dev/null"],
        bench="./bzip2 -9 -c data.txt > /dev/null",
        tests=["./bzip2 -9 -c data.txt | cksum", "./bzip2 -c data.txt | ./bzip2 -d -c | cksum"],
        project_tests=[["make", "CC={cc}", "test"]], setup=_data_setup(6 << 20),
    ),
    "zlib": Project(
        "zlib 1.2.13 (Debian tree, ./configure, -O3; minigzip with static libz.a)", "zlib", False,
        configure=[["./configure"]], build=[["make", "-j2"]], clean=[["make", "clean"]],
        program="minigzip", profile=["sh", "-c", "./minigzip -9 < data.txt > /dev/null"],
        bench="./minigzip -9 < data.txt > /dev/null",
        tests=["./minigzip -9 < data.txt | cksum", "./minigzip < data.txt | ./minigzip -d | cksum"],
        project_tests=[["make", "test"]], setup=_data_setup(6 << 20),
    ),
}


def sh(cmd: list[str], cwd: Path, env: dict[str, str], cc: str = "") -> str:
    argv = [a.format(cc=cc) for a in cmd]
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit("bench: %s failed in %s (exit %d):\n%s\n%s" % (
            " ".join(argv), cwd, proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
    return proc.stdout


def build(p: Project, tree: Path, env: dict[str, str], cc: str) -> None:
    for cmd in p.configure:
        sh(cmd, tree, dict(env, CC=cc), cc)
    for cmd in p.build:
        sh(cmd, tree, env, cc)


def measure(p: Project, plain: Path, served: Path, env: dict[str, str], pairs: int, what: str) -> dict:
    """The bench line on both programs, interleaved: speed-up of the coopt-built program over plain clang's, in
    CPU time (user+sys, the default) or wall time, with the verifier's statistics."""
    from coopt.verify import sandbox
    from coopt.verify.perfstats import PerfSettings, interleaved, timed

    limits = sandbox.Limits(cpu_s=0, address_space_mb=0, file_size_mb=0, processes=0, wall_s=600)

    def one(tree: Path) -> Callable[[], float]:
        # The tree is read-only inside the sandbox; the bench writes (if at all) into a scratch of its own.
        scratch = tempfile.mkdtemp(prefix="coopt-bench-")
        return lambda: timed([p.bench], scratch, env, limits, shell=True, cpu=what == "cpu", cwd=str(tree),
                             readonly=[str(tree)])

    iv = interleaved(one(plain), one(served), PerfSettings(rounds=pairs))
    return {"ratio": iv.ratio, "low": iv.low, "high": iv.high, "pairs": pairs, "measure": what,
            "plain_median_s": sorted(iv.samples_original)[len(iv.samples_original) // 2],
            "coopt_median_s": sorted(iv.samples_candidate)[len(iv.samples_candidate) // 2]}


def run_project(key: str, work: Path, env0: dict[str, str], budget: int, pairs: int, final_pairs: int,
                what: str, min_gain: float, compiler: str = "clang", levels: tuple[str, ...] = (),
                llm: str = "none") -> dict:
    """One project through the whole workflow; `levels` (default: the configured ones) and `llm` are passed to
    `coopt optimize` (bench/cooperation.py runs one level at a time)."""
    from coopt.cache.stats import read as read_stats
    from support.debian_sources import copy_tree

    p = PROJECTS[key]
    base = work / key
    cache = base / "cache"
    env = dict(env0, COOPT_CACHE_DIR=str(cache), COOPT_COMPILER=compiler)
    # Two trees with paths of the same length: the program's path reaches its stack alignment.
    served, plain = base / "tree-a", base / "tree-b"
    for tree in (served, plain):
        copy_tree(p.package, tree, pristine=p.pristine)
        p.setup(tree)
    t0 = time.monotonic()
    build(p, served, env, "coopt-cc")
    print("[%s] built with coopt-cc in %.0f s" % (key, time.monotonic() - t0), flush=True)
    sh(["coopt", "profile", "--quiet", "-o", "profile.json", "--", *p.profile], served, env)
    prof = json.loads((served / "profile.json").read_text())
    hot = [(Path(t["source"]).name, t["share"]) for t in prof["tus"][:4]]
    print("[%s] profile: %s" % (key, ", ".join("%s %.1f%%" % (n, 100 * s) for n, s in hot)), flush=True)
    run_dir = base / "run"
    args = ["coopt", "optimize", "--budget", str(budget), "--pairs", str(pairs), "--measure", what,
            "--min-gain", str(min_gain),
            "--run-dir", str(run_dir),
            "--bench", p.bench, "--train", p.bench, *[x for t in p.tests for x in ("--test", t)],
            *(["--levels", ",".join(levels)] if levels else []), *(["--llm", llm] if llm != "none" else [])]
    t0 = time.monotonic()
    out = sh(args, served, env)
    opt_seconds = time.monotonic() - t0
    print("\n".join("[%s] %s" % (key, line) for line in out.splitlines()), flush=True)
    state = json.loads((run_dir / "state.json").read_text())
    kept = [k for k in state["kept"].values() if not k["withdrawn"]]

    # The user's next build: clean, rebuild with coopt-cc (served variants), the project's own tests.
    for cmd in p.clean:
        sh(cmd, served, env)
    before = read_stats(str(cache / "stats")).get("hit", 0)
    build(p, served, env, "coopt-cc")
    hits = read_stats(str(cache / "stats")).get("hit", 0) - before
    for cmd in p.project_tests:
        sh(cmd, served, env, "coopt-cc")
    # Plain clang at the project's own flags, in the twin tree.
    plain_env = {k: v for k, v in env.items() if not k.startswith("COOPT_")}
    build(p, plain, plain_env, compiler)
    for t in p.tests:
        a, b = sh(["sh", "-c", t], served, env), sh(["sh", "-c", t], plain, env)
        if a != b:
            raise SystemExit("bench: %s: output differs between the coopt and plain builds: %s" % (key, t))
    print("[%s] rebuilt: %d hit(s); timing %d pairs against plain clang" % (key, hits, final_pairs), flush=True)
    m = measure(p, plain, served, env, final_pairs, what)
    print("[%s] coopt-built program vs plain clang: %.3f [%.3f, %.3f]" % (key, m["ratio"], m["low"], m["high"]),
          flush=True)
    final = state.get("final") or {}
    return {
        "project": p.name, "bench": p.bench, "hot": hot, "budget": budget, "pairs": pairs,
        "evaluations": state["spent"]["evaluations"], "optimize_seconds": round(opt_seconds),
        "tokens": sum(a.get("tokens", 0) for a in state["attempts"]),
        "attempts": [{"tu": Path(a["source"]).name, "level": a["level"], "label": a["label"], "verdict": a["verdict"],
                      "interval": a["interval"] and [a["interval"][k] for k in ("ratio", "low", "high")]}
                     for a in state["attempts"]],
        "kept": [{"tu": Path(k["source"]).name, "level": k["level"], "label": k["label"],
                  "interval": [k["interval"][x] for x in ("ratio", "low", "high")]} for k in kept],
        "noise": state["noise"]["interval"] and [state["noise"]["interval"][x] for x in ("ratio", "low", "high")],
        "optimize_final": final.get("interval") and [final["interval"][x] for x in ("ratio", "low", "high")],
        "hits": hits, "vs_plain": m, "status": state["status"],
    }


def table(results: list[dict], info: dict) -> str:
    lines = [
        "Measured %s on %s (%s cores, load average %s when it ended), clang %s; this machine is shared with other "
        "work, so timings swing from run to run: read the intervals, not the points. `coopt optimize --budget %d "
        "--pairs %d --min-gain %.2f --measure %s`, levels flags,pgo, PGO trained on the bench workload itself."
        % (info["date"], info["cpu"], info["cores"], info["load"], info["clang"], info["budget"], info["pairs"],
           info["min_gain"], info["measure"]),
        "",
        "| project | hot TUs (share) | budget used | kept variants (level, speed-up in the run) | noise check | "
        "rebuilt with coopt-cc vs plain clang [95%% CI], %s time |" % info["measure"],
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        kept = "; ".join("%s %s `%s` %.3f [%.3f, %.3f]" % (k["tu"], k["level"], k["label"], *k["interval"])
                         for k in r["kept"]) or "none"
        noise = "%.3f [%.3f, %.3f]" % tuple(r["noise"]) if r["noise"] else "-"
        vp = r["vs_plain"]
        lines.append("| %s | %s | %d evaluations, %d s | %s | %s | **%.3f [%.3f, %.3f]** (%d pairs, %d hit(s)) |" % (
            r["project"], ", ".join("%s %.0f%%" % (n, 100 * s) for n, s in r["hot"][:3]), r["evaluations"],
            r["optimize_seconds"], kept, noise, vp["ratio"], vp["low"], vp["high"], vp["pairs"], r["hits"]))
    return "\n".join(lines) + "\n"


BEGIN, END = "<!-- optimize-results:begin -->", "<!-- optimize-results:end -->"


def write_docs(text: str) -> None:
    doc = ROOT / "docs" / "optimize.md"
    content = doc.read_text()
    if BEGIN not in content or END not in content:
        raise SystemExit("bench: docs/optimize.md has no %s ... %s section" % (BEGIN, END))
    head, rest = content.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(head + BEGIN + "\n" + text + END + tail)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=int, default=8, help="evaluations per project (default 8)")
    ap.add_argument("--pairs", type=int, default=15, help="A/B pairs per candidate (default 15)")
    ap.add_argument("--final-pairs", type=int, default=21, help="pairs of the final comparison (default 21)")
    ap.add_argument("--only", default="lua,bzip2,zlib", help="projects, comma-separated (default all)")
    ap.add_argument("--measure", choices=("cpu", "wall"), default="cpu", help="what is timed (default cpu)")
    ap.add_argument("--min-gain", type=float, default=1.01,
                    help="passed to coopt optimize (default 1.01: the hand-measured PGO gains are 1.02-1.03, which "
                    "a lower bound of 1.02 cannot show on this machine)")
    ap.add_argument("--compiler", default="clang", help="the real compiler of both builds (coopt-cc's "
                    "COOPT_COMPILER and the plain build's CC), e.g. clang-19 (default clang)")
    ap.add_argument("--json", help="write the raw results here")
    ap.add_argument("--write-docs", action="store_true", help="put the table into docs/optimize.md")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    for tool in ("perf", a.compiler, "make", "nm", "ar"):
        if shutil.which(tool) is None:
            raise SystemExit("bench: %s is not installed" % tool)
    keys = [k for k in a.only.split(",") if k]
    unknown = [k for k in keys if k not in PROJECTS]
    if unknown:
        raise SystemExit("bench: unknown project %s (known: %s)" % (", ".join(unknown), ", ".join(PROJECTS)))
    work = Path(tempfile.mkdtemp(prefix="coopt-optimize-bench-"))
    try:
        env = make_bin(work / "bin")
        results = [run_project(k, work, env, a.budget, a.pairs, a.final_pairs, a.measure, a.min_gain, a.compiler)
                   for k in keys]
    finally:
        if a.keep:
            print("work directory kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    info = dict(machine(), date=time.strftime("%Y-%m-%d"), measure=a.measure, min_gain=a.min_gain, budget=a.budget,
                pairs=a.pairs,
                clang=subprocess.run([a.compiler, "--version"], capture_output=True, text=True).stdout.split("\n")[0])
    text = table(results, info)
    print()
    print(text)
    if a.json:
        Path(a.json).write_text(json.dumps({"machine": info, "results": results}, indent=1, sort_keys=True) + "\n")
    if a.write_docs:
        write_docs(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
