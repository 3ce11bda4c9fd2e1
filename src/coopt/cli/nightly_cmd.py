"""`coopt nightly`: clean build, profile, optimize, rebuild, test and report from the project's hooks; resumable."""

from __future__ import annotations

import argparse
import os
import sys

from coopt.cli import UsageError

DESCRIPTION = """The nightly job in one command, driven by the hooks in coopt.toml ([hooks] build, clean, test,
bench, profile; see docs/config.md):

  1 clean          the clean hook
  2 build          the build hook, with CC=coopt-cc: every TU journaled
  3 baseline-test  the test hook, before any new variant
  4 profile        perf on the profile workload -> <dir>/profile.json
  5 optimize       the optimizer within [optimize] budget -> verified variants in the cache
  6 rebuild        clean + build again: the cache now serves the variants
  7 test           the test hook with the variants (a failure withdraws them from the cache)
  8 report         <dir>/report.md, .html, .json; the cache evicted down to [cache] max_size

Each step's result is saved in <dir>/state.json (<dir>: [nightly] dir, default .coopt-nightly). Run again after a
failure or Ctrl-C and it resumes at the step that did not finish; a finished run is never resumed (the next
invocation starts anew, as does --fresh or a changed configuration). Hook output goes to <dir>/logs/; a failing
step prints its log's last lines. Progress is plain lines when stdout is not a terminal."""

EPILOG = """exit codes:
  0    done: variants stored, served by the rebuild, tests pass
  1    a step failed (build, profile, optimize, a hook timed out); rerun to resume
  2    configuration error (bad or incomplete coopt.toml, read-only cache, no coopt-cc); nothing was run
  3    the project's tests failed (before optimizing: rerun to resume; after: this run's variants withdrawn)
  4    nothing improved: the run finished, no variant cleared min_gain
  130  interrupted; rerun to resume

The day's builds use the cache read-only: COOPT_READONLY=1 (or [cache] read_only = true in their own config).
See docs/nightly.md and integration/ci/."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coopt nightly", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", type=int, metavar="N", help="candidate evaluations (overrides [optimize] budget)")
    p.add_argument("--budget-seconds", type=float, metavar="S",
                   help="wall time for the optimizer (overrides [optimize] budget_seconds)")
    p.add_argument("--config", metavar="FILE", help="the config file (default: coopt.toml found upwards, or "
                   "[tool.coopt] in pyproject.toml)")
    p.add_argument("--dir", metavar="DIR", help="state, logs and reports (overrides [nightly] dir)")
    p.add_argument("--fresh", action="store_true", help="start a new run even if the last one did not finish")
    return p


def run(_name: str, argv: list[str]) -> int:
    """Entry point of `coopt nightly`."""
    a = _parser().parse_args(argv)
    from coopt.config import ConfigError, environment, load
    from coopt.nightly.console import Console
    from coopt.nightly.run import NightlyConfigError, run_nightly

    if a.config:
        os.environ["COOPT_CONFIG"] = os.path.abspath(a.config)
    flags = {}
    if a.budget is not None:
        flags["optimize.budget"] = (a.budget, "--budget")
    if a.budget_seconds is not None:
        flags["optimize.budget_seconds"] = (a.budget_seconds, "--budget-seconds")
    if a.dir:
        flags["nightly.dir"] = (os.path.abspath(a.dir), "--dir")
    try:
        config = load(flags=flags)
    except ConfigError as exc:
        raise UsageError("bad config: %s" % exc) from exc
    # The optimizer and the LLM client read their settings from the environment; the hooks inherit it too.
    os.environ.update(environment(config))
    os.chdir(config.project_dir)
    console = Console(sys.stdout)
    console.line("coopt nightly: project %s, config %s, cache %s, state %s" % (
        config.project_dir, config.file or "(none: defaults and COOPT_* variables)", config.cache.dir,
        os.path.relpath(config.nightly.dir, config.project_dir)))
    try:
        return run_nightly(config, console, fresh=a.fresh)
    except NightlyConfigError as exc:
        raise UsageError(str(exc)) from exc
