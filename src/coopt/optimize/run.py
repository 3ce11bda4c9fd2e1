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
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from types import FrameType
from typing import Any, TextIO

from coopt.agents.compiler.tools import ToolError, compile_with_flags
from coopt.agents.levels import (
    AgentContext,
    Candidate,
    HotTU,
    LevelAgent,
    LevelUnavailable,
    LLMSetupError,
    check_levels,
    make_agents,
)
from coopt.agents.registry import BY_NAME, LLM_LEVELS
from coopt.budget import Budget, BudgetExhausted
from coopt.cache.hashing import hash_file
from coopt.cache.publish import PutError, Remotes, check_original, put_variant, tu_key, withdraw
from coopt.cache.store import Store
from coopt.journal.relink import RelinkError
from coopt.optimize import shard as sharding
from coopt.optimize.guide import Guide
from coopt.optimize.llm_guide import GUIDES, LLMGuide
from coopt.optimize.plan import OptimizeError, Plan, Workloads, plan, workloads
from coopt.optimize.state import (
    AttemptRecord,
    CommandRecord,
    KeptRecord,
    MeasurementRecord,
    Outcome,
    RunState,
    RunStateError,
    ShardRecord,
    TuRecord,
    new_run_dir,
    now_utc,
    remember_run,
    runs_dir,
    save,
    state_name,
)
from coopt.optimize.state import load as load_state
from coopt.verify.acceptance import speed_code
from coopt.verify.evidence import CheckResult, Evidence, Interval
from coopt.verify.program_bench import PLACEHOLDER, Interrupted, ProgramBench, Side, WorkloadError
from coopt.verify.verdict import Code, Verdict


@dataclass
class OptimizeOptions:
    """What `coopt optimize` was asked to do."""

    cache_dir: str
    profile: str = "profile.json"
    program: str | None = None
    journal: str | None = None
    levels: list[str] = field(default_factory=lambda: ["flags", "pgo"])
    budget_evaluations: int = 0
    budget_seconds: float = 0.0
    budget_tokens: int = 0  # LLM tokens over the whole run (0: no limit)
    train: str | None = None
    bench: str | None = None
    tests: list[str] = field(default_factory=list)
    min_gain: float = 1.02
    pairs: int = 20
    measure: str = "cpu"  # what the A/B times: "cpu" (user+sys of the bench command) or "wall"
    llm: str = "none"
    run_dir: str | None = None
    max_tus: int = 8
    timeout_s: float = 600.0
    final: bool = True
    keep_work: bool = False
    remotes: Remotes | None = None  # [cache] remote: kept variants are uploaded there, withdrawn ones removed
    float_tolerance: float = 0.0  # floating-point numbers in test output within this compare equal (0: exact)
    fuzz_seconds: float = 0.0  # libFuzzer time per rewritten function of an LLM level's candidate (0: none)
    guide: str = "ucb"  # "ucb": the deterministic policy; "llm": the model picks among its live arms
    assume_cpu: bool = False  # compiler tools may target this machine's CPU (-march=native)
    llm_env: dict[str, str] | None = None  # the LLM settings as COOPT_* variables (None: this process's)
    resume: bool = False  # continue the unfinished run in run_dir: its judged attempts count and are not redone
    shard: sharding.ShardSpec | None = None  # work only on this share of the hot TUs (docs/optimize.md)


class StopFlag:
    """Ctrl-C once: stop after the current step, keeping what was verified. Twice: stop now."""

    def __init__(self) -> None:
        self.requested = False

    @contextmanager
    def on_sigint(self, say: Callable[[str], None]) -> Iterator[None]:
        def handler(_sig: int, _frame: FrameType | None) -> None:
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            say("interrupt: stopping after the current step (Ctrl-C again to stop at once)")

        try:
            old = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread: no handler, Ctrl-C raises as usual
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, old)


