"""`coopt optimize`: spend a budget on the profile's hot TUs; verified variants go into the cache.

Exit 0 when the run ended (whether or not a variant was stored), 2 on bad input or a set-up that cannot work,
130 when interrupted (what was verified is kept, the run state is saved)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from coopt.cli import UsageError
from coopt.cli.common import load_config, sandbox_gate
from coopt.config import schema

if TYPE_CHECKING:
    from coopt.optimize.shard import ShardSpec

DESCRIPTION = """Make the hot TUs of a profiled program faster with verified variants.

  coopt optimize --budget 20 [--profile profile.json] [--bench "./app input"] [--levels flags,pgo]

Each evaluation builds one candidate object for a hot TU, relinks the program with it, checks the test commands
give the baseline's output, and times the bench command on both programs in interleaved pairs. A candidate is
kept only when the lower bound of its speed-up interval clears --min-gain; the best per TU goes into the cache,
with its evidence, and the next CC=coopt-cc build uses it. Commands are shell lines that name the program by its
path (./app, src/app) or as {program}. Options not given come from coopt.toml ([optimize], [llm]) with
COOPT_* variables overriding it, as `coopt config show` reports. See docs/optimize.md."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coopt optimize", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    # Options left out fall back to coopt.toml ([optimize], [llm] provider), COOPT_* overriding it: the same
    # values `coopt config show` reports and `coopt nightly` uses.
    p.add_argument("--budget", type=int, default=None, metavar="N",
                   help="candidate evaluations to spend (default [optimize] budget, 20; with only --budget-seconds "
                   "given and no budget configured: no evaluation limit)")
    p.add_argument("--budget-seconds", type=float, default=None, metavar="S",
                   help="wall time to spend (default [optimize] budget_seconds, 0: no time limit)")
    p.add_argument("--budget-tokens", type=int, default=None, metavar="T",
                   help="LLM tokens the run may spend over every agent (default [optimize] budget_tokens, 0: no "
                   "token limit)")
    p.add_argument("--profile", default="profile.json", help="the profile from `coopt profile` (default %(default)s)")
    p.add_argument("--program", help="the program to relink (default: the one the hot code ran in); when the hot "
                   "code is in a shared library (libtool's .libs/libfoo.so), the program to run against the relinked "
                   "library, a libtool wrapper script too (default: the profile's command)")
    p.add_argument("--journal", help="the journal to read (default: the one the profile names)")
    p.add_argument("--levels", default=None, help="levels to try, comma-separated: flags, pgo, compilers (gcc, "
                   "other clang releases), source, ir, asm (default [optimize] levels, flags,pgo)")
    p.add_argument("--train", metavar="CMD", help="PGO training workload (default: the profile's workload)")
    p.add_argument("--bench", metavar="CMD", help="workload timed A/B (default: the profile's workload)")
    p.add_argument("--test", metavar="CMD", action="append", default=[],
                   help="test command whose output must equal the baseline's (repeatable; default: the bench)")
    p.add_argument("--min-gain", type=float, default=None, help="speed-up the interval's lower bound must clear "
                   "(default [optimize] min_gain, 1.02)")
    p.add_argument("--pairs", type=int, default=None, help="interleaved A/B pairs per measurement (default "
                   "[optimize] pairs, 20)")
    p.add_argument("--measure", choices=("cpu", "wall"), default="cpu", help="what the A/B times: CPU time of the "
                   "bench command and its children (default; steadier on shared machines) or wall time")
    p.add_argument("--llm", default=None, choices=schema.LLM_PROVIDERS, help="LLM for the source/ir/asm "
                   "levels (default [llm] provider, none: compiler tools only)")
    p.add_argument("--max-tus", type=int, default=None, help="work on at most the N hottest TUs (default "
                   "[optimize] max_tus, 8)")
    p.add_argument("--float-tolerance", type=float, default=None, metavar="T", help="tolerance for floating-point "
                   "numbers in test output (default [optimize] float_tolerance, 0: exact)")
    p.add_argument("--guide", choices=schema.GUIDES, default=None, help="who picks the next (TU, level): ucb, the "
                   "deterministic policy, or llm, the model among the same arms (default [optimize] guide, ucb)")
    p.add_argument("--sweep", action=argparse.BooleanOptionalAction, default=None, help="screen the compiler "
                   "levels' rows on a node together and judge the fastest, as one evaluation; --no-sweep: one row "
                   "per evaluation (default [optimize] sweep, true)")
    p.add_argument("--fuzz-seconds", type=float, default=None, metavar="S", help="libFuzzer time per rewritten "
                   "function of an LLM level's candidate (default [optimize] fuzz_seconds, 3; 0: none)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds one run of a command may take")
    p.add_argument("--run-dir", help="where to keep the run state (default: a new directory under <cache>/runs)")
    p.add_argument("--resume", action="store_true", help="continue the unfinished run in --run-dir: its judged "
                   "candidates are kept and not tried again, its spent budget counts")
    p.add_argument("--no-final", action="store_true", help="skip the final whole-program measurement (default "
                   "[optimize] final_check)")
    p.add_argument("--keep-work", action="store_true", help="keep candidate objects and programs in the run dir")
    p.add_argument("--shard", metavar="K/N", help="work only on share K of N of the hot TUs, for N machines of a "
                   "CI matrix (default: $COOPT_SHARD, else all); merge with `coopt report --results`")
    return p


