"""`coopt optimize`: the guide picks (TU, level) arms, agents propose objects, the whole program judges them,
the best verified variant per TU goes into the cache.

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

This module is the loop: set-up, baseline, guide, steps. Beside it: attempt.py (one attempt: propose, judge,
publish), final.py (the final measurement and summary), resume.py, session.py (the run's `Run`), options.py,
progress.py (terminal output and Ctrl-C).
"""

from __future__ import annotations

import os
import shutil
import time
import weakref

from coopt.agents.compiler.tools import ToolError, compile_with_flags
from coopt.agents.levels import (
    AgentContext,
    AgentSettings,
    HotTU,
    LevelAgent,
    LevelUnavailable,
    LLMSetupError,
    check_levels,
    make_agents,
)
from coopt.budget import Budget, BudgetExhausted
from coopt.cache.hashing import hash_file
from coopt.cache.publish import PutError, check_original, tu_key
from coopt.cache.store import Store
from coopt.journal.relink import RelinkError
from coopt.optimize import shard as sharding
from coopt.optimize.attempt import evaluate
from coopt.optimize.final import final, progress_line, summary
from coopt.optimize.guide import Guide
from coopt.optimize.llm_guide import GUIDES, LLMGuide
from coopt.optimize.options import OptimizeOptions
from coopt.optimize.plan import OptimizeError, Plan, plan, workloads
from coopt.optimize.progress import Progress, StopFlag
from coopt.optimize.resume import carry_over
from coopt.optimize.session import Run, interval_text
from coopt.optimize.state import (
    CommandRecord,
    MeasurementRecord,
    Outcome,
    RunState,
    ShardRecord,
    TuRecord,
    new_run_dir,
    now_utc,
    remember_run,
    runs_dir,
)
from coopt.verify.behaviour import JudgeSettings, checker
from coopt.verify.program_level.bench import PLACEHOLDER, Interrupted, ProgramBench, WorkloadError


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
            _announce(run)
            if carried:
                progress.line(carried)
            run.save()
            if p.hot:
                _prepare(run)
                _loop(run)
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


def _announce(run: Run) -> None:
    p, say = run.plan, run.progress.line
    if run.state.shard:
        sh = run.state.shard
        say("sharded run: this shard's %d of the plan's %d hot TU(s) (split %s; the others: %s)" % (
            len(p.hot), len(sh.assignment), sh.plan, ", ".join(
                "%s -> %d" % (t.name, sh.assignment[t.object]) for t, _ in p.skipped if t.object in sh.assignment)
            or "none"))
    say("coopt optimize: %s, %d hot TU(s): %s" % (p.program, len(p.hot), ", ".join(
        "%s %.1f%%" % (t.name, 100 * t.share) for t in p.hot) or "none"))
    say("  levels %s, budget %s, min gain %.2f, %d pairs per A/B of %s time" % (
        ",".join(run.opts.levels), run.budget.describe(), run.opts.min_gain, run.opts.pairs, run.opts.measure))
    say("  bench: %s (%s)" % (_shown(run, run.loads.bench.line), run.loads.bench.origin))
    if "pgo" in run.opts.levels:
        if run.loads.same:
            say("  train: the same workload as the bench (PGO is judged on what it was trained on)")
        else:
            say("  train: %s (%s)" % (_shown(run, run.loads.train.line), run.loads.train.origin))
    if run.opts.float_tolerance:
        say("  floating-point numbers in test output may differ by %g x max(1, |value|)" % run.opts.float_tolerance)
    if run.opts.assume_cpu:
        say("  assume_cpu: variants may target this machine's CPU (-march=native); every machine sharing the cache "
            "must have it")
    if run.opts.min_gain < 1.0:
        say("  warning: --min-gain %.2f accepts variants slower than the original" % run.opts.min_gain)
    say("  run directory: %s" % run.run_dir)


