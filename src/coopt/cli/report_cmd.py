"""`coopt report`: what an optimize run tried, kept, gained and cost (Markdown, JSON or HTML)."""

from __future__ import annotations

import argparse
import os
import sys

from coopt.cli import UsageError
from coopt.cli.common import load_settings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="coopt report",
        description="Render the state of a `coopt optimize` run: per TU its share of the time, what was tried at "
        "which level, what was kept, the speed-up with its interval and the time spent; the whole program's "
        "speed-up against plain clang at your flags.",
    )
    p.add_argument("--format", choices=("md", "json", "html"), default="md", help="output format (default md)")
    p.add_argument("--run", metavar="DIR", help="the run directory (default: the latest run under <cache>/runs)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    return p


def run(_name: str, argv: list[str]) -> int:
    """Entry point of `coopt report`."""
    a = _parser().parse_args(argv)
    from coopt.agents.optimize_state import RunStateError, latest_run, load
    from coopt.agents.report import render

    try:
        run_dir = a.run or latest_run(load_settings().cache_dir)
        text = render(load(run_dir), a.format)
    except RunStateError as exc:
        raise UsageError(str(exc)) from exc
    if a.output:
        try:
            with open(a.output, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            raise UsageError("cannot write %s: %s" % (a.output, exc.strerror or exc)) from exc
        print("wrote %s (run %s)" % (a.output, os.path.abspath(run_dir)))
    else:
        sys.stdout.write(text)
    return 0