def _flags(a: argparse.Namespace) -> dict[str, tuple[object, str]]:
    """The options given on the command line, as overrides of the configuration."""
    given: dict[str, tuple[object, str]] = {}
    for dotted, value, option in (
        ("optimize.budget", a.budget, "--budget"),
        ("optimize.budget_seconds", a.budget_seconds, "--budget-seconds"),
        ("optimize.budget_tokens", a.budget_tokens, "--budget-tokens"),
        ("optimize.min_gain", a.min_gain, "--min-gain"),
        ("optimize.pairs", a.pairs, "--pairs"),
        ("optimize.max_tus", a.max_tus, "--max-tus"),
        ("optimize.float_tolerance", a.float_tolerance, "--float-tolerance"),
        ("optimize.fuzz_seconds", a.fuzz_seconds, "--fuzz-seconds"),
        ("optimize.guide", a.guide, "--guide"),
        ("optimize.sweep", a.sweep, "--sweep" if a.sweep else "--no-sweep"),
        ("llm.provider", a.llm, "--llm"),
    ):
        if value is not None:
            given[dotted] = (value, option)
    if a.levels is not None:
        given["optimize.levels"] = ([lv.strip() for lv in a.levels.split(",") if lv.strip()], "--levels")
    if a.no_final:
        given["optimize.final_check"] = (False, "--no-final")
    return given


def _shard(option: str | None, environ: dict[str, str]) -> ShardSpec | None:
    """The ShardSpec of --shard, else of COOPT_SHARD, else None; UsageError naming where a bad value came from."""
    from coopt.optimize import shard

    if option is not None:
        text, origin = option, "--shard"
    elif environ.get(shard.ENV, "").strip():
        text, origin = environ[shard.ENV], shard.ENV
    else:
        return None
    try:
        return shard.parse(text, origin)
    except shard.ShardError as exc:
        raise UsageError(str(exc)) from exc


def run(_name: str, argv: list[str]) -> int:
    """Entry point of `coopt optimize`."""
    a = _parser().parse_args(argv)
    from coopt.optimize.options import OptimizeOptions
    from coopt.optimize.plan import OptimizeError
    from coopt.optimize.progress import Progress, StopFlag
    from coopt.optimize.run import optimize

    spec = _shard(a.shard, dict(os.environ))
    if a.budget is not None and a.budget < 1:
        raise UsageError("--budget must be at least 1 evaluation")
    if a.budget_tokens is not None and a.budget_tokens < 0:
        raise UsageError("--budget-tokens must be 0 (no limit) or a number of tokens")
    if a.budget_seconds is not None and a.budget_seconds < 0:
        raise UsageError("--budget-seconds must be positive")
    if a.pairs is not None and a.pairs < 3:
        raise UsageError("--pairs must be at least 3 (an interval needs several pairs; 20 or more on a busy machine)")
    if a.min_gain is not None and a.min_gain <= 0:
        raise UsageError("--min-gain must be a positive ratio such as 1.02")
    if (a.max_tus is not None and a.max_tus < 1) or a.timeout <= 0:
        raise UsageError("--max-tus and --timeout must be positive")
    if a.levels is not None:
        from coopt.agents.registry import COMPILER_LEVELS, LLM_LEVELS

        levels = [lv.strip() for lv in a.levels.split(",") if lv.strip()]
        if not levels:
            raise UsageError("--levels names no level")
        unknown = [lv for lv in levels if lv not in COMPILER_LEVELS + LLM_LEVELS]
        if unknown:
            raise UsageError("unknown level %s (levels: %s)" % (", ".join(unknown), ",".join(COMPILER_LEVELS +
                                                                                          LLM_LEVELS)))
    if a.fuzz_seconds is not None and a.fuzz_seconds < 0:
        raise UsageError("--fuzz-seconds must be 0 (no fuzzing) or a number of seconds")
    if a.float_tolerance is not None and a.float_tolerance < 0:
        raise UsageError("--float-tolerance must be 0 (exact) or a small positive number such as 1e-9")
    if a.resume and not a.run_dir:
        raise UsageError("--resume needs --run-dir DIR: the run to continue")
    cfg = load_config(_flags(a))
    o = cfg.optimize
    llm_levels = set(o.levels) & set(schema.LLM_LEVELS)
    sandbox_gate(cfg.verify.allow_unsandboxed, llm_candidates=bool(llm_levels) and cfg.llm.provider != "none")
    budget = o.budget
    if a.budget is None and a.budget_seconds and cfg.setting("optimize.budget").origin.kind == "default":
        budget = 0  # a time limit alone: as many evaluations as fit

    if cfg.cache.read_only:
        raise UsageError("the cache %s is read-only (COOPT_READONLY or [cache] read_only): optimize could store "
                         "nothing; run it with a writable cache" % cfg.cache.dir)
    opts = OptimizeOptions.from_config(
        cfg, budget_evaluations=budget, profile=a.profile, program=a.program, journal=a.journal, train=a.train,
        bench=a.bench, tests=a.test, measure=a.measure, run_dir=a.run_dir, timeout_s=a.timeout,
        keep_work=a.keep_work, resume=a.resume, shard=spec,
    )
    stop = StopFlag()
    try:
        with Progress(sys.stdout) as progress:
            state = optimize(opts, progress, stop)
    except OptimizeError as exc:
        raise UsageError(str(exc)) from exc
    return 130 if state.status == "interrupted" else 0