def _shown(run: Run, line: str) -> str:
    rel = os.path.relpath(run.plan.program)
    return line.replace(PLACEHOLDER, rel if "/" in rel else "./" + rel)


def _prepare(run: Run) -> None:
    """Baseline objects (plain compiler, user's flags), the cache's view of each TU, the baseline's outputs and
    the noise of the machine (the baseline timed against a second copy of itself)."""
    layout = run.store.layout
    usable: list[HotTU] = []
    for t in run.plan.hot:
        run.progress.status("%s: compiling the baseline" % t.name)
        try:
            tu_key(t.job, layout)
            check_original(t.job)
            out = os.path.join(run.work, "baseline-objects", "%s.o" % os.path.splitext(t.name)[0])
            os.makedirs(os.path.dirname(out), exist_ok=True)
            if os.path.exists(out):
                out = out[:-2] + "-%d.o" % len(usable)
            t.baseline_object = compile_with_flags(t.job, [], out).object_path
        except (PutError, ToolError) as exc:
            if run.stop.requested:  # Ctrl-C on a terminal reaches the compiler too
                raise Interrupted("stopped by the user") from exc
            _note_tu(run, t, "cannot be cached: %s" % exc)
            continue
        run.seen[t.object] = {hash_file(t.baseline_object)}
        usable.append(t)
    if not usable:
        raise OptimizeError("no hot TU can get a variant: %s" % "; ".join(
            "%s: %s" % (os.path.basename(r.source), r.note) for r in run.state.tus if r.note))
    run.plan.hot = usable
    run.bench = ProgramBench(
        run.plan.link, run.work, run.loads.bench, run.loads.tests, run.opts.pairs, run.opts.timeout_s,
        lambda: run.stop.requested, run.deadline, run.opts.measure, run.progress.status,
        float_tolerance=run.opts.float_tolerance,
    )
    try:
        run.base = run.bench.side("base", {t.object: t.baseline_object for t in usable})
        twin = run.bench.side("twin", {t.object: t.baseline_object for t in usable})
        run.bench.record_baseline(run.base)
    except RelinkError as exc:
        raise OptimizeError("cannot relink %s: %s" % (run.plan.program, exc)) from exc
    except WorkloadError as exc:
        raise OptimizeError(str(exc)) from exc
    start = time.monotonic()
    try:
        noise = run.bench.time_ab(run.base, twin)
    except RuntimeError as exc:
        raise OptimizeError("the bench command fails on the original program: %s" % exc) from exc
    run.state.noise = MeasurementRecord(noise, run.opts.pairs, round(time.monotonic() - start, 2),
                                        "the baseline timed against a second copy of itself")
    lead = "  baseline: tests pass; noise (baseline vs itself) %s" % interval_text(noise)
    if noise.low > 1.0 or noise.high < 1.0:
        lead += " -- the machine is noisy: identical programs measure as different"
        run.state.notes.append("noise check: identical programs measured %s; treat small speed-ups with care"
                               % interval_text(noise))
    elif noise.high - noise.low > 2 * (run.opts.min_gain - 1) > 0:
        # An interval this wide around a true speed-up of min_gain would straddle it: most verdicts will be
        # inconclusive and the guide will pay nothing, which is right, but the budget buys little.
        lead += " -- wider than the min gain margin: expect inconclusive verdicts (more --pairs, a quieter machine)"
        run.state.notes.append("noise check: %s is wider than 2 x (min gain - 1); few candidates can be shown faster"
                               % interval_text(noise))
    run.progress.line(lead)
    run.save()


def _note_tu(run: Run, t: HotTU, why: str) -> None:
    for r in run.state.tus:
        if r.object == t.object:
            r.note = why
    run.progress.line("  %s: %s" % (t.name, why))


def _estimate(run: Run) -> float:
    """Seconds the next evaluation may take: the longest so far, or the set-up measurement's."""
    times = [a.seconds for a in run.state.attempts]
    first = run.state.noise.seconds if run.state.noise else 0.0
    return max(times or [2 * first])


