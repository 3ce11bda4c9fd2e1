"""`coopt optimize`: the guide picks (TU, node, level) in each hot TU's lineage tree, agents propose objects on
that node, the whole program judges them, the best verified variant per TU goes into the cache with its lineage.

One evaluation = one candidate object built, relinked into the program, checked against the baseline's test
outputs and timed A/B against the baseline (interleaved pairs, ratio of medians, bootstrap interval). It is
accepted only when the interval's lower bound clears `min_gain`; the guide is paid that lower bound, so noise
earns nothing. The baseline is the program relinked with the hot TUs compiled again by the real compiler with
the user's own flags: plain clang, whatever the cache served before.

Budget: `Budget` is charged before each evaluation (evaluations never exceed the limit); with a time limit the
next evaluation must fit by the longest one so far, and a measurement still running at the limit is stopped.
State is saved after every step; Ctrl-C stops after the current step and keeps everything already stored.
With `resume`, a run directory's unfinished run of the same profile and settings is continued: its judged
attempts and kept variants are carried over, their evaluations and seconds count against the budget, and the
compiler-tools agents do not propose them again (the baseline and the noise check are measured afresh).

This module is the run: its state, directory and ending. Beside it: setup.py (announce, baselines, noise),
search.py (the guide's steps over the lineage trees), guide.py and llm_guide.py (the policy), lineage.py (nodes and
the provenance of a stored variant), attempt.py (one attempt: propose, judge, publish), final.py (the final
measurement and summary), resume.py, session.py (the run's `Run`), options.py, progress.py (terminal output and
Ctrl-C).
"""

from __future__ import annotations

import os
import shutil

from coopt.agents.levels import LevelUnavailable, check_levels
from coopt.budget import Budget, BudgetExhausted
from coopt.cache.hashing import hash_file
from coopt.cache.store import Store
from coopt.optimize import shard as sharding
from coopt.optimize.final import final, summary
from coopt.optimize.options import OptimizeOptions
from coopt.optimize.plan import OptimizeError, Plan, plan, workloads
from coopt.optimize.progress import Progress, StopFlag
from coopt.optimize.resume import carry_over
from coopt.optimize.search.llm_guide import GUIDES
from coopt.optimize.search.loop import search
from coopt.optimize.session import Run
from coopt.optimize.setup import announce, prepare
from coopt.optimize.state import (
    CommandRecord,
    RunState,
    ShardRecord,
    TuRecord,
    new_run_dir,
    now_utc,
    remember_run,
    runs_dir,
)
from coopt.verify.program_level.bench import Interrupted


