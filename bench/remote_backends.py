#!/usr/bin/env python3
"""What the remote storage backends (cache/remote) cost: import time, and loopback round trips on real servers.

  - `python -X importtime` of coopt.cache.remote (what coopt-cc pays to parse the specs), and of the network
    backend modules open_backend imports on first use (socket and friends), median of several fresh interpreters;
  - per backend (file://, redis-server, nginx WebDAV from tests/support/servers.py, all on 127.0.0.1): the first
    get through a fresh backend (connect, AUTH), then a small get hit, a miss, exists, a small put, and a 1 MB get,
    medians over many calls on the kept connection;
  - the cost of a dead port (refused at once) and of a hanging server (the configured timeouts) for one get.

Nothing asserts a time. Results on stdout and in bench/results/remote_backends.json.

    python bench/remote_backends.py [--reps N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT / "src", ROOT / "tests"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from coopt.cache.remote import RemoteError, open_backend, parse_spec  # noqa: E402
from support.servers import dead_port, hanging_server, remote_store  # noqa: E402

KEY = "e/ab/abcdef0123456789abcdef0123456789"


def importtime(statement: str, module: str, runs: int = 9) -> tuple[float, float]:
    """Median cumulative import time (ms) of `module` while running `statement` in a fresh `python -I -S`, and
    the median of the whole statement's imports that were not already loaded at start-up."""
    cum: list[float] = []
    for _ in range(runs):
        code = "import sys; sys.path.insert(0, %r); %s" % (str(ROOT / "src"), statement)
        err = subprocess.run([sys.executable, "-X", "importtime", "-I", "-S", "-c", code], capture_output=True,
                             text=True, check=True).stderr
        rows = [line.split("|") for line in err.splitlines() if line.startswith("import time:") and "|" in line]
        total = 0.0
        for row in rows:
            if row[2].strip() == module:
                total = int(row[1]) / 1000
        cum.append(total)
    return statistics.median(cum), max(cum)


def median_us(call: Callable[[], object], reps: int) -> float:
    """Median wall time of `call` in microseconds."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def bench_store(kind: str, work: Path, reps: int) -> dict[str, float]:
    """Round trips on one store of `kind`."""
    with remote_store(kind, work / kind) as s:
        spec = parse_spec(s.spec)
        writer = open_backend(spec)
        small = os.urandom(200)
        big = os.urandom(1 << 20)
        writer.put(KEY, small)
        writer.put("e/ab/big", big)
        firsts = []
        for _ in range(min(reps, 50)):
            b = open_backend(spec)
            t0 = time.perf_counter()
            b.get(KEY)
            firsts.append(time.perf_counter() - t0)
            b.close()
        b = open_backend(spec)
        b.get(KEY)
        out = {
            "first get (connect) us": statistics.median(firsts) * 1e6,
            "get 200 B hit us": median_us(lambda: b.get(KEY), reps),
            "get miss us": median_us(lambda: b.get("e/ab/missing"), reps),
            "exists us": median_us(lambda: b.exists(KEY), reps),
            "put 200 B us": median_us(lambda: b.put("e/ab/put", small), reps),
            "get 1 MB us": median_us(lambda: b.get("e/ab/big"), max(10, reps // 20)),
        }
        b.close()
        writer.close()
        return out


def failure_cost(kind: str, spec_text: str) -> float:
    """Milliseconds one get costs against `spec_text` (which must fail)."""
    b = open_backend(parse_spec(spec_text))
    t0 = time.perf_counter()
    try:
        b.get(KEY)
    except RemoteError:
        return (time.perf_counter() - t0) * 1000
    raise RuntimeError("%s: the get did not fail" % kind)


def main() -> int:
    """Run everything; print and save the numbers."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=1000)
    a = ap.parse_args()
    results: dict[str, object] = {"python": sys.version.split()[0], "date": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                            time.gmtime())}
    imports = {
        "coopt.cache.remote (parse_spec)": importtime("import coopt.cache.remote", "coopt.cache.remote"),
        "+ redis backend (open_backend)": importtime(
            "import coopt.cache.remote.redis_backend", "coopt.cache.remote.redis_backend"),
        "+ http backend (open_backend)": importtime(
            "import coopt.cache.remote.http_backend", "coopt.cache.remote.http_backend"),
    }
    results["import ms (median, max)"] = imports
    print("import time, cumulative, fresh python -I -S (median / max of 9):")
    for name, (med, worst) in imports.items():
        print("  %-36s %6.2f ms / %6.2f ms" % (name, med, worst))
    with tempfile.TemporaryDirectory(prefix="coopt-bench-remote-") as tmp:
        stores = {}
        for kind in ("file", "redis", "http"):
            stores[kind] = bench_store(kind, Path(tmp), a.reps)
            print("%s (loopback, median of %d):" % (kind, a.reps))
            for name, us in stores[kind].items():
                print("  %-26s %9.1f" % (name, us))
        results["round trips"] = stores
        fails: dict[str, float] = {}
        for kind in ("redis", "http"):
            url = "redis://127.0.0.1:%d/0" if kind == "redis" else "http://127.0.0.1:%d/c/"
            fails["%s dead port ms" % kind] = failure_cost(kind, url % dead_port())
            with hanging_server() as port:
                fails["%s hanging, defaults (100+1000 ms) ms" % kind] = failure_cost(kind, url % port)
                fails["%s hanging, connect-timeout=20|timeout=50 ms" % kind] = failure_cost(
                    kind, url % port + "|connect-timeout=20|timeout=50")
        results["failures"] = fails
        print("one get against a failing server:")
        for name, ms in fails.items():
            print("  %-48s %8.2f ms" % (name, ms))
    out = ROOT / "bench" / "results" / "remote_backends.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print("written:", out.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
