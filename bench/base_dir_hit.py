"""What a hit from another checkout costs: plain clang, a hit in the checkout that stored the variant, and the same
hit in a checkout at another path under base_dir (rebuilt with its own paths, cache/rebase.py).

Two copies of Lua 5.4's src/ (Debian's upstream tarball, fetched as the tests fetch it) at different paths; each
compiles `lvm.c` with Lua's flags plus `-g` and an absolute `-I`. Checkout A stores a flags-level variant (the
source itself, `coopt cache put --unverified`) into a shared file:// store; B fetches it once, then every call is
timed, interleaved: clang in B, coopt-cc in A (a served copy), coopt-cc in B (a rebuild and the code comparison).
Runs the Python coopt-cc of this working tree (no coopt-cc-fast: a hit is always decided by Python).

    python bench/base_dir_hit.py [--reps 9]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

LAUNCHER = """#!/bin/sh
'''':; exec "{python}" -I -S "$0" "$@" # '''
import sys
sys.path[:0] = [{src!r}, {purelib!r}]
from coopt.{module} import main
sys.exit(main({args}))
"""


def _launchers(d: Path) -> None:
    for name, module, args in (("coopt-cc", "wrapper.main", "sys.argv"), ("coopt", "cli", "")):
        p = d / name
        p.write_text(LAUNCHER.format(python=sys.executable, src=str(ROOT / "src"), module=module, args=args,
                                     purelib=sysconfig.get_paths()["purelib"]))
        p.chmod(0o755)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=9)
    a = ap.parse_args()
    from support.debian_sources import upstream

    with tempfile.TemporaryDirectory(prefix="coopt-bench-basedir-") as tmp:
        base = Path(tmp)
        (base / "bin").mkdir()
        _launchers(base / "bin")
        (base / "remote").mkdir()
        trees = {}
        for name, where in (("A", "home/alice/lua"), ("B", "srv/bob/work/lua")):
            trees[name] = base / where
            shutil.copytree(upstream("lua5.4") / "src", trees[name])
        env = {k: v for k, v in os.environ.items() if not k.startswith("COOPT_")}
        env.update(PATH="%s:%s" % (base / "bin", env["PATH"]), COOPT_SERVE_UNVERIFIED="1", LC_ALL="C",
                   COOPT_REMOTE_STORAGE="file://%s" % (base / "remote"))
        envs = {"A": dict(env, COOPT_CACHE_DIR=str(base / "cache-a"), COOPT_BASE_DIR=str(base / "home/alice")),
                "B": dict(env, COOPT_CACHE_DIR=str(base / "cache-b"), COOPT_BASE_DIR=str(base / "srv/bob/work"))}

        def args(name: str) -> list[str]:
            return ["-O2", "-g", "-Wall", "-Wextra", "-DLUA_COMPAT_5_3", "-DLUA_USE_LINUX",
                    "-I%s" % trees[name], "-c", str(trees[name] / "lvm.c"), "-o", "lvm.o"]

        def run(cmd: list[str], name: str) -> float:
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=trees[name], env=envs[name], check=True)
            return time.perf_counter() - t0

        run(["coopt-cc", *args("A")], "A")
        subprocess.run(["coopt", "cache", "put", "--artifact", "lvm.c", "--level", "flags", "--for-object", "lvm.o",
                        "--unverified"], cwd=trees["A"], env=envs["A"], check=True, capture_output=True)
        cases = {"clang (B)": (["clang", *args("B")], "B"),
                 "coopt-cc hit, same checkout (A)": (["coopt-cc", *args("A")], "A"),
                 "coopt-cc hit, other checkout, rebuilt (B)": (["coopt-cc", *args("B")], "B")}
        for cmd, name in cases.values():  # warm-up; B's first call fetches the entry from the store
            run(cmd, name)
        times: dict[str, list[float]] = {c: [] for c in cases}
        for _ in range(a.reps):
            for case, (cmd, name) in cases.items():
                times[case].append(run(cmd, name))
        stats = subprocess.run(["coopt", "cache", "stats"], env=envs["B"], capture_output=True, text=True).stdout
        clang = statistics.median(times["clang (B)"])
        print("Lua lvm.c, -O2 -g, %d interleaved repetitions; load average %s" % (a.reps, os.getloadavg()))
        print("| call | median ms | x clang |\n|---|---|---|")
        for case, ts in times.items():
            print("| %s | %.1f | %.2f |" % (case, 1000 * statistics.median(ts), statistics.median(ts) / clang))
        print("\nB's cache: " + " ".join(line.strip() for line in stats.splitlines() if line.startswith("hits")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