def _chooser(run: Run, guide: Guide, ctx: AgentContext) -> Guide | LLMGuide:
    """The deterministic guide, or with `--guide llm` the model choosing among its live arms."""
    if run.opts.guide != "llm":
        return guide
    from coopt.agents.model import open_level_model

    stack, model, _ = open_level_model("guide", run.opts.llm, ctx)
    chooser = LLMGuide(guide, model)
    weakref.finalize(chooser, stack.close)  # the model (a local server) stops with the run
    return chooser


def _loop(run: Run) -> None:
    hot = {t.object: t for t in run.plan.hot}
    rules = Guide({t.object: t.share for t in run.plan.hot}, levels=tuple(run.opts.levels), min_share=0.0)
    assert run.bench is not None and run.base is not None
    settings = AgentSettings(run.opts.timeout_s, run.budget, run.opts.cache_dir, run.opts.assume_cpu,
                             run.opts.llm_env, log_dir=os.path.join(run.run_dir, "conversations"))
    ctx = AgentContext(run.plan.link, run.plan.hot, run.loads.train, run.loads.same,
                       os.path.join(run.work, "agents"), settings,
                       check=checker(JudgeSettings(run.opts.timeout_s, run.opts.float_tolerance,
                                                   run.opts.fuzz_seconds)))
    try:
        agents = make_agents(run.opts.levels, run.opts.llm, ctx)
        guide = _chooser(run, rules, ctx)
    except LLMSetupError as exc:
        raise OptimizeError(str(exc)) from exc
    try:
        _steps(run, guide, hot, agents)
    finally:
        if isinstance(guide, LLMGuide):
            run.state.notes.append(guide.summary())


def _steps(run: Run, guide: Guide | LLMGuide, hot: dict[str, HotTU], agents: dict[str, LevelAgent]) -> None:
    for level, agent in agents.items():
        why = agent.unavailable()
        if why:  # e.g. PGO without clang's profile runtime: said once, no budget spent on it
            for a in guide.arms:
                if a.level == level:
                    a.retired = True
            run.state.notes.append("level %s not tried: %s" % (level, why))
            run.progress.line("  level %s not tried: %s" % (level, why))
    for rec in run.carried:  # a resumed run: the guide learns what was judged, the agents move past it
        known = next((x for x in guide.arms if x.tu == rec.object and x.level == rec.level), None)
        if known is None or rec.object not in hot:
            continue
        guide.record(known, rec.interval.low if rec.verdict == Outcome.ACCEPTED and rec.interval else None)
        agents[rec.level].skip(hot[rec.object], rec)
    while True:
        if run.stop.requested:
            raise Interrupted("stopped by the user")
        arm = guide.next_arm()
        if arm is None:
            run.state.status, run.state.stop_reason = "finished", "every direction stopped paying (or was tried)"
            return
        tu, agent = hot[arm.tu], agents[arm.level]
        if not agent.has_more(tu):
            arm.retired = True
            continue
        # With a time limit, the final measurement (one A/B, like the noise check) must still fit afterwards.
        reserve = run.state.noise.seconds if run.opts.final and run.state.noise else 0.0
        run.budget.charge(evaluations=1, seconds=_estimate(run) + reserve)
        attempt = evaluate(run, tu, agent)
        low = attempt.interval.low if attempt.verdict == Outcome.ACCEPTED and attempt.interval else None
        guide.record(arm, low)
        if attempt.verdict == Outcome.FAILED and arm.level == "pgo" and not agent.has_more(tu):
            for a in guide.arms:  # training failed: PGO is out for every TU
                if a.level == "pgo":
                    a.retired = True
        run.save()
        progress_line(run, tu, attempt)
        if attempt.verdict == Outcome.INTERRUPTED:
            raise Interrupted("stopped by the user")


