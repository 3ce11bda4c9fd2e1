"""Each level alone vs the levels together, on the bench programs (bench/programs/), measured against plain clang.

For every program and every configuration (one level alone, or several levels in one run) at the same budget:

    CC=coopt-cc make PROG                       journal the compile (the Makefile's -O2 -g)
    coopt profile -- ./PROG                     the hot TU
    coopt optimize --levels L --budget N ...    the level(s), judged on the whole program: the default run (with
                                                its self-check) is the test, a quarter of it the timed workload
    make clean; CC=coopt-cc make PROG; ./PROG   the rebuild serves the verified variant; its self-check passes
    CC=clang make PROG                          plain clang at the same flags, in a twin tree

then times the two programs in interleaved pairs: speed-up = ratio of medians with the verifier's 95% bootstrap
interval (CPU time). LLM tokens and the optimize run's wall time are divided by the verified percent of
speed-up (the interval's lower bound above 1.0; "-" when nothing was shown). Each row is written to the results
file as soon as it is done and skipped when the script runs again, so an interrupted run resumes where it
stopped (`--redo` measures rows again). Prints a markdown table; `--write-docs` puts it into docs/cooperation.md
and README.md.

    python bench/cooperation.py [--programs popcount_bits,crc_table] [--configs flags,pgo,compilers,compiler-levels]
        [--llm local] [--budget 4] [--pairs 9] [--final-pairs 15] [--min-gain 1.02]
        [--projects lua,bzip2,zlib] [--results bench/results/cooperation.json] [--write-docs] [--table-only]

Configurations: `flags`, `pgo`, `compilers`, `source`, `ir`, `asm` (one level alone); `compiler-levels` (flags,
pgo and compilers in one run); `all` (every level; needs `--llm`). With `--llm none` the LLM configurations are
skipped and the table says so.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]

from profile_overhead import machine, make_bin  # noqa: E402  (same directory)

PROGRAMS_DIR = ROOT / "bench" / "programs"
RESULTS = ROOT / "bench" / "results" / "cooperation.json"
FORMAT = 1
UNRECORDED = "a machine not recorded"  # the cpu of rows measured before rows recorded it


@dataclass(frozen=True)
class Config:
    """One column of the table: the levels one optimize run may use."""

    name: str
    levels: tuple[str, ...]
    llm: bool = False


CONFIGS: tuple[Config, ...] = (
    Config("flags", ("flags",)),
    Config("pgo", ("pgo",)),
    Config("compilers", ("compilers",)),
    Config("source", ("source",), llm=True),
    Config("ir", ("ir",), llm=True),
    Config("asm", ("asm",), llm=True),
    Config("compiler-levels", ("flags", "pgo", "compilers")),
    Config("all", ("flags", "pgo", "compilers", "source", "ir", "asm"), llm=True),
)
BY_NAME = {c.name: c for c in CONFIGS}
SINGLE = ("flags", "pgo", "compilers", "source", "ir", "asm")


def programs() -> list[str]:
    """The programs of bench/programs/Makefile, in its order."""
    m = re.search(r"^PROGRAMS = (.*?)(?<!\\)\n", (PROGRAMS_DIR / "Makefile").read_text(), re.S | re.M)
    if not m:
        raise SystemExit("bench: bench/programs/Makefile has no PROGRAMS line")
    return m.group(1).replace("\\", " ").split()


PROJECT_KINDS = {"lua": "real project: Lua 5.4", "bzip2": "real project: bzip2 1.0.8", "zlib": "real project: zlib"}


def kind_of(program: str) -> str:
    if program in PROJECT_KINDS:
        return PROJECT_KINDS[program]
    m = re.match(r"/\* Kind: ([^.]+)\.", (PROGRAMS_DIR / (program + ".c")).read_text())
    return m.group(1) if m else "?"


def quick_scale(program: str) -> str:
    """The scale of the optimize run's workload: about a quarter of the default run (grid_paths' scale is a problem
    size, where one less is a quarter of the work). The tests and the final comparison run the default."""
    src = (PROGRAMS_DIR / (program + ".c")).read_text()
    m = re.search(r"#define SCALE (\d+)", src)
    if not m:
        raise SystemExit("bench: %s.c has no #define SCALE" % program)
    n = int(m.group(1))
    return str(n - 1 if program == "grid_paths" else max(1, n // 4))


def sh(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 7200) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError("%s failed in %s (exit %d): %s" % (" ".join(cmd), cwd, proc.returncode,
                                                             (proc.stderr or proc.stdout).strip()[-1500:]))
    return proc.stdout


def tree(where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    for f in PROGRAMS_DIR.iterdir():
        if f.suffix in (".c", ".h") or f.name == "Makefile":
            shutil.copy(f, where / f.name)
    return where


def measure(plain: Path, served: Path, program: str, env: dict[str, str], pairs: int) -> dict:
    """The program's default run on both builds, interleaved; speed-up of the coopt-built one, CPU time."""
    from coopt.verify import sandbox
    from coopt.verify.perfstats import PerfSettings, interleaved, timed

    limits = sandbox.Limits(cpu_s=0, address_space_mb=0, file_size_mb=0, processes=0, wall_s=600)

    def one(t: Path) -> Callable[[], float]:
        scratch = tempfile.mkdtemp(prefix="coopt-coop-")
        return lambda: timed(["./" + program], scratch, env, limits, cpu=True, cwd=str(t), readonly=[str(t)])

    iv = interleaved(one(plain), one(served), PerfSettings(rounds=pairs))
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    return {"ratio": iv.ratio, "low": iv.low, "high": iv.high, "pairs": pairs,
            "plain_median_s": med(iv.samples_original), "coopt_median_s": med(iv.samples_candidate)}


