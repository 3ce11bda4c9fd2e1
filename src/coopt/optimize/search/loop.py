"""The search of the lineage trees: the guide picks (TU, node, level), the level's agent proposes on that node,
the attempt is judged, and an accepted attempt becomes a node the next steps can build on.

The policy is the guide's (guide.py, docs/guide.md). Here: the TUs it gives no evaluation (the Amdahl
bound of their share cannot reach min_gain) and the levels it retires are said in the run's output and notes; a
resumed run replays its judged attempts into the guide (the tree grows back, the agents move past what was
judged); each evaluation must fit the budget before it starts (attempt.evaluate charges it once the candidate is
known not to be a duplicate).
"""

from __future__ import annotations

import os
import weakref

from coopt.agents.levels import AgentContext, AgentSettings, HotTU, LevelAgent, LLMSetupError, make_agents
from coopt.agents.registry import COMPILER_LEVELS
from coopt.budget import BudgetExhausted
from coopt.optimize import lineage
from coopt.optimize.final import progress_line
from coopt.optimize.plan import OptimizeError
from coopt.optimize.search.attempt import evaluate, guide_result
from coopt.optimize.search.guide import FAILED, Arm, Guide
from coopt.optimize.search.llm_guide import LLMGuide
from coopt.optimize.search.sweep import Contender, judge_contender, sweep
from coopt.optimize.session import Run
from coopt.optimize.state import AttemptRecord, Outcome
from coopt.verify.behaviour import JudgeSettings, checker
from coopt.verify.program_level.bench import Interrupted
from coopt.verify.program_level.differential import ProgramContext

SCREEN_EVALUATIONS = 2  # a sweep's screens may take this many times an evaluation's estimated time


def estimate(run: Run) -> float:
    """Seconds the next evaluation may take: the longest so far, or the set-up measurement's."""
    times = [a.seconds for a in run.state.attempts if a.verdict != Outcome.DUPLICATE]
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


def search(run: Run) -> None:
    """Spend the budget on the hot TUs' lineage trees."""
    hot = {t.object: t for t in run.plan.hot}
    rules = Guide({t.object: t.share for t in run.plan.hot}, levels=tuple(run.opts.levels), min_share=0.0,
                  min_gain=run.opts.min_gain, sweep=run.opts.sweep)
    for obj, why in rules.skipped.items():  # the Amdahl bound: no evaluation where it cannot pay
        for r in run.state.tus:
            if r.object == obj:
                r.note = "no evaluation: %s" % why
        run.state.notes.append("%s: no evaluation: %s" % (hot[obj].name, why))
        run.progress.line("  %s: no evaluation: %s" % (hot[obj].name, why))
    assert run.bench is not None and run.base is not None
    settings = AgentSettings(run.opts.timeout_s, run.budget, run.opts.cache_dir, run.opts.assume_cpu,
                             run.opts.llm_env, log_dir=os.path.join(run.run_dir, "conversations"))
    ctx = AgentContext(run.plan.link, run.plan.hot, run.loads.train, run.loads.same,
                       os.path.join(run.work, "agents"), settings, runner=run.plan.runner,
                       check=checker(JudgeSettings(run.opts.timeout_s, run.opts.float_tolerance,
                                                   run.opts.fuzz_seconds),
                                     ProgramContext(run.plan.link, os.path.join(run.work, "program-checks"),
                                                    tuple(run.loads.tests), run.opts.timeout_s,
                                                    float_tolerance=run.opts.float_tolerance)),
                       program_level=True)
    try:
        agents = make_agents(run.opts.levels, run.opts.llm, ctx)
        chooser = _chooser(run, rules, ctx)
    except LLMSetupError as exc:
        raise OptimizeError(str(exc)) from exc
    try:
        _steps(run, rules, chooser, hot, agents)
    finally:
        if isinstance(chooser, LLMGuide):
            run.state.notes.append(chooser.summary())


def _learn(run: Run, rules: Guide, chooser: Guide | LLMGuide, arm: Arm | None, rec: AttemptRecord) -> None:
    """What the attempt tells the guide: its result for the arm, and a new node when it was accepted."""
    low = rec.interval.low if rec.verdict == Outcome.ACCEPTED and rec.interval else None
    if arm is not None and rec.verdict != Outcome.DUPLICATE:  # a duplicate cost nothing and taught nothing
        chooser.record(arm, low, guide_result(rec, run.opts.min_gain))
    if rec.object_digest:
        run.seen.setdefault(rec.object, {}).setdefault(rec.object_digest, rec.number)
    if low is not None:
        rules.accepted(rec.object, rec.number, rec.level, low)
        if isinstance(chooser, LLMGuide):
            chooser.nodes[(rec.object, rec.number)] = "%s, verified %.3fx" % (
                lineage.lineage_text(run.state.attempts, rec), low)


def _say_retired(run: Run, rules: Guide, said: set[str]) -> None:
    for level, why in rules.retired_levels.items():
        if level not in said:
            said.add(level)
            run.state.notes.append("level %s %s" % (level, why))
            run.progress.line("  level %s %s" % (level, why))