def optimize(opts: OptimizeOptions, progress: Progress, stop: StopFlag | None = None) -> RunState:
    """Run the optimizer; returns the final state (also saved in the run directory). OptimizeError on bad input."""
    stop = stop or StopFlag()
    if opts.shard and not progress.prefix:
        progress.prefix = "shard %s: " % opts.shard
    try:
        check_levels(opts.levels, opts.llm)
    except LevelUnavailable as exc:
        raise OptimizeError(str(exc)) from exc
    if opts.guide not in GUIDES:
        raise OptimizeError("unknown guide %r (guides: %s)" % (opts.guide, ", ".join(GUIDES)))
    if opts.guide == "llm" and opts.llm == "none":
        raise OptimizeError("--guide llm needs an LLM (--llm local or --llm openai)")
    if not (opts.budget_evaluations or opts.budget_seconds):
        raise OptimizeError("give a budget: --budget N (evaluations) or --budget-seconds S")
    p = plan(opts.profile, opts.program, opts.journal, opts.max_tus)
    loads = workloads(p, opts.bench, opts.train, opts.tests, os.getcwd())
    shard_rec = _take_share(p, opts.shard) if opts.shard else None
    if opts.run_dir:
        run_dir = os.path.abspath(opts.run_dir)
    elif shard_rec:
        # Every shard of one plan computes the same directory: shards sharing a workspace meet there, each in
        # its own state file, and `coopt report` merges them.
        run_dir = os.path.join(runs_dir(opts.cache_dir), "shards-%s" % shard_rec.plan)
    else:
        run_dir = new_run_dir(opts.cache_dir)
    os.makedirs(run_dir, exist_ok=True)
    remember_run(opts.cache_dir, run_dir)
    budget = Budget(max_evaluations=opts.budget_evaluations, max_tokens=opts.budget_tokens,
                    max_seconds=opts.budget_seconds)
    state = RunState(
        created=now_utc(), program=p.program, profile=p.profile_path, profile_digest=hash_file(p.profile_path),
        journal=p.journal, cache_dir=opts.cache_dir,
        levels=list(opts.levels), min_gain=opts.min_gain, pairs=opts.pairs, llm=opts.llm,
        budget={"evaluations": opts.budget_evaluations, "seconds": opts.budget_seconds,
                "tokens": opts.budget_tokens},
        bench=CommandRecord(loads.bench.line, loads.bench.cwd, loads.bench.origin),
        train=CommandRecord(loads.train.line, loads.train.cwd, loads.train.origin) if "pgo" in opts.levels else None,
        tests=[CommandRecord(t.line, t.cwd, t.origin) for t in loads.tests],
        same_workload=loads.same,
        measure=opts.measure,
        float_tolerance=opts.float_tolerance,
        assume_cpu=opts.assume_cpu,
        tus=[TuRecord(t.object, t.source, t.share) for t in p.hot] + [
            TuRecord(t.object, t.source, t.share, why) for t, why in p.skipped],
        shard=shard_rec,
    )
    work = os.path.join(run_dir, "work-%s" % opts.shard.name if opts.shard else "work")
    run = Run(opts, p, loads, state, run_dir, work, budget, Store(opts.cache_dir), progress, stop)
    carried = carry_over(run) if opts.resume else ""
    os.makedirs(run.work, exist_ok=True)
    with stop.on_sigint(progress.line):
        try:
            announce(run)
            if carried:
                progress.line(carried)
            run.save()
            if p.hot:
                prepare(run)
                search(run)
                final(run)
            else:
                state.status, state.stop_reason = "finished", "no hot TU in this shard (%d hot TU(s) for %d shards)" \
                    % (len(shard_rec.assignment) if shard_rec else 0, opts.shard.count if opts.shard else 1)
        except Interrupted:
            state.status, state.stop_reason = "interrupted", "stopped by the user (Ctrl-C)"
        except KeyboardInterrupt:
            state.status, state.stop_reason = "interrupted", "stopped by the user (Ctrl-C twice)"
            raise
        except BudgetExhausted as exc:
            state.status, state.stop_reason = "budget-spent", "budget spent (%s)" % (str(exc) or budget.describe())
            final(run)
        except OptimizeError as exc:
            state.status, state.stop_reason = "failed", str(exc)
            raise
        except Exception as exc:
            state.status, state.stop_reason = "failed", "internal error: %s: %s" % (type(exc).__name__, exc)
            raise
        finally:
            run.save()
            if not opts.keep_work:
                shutil.rmtree(run.work, ignore_errors=True)
    summary(run)
    return state


def _take_share(p: Plan, spec: sharding.ShardSpec) -> ShardRecord:
    """Keep only shard `spec`'s share of the plan's hot TUs; the others are noted as another shard's. The split
    is computed from the plan alone (profile and journal), so every shard computes the same one."""
    items = [(t.object, t.share) for t in p.hot]
    assigned = sharding.assignment(items, spec.count)
    mine = [t for t in p.hot if assigned[t.object] == spec.index]
    others = [(t, "shard %d/%d's share" % (assigned[t.object], spec.count)) for t in p.hot
              if assigned[t.object] != spec.index]
    p.hot, p.skipped = mine, others + p.skipped
    return ShardRecord(spec.index, spec.count, sharding.plan_id(items, spec.count), assigned)
