"""`coopt optimize`: spend a budget on the profile's hot TUs; verified variants go into the cache.

Exit 0 when the run ended (whether or not a variant was stored), 2 on bad input or a set-up that cannot work,
130 when interrupted (what was verified is kept, the run state is saved)."""

from __future__ import annotations

import argparse
import sys

from coopt.cli import UsageError
from coopt.cli.common import load_settings

DESCRIPTION = """Make the hot TUs of a profiled program faster with verified variants.

  coopt optimize --budget 20 [--profile profile.json] [--bench "./app input"] [--levels flags,pgo]

Each evaluation builds one candidate object for a hot TU, relinks the program with it, checks the test commands
give the baseline's output, and times the bench command on both programs in interleaved pairs. A candidate is
kept only when the lower bound of its speed-up interval clears --min-gain; the best per TU goes into the cache,
with its evidence, and the next CC=coopt-cc build uses it. Commands are shell lines that name the program by its
path (./app, src/app) or as {program}. See docs/optimize.md."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coopt optimize", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", type=int, default=None, metavar="N",
                   help="candidate evaluations to spend (default 20 when no --budget-seconds is given)")
    p.add_argument("--budget-seconds", type=float, default=0.0, metavar="S", help="wall time to spend")
    p.add_argument("--profile", default="profile.json", help="the profile from `coopt profile` (default %(default)s)")
    p.add_argument("--program", help="the program to relink (default: the one the hot code ran in)")
    p.add_argument("--journal", help="the journal to read (default: the one the profile names)")
    p.add_argument("--levels", default="flags,pgo",
                   help="levels to try, comma-separated: flags, pgo, source, ir, asm (default %(default)s)")
    p.add_argument("--train", metavar="CMD", help="PGO training workload (default: the profile's workload)")
    p.add_argument("--bench", metavar="CMD", help="workload timed A/B (default: the profile's workload)")
    p.add_argument("--test", metavar="CMD", action="append", default=[],
                   help="test command whose output must equal the baseline's (repeatable; default: the bench)")
    p.add_argument("--min-gain", type=float, default=1.02, help="speed-up the interval's lower bound must clear")
    p.add_argument("--pairs", type=int, default=20, help="interleaved A/B pairs per measurement (default 20)")
    p.add_argument("--measure", choices=("cpu", "wall"), default="cpu", help="what the A/B times: CPU time of the "
                   "bench command and its children (default; steadier on shared machines) or wall time")
    p.add_argument("--llm", default="none", choices=("none", "local", "openai"), help="LLM for the source/ir/asm "
                   "levels (default none: compiler tools only)")
    p.add_argument("--max-tus", type=int, default=8, help="work on at most the N hottest TUs (default 8)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds one run of a command may take")
    p.add_argument("--run-dir", help="where to keep the run state (default: a new directory under <cache>/runs)")
    p.add_argument("--no-final", action="store_true", help="skip the final whole-program measurement")
    p.add_argument("--keep-work", action="store_true", help="keep candidate objects and programs in the run dir")
    return p


def run(_name: str, argv: list[str]) -> int:
    """Entry point of `coopt optimize`."""
    a = _parser().parse_args(argv)
    from coopt.agents.optimize import OptimizeOptions, Progress, StopFlag, optimize
    from coopt.agents.optimize_setup import OptimizeError

    if a.budget is not None and a.budget < 1:
        raise UsageError("--budget must be at least 1 evaluation")
    if a.budget_seconds < 0:
        raise UsageError("--budget-seconds must be positive")
    if a.pairs < 3:
        raise UsageError("--pairs must be at least 3 (an interval needs several pairs; 20 or more on a busy machine)")
    if a.min_gain <= 0:
        raise UsageError("--min-gain must be a positive ratio such as 1.02")
    if a.max_tus < 1 or a.timeout <= 0:
        raise UsageError("--max-tus and --timeout must be positive")
    levels = [lv.strip() for lv in a.levels.split(",") if lv.strip()]
    if not levels:
        raise UsageError("--levels names no level")
    budget = a.budget if a.budget is not None else (0 if a.budget_seconds else 20)
    settings = load_settings()
    if settings.read_only:
        raise UsageError("the cache %s is read-only (COOPT_READONLY or [cache] read_only): optimize could store "
                         "nothing; run it with a writable cache" % settings.cache_dir)
    opts = OptimizeOptions(
        cache_dir=settings.cache_dir, profile=a.profile, program=a.program, journal=a.journal, levels=levels,
        budget_evaluations=budget, budget_seconds=a.budget_seconds, train=a.train, bench=a.bench, tests=a.test,
        min_gain=a.min_gain, pairs=a.pairs, measure=a.measure, llm=a.llm, run_dir=a.run_dir, max_tus=a.max_tus,
        timeout_s=a.timeout, final=not a.no_final, keep_work=a.keep_work,
    )
    stop = StopFlag()
    try:
        state = optimize(opts, Progress(sys.stdout), stop)
    except OptimizeError as exc:
        raise UsageError(str(exc)) from exc
    return 130 if state.status == "interrupted" else 0