class Progress:
    """Progress lines. On a terminal a transient status line shows the step in flight; otherwise only whole
    lines are written, with no control characters."""

    def __init__(self, stream: TextIO, tty: bool | None = None, prefix: str = "") -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.prefix = prefix  # "shard 1/3: " on a sharded run, so interleaved CI logs say whose line it is
        self._status = False

    def line(self, text: str) -> None:
        self._clear()
        self.stream.write(self.prefix + text + "\n")
        self.stream.flush()

    def status(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K  " + (self.prefix + text)[:150])
            self.stream.flush()
            self._status = True

    def _clear(self) -> None:
        if self._status:
            self.stream.write("\r\033[K")
            self._status = False


def _interval_text(iv: Interval | None) -> str:
    return "%.3f [%.3f, %.3f]" % (iv.ratio, iv.low, iv.high) if iv else "-"


@dataclass
class _Run:
    opts: OptimizeOptions
    plan: Plan
    loads: Workloads
    state: RunState
    run_dir: str
    work: str
    budget: Budget
    store: Store
    progress: Progress
    stop: StopFlag
    bench: ProgramBench | None = None
    base: Side | None = None
    seen: dict[str, set[str]] = field(default_factory=dict)  # TU object -> object hashes already judged
    carried: list[AttemptRecord] = field(default_factory=list)  # judged before a resume: not proposed again

    def save(self) -> None:
        self.state.spent = {"evaluations": self.budget.evaluations, "seconds": round(self.budget.seconds, 1)}
        save(self.state, self.run_dir)

    def deadline(self) -> float:
        return self.budget.started + self.budget.max_seconds if self.budget.max_seconds else 0.0


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
    run = _Run(opts, p, loads, state, run_dir, work, budget, Store(opts.cache_dir), progress, stop)
    carried = _carry_over(run) if opts.resume else ""
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
                _final(run)
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
            _final(run)
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
    _summary(run)
    return state


def _same_setup(old: RunState, new: RunState) -> str:
    """Why `old` cannot be continued as `new` ("" when it can)."""
    for name in ("program", "profile", "profile_digest", "levels", "min_gain", "pairs", "llm", "measure",
                 "float_tolerance", "assume_cpu", "shard"):
        if getattr(old, name) != getattr(new, name):
            return "its %s differs" % name.replace("_", " ")
    if (old.bench.line, old.bench.cwd) != (new.bench.line, new.bench.cwd):
        return "its bench command differs"
    if [(t.line, t.cwd) for t in old.tests] != [(t.line, t.cwd) for t in new.tests]:
        return "its test commands differ"
    return ""


def _carry_over(run: _Run) -> str:
    """Continue the run saved in the run directory, when it is one of this profile and these settings; returns
    the line that says what was carried over, or why nothing was ("" when there was no run to continue)."""
    try:
        old = load_state(run.run_dir)
    except RunStateError:
        return ""  # nothing to continue: a fresh run
    why = _same_setup(old, run.state)
    if why:
        return "  the run in %s is not continued (%s): starting afresh" % (run.run_dir, why)
    judged = [a for a in old.attempts if a.verdict != Outcome.INTERRUPTED]
    kept = {}
    for obj, k in old.kept.items():
        if k.withdrawn or run.store.get(k.key) is not None:
            kept[obj] = k
        else:
            run.state.notes.append("the variant of %s from before the resume is no longer in the cache" % k.source)
            for a in judged:
                if a.number == k.attempt:
                    a.kept = False
    run.state.created, run.state.resumed = old.created, old.resumed + 1
    run.state.attempts, run.state.kept = judged, kept
    # The noise check and the final measurement are made again by this run, with notes of their own.
    run.state.notes = [n for n in old.notes if not n.startswith(("noise check:", "final measurement"))]
    # What the judged attempts cost counts: one evaluation each, two when measured again.
    run.budget.evaluations = sum(1 + (a.remeasured is not None) for a in judged)
    run.budget.started -= float(old.spent.get("seconds", 0.0))
    run.carried = judged
    return "  resuming the run of %s: %d judged attempt(s) and %d kept variant(s) carried over, %d evaluation(s) " \
        "already spent" % (old.created, len(judged), len(kept), run.budget.evaluations)


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


def _announce(run: _Run) -> None:
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


def _shown(run: _Run, line: str) -> str:
    rel = os.path.relpath(run.plan.program)
    return line.replace(PLACEHOLDER, rel if "/" in rel else "./" + rel)


def _prepare(run: _Run) -> None:
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
    lead = "  baseline: tests pass; noise (baseline vs itself) %s" % _interval_text(noise)
    if noise.low > 1.0 or noise.high < 1.0:
        lead += " -- the machine is noisy: identical programs measure as different"
        run.state.notes.append("noise check: identical programs measured %s; treat small speed-ups with care"
                               % _interval_text(noise))
    elif noise.high - noise.low > 2 * (run.opts.min_gain - 1) > 0:
        # An interval this wide around a true speed-up of min_gain would straddle it: most verdicts will be
        # inconclusive and the guide will pay nothing, which is right, but the budget buys little.
        lead += " -- wider than the min gain margin: expect inconclusive verdicts (more --pairs, a quieter machine)"
        run.state.notes.append("noise check: %s is wider than 2 x (min gain - 1); few candidates can be shown faster"
                               % _interval_text(noise))
    run.progress.line(lead)
    run.save()


def _note_tu(run: _Run, t: HotTU, why: str) -> None:
    for r in run.state.tus:
        if r.object == t.object:
            r.note = why
    run.progress.line("  %s: %s" % (t.name, why))


def _estimate(run: _Run) -> float:
    """Seconds the next evaluation may take: the longest so far, or the set-up measurement's."""
    times = [a.seconds for a in run.state.attempts]
    first = run.state.noise.seconds if run.state.noise else 0.0
    return max(times or [2 * first])


def _chooser(run: _Run, guide: Guide, ctx: AgentContext) -> Guide | LLMGuide:
    """The deterministic guide, or with `--guide llm` the model choosing among its live arms."""
    if run.opts.guide != "llm":
        return guide
    from coopt.agents.model import open_level_model

    stack, model, _ = open_level_model("guide", run.opts.llm, ctx)
    chooser = LLMGuide(guide, model)
    weakref.finalize(chooser, stack.close)  # the model (a local server) stops with the run
    return chooser


def _loop(run: _Run) -> None:
    hot = {t.object: t for t in run.plan.hot}
    rules = Guide({t.object: t.share for t in run.plan.hot}, levels=tuple(run.opts.levels), min_share=0.0)
    assert run.bench is not None and run.base is not None
    ctx = AgentContext(run.plan.link, run.plan.hot, run.loads.train, run.loads.same,
                       os.path.join(run.work, "agents"), run.opts.timeout_s, run.budget, run.opts.cache_dir,
                       float_tolerance=run.opts.float_tolerance, assume_cpu=run.opts.assume_cpu,
                       fuzz_seconds=run.opts.fuzz_seconds, environ=run.opts.llm_env)
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


def _steps(run: _Run, guide: Guide | LLMGuide, hot: dict[str, HotTU], agents: dict[str, LevelAgent]) -> None:
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
        attempt = _evaluate(run, tu, agent)
        low = attempt.interval.low if attempt.verdict == Outcome.ACCEPTED and attempt.interval else None
        guide.record(arm, low)
        if attempt.verdict == Outcome.FAILED and arm.level == "pgo" and not agent.has_more(tu):
            for a in guide.arms:  # training failed: PGO is out for every TU
                if a.level == "pgo":
                    a.retired = True
        run.save()
        _progress_line(run, tu, attempt)
        if attempt.verdict == Outcome.INTERRUPTED:
            raise Interrupted("stopped by the user")


def _evaluate(run: _Run, tu: HotTU, agent: LevelAgent) -> AttemptRecord:
    assert run.bench is not None and run.base is not None
    n = len(run.state.attempts) + 1
    start = time.monotonic()
    rec = AttemptRecord(n, tu.object, tu.source, agent.level, "", agent.proposer,
                        Outcome.FAILED, started=now_utc())
    run.state.attempts.append(rec)
    out_dir = os.path.join(run.work, "candidates")
    os.makedirs(out_dir, exist_ok=True)
    try:
        head = "[%s] %s %s" % (run.budget.describe(), tu.name, agent.level)
        run.bench.on_round = lambda text: run.progress.status("%s: %s" % (head, text))
        run.progress.status("%s: building" % head)
        cand = agent.propose(tu, out_dir)
        rec.label, rec.flags, rec.training = cand.built.label, list(cand.built.extra_flags), cand.training
        rec.tokens = cand.tokens
        _judge(run, tu, cand, rec)
    except (ToolError, LevelUnavailable) as exc:
        rec.verdict, rec.detail = Outcome.FAILED, str(exc)
        rec.tokens = getattr(exc, "tokens", 0)  # an LLM proposal that came to nothing still spent them
    except Interrupted:
        rec.verdict, rec.detail = Outcome.INTERRUPTED, "stopped by the user during this evaluation"
    except BudgetExhausted:
        rec.verdict, rec.detail = Outcome.INTERRUPTED, "the time budget ran out during this evaluation"
        rec.seconds = round(time.monotonic() - start, 2)
        raise
    except RelinkError as exc:
        rec.verdict, rec.detail = Outcome.FAILED, "relink: %s" % exc
    rec.seconds = round(time.monotonic() - start, 2)
    if run.stop.requested and rec.verdict != Outcome.ACCEPTED:
        rec.verdict = Outcome.INTERRUPTED if rec.verdict == Outcome.FAILED else rec.verdict
    return rec


def _judge(run: _Run, tu: HotTU, cand: Candidate, rec: AttemptRecord) -> None:
    assert run.bench is not None and run.base is not None
    built = cand.built
    if built.level in LLM_LEVELS and (cand.behaviour is None or not cand.behaviour.accepted):
        rec.verdict, rec.detail = Outcome.REJECTED, "no accepted behaviour evidence from the verifier"
        return
    digest = hash_file(built.object_path)
    if digest in run.seen.setdefault(tu.object, set()):
        rec.verdict, rec.detail = Outcome.DUPLICATE, "the same object as the baseline or an earlier candidate"
        return
    run.seen[tu.object].add(digest)
    t0 = time.monotonic()
    side = run.bench.side("c%03d" % rec.number, {tu.object: built.object_path})
    diff = run.bench.check(side)
    t1 = time.monotonic()
    checks = [CheckResult("build", True, " ".join(built.recipe[-1]) if built.recipe else built.label, 0.0),
              CheckResult("test", not diff, diff or "same output and exit status as the baseline on %d command(s)"
                          % len(run.loads.tests), round(t1 - t0, 3))]
    if diff:
        rec.verdict, rec.detail = Outcome.REJECTED, "test: " + diff
        return
    gain = run.opts.min_gain
    try:
        iv = run.bench.time_ab(run.base, side)
        t2 = time.monotonic()
        reserve = run.state.noise.seconds if run.opts.final and run.state.noise else 0.0
        if iv.low < gain <= iv.ratio and run.budget.fits(evaluations=1, seconds=2 * (t2 - t1) + reserve):
            # Promising, not shown: one fresh measurement with twice the pairs decides, as one more evaluation.
            # Only the new samples count, so the first look cannot tip the verdict.
            run.budget.charge(evaluations=1)
            rec.remeasured = iv
            iv = run.bench.time_ab(run.base, side, pairs=2 * run.opts.pairs)
    except RuntimeError as exc:
        rec.verdict, rec.detail = Outcome.FAILED, str(exc)
        return
    rec.interval = iv
    text = "speed-up %s, min_gain %.2f, %d interleaved pairs, %s time" % (
        _interval_text(iv), gain, len(iv.samples_original), iv.method)
    if rec.remeasured is not None:
        text += " (measured again: the first %d pairs gave %s)" % (len(rec.remeasured.samples_original),
                                                                   _interval_text(rec.remeasured))
    checks.append(CheckResult("bench", True, text, round(time.monotonic() - t1, 3)))
    code = speed_code(iv, gain)
    if code is Code.ACCEPTED:
        rec.verdict, rec.detail = Outcome.ACCEPTED, text
    elif code is Code.REJECTED:
        rec.verdict, rec.detail = Outcome.REJECTED, "not faster: " + text
        return
    else:
        rec.verdict, rec.detail = Outcome.INCONCLUSIVE, "speed-up not shown: " + text
        return
    best = run.state.kept.get(tu.object)
    if best is not None and best.interval.low >= iv.low:
        rec.detail += "; kept the earlier variant (%s, lower bound %.3f)" % (best.label, best.interval.low)
        return
    _store(run, tu, cand, rec, checks, iv, {"test": round(t1 - t0, 3), "bench": round(time.monotonic() - t1, 3)})


def _store(run: _Run, tu: HotTU, cand: Candidate, rec: AttemptRecord, checks: list[CheckResult], iv: Interval,
           timings: dict[str, float]) -> None:
    built = cand.built
    ev = cand.behaviour or Evidence(tu.source, built.artifact_path or tu.source, Verdict.accepted(rec.detail))
    ev.verdict = Verdict.accepted(rec.detail)
    ev.checks = [*ev.checks, *checks]
    ev.interval = iv
    ev.cflags = list(tu.job.key_args)
    ev.timings.update(timings)
    if cand.behaviour is None:
        ev.sanitizers = "not run: the unchanged source compiled by the compiler's own tools; judged by the program"
    evidence: dict[str, Any] = ev.to_dict()
    evidence.update({
        "verified": True,
        "by": "coopt optimize",
        "proposer": {"agent": cand.proposer, "level": built.level, "label": built.label, "flags": built.extra_flags},
        "training": cand.training,
        "program": run.plan.program,
        "bench": {"command": run.loads.bench.line, "cwd": run.loads.bench.cwd, "origin": run.loads.bench.origin},
        "tests": [{"command": t.line, "cwd": t.cwd, "origin": t.origin} for t in run.loads.tests],
        "pairs": len(iv.samples_original),
        "min_gain": run.opts.min_gain,
        "noise": asdict(run.state.noise.interval) if run.state.noise and run.state.noise.interval else None,
        "run": run.run_dir,
    })
    artifact = built.artifact_path if os.path.isfile(built.artifact_path or "") else tu.job.source_path
    try:
        entry = put_variant(run.store, tu.job, artifact, BY_NAME[built.level].artifact, evidence, built.extra_flags,
                            prebuilt_object=built.object_path, remotes=run.opts.remotes, level=built.level)
    except (PutError, OSError) as exc:
        rec.detail += "; not stored: %s" % exc
        return
    old = run.state.kept.get(tu.object)
    if old is not None:
        for a in run.state.attempts:
            if a.number == old.attempt:
                a.kept = False
    rec.kept, rec.entry_key = True, entry.key
    run.state.kept[tu.object] = KeptRecord(tu.object, tu.source, rec.number, entry.key, built.level, built.label, iv)


def _best(run: _Run) -> Interval | None:
    ivs = [k.interval for k in run.state.kept.values() if not k.withdrawn]
    return max(ivs, key=lambda iv: iv.ratio) if ivs else None


def _progress_line(run: _Run, tu: HotTU, a: AttemptRecord) -> None:
    head = "[%s, %.0f s]" % (run.budget.describe().split(",")[0] if run.budget.max_evaluations else
                             "%d evals" % run.budget.evaluations, run.budget.seconds)
    text = "%s %s (%.1f%%) %s %r: %s" % (head, tu.name, 100 * tu.share, a.level, a.label or "-", a.verdict)
    if a.interval:
        text += " %s" % _interval_text(a.interval)
        if a.remeasured:
            text += " (measured again with %d pairs; first %s)" % (len(a.interval.samples_original),
                                                                  _interval_text(a.remeasured))
    elif a.detail:
        text += " (%s)" % a.detail[:160]
    if a.kept:
        text += " -> stored"
    best = _best(run)
    text += "; best so far %s" % (_interval_text(best) if best else "none")
    run.progress.line(text)


def _final(run: _Run) -> None:
    """The program with every kept variant, served from the cache, against the baseline."""
    kept = [k for k in run.state.kept.values() if not k.withdrawn]
    if not kept or run.bench is None or run.base is None:
        return
    if not run.opts.final:
        run.state.notes.append("final measurement skipped (--no-final)")
        return
    if run.stop.requested:
        run.state.notes.append("final measurement skipped: interrupted")
        return
    if run.budget.max_seconds and run.state.noise and not run.budget.fits(seconds=run.state.noise.seconds):
        run.state.notes.append("final measurement skipped: it does not fit in the time left")
        return
    objects = {}
    for k in kept:
        entry = run.store.get(k.key)
        if entry is None:
            run.state.notes.append("the variant of %s is no longer in the cache" % k.source)
            continue
        objects[k.object] = entry.object_path
    start = time.monotonic()
    try:
        side = run.bench.side("last", objects)
        diff = run.bench.check(side)
        if diff:
            raise RuntimeError("the final program fails a test: %s" % diff)
        iv = run.bench.time_ab(run.base, side)
    except (RuntimeError, RelinkError, BudgetExhausted, Interrupted) as exc:
        run.state.notes.append("final measurement not made: %s" % (str(exc) or type(exc).__name__))
        return
    run.state.final = MeasurementRecord(iv, run.opts.pairs, round(time.monotonic() - start, 2),
                                        "all %d kept variant(s), objects from the cache, against the baseline"
                                        % len(objects))
    if iv.high < 1.0:
        # The variants together make the program slower than plain clang: none of them may stay.
        for k in kept:
            gone = run.store.get(k.key)
            run.store.remove(k.key)
            direct_key = gone.meta.get("direct_key") if gone is not None else None
            if run.opts.remotes is not None and run.opts.remotes.specs and isinstance(direct_key, str):
                withdraw(run.store.layout, k.key, direct_key, run.opts.remotes)
            k.withdrawn = "the final program measured slower than the baseline: %s" % _interval_text(iv)
        run.state.notes.append("all variants withdrawn: together they measured %s" % _interval_text(iv))


def _summary(run: _Run) -> None:
    s, say = run.state, run.progress.line
    say("stopped: %s; spent %s" % (s.stop_reason or s.status, run.budget.describe() if run.budget.max_seconds else
                                   "%d evaluations, %.0f s" % (run.budget.evaluations, run.budget.seconds)))
    live = [k for k in s.kept.values() if not k.withdrawn]
    if s.final and s.final.interval:
        say("final program (%d variant(s)) vs plain clang at your flags: %s over %d pairs"
            % (len(live), _interval_text(s.final.interval), s.final.pairs))
    for note in s.notes:
        say("note: %s" % note)
    if live:
        say("stored %d variant(s): %s" % (len(live), ", ".join(
            "%s %s %r %s" % (os.path.basename(k.source), k.level, k.label, _interval_text(k.interval)) for k in live)))
    else:
        say("no variant stored: no candidate's speed-up interval cleared min_gain %.2f" % s.min_gain
            if s.attempts else "no variant stored: nothing was evaluated")
    how = "merge the shards with `coopt report --results %s`" if run.state.shard else "render it with " \
        "`coopt report --run %s`"
    say("run state: %s (%s)" % (os.path.join(run.run_dir, state_name(s)), how % run.run_dir))
