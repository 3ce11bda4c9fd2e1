"""`make demo`: coopt on a real project, end to end, as far as coopt goes today.

1. fetch Lua 5.4 from Debian sources (cached under ~/.cache/coopt-tests/debsrc);
2. build it with plain clang, then with coopt-cc (CC=coopt-cc on the make command line);
3. check every object is byte-identical to plain clang's (no variant exists yet) and Lua runs;
4. show what coopt journaled: compile_commands.json, cache statistics;
5. profile a CPU-bound Lua script when `coopt profile` is available.

The optimizer (`coopt optimize`) is not built yet, so this demo makes no speed claim: it says what it checked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

WORKLOAD = """
local function fib(n) if n < 2 then return n end return fib(n-1) + fib(n-2) end
local t = {}
for i = 1, 200000 do t[i] = (i * 7919) % 100003 end
table.sort(t)
local s = 0
for i = 1, #t do s = s + t[i] end
print(fib(27), s)
"""


def step(msg: str) -> None:
    print("\n== %s" % msg, flush=True)


def run(cmd: list[str], cwd: Path, env: dict, quiet: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=quiet, text=True)
    if proc.returncode != 0:
        sys.stderr.write((proc.stdout or "") + (proc.stderr or ""))
        raise SystemExit("demo: `%s` failed with exit code %d" % (" ".join(cmd), proc.returncode))
    return proc


def objects(src: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(src.glob("*.o"))}


def main() -> int:
    from support.debian_sources import SourceUnavailable, upstream

    if not shutil.which("coopt-cc"):
        raise SystemExit("demo: coopt-cc is not on PATH; run `make demo`, which installs it into .venv")
    work = Path(tempfile.mkdtemp(prefix="coopt-demo-"))
    cache = work / "cache"
    env = dict(os.environ, COOPT_CACHE_DIR=str(cache), LC_ALL="C")

    step("fetching Lua 5.4 from Debian sources")
    try:
        tree = upstream("lua5.4")
    except SourceUnavailable as exc:
        raise SystemExit("demo: %s" % exc) from exc
    src_tree = work / "lua"
    shutil.copytree(tree, src_tree)
    src = src_tree / "src"
    print("source: %s" % tree)

    step("building with plain clang")
    t0 = time.time()
    run(["make", "-j2", "linux-noreadline", "CC=clang"], src, env)
    plain_time = time.time() - t0
    plain = objects(src)
    run(["make", "clean"], src, env)
    print("%d objects in %.1f s" % (len(plain), plain_time))

    step("building with coopt-cc (cold cache)")
    t0 = time.time()
    run(["make", "-j2", "linux-noreadline", "CC=coopt-cc"], src, env)
    coopt_time = time.time() - t0
    wrapped = objects(src)
    same = [n for n in plain if wrapped.get(n) == plain[n]]
    print("%d objects in %.1f s; %d of %d byte-identical to plain clang's" % (len(wrapped), coopt_time, len(same),
                                                                              len(plain)))
    if len(same) != len(plain):
        raise SystemExit("demo: objects differ from plain clang's without any variant: this is a bug")

    script = work / "workload.lua"
    script.write_text(WORKLOAD)
    out = run([str(src / "lua"), str(script)], work, env).stdout.strip()
    print("lua workload output: %s" % out)

    step("what coopt journaled")
    run(["coopt", "compdb", "--all", "-o", str(work / "compile_commands.json")], work, env)
    print(run(["coopt", "compdb", "--all", "-o", str(work / "compile_commands.json")], work, env).stdout.strip())
    print(run(["coopt", "cache", "stats"], work, env).stdout.rstrip())

    help_text = run(["coopt", "--help"], work, env).stdout
    if "profile" in help_text.split("commands:")[-1]:
        step("profiling the workload with perf")
        proc = subprocess.run(
            ["coopt", "profile", "-o", str(work / "profile.json"), "--", str(src / "lua"), str(script)],
            cwd=work, env=env, capture_output=True, text=True,
        )
        if proc.returncode == 0:
            print(run(["coopt", "profile", "show", str(work / "profile.json")], work, env).stdout.rstrip())
        else:
            print("profiling failed: %s" % (proc.stderr.strip().splitlines() or ["?"])[-1])

    step("summary")
    print("Built Lua with coopt-cc: every object identical to plain clang's, every compile journaled.")
    print("Not shown yet: optimization. `coopt optimize` (agents, verification, variants) is still to be built,")
    print("so this demo claims no speedup. Work directory: %s" % work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