def commit() -> str:
    """The coopt commit that measured a row (with "+" when the working tree had changes), for reading old rows."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return head + ("+" if dirty else "")


def stamp(a: argparse.Namespace) -> dict:
    """What every row records of how and where it was measured, for reading it beside rows of other runs."""
    return {"budget": a.budget, "pairs": a.pairs, "min_gain": a.min_gain, "date": time.strftime("%Y-%m-%d %H:%M"),
            "load": "%.2f %.2f %.2f" % os.getloadavg(), "commit": commit(), "cpu": machine()["cpu"]}


def run_row(program: str, cfg: Config, work: Path, env0: dict[str, str], a: argparse.Namespace) -> dict:
    """One (program, configuration): optimize, rebuild, check, time against plain clang."""
    from coopt.cache.stats import read as read_stats

    base = work / program / cfg.name
    shutil.rmtree(base, ignore_errors=True)
    served, plain = tree(base / "a"), tree(base / "b")  # same path length: the stack alignment follows the path
    cache = base / "cache"
    env = dict(env0, COOPT_CACHE_DIR=str(cache), COOPT_COMPILER=a.compiler)
    sh(["make", "CC=coopt-cc", program], served, env)
    quick = "./%s %s" % (program, quick_scale(program))
    sh(["coopt", "profile", "--quiet", "-o", "profile.json", "--", *quick.split()], served, env)
    run_dir = base / "run"
    args = ["coopt", "optimize", "--levels", ",".join(cfg.levels), "--budget", str(a.budget), "--pairs",
            str(a.pairs), "--min-gain", str(a.min_gain), "--no-final", "--run-dir", str(run_dir),
            "--bench", quick, "--test", "./" + program]
    if cfg.llm:
        args += ["--llm", a.llm]
        # [llm] timeout's default (120 s) is exported to the agents and shadows the local provider's own 600 s; a
        # 1.5B model on a loaded 2-core machine needs more than 120 s for one answer.
        env["COOPT_LLM_TIMEOUT"] = str(a.llm_timeout)
    t0 = time.monotonic()
    log = sh(args, served, env)
    seconds = time.monotonic() - t0
    state = json.loads((run_dir / "state.json").read_text())
    sh(["make", "clean"], served, env)
    before = read_stats(str(cache / "stats")).get("hit", 0)
    sh(["make", "CC=coopt-cc", program], served, env)
    hits = read_stats(str(cache / "stats")).get("hit", 0) - before
    out_served = sh(["./" + program], served, env)  # exits 1 on a failed self-check
    plain_env = {k: v for k, v in env.items() if not k.startswith("COOPT_")}
    sh(["make", "CC=" + a.compiler, program], plain, plain_env)
    if sh(["./" + program], plain, env) != out_served:
        raise RuntimeError("%s: output differs between the coopt and plain builds" % program)
    m = measure(plain, served, program, env, a.final_pairs)
    kept = [k for k in state["kept"].values() if not k["withdrawn"]]
    return {
        "program": program, "config": cfg.name, "levels": list(cfg.levels), **stamp(a),
        "evaluations": state["spent"]["evaluations"], "optimize_seconds": round(seconds, 1),
        "tokens": sum(x.get("tokens", 0) for x in state["attempts"]),
        "attempts": [{"level": x["level"], "label": x["label"], "verdict": x["verdict"], "tokens": x.get("tokens", 0),
                      "swept": x.get("swept", False),
                      "interval": x["interval"] and [x["interval"][k] for k in ("ratio", "low", "high")],
                      "detail": (x.get("detail") or "")[:200]} for x in state["attempts"]],
        "kept": [{"level": k["level"], "label": k["label"]} for k in kept],
        "hits": hits, "vs_plain": m, "status": state["status"], "log_tail": log.splitlines()[-3:],
    }


def run_project_row(project: str, cfg: Config, work: Path, env: dict[str, str], a: argparse.Namespace) -> dict:
    """A real project of bench/optimize_results.py (Lua, bzip2, zlib from Debian's sources) in one configuration:
    its own build, workload, tests and comparison with plain clang."""
    import optimize_results

    r = optimize_results.run_project(project, work / cfg.name, env, a.budget, a.pairs, a.final_pairs, "cpu",
                                     a.min_gain, a.compiler, cfg.levels, a.llm if cfg.llm else "none")
    return {"program": project, "config": cfg.name, "levels": list(cfg.levels), **stamp(a),
            "evaluations": r["evaluations"], "optimize_seconds": r["optimize_seconds"], "tokens": r["tokens"],
            "attempts": r["attempts"], "kept": [{"level": k["level"], "label": "%s %s" % (k["tu"], k["label"])}
                                                for k in r["kept"]],
            "hits": r["hits"], "vs_plain": r["vs_plain"], "status": r["status"]}


def compare_together(cell: dict[tuple[str, str], dict], progs: list[str], configs: list[Config]) -> list[str]:
    """One line per configuration of several levels: on how many programs it was worse than, the same as, or better
    than the best single level it holds (worse: its interval lies below the best's; better: above)."""
    out: list[str] = []
    for together in (c for c in configs if len(c.levels) > 1):
        counts = {"worse": [], "same": [], "better": []}  # type: dict[str, list[str]]
        unmeasured: set[str] = set()
        for p in progs:
            t = cell.get((p, together.name))
            singles = [r for r in (cell.get((p, lv)) for lv in together.levels) if r and "error" not in r]
            if t is None or "error" in t or not singles:
                continue
            unmeasured.update(lv for lv in together.levels if not any(r["config"] == lv for r in singles))
            best = max(singles, key=lambda r: r["vs_plain"]["ratio"])
            tv, bv = t["vs_plain"], best["vs_plain"]
            key = "worse" if tv["high"] < bv["low"] else "better" if tv["low"] > bv["high"] else "same"
            counts[key].append("%s (%s %.2f vs `%s` %.2f)" % (p, together.name, tv["ratio"], best["config"],
                                                            bv["ratio"]) if key != "same" else p)
        n = sum(len(v) for v in counts.values())
        if n:
            out += ["", "`%s` against the best of its levels alone%s, %d programs: worse on %d%s; the same within "
                    "the intervals on %d; better on %d%s." % (
                        together.name, " as far as they were measured (not run alone on some or all programs: %s)"
                        % ", ".join(sorted(unmeasured)) if unmeasured else "", n, len(counts["worse"]),
                        " (%s)" % ", ".join(counts["worse"]) if counts["worse"] else "", len(counts["same"]),
                        len(counts["better"]), " (%s)" % ", ".join(counts["better"]) if counts["better"] else "")]
    return out


def per_percent(r: dict) -> tuple[str, str]:
    """Tokens and seconds per verified percent (the interval's lower bound over 1.0)."""
    pct = (r["vs_plain"]["low"] - 1.0) * 100
    if pct <= 0:
        return "-", "-"
    return ("%.0f" % (r["tokens"] / pct) if r["tokens"] else "0"), "%.1f" % (r["optimize_seconds"] / pct)


def table(results: dict[str, dict], progs: list[str], configs: list[Config], info: dict) -> str:
    cell: dict[tuple[str, str], dict] = {(r["program"], r["config"]): r for r in results.values()}
    loads = sorted(float(r["load"].split()[0]) for r in results.values() if r.get("load"))
    if loads:
        info = dict(info, load="%.1f-%.1f" % (loads[0], loads[-1]))
        dates = sorted({r["date"][:10] for r in results.values() if r.get("date")})
        info["date"] = dates[0] if len(dates) == 1 else "%s to %s" % (dates[0], dates[-1])
    # What the rows were measured with, not what this invocation was given (a --table-only run has defaults).
    measured = [r for r in results.values() if "error" not in r]
    if measured:
        info = dict(info, budget=" or ".join(sorted({str(r["budget"]) for r in measured})),
                    final_pairs=" or ".join(sorted({str(r["vs_plain"]["pairs"]) for r in measured})),
                    **{k: " or ".join(sorted({str(r[k]) for r in measured})) for k in ("pairs", "min_gain")
                       if all(k in r for r in measured)})
    # Rows from different machines share one table only with their machine named: the majority's in the header,
    # the others' cells marked.
    cpus = [r.get("cpu", UNRECORDED) for r in measured]
    main_cpu = max(sorted(set(cpus)), key=cpus.count) if cpus else info["cpu"]
    marks = {c: "\u2020" * (i + 1) for i, c in enumerate(sorted(set(cpus) - {main_cpu}))}
    info = dict(info, cpu=main_cpu)
    # Say the machine was shared only when some row ended with more load than it has cores.
    shared = bool(loads) and loads[-1] > float(info.get("cores") or 1)
    lines = [
        "Measured %s on %s (%s cores, 1-minute load average %s when the rows ended%s), %s. Each cell: whole-program "
        "speed-up of the rebuilt program (served by coopt-cc) over plain clang at the program's own flags (%s), "
        "ratio of median CPU times [95%% bootstrap interval], %s interleaved pairs; then what was kept. Where nothing "
        "was kept both programs are built from the same source with the same compiler and flags, so that cell "
        "shows the row's measurement noise. Every configuration had the same budget: "
        "`coopt optimize --budget %s --pairs %s --min-gain %s`%s."
        % (info["date"], info["cpu"], info["cores"], info["load"],
           "; some rows were taken while other engineers' builds and tests shared the machine (each row's load is "
           "in the results file), so read the intervals, not the points" if shared else "", info["clang"],
           "-O2 -g for bench/programs, the project's own build for a real project"
           if any(p in PROJECT_KINDS for p in progs) else "-O2 -g",
           info["final_pairs"],
           info["budget"], info["pairs"], info["min_gain"],
           ", LLM levels with `--llm %s`" % info["llm"] if info["llm"] != "none" else ""),
        "",
        "| program (kind) | " + " | ".join("`%s`" % c.name for c in configs) + " |",
        "|---|" + "---|" * len(configs),
    ]
    missing: list[str] = []
    for p in progs:
        cells = []
        for c in configs:
            r = cell.get((p, c.name))
            if r is None:
                cells.append("not run")
                missing.append("%s/%s" % (p, c.name))
                continue
            if "error" in r:
                cells.append("error: %s" % r["error"][:80].replace("|", "/"))
                continue
            v = r["vs_plain"]
            kept = ", ".join("`%s`" % k["label"] for k in r["kept"]) or "nothing kept"
            cells.append("%.3f [%.3f, %.3f]%s; %s" % (v["ratio"], v["low"], v["high"],
                                                     marks.get(r.get("cpu", UNRECORDED), ""), kept))
        lines.append("| %s (%s) | %s |" % (p, kind_of(p), " | ".join(cells)))
    if marks:
        lines += ["", " ".join("%s: measured on %s." % (m, c) for c, m in marks.items())]
    lines += compare_together(cell, progs, configs)
    llm_rows = [r for r in results.values() if "error" not in r and (r["tokens"] or BY_NAME[r["config"]].llm)]
    if llm_rows:
        lines += ["", "Cost per verified percent (the interval's lower bound over 1.0) of the LLM configurations:", "",
                  "| program | configuration | tokens | optimize wall time | tokens / % | seconds / % |",
                  "|---|---|---|---|---|---|"]
        for r in sorted(llm_rows, key=lambda r: (r["program"], r["config"])):
            tok, sec = per_percent(r)
            lines.append("| %s | `%s` | %d | %.0f s | %s | %s |" % (r["program"], r["config"], r["tokens"],
                                                                   r["optimize_seconds"], tok, sec))
    lines += ["", "Not run: %s." % ", ".join(missing) if missing else "Every cell was run."]
    return "\n".join(lines) + "\n"


BEGIN, END = "<!-- cooperation-results:begin -->", "<!-- cooperation-results:end -->"


def write_docs(text: str) -> None:
    """Put the table between the markers of docs/cooperation.md and of README.md."""
    for doc in (ROOT / "docs" / "cooperation.md", ROOT / "README.md"):
        content = doc.read_text()
        if BEGIN not in content or END not in content:
            raise SystemExit("bench: %s has no %s ... %s section" % (doc, BEGIN, END))
        head, rest = content.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        doc.write_text(head + BEGIN + "\n" + text + END + tail)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--programs", default="", help="programs, comma-separated (default: all of bench/programs)")
    ap.add_argument("--configs", default="flags,pgo,compilers,compiler-levels",
                    help="configurations, comma-separated, of: %s (default: the compiler levels alone and together)"
                    % ",".join(c.name for c in CONFIGS))
    ap.add_argument("--projects", default="", help="real projects too, comma-separated, of lua,bzip2,zlib "
                    "(bench/optimize_results.py's, from Debian's sources; slow: minutes per row)")
    ap.add_argument("--llm", choices=("none", "local", "openai"), default="none",
                    help="the LLM of the source/ir/asm levels (default none: LLM configurations are skipped)")
    ap.add_argument("--llm-timeout", type=float, default=600.0,
                    help="seconds per LLM answer, COOPT_LLM_TIMEOUT of the LLM runs (default 600)")
    ap.add_argument("--budget", type=int, default=4, help="evaluations per run, the same for every configuration")
    ap.add_argument("--pairs", type=int, default=9, help="A/B pairs per candidate in the optimize run (default 9)")
    ap.add_argument("--final-pairs", type=int, default=15, help="pairs of the comparison with plain clang")
    ap.add_argument("--min-gain", type=float, default=1.02, help="passed to coopt optimize (default 1.02)")
    ap.add_argument("--compiler", default="clang", help="the real compiler of both builds (default clang)")
    ap.add_argument("--results", default=str(RESULTS), help="the results file, read to resume and written per row")
    ap.add_argument("--also", action="append", default=[],
                    help="another results file whose rows join the table (read only; e.g. a second run's); "
                    "where both have a row, the --results file's is shown")
    ap.add_argument("--redo", action="store_true", help="measure rows already in the results file again")
    ap.add_argument("--table-only", action="store_true", help="print (and --write-docs) the table, run nothing")
    ap.add_argument("--write-docs", action="store_true", help="put the table into docs/cooperation.md and README.md")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    progs = [p for p in a.programs.split(",") if p] or programs()
    unknown = [p for p in progs if p not in programs()]
    if unknown:
        raise SystemExit("bench: unknown program %s (known: %s)" % (", ".join(unknown), ", ".join(programs())))
    bad = [c for c in a.configs.split(",") if c and c not in BY_NAME]
    if bad:
        raise SystemExit("bench: unknown configuration %s (known: %s)" % (", ".join(bad), ", ".join(BY_NAME)))
    configs = [BY_NAME[c] for c in a.configs.split(",") if c]
    projects = [p for p in a.projects.split(",") if p]
    bad = [p for p in projects if p not in PROJECT_KINDS]
    if bad:
        raise SystemExit("bench: unknown project %s (known: %s)" % (", ".join(bad), ", ".join(PROJECT_KINDS)))
    if not a.programs and projects:
        progs = []
    results_path = Path(a.results)
    data = json.loads(results_path.read_text()) if results_path.exists() else {"format": FORMAT, "rows": {}}
    rows: dict[str, dict] = data["rows"]
    if not a.table_only:
        for tool in ("perf", a.compiler, "make"):
            if shutil.which(tool) is None:
                raise SystemExit("bench: %s is not installed" % tool)
        work = Path(tempfile.mkdtemp(prefix="coopt-coop-bench-"))
        env = make_bin(work / "bin")
        try:
            for p in progs + projects:
                for c in configs:
                    key = "%s/%s" % (p, c.name)
                    if c.llm and a.llm == "none":
                        print("[%s] skipped: needs --llm" % key, flush=True)
                        continue
                    if key in rows and "error" not in rows[key] and not a.redo:
                        print("[%s] already measured (--redo measures it again)" % key, flush=True)
                        continue
                    print("[%s] running (budget %d)" % (key, a.budget), flush=True)
                    try:
                        r = (run_project_row(p, c, work / p, env, a) if p in PROJECT_KINDS
                             else run_row(p, c, work, env, a))
                    except (RuntimeError, subprocess.TimeoutExpired, OSError, SystemExit) as exc:
                        r = {"program": p, "config": c.name, "error": str(exc)}
                    rows[key] = r
                    results_path.parent.mkdir(parents=True, exist_ok=True)
                    results_path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
                    if "error" in r:
                        print("[%s] error: %s" % (key, r["error"]), flush=True)
                    else:
                        v = r["vs_plain"]
                        print("[%s] %.3f [%.3f, %.3f] vs plain clang; kept %s; %d evaluations, %d tokens, %.0f s"
                              % (key, v["ratio"], v["low"], v["high"], [k["label"] for k in r["kept"]] or "nothing",
                                 r["evaluations"], r["tokens"], r["optimize_seconds"]), flush=True)
        finally:
            if a.keep:
                print("work directory kept: %s" % work)
            else:
                shutil.rmtree(work, ignore_errors=True)
    clang = subprocess.run([a.compiler, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    info = dict(machine(), date=time.strftime("%Y-%m-%d"), clang=clang, budget=a.budget, pairs=a.pairs,
                final_pairs=a.final_pairs, min_gain=a.min_gain, llm=a.llm)
    shown: dict[str, dict] = {}
    for extra in a.also:  # the results file's own rows win: it holds the newest measurement of a row
        shown.update(json.loads(Path(extra).read_text())["rows"])
    shown.update(rows)
    text = table(shown, progs + projects, configs, info)
    print()
    print(text)
    if a.write_docs:
        write_docs(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
