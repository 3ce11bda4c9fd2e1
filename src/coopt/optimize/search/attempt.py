"""One attempt: an agent proposes a candidate on a node of the TU's lineage, the whole program judges it (tests,
then A/B timing against the baseline with the one acceptance rule), and an accepted variant better than the TU's
best is published with its lineage (optimize/lineage.py).

Budget: an evaluation is charged once the candidate is known not to be a duplicate (the same object as the
baseline or an already judged node costs nothing and is recorded as DUPLICATE with the node it repeats); a
proposal that fails to build still costs its evaluation. A proposal that comes to nothing without spending
anything (the level refused every function before asking the model: defined through a macro, too long for an
answer) costs nothing either: the record is `free`, and the guide still learns it (a level that keeps returning
no candidate is retired, so free attempts cannot go on forever). Answers replayed from the transcript cache cost
no tokens but were asked for, built and checked: they are not free."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, replace

from coopt.agents.compiler.tools import ToolError
from coopt.agents.feedback import Feedback, Kind
from coopt.agents.levels import (
    Candidate,
    HotTU,
    LevelAgent,
    LevelUnavailable,
    NoCandidate,
)
from coopt.agents.registry import BY_NAME, LLM_LEVELS
from coopt.budget import BudgetExhausted
from coopt.cache.hashing import hash_file
from coopt.cache.publish import PutError, put_variant
from coopt.journal.relink import RelinkError
from coopt.optimize import lineage
from coopt.optimize.search.guide import FAILED, NOTHING, PAID, PROMISING
from coopt.optimize.session import Run, interval_text
from coopt.optimize.state import (
    AttemptRecord,
    CommandRecord,
    KeptRecord,
    Outcome,
    now_utc,
)
from coopt.verify.acceptance import speed_code
from coopt.verify.evidence import CheckResult, Evidence, Interval
from coopt.verify.program_level.bench import Interrupted
from coopt.verify.verdict import Code, Verdict


def guide_result(rec: AttemptRecord, min_gain: float) -> str:
    """What the attempt tells the guide: paid, promising (worth a retry with the judge's feedback: inconclusive or
    rejected, with a measured ratio at least halfway from 1.0 to min_gain), failed, or nothing (no candidate came
    back)."""
    if rec.verdict == Outcome.ACCEPTED:
        return PAID
    if rec.verdict in (Outcome.INCONCLUSIVE, Outcome.REJECTED) and rec.interval and rec.interval.ratio > 1.0:
        return PROMISING if rec.interval.ratio >= 1.0 + (min_gain - 1.0) / 2 else FAILED
    if rec.verdict == Outcome.FAILED and rec.no_candidate:
        return NOTHING
    return FAILED


def new_record(run: Run, tu: HotTU, agent: LevelAgent, parent: AttemptRecord | None) -> AttemptRecord:
    """A fresh attempt of `agent` on node `parent` of `tu`, already in the state (node ids stay unique after a
    resume)."""
    n = 1 + max((a.number for a in run.state.attempts), default=0)
    rec = AttemptRecord(n, tu.object, tu.source, agent.level, "", agent.proposer,
                        Outcome.FAILED, started=now_utc(), parent=parent.number if parent else 0)
    run.state.attempts.append(rec)
    return rec


def describe(rec: AttemptRecord, cand: Candidate) -> None:
    """What the proposal was, on its record: label, flags, proposer, PGO training, tokens, micro-benchmark."""
    rec.label, rec.flags = cand.built.label, list(cand.built.extra_flags)
    rec.proposer = cand.proposer or rec.proposer  # the model's name with it, for the lineage's steps
    rec.training = asdict(cand.training) if cand.training else None
    rec.tokens = cand.tokens
    rec.micro = cand.micro


def evaluate(run: Run, tu: HotTU, agent: LevelAgent, parent: AttemptRecord | None = None,
             reserve_s: float = 0.0, owed: int = 0,
             proposed: tuple[AttemptRecord, Candidate] | None = None) -> AttemptRecord:
    """One attempt at `tu` by `agent` on node `parent` (None: the journaled compile): propose, judge, publish when
    accepted; the record is already in the state. The evaluation is charged here (with `reserve_s` of time to
    spare), after the duplicate check. `owed`: evaluations to leave for the levels not yet tried on the TU (the
    guide's step 9), which a second measurement of a promising candidate may not take. `proposed`: a candidate
    already built and described on its record (the compiler sweep's pick), judged without asking the agent."""
    assert run.bench is not None and run.base is not None
    start = time.monotonic()
    rec = proposed[0] if proposed else new_record(run, tu, agent, parent)
    out_dir = os.path.join(run.work, "candidates")
    os.makedirs(out_dir, exist_ok=True)
    try:
        head = "[%s] %s %s" % (run.budget.describe(), tu.name, agent.level)
        run.bench.on_round = lambda text: run.progress.status("%s: %s" % (head, text))
        if proposed:
            cand = proposed[1]
        else:
            run.progress.status("%s: building" % head)
            try:
                cand = agent.propose(tu, out_dir, lineage.node(tu, run.state.attempts, parent))
            except (ToolError, LevelUnavailable) as exc:
                rec.free = isinstance(exc, NoCandidate) and not exc.asked and not exc.tokens
                if not rec.free:
                    run.budget.charge(evaluations=1)  # a proposal that came to nothing costs its evaluation
                raise
            describe(rec, cand)
        _judge(run, tu, cand, rec, reserve_s, owed)
    except (ToolError, LevelUnavailable) as exc:
        rec.verdict, rec.detail = Outcome.FAILED, str(exc)
        rec.no_candidate = isinstance(exc, NoCandidate)
        rec.tokens = getattr(exc, "tokens", 0)  # an LLM proposal that came to nothing still spent them
        if rec.free:
            rec.detail = "no evaluation charged (nothing asked or built): " + rec.detail
    except Interrupted:
        rec.verdict, rec.detail = Outcome.INTERRUPTED, "stopped by the user during this evaluation"
    except BudgetExhausted:
        rec.verdict, rec.detail = Outcome.INTERRUPTED, "the time budget ran out during this evaluation"
        rec.seconds = round(time.monotonic() - start, 2)
        raise
    except RelinkError as exc:
        rec.verdict, rec.detail = Outcome.FAILED, "relink: %s" % exc
    rec.seconds = round(time.monotonic() - start, 2)
    if rec.verdict != Outcome.INTERRUPTED:
        agent.learn(tu, feedback(rec, run.opts.min_gain))
    if run.stop.requested and rec.verdict != Outcome.ACCEPTED:
        rec.verdict = Outcome.INTERRUPTED if rec.verdict == Outcome.FAILED else rec.verdict
    return rec


def feedback(rec: AttemptRecord, min_gain: float) -> Feedback:
    """What the agent learns of its judged attempt: the measured speed-up, the check that rejected it, or that
    its proposal came to nothing."""
    if rec.interval is not None:
        return Feedback(Kind.TIMED, rec.label, "benchmark", rec.detail, speedup=rec.interval, micro=rec.micro,
                        min_gain=min_gain)
    if rec.verdict == Outcome.FAILED:
        return Feedback(Kind.NO_CANDIDATE, rec.label, detail=rec.detail)
    check = "project test" if rec.detail.startswith("test:") else "duplicate check" \
        if rec.verdict == Outcome.DUPLICATE else "judge"
    detail = rec.detail
    if rec.verdict == Outcome.DUPLICATE:
        detail = "it compiles to the same object as the original or an earlier version: the compiler already " \
            "did what it does"
    return Feedback(Kind.REJECTED, rec.label, check, detail, micro=rec.micro)


def _judge(run: Run, tu: HotTU, cand: Candidate, rec: AttemptRecord, reserve_s: float, owed: int = 0) -> None:
    assert run.bench is not None and run.base is not None
    built = cand.built
    digest = rec.object_digest = lineage.code_digest(built.object_path)
    if built.artifact_path and os.path.isfile(built.artifact_path):
        rec.artifact, rec.artifact_digest = built.artifact_path, hash_file(built.artifact_path)
    seen = run.seen.setdefault(tu.object, {})
    if digest in seen:
        rec.duplicate_of = seen[digest]
        rec.verdict = Outcome.DUPLICATE
        rec.detail = "the same object as %s: not judged again, no evaluation spent" % (
            "the baseline" if not seen[digest] else "attempt #%d" % seen[digest])
        return
    seen[digest] = rec.number
    run.budget.charge(evaluations=1, seconds=reserve_s)
    if built.level in LLM_LEVELS and (cand.behaviour is None or not cand.behaviour.accepted):
        rec.verdict, rec.detail = Outcome.REJECTED, "no accepted behaviour evidence from the verifier"
        return
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
        if iv.low < gain <= iv.ratio and run.budget.fits(evaluations=1 + owed, seconds=2 * (t2 - t1) + reserve):
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
        interval_text(iv), gain, len(iv.samples_original), iv.method)
    if rec.remeasured is not None:
        text += " (measured again: the first %d pairs gave %s)" % (len(rec.remeasured.samples_original),
                                                                   interval_text(rec.remeasured))
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
    # A verified node: its artifact moves to the run directory, so later steps can build on it, resumed or not.
    lineage.keep_artifact(run.run_dir, rec, built.artifact_path, cand.behaviour)
    if cand.behaviour is not None:
        run.behaviour[rec.number] = cand.behaviour
    best = run.state.kept.get(tu.object)
    if best is not None and best.interval.low >= iv.low:
        rec.detail += "; kept the earlier variant (%s, lower bound %.3f)" % (best.label, best.interval.low)
        return
    _store(run, tu, cand, rec, checks, iv, {"test": round(t1 - t0, 3), "bench": round(time.monotonic() - t1, 3)})


def _store(run: Run, tu: HotTU, cand: Candidate, rec: AttemptRecord, checks: list[CheckResult], iv: Interval,
           timings: dict[str, float]) -> None:
    built = cand.built
    # The behaviour evidence of the newest LLM step of the lineage covers the code this node compiles.
    nodes = lineage.chain(run.state.attempts, rec)
    llm = [a for a in nodes if a.level in LLM_LEVELS]
    base = lineage.behaviour_of(run.run_dir, llm[-1].number, run.behaviour) if llm else None
    ev = base or Evidence(tu.source, rec.artifact or tu.source, Verdict.accepted(rec.detail))
    ev = replace(ev, checks=[*ev.checks, *checks], timings={**ev.timings, **timings})
    ev.verdict = Verdict.accepted(rec.detail)
    ev.interval = iv
    ev.cflags = list(tu.job.key_args)
    if base is None:
        ev.sanitizers = "not run: the unchanged source compiled by the compiler's own tools; judged by the program"
    loads = run.loads
    prov = lineage.Provenance(
        lineage.ProposerRecord(cand.proposer, built.level, built.label, list(rec.flags)),
        lineage.steps(tu, run.state.attempts, rec), cand.training, run.plan.program,
        CommandRecord(loads.bench.line, loads.bench.cwd, loads.bench.origin),
        [CommandRecord(t.line, t.cwd, t.origin) for t in loads.tests], len(iv.samples_original), run.opts.min_gain,
        run.state.noise.interval if run.state.noise else None, run.run_dir)
    evidence = {**ev.to_dict(), **prov.fields()}
    artifact = rec.artifact if os.path.isfile(rec.artifact or "") else tu.job.source_path
    try:
        entry = put_variant(run.store, tu.job, artifact, BY_NAME[built.level].artifact, evidence, rec.flags,
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
