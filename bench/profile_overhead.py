"""What `coopt profile` costs on a ~10 s workload: recording overhead and the time to resolve samples to TUs.

Builds upstream Lua (from the Debian source package's .orig tarball) with this working tree's coopt-cc into a
private cache, calibrates a CPU-bound Lua script to run about 10 s, then times, interleaved and repeated:

    plain                 lua script.lua N
    perf record           perf record -e cpu-clock -- lua script.lua N                  (no chains, 4000 Hz)
    perf record dwarf     perf record -e cpu-clock -F 1000 --call-graph dwarf -- ...     (coopt's default)
    coopt profile none    coopt profile --call-graph none -- lua script.lua N           (record + resolve)
    coopt profile         coopt profile -- lua script.lua N                             (the default: dwarf)
    resolve none          coopt profile --perf-data perf.data                           (perf script + attribution)
    resolve               coopt profile --perf-data dwarf.data                          (the same, with unwinding)

and once with dwarf call graphs at perf's default 4000 Hz (why the default is 1000 Hz). Prints a markdown table
(docs/profile.md keeps the latest one) with medians and ranges and, with --json, writes the raw numbers.

    .venv/bin/python bench/profile_overhead.py [--seconds 10] [--repeat 3] [--json results.json]
"""

from __future__ import annotations

import argparse
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

LAUNCHER = """#!/bin/sh
'''':; exec "{python}" -I {flags} "$0" "$@" # '''
import sys
sys.path[:0] = [{src!r}] + {paths!r}
from {module} import main
sys.exit(main({args}))
"""

SCRIPT = """-- CPU-bound Lua: calls, arithmetic, tables, strings. arg[1] scales the work linearly.
local n = tonumber(arg[1])
local function fib(k) if k < 2 then return k end return fib(k - 1) + fib(k - 2) end
local s, acc, parts = 0, 0, {}
for r = 1, n do
  for i = 1, 2000000 do s = s + (i % 7) * (i % 13) end
  local t = {}
  for i = 1, 20000 do t[i] = i * r end
  for i = 1, #t do acc = acc + t[i] end
  for i = 1, 2000 do parts[#parts + 1] = tostring(i + r) end
  if #parts > 100000 then parts = {} end
  s = s + fib(18)
end
print(s, acc)
"""