def _steps(run: Run, rules: Guide, chooser: Guide | LLMGuide, hot: dict[str, HotTU],
           agents: dict[str, LevelAgent]) -> None:
    said: set[str] = set()
    for level, agent in agents.items():
        why = agent.unavailable()
        if why:  # e.g. PGO without clang's profile runtime: said once, no budget spent on it
            rules.retire_level(level, "not tried: %s" % why)
    _say_retired(run, rules, said)
    by_number = {a.number: a for a in run.state.attempts}
    for rec in run.carried:  # a resumed run: the tree grows back, the agents move past what was judged
        if rec.object not in hot:
            continue
        arm = next((a for a in rules.arms if (a.tu, a.node, a.level) == (rec.object, rec.parent, rec.level)), None)
        _learn(run, rules, chooser, None if rec.swept else arm, rec)
        agents[rec.level].skip(hot[rec.object], rec)
    contenders: list[Contender] = []  # near ties of the sweeps' screens, judged when nothing else is left
    while True:
        if run.stop.requested:
            raise Interrupted("stopped by the user")
        arm = chooser.next_arm()
        if arm is None and contenders:
            _contender(run, rules, chooser, contenders.pop(0), said)
            continue
        if arm is None:
            run.state.status, run.state.stop_reason = "finished", "every direction stopped paying (or was tried)"
            return
        tu, agent = hot[arm.tu], agents[arm.level]
        parent = by_number.get(arm.node) if arm.node else None
        if not agent.has_more(tu, lineage.node(tu, run.state.attempts, parent)):
            arm.retired = True
            continue
        reserve = _fit(run)
        node = lineage.node(tu, run.state.attempts, parent)
        group = [a for a in rules.sweep_group(arm) if agents[a.level].has_more(tu, node)]
        # A second look at a promising candidate must leave each level not yet tried on this TU its evaluation.
        owed = len(rules.levels_not_tried(arm.tu) - {a.level for a in group})
        if rules.sweep and arm.level in COMPILER_LEVELS:  # guide step 10: the compiler levels as one sweep
            attempt = _sweep(run, rules, chooser, tu, group, agents, parent, reserve, owed, by_number, contenders)
        else:
            attempt = evaluate(run, tu, agent, parent, reserve, owed)
            by_number[attempt.number] = attempt
            _learn(run, rules, chooser, arm, attempt)
        for level in {a.level for a in group}:  # e.g. PGO training failed: out everywhere
            if agents[level].unavailable():
                rules.retire_level(level, "asked no more: %s" % agents[level].unavailable())
        _after(run, rules, said, tu, attempt)


def _fit(run: Run) -> float:
    """The time the next evaluation needs kept free; BudgetExhausted when it does not fit. With a time limit, the
    final measurement (one A/B, like the noise check) must still fit afterwards."""
    reserve = estimate(run) + (run.state.noise.seconds if run.opts.final and run.state.noise else 0.0)
    if not run.budget.fits(evaluations=1, seconds=reserve):
        raise BudgetExhausted(run.budget.describe())
    return reserve


def _after(run: Run, rules: Guide, said: set[str], tu: HotTU, attempt: AttemptRecord) -> None:
    """An evaluation is over: save, say its line and what it retired, stop if the user asked to."""
    run.save()
    progress_line(run, tu, attempt)
    _say_retired(run, rules, said)  # after the attempt's line: it is what retired the level
    if attempt.verdict == Outcome.INTERRUPTED:
        raise Interrupted("stopped by the user")


def _contender(run: Run, rules: Guide, chooser: Guide | LLMGuide, c: Contender, said: set[str]) -> None:
    """A sweep's near tie judged in full (sweep.py), as one evaluation, when the budget allows."""
    attempt = judge_contender(run, c, _fit(run))
    arm = next((a for a in rules.arms if (a.tu, a.node, a.level) == (attempt.object, attempt.parent,
                                                                         attempt.level)), None)
    _learn(run, rules, chooser, arm, attempt)
    _after(run, rules, said, c.tu, attempt)


def _sweep(run: Run, rules: Guide, chooser: Guide | LLMGuide, tu: HotTU, group: list[Arm],
           agents: dict[str, LevelAgent], parent: AttemptRecord | None, reserve: float, owed: int,
           by_number: dict[int, AttemptRecord], contenders: list[Contender]) -> AttemptRecord:
    """One compiler sweep over the arms of `group` (sweep.py): the judged row's arm learns its result, each
    other level with a row screened out learns a failure; every row's line is said; near ties join `contenders`."""
    judged, others, close = sweep(run, tu, [agents[a.level] for a in group], parent, reserve, owed,
                                  SCREEN_EVALUATIONS * estimate(run))
    contenders.extend(close)
    # Most expected program-level gain first: the TU's share times what the screen saw.
    contenders.sort(key=lambda c: -c.tu.share * (1 - 1 / c.rec.screen.ratio) if c.rec.screen else 0.0)
    for rec in [*others, judged]:
        by_number[rec.number] = rec
    arms = {a.level: a for a in group}
    _learn(run, rules, chooser, arms.get(judged.level), judged)
    for level in {r.level for r in others if r.verdict == Outcome.SCREENED} - {judged.level}:
        chooser.record(arms[level], None, FAILED)
    for rec in others:
        _learn(run, rules, chooser, None, rec)
        if rec.verdict != Outcome.DUPLICATE:
            progress_line(run, tu, rec)
    dups = [r for r in others if r.verdict == Outcome.DUPLICATE]
    if dups:  # one line for them all: a sweep of a node often rebuilds objects already seen
        run.progress.line("  %s: %d row(s) of the sweep built an object already seen, not screened: %s" % (
            tu.name, len(dups), ", ".join("%r (as #%d)" % (r.label, r.duplicate_of) if r.duplicate_of else
                                          "%r (as the baseline)" % r.label for r in dups)))
    return judged
