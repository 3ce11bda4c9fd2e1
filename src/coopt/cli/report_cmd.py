"""`coopt report`: what an optimize run tried, kept, gained and cost (Markdown, JSON or HTML)."""

from __future__ import annotations

import argparse
import os
import sys

from coopt.cli import UsageError
from coopt.cli.common import load_settings
from coopt.report.render import FORMATS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="coopt report",
        description="Render the state of a `coopt optimize` run: per TU its share of the time, what was tried at "
        "which level, what was kept, the speed-up with its interval and the time spent; the whole program's "
        "speed-up against plain clang at your flags. Results of a sharded run (`coopt optimize --shard K/N` on N "
        "machines) are merged into one report: each TU once, with the shard that handled it; a shard without a "
        "result is reported as missing.",
    )
    p.add_argument("--format", choices=tuple(FORMATS), default="md", help="output format (default md)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--run", metavar="DIR", help="the run directory (default: the latest run under <cache>/runs)")
    where.add_argument("--results", metavar="PATH", nargs="+", help="shard results to merge: state files "
                       "(shard-K-of-N.json) or directories holding them, searched below (downloaded artifacts)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    return p


def run(_name: str, argv: list[str]) -> int:
    """Entry point of `coopt report`."""
    a = _parser().parse_args(argv)
    from coopt.optimize.state import RunStateError, latest_run
    from coopt.report.merge import combine, load_results
    from coopt.report.render import render

    try:
        paths = a.results or [a.run or latest_run(load_settings().cache_dir)]
        state, shards = combine(load_results(paths, below=bool(a.results)))
        text = render(state, a.format, shards)
    except RunStateError as exc:
        raise UsageError(str(exc)) from exc
    run_dir = " ".join(os.path.abspath(p) for p in paths)
    if shards is not None and shards.missing:
        # The report says so too; this line is for a CI log that nobody opens the report of.
        sys.stderr.write("coopt report: warning: no result from shard(s) %s of %d: their TUs were not optimized\n"
                         % (", ".join(str(i) for i in shards.missing), shards.count))
    if a.output:
        try:
            with open(a.output, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            raise UsageError("cannot write %s: %s" % (a.output, exc.strerror or exc)) from exc
        print("wrote %s (run %s)" % (a.output, run_dir))
    else:
        sys.stdout.write(text)
    return 0
