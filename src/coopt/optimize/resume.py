"""Resuming a run: refuse a run of other settings, carry over its judged attempts and kept variants."""

from __future__ import annotations

from coopt.optimize.session import Run
from coopt.optimize.state import (
    Outcome,
    RunState,
    RunStateError,
)
from coopt.optimize.state import load as load_state


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


def carry_over(run: Run) -> str:
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
    # What the judged attempts cost counts: one evaluation each, two when measured again; duplicates, a compiler
    # sweep's other rows and free proposals (nothing asked or built) nothing.
    run.budget.evaluations = sum(1 + (a.remeasured is not None) for a in judged
                                 if a.verdict != Outcome.DUPLICATE and not a.swept and not a.free)
    run.budget.started -= float(old.spent.get("seconds", 0.0))
    run.carried = judged
    return "  resuming the run of %s: %d judged attempt(s) and %d kept variant(s) carried over, %d evaluation(s) " \
        "already spent" % (old.created, len(judged), len(kept), run.budget.evaluations)
