#!/usr/bin/env python3
"""What a remote store behind the local cache costs, and what a remote hit saves, per compile.

Cases, each one compile of the same TU (`coopt-cc` is this working tree's Python wrapper, no coopt-cc-fast), timed
with interleaved repetitions (each repetition runs every case once in a fresh random order) and reported as medians
and as ratios to plain clang:

  plain              clang alone
  local miss         coopt-cc, no remote configured, no variant
  miss, <kind>       coopt-cc, a local miss, one remote configured that has nothing for the TU (one GET)
  local hit          coopt-cc, the variant in the local cache
  remote hit, <kind> coopt-cc, a fresh local cache, the variant on the remote (GET manifest, GET entry, store it
                     locally, then the usual hit: -fsyntax-only check and copy)
  dead, first        a remote on a port nothing listens on, its down stamp expired: one refused connection
  dead, skipped      the same while the stamp is fresh: the remote is not contacted
  hanging, first     a server that accepts and never answers: the backend's timeout, once
  hanging, skipped   the same while the stamp is fresh

TUs: a small one (bench/overhead/workloads.small_tu) and Lua's lvm.c with Lua's flags (when the Debian source is
available). Servers: redis-server and nginx WebDAV from tests/support/servers.py on 127.0.0.1; file:// always.

    python bench/remote_cache.py [--reps N] [--quick] [--output FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT / "tests", ROOT / "bench"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from overhead.machine import load_average, machine_info  # noqa: E402
from overhead.timing import BenchError, Case, Samples, clean_env, interleave, progress  # noqa: E402
from overhead.workloads import Tu, lua_tu, small_tu  # noqa: E402

LAUNCHER = """#!/bin/sh
'''':; exec "{python}" -I -S "$0" "$@" # '''
import sys
sys.path[:0] = [{src!r}, {purelib!r}, {platlib!r}]
from coopt.wrapper.main import main
sys.exit(main(sys.argv))
"""
CLI = LAUNCHER.replace("-I -S", "-I").replace("from coopt.wrapper.main import main", "from coopt.cli import main") \
    .replace("sys.exit(main(sys.argv))", "sys.exit(main())")


def _launchers(d: Path) -> tuple[str, str]:
    paths = sysconfig.get_paths()
    fmt = dict(python=sys.executable, src=str(ROOT / "src"), purelib=paths["purelib"], platlib=paths["platlib"])
    for name, text in (("coopt-cc", LAUNCHER), ("coopt", CLI)):
        (d / name).write_text(text.format(**fmt))
        (d / name).chmod(0o755)
    return str(d / "coopt-cc"), str(d / "coopt")


@contextmanager
def _stores(work: Path, kinds: list[str]) -> Iterator[dict[str, tuple[str, str]]]:
    """{kind: (spec of an empty store, spec of the store that will hold the variant)}."""
    out: dict[str, tuple[str, str]] = {}
    (work / "file-empty").mkdir()
    (work / "file-full").mkdir()
    out["file"] = ("file://%s" % (work / "file-empty"), "file://%s" % (work / "file-full"))
    with ExitStack() as stack:
        try:
            from support import servers
        except ImportError:
            servers = None
        for kind in kinds:
            if kind == "file":
                continue
            if servers is None:
                progress("tests/support/servers.py missing: no %s" % kind)
                continue
            try:
                empty = stack.enter_context(servers.remote_store(kind, work / (kind + "-empty")))
                full = stack.enter_context(servers.remote_store(kind, work / (kind + "-full")))
            except Exception as exc:  # a server that cannot start here: measure the others
                progress("no %s server: %s" % (kind, exc))
                continue
            out[kind] = (empty.spec, full.spec)
        yield out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cases(tu: Tu, work: Path, cc: str, cli: str, stores: dict[str, tuple[str, str]],
           hanging_port: int) -> list[Case]:
    base = clean_env()
    cwd = str(tu.cwd)
    argv_cc = [cc, *tu.compile_args]
    # A cache directory with the compiler identity memo only: what every fresh cache below starts from, so a
    # remote hit is not charged for hashing the compiler binary once.
    template = work / ("template-" + tu.label)
    subprocess.run(argv_cc, cwd=cwd, env=dict(base, COOPT_CACHE_DIR=str(template)), check=True,
                   capture_output=True)
    for name in os.listdir(template):
        if name != "compilers":
            p = template / name
            shutil.rmtree(p) if p.is_dir() else p.unlink()

    def fresh_cache(tag: str) -> dict[str, str]:
        d = Path(tempfile.mkdtemp(prefix="cache-%s-" % tag, dir=work))
        shutil.rmtree(d)
        shutil.copytree(template, d)
        return {"COOPT_CACHE_DIR": str(d)}

    miss_cache = str(work / ("miss-" + tu.label))
    hit_cache = str(work / ("hit-" + tu.label))
    # The variant: the same source plus a retained string; stored locally and uploaded to every "full" store.
    variant = tu.cwd / ("variant-" + tu.source)
    variant.write_text((tu.cwd / tu.source).read_text() + '\n__attribute__((used)) static const char m[] = "v";\n')
    full_specs = " ".join(full for _, full in stores.values())
    put_env = dict(base, COOPT_CACHE_DIR=hit_cache, COOPT_REMOTE_STORAGE=full_specs)
    subprocess.run(argv_cc, cwd=cwd, env=put_env, check=True, capture_output=True)
    put = subprocess.run([cli, "cache", "put", "--artifact", str(variant), "--for-object", tu.object_name,
                          "--unverified"], cwd=cwd, env=put_env, capture_output=True, text=True)
    if put.returncode != 0 or put.stdout.count("uploaded") != len(stores):
        raise BenchError("cache put did not upload everywhere: %s %s" % (put.stdout, put.stderr))

    cases = [
        Case("plain", ["clang", *tu.compile_args], cwd, base),
        Case("local miss", argv_cc, cwd, dict(base, COOPT_CACHE_DIR=miss_cache)),
        Case("local hit", argv_cc, cwd, dict(base, COOPT_CACHE_DIR=hit_cache)),
    ]
    for kind, (empty, full) in stores.items():
        cases.append(Case("miss, %s" % kind, argv_cc, cwd,
                          dict(base, COOPT_CACHE_DIR=miss_cache, COOPT_REMOTE_STORAGE=empty)))
        cases.append(Case("remote hit, %s" % kind, argv_cc, cwd, dict(base, COOPT_REMOTE_STORAGE=full),
                          prepare=lambda k=kind: fresh_cache(k)))
    for label, spec in (("dead", "http://127.0.0.1:%d/c/" % _free_port()),
                        ("hanging", "http://127.0.0.1:%d/c/" % hanging_port)):
        cache = work / ("%s-%s" % (label, tu.label))
        env = dict(base, COOPT_CACHE_DIR=str(cache), COOPT_REMOTE_STORAGE=spec)

        def expire(c: Path = cache) -> dict[str, str]:
            shutil.rmtree(c / "remote", ignore_errors=True)
            return {}

        def stamp(c: Path = cache, e: dict = env) -> dict[str, str]:
            if not list((c / "remote").glob("down-*")):
                subprocess.run(argv_cc, cwd=cwd, env=e, check=True, capture_output=True)
            return {}

        cases.append(Case("%s, first" % label, argv_cc, cwd, env, prepare=expire))
        cases.append(Case("%s, skipped" % label, argv_cc, cwd, dict(env, COOPT_REMOTE_RETRY_AFTER="3600"),
                          prepare=stamp))
    return cases


def _check(tu: Tu, work: Path, cc: str, stores: dict[str, tuple[str, str]]) -> None:
    """The cases measure what they claim: the remote hit serves the variant, the misses do not."""
    base = clean_env()
    obj = tu.cwd / tu.object_name
    subprocess.run(["clang", *tu.compile_args], cwd=tu.cwd, env=base, check=True)
    plain = obj.read_bytes()
    for kind, (_, full) in stores.items():
        d = Path(tempfile.mkdtemp(dir=work))
        subprocess.run([cc, *tu.compile_args], cwd=tu.cwd, check=True,
                       env=dict(base, COOPT_CACHE_DIR=str(d), COOPT_REMOTE_STORAGE=full))
        if obj.read_bytes() == plain:
            raise BenchError("remote hit, %s: the variant was not served" % kind)


def _table(tu: Tu, samples: dict[str, Samples]) -> list[str]:
    plain = samples["plain"].median
    miss = samples["local miss"].median
    rows = ["", "### %s" % tu.label, "",
            "| case | median ms | vs plain clang | added over plain | added over a local miss | min ms |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, s in samples.items():
        rows.append("| %s | %.1f | %.2fx | %+.1f ms | %+.1f ms | %.1f |"
                    % (name, s.median, s.median / plain, s.median - plain, s.median - miss, s.minimum))
    return rows


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="remote_cache.py", description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--quick", action="store_true", help="3 repetitions, small TU only")
    p.add_argument("--kinds", default="file,redis,http")
    p.add_argument("--output", type=Path, help="also write the markdown here")
    a = p.parse_args(argv)
    reps = 3 if a.quick else a.reps
    lines = ["## Remote cache, per compile (bench/remote_cache.py)", "",
             "Machine: %s, %s usable cores; load average at start %s; %d interleaved repetitions, medians."
             % (machine_info().get("cpu_model"), machine_info().get("nproc"),
                " ".join("%.1f" % x for x in load_average()), reps)]
    with tempfile.TemporaryDirectory(prefix="coopt-bench-remote-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        (work / "bin").mkdir()
        cc, cli = _launchers(work / "bin")
        hanging = socket.socket()
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(64)  # the kernel accepts; nobody ever answers
        stack.callback(hanging.close)
        stores = stack.enter_context(_stores(work, a.kinds.split(",")))
        tus = [small_tu(work)]
        if not a.quick:
            try:
                tus.append(lua_tu(work))
            except Exception as exc:
                progress("no Lua TU: %s" % exc)
        for tu in tus:
            cases = _cases(tu, work, cc, cli, stores, hanging.getsockname()[1])
            _check(tu, work, cc, stores)
            samples = interleave(cases, reps, 1, 1, tu.label)
            lines.extend(_table(tu, samples))
    lines.append("")
    lines.append("Load average at the end: %s." % " ".join("%.1f" % x for x in load_average()))
    text = "\n".join(lines) + "\n"
    print(text)
    if a.output:
        a.output.write_text(text)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as exc:
        sys.stderr.write("remote_cache.py: error: %s\n" % exc)
        sys.exit(1)