def make_bin(where: Path) -> dict[str, str]:
    """coopt-cc and coopt launchers that run this working tree; the environment that puts them first on PATH."""
    import sysconfig

    paths = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    where.mkdir(parents=True, exist_ok=True)
    kinds = (("coopt-cc", "-S", "coopt.wrapper.main", "sys.argv"), ("coopt", "", "coopt.cli", ""))
    for name, flags, module, args in kinds:
        p = where / name
        p.write_text(LAUNCHER.format(python=sys.executable, flags=flags, src=str(ROOT / "src"), paths=paths,
                                     module=module, args=args))
        p.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOPT_")}
    env["PATH"] = "%s%s%s" % (where, os.pathsep, env.get("PATH", ""))
    env["LC_ALL"] = "C"
    return env


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system, the command and everything it waited for) of one run.

    CPU time is the steadier number on a shared machine: other processes stretch wall time, not CPU time."""
    cpu0 = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit("bench: `%s` failed (%d): %s" % (" ".join(cmd), proc.returncode, proc.stderr[-500:]))
    return elapsed, _children_cpu() - cpu0


def machine() -> dict[str, str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    perf = subprocess.run(["perf", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "load": "%.2f %.2f %.2f" % os.getloadavg(),
        "kernel": platform.release(),
        "perf": perf,
        "python": platform.python_version(),
    }


NAMES = ("plain", "perf record", "perf record dwarf", "coopt profile none", "coopt profile", "resolve none", "resolve")


def _range(values: list[float], unit: str = " s") -> str:
    return "%.2f%s (%.2f-%.2f)" % (statistics.median(values), unit, min(values), max(values))


def report(r: dict, repeat: int) -> None:
    """The markdown table docs/profile.md keeps: medians, and the range over the repeats in parentheses."""
    m = r["machine"]
    wall, cpu = r["wall_s"], r["cpu_s"]
    plain_wall, plain_cpu = statistics.median(wall["plain"]), statistics.median(cpu["plain"])

    def vs(case: str) -> str:
        return "%+.1f%% | %+.1f%%" % (100 * (statistics.median(wall[case]) / plain_wall - 1),
                                      100 * (statistics.median(cpu[case]) / plain_cpu - 1))

    print()
    print("Measured on %s (%s cores, load average %s while it ran), %s, kernel %s; medians of %d interleaved runs, "
          "(min-max) in parentheses." % (m["cpu"], m["cores"], m["load"], m["perf"], m["kernel"], repeat))
    print("Workload: `%s` (upstream Lua 5.4.4 built with coopt-cc, -O2). Without chains: %d samples at 4000 Hz, "
          "%.1f%% in journaled TUs, %s first; %.1f MB of perf.data. Default (dwarf, 1000 Hz): %d samples, %.0f MB."
          % (r["workload"], r["samples_none"], 100 * r["journaled_share"], r["top_tu"], r["perf_data_mb"],
             r["samples_dwarf"], r["dwarf_data_mb"]))
    print()
    print("| case | wall | CPU (user+sys) | wall vs plain | CPU vs plain |")
    print("|---|---:|---:|---:|---:|")
    rows = (
        ("plain run", "plain"),
        ("`perf record -e cpu-clock` alone (4000 Hz)", "perf record"),
        ("`perf record -e cpu-clock -F 1000 --call-graph dwarf` alone", "perf record dwarf"),
        ("`coopt profile --call-graph none -- CMD` (record + resolve)", "coopt profile none"),
        ("`coopt profile -- CMD`, the default: dwarf at 1000 Hz (record + resolve)", "coopt profile"),
    )
    for label, case in rows:
        print("| %s | %s | %s | %s |" % (label, _range(wall[case]), _range(cpu[case]),
                                          "| " if case == "plain" else vs(case)))
    print("| resolution alone, no chains (`--perf-data`) | %s | %s | | |" % (
        _range(wall["resolve none"]), _range(cpu["resolve none"])))
    print("| resolution alone, dwarf chains (`--perf-data`) | %s | %s | | |" % (
        _range(wall["resolve"]), _range(cpu["resolve"])))
    g = r["dwarf_4000"]
    print("| once: `--call-graph dwarf --freq 4000`, %d samples, %.0f MB: record | %.2f s | | %+.1f%% | |" % (
        g["samples"], g["data_mb"], g["record"], 100 * (g["record"] / plain_wall - 1)))
    print("| once: `--call-graph dwarf --freq 4000`: resolution | %.2f s | %.2f s | | |" % (
        g["resolve"], g["resolve_cpu"]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="target length of the workload (default 10)")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions of each timed case (default 3)")
    ap.add_argument("--json", help="write the raw numbers here")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    for tool in ("perf", "clang", "make", "nm"):
        if shutil.which(tool) is None:
            raise SystemExit("bench: %s is not installed" % tool)
    from support.debian_sources import upstream

    work = Path(tempfile.mkdtemp(prefix="coopt-profile-bench-"))
    try:
        env = make_bin(work / "bin")
        env["COOPT_CACHE_DIR"] = str(work / "cache")
        tree = work / "lua"
        shutil.copytree(upstream("lua5.4"), tree)
        print("building Lua with coopt-cc in %s" % tree, flush=True)
        subprocess.run(["make", "-j2", "-C", "src", "linux-noreadline", "CC=coopt-cc -std=gnu99"], cwd=tree, env=env,
                       check=True, capture_output=True)
        lua = str(tree / "src" / "lua")
        (work / "bench.lua").write_text(SCRIPT)

        probe = 60
        _, t = timed([lua, "bench.lua", str(probe)], work, env)
        n = max(1, round(probe * a.seconds / t))
        workload = [lua, "bench.lua", str(n)]
        print("workload: lua bench.lua %d (probe: %d rounds in %.2f s of CPU)" % (n, probe, t), flush=True)

        data, dwarf = work / "perf.data", work / "dwarf.data"
        wall: dict[str, list[float]] = {k: [] for k in NAMES}
        cpu: dict[str, list[float]] = {k: [] for k in NAMES}
        commands = {
            "plain": workload,
            "perf record": ["perf", "record", "-q", "-e", "cpu-clock", "-o", str(data), "--", *workload],
            "perf record dwarf": ["perf", "record", "-q", "-e", "cpu-clock", "-F", "1000", "--call-graph", "dwarf",
                                  "-o", str(work / "perf-dwarf.data"), "--", *workload],
            "coopt profile none": ["coopt", "profile", "--quiet", "--call-graph", "none", "-o", "n.json", "--",
                                   *workload],
            "coopt profile": ["coopt", "profile", "--quiet", "-o", "p.json", "--save-perf-data", str(dwarf), "--",
                              *workload],
            "resolve none": ["coopt", "profile", "--quiet", "-o", "rn.json", "--perf-data", str(data)],
            "resolve": ["coopt", "profile", "--quiet", "-o", "r.json", "--perf-data", str(dwarf)],
        }
        for i in range(a.repeat):
            for name, cmd in commands.items():  # interleaved: a burst of load hits every case alike
                w, c = timed(cmd, work, env)
                wall[name].append(w)
                cpu[name].append(c)
            print("  round %d: %s" % (i + 1, ", ".join("%s %.2f s (cpu %.2f s)" % (k, wall[k][-1], cpu[k][-1])
                                                       for k in NAMES)), flush=True)
        none = json.loads((work / "n.json").read_text())
        default = json.loads((work / "p.json").read_text())

        cg_data = work / "cg-4000.data"
        total, _ = timed(["coopt", "profile", "--quiet", "--freq", "4000", "-o", "g.json", "--save-perf-data",
                          str(cg_data), "--", *workload], work, env)
        g = json.loads((work / "g.json").read_text())
        rec = g["workload"]["seconds"]
        _, resolve_cpu = timed(["coopt", "profile", "--quiet", "-o", "gr.json", "--perf-data", str(cg_data)], work,
                               env)
        dwarf_4000 = {"total": total, "record": rec, "resolve": total - rec, "resolve_cpu": resolve_cpu,
                      "samples": g["samples"], "data_mb": cg_data.stat().st_size / 1e6}
        print("  dwarf at 4000 Hz: record %.2f s, resolve %.2f s (cpu %.2f s), %d samples, %.0f MB" % (
            rec, total - rec, resolve_cpu, g["samples"], dwarf_4000["data_mb"]), flush=True)

        result = {
            "machine": machine(),
            "workload": " ".join(["lua", "bench.lua", str(n)]),
            "samples_none": none["samples"],
            "samples_dwarf": default["samples"],
            "journaled_share": round(none["journaled_samples"] / none["samples"], 4),
            "top_tu": Path(none["tus"][0]["source"]).name,
            "wall_medians_s": {k: statistics.median(v) for k, v in wall.items()},
            "cpu_medians_s": {k: statistics.median(v) for k, v in cpu.items()},
            "wall_s": wall,
            "cpu_s": cpu,
            "dwarf_4000": dwarf_4000,
            "perf_data_mb": data.stat().st_size / 1e6,
            "dwarf_data_mb": dwarf.stat().st_size / 1e6,
        }
        report(result, a.repeat)
        if a.json:
            Path(a.json).write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    finally:
        if a.keep:
            print("work directory: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
