"""One attempt: an agent proposes a candidate, the whole program judges it (tests, then A/B timing against the
baseline with the one acceptance rule), and an accepted variant better than the TU's best is published."""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from typing import Any

from coopt.agents.compiler.tools import ToolError
from coopt.agents.feedback import Feedback, Kind
from coopt.agents.levels import (
    Candidate,
    HotTU,
    LevelAgent,
    LevelUnavailable,
)
from coopt.agents.registry import BY_NAME, LLM_LEVELS
from coopt.budget import BudgetExhausted
from coopt.cache.hashing import hash_file
from coopt.cache.publish import PutError, put_variant
from coopt.journal.relink import RelinkError
from coopt.optimize.session import Run, interval_text
from coopt.optimize.state import (
    AttemptRecord,
    KeptRecord,
    Outcome,
    now_utc,
)
from coopt.verify.acceptance import speed_code
from coopt.verify.evidence import CheckResult, Evidence, Interval
from coopt.verify.program_level.bench import Interrupted
from coopt.verify.verdict import Code, Verdict


def evaluate(run: Run, tu: HotTU, agent: LevelAgent) -> AttemptRecord:
    """One attempt at `tu` by `agent`: propose, judge, publish when accepted; the record is already in the state."""
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
        rec.micro = cand.micro
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


def _judge(run: Run, tu: HotTU, cand: Candidate, rec: AttemptRecord) -> None:
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
    best = run.state.kept.get(tu.object)
    if best is not None and best.interval.low >= iv.low:
        rec.detail += "; kept the earlier variant (%s, lower bound %.3f)" % (best.label, best.interval.low)
        return
    _store(run, tu, cand, rec, checks, iv, {"test": round(t1 - t0, 3), "bench": round(time.monotonic() - t1, 3)})


def _store(run: Run, tu: HotTU, cand: Candidate, rec: AttemptRecord, checks: list[CheckResult], iv: Interval,
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
