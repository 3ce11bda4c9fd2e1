"""The end of a run: the final measurement of every kept variant together (withdrawn when slower), the progress
line per attempt and the closing summary."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Sequence

from coopt.agents.levels import HotTU
from coopt.budget import BudgetExhausted
from coopt.cache.publish import withdraw
from coopt.journal.relink import RelinkError
from coopt.optimize.session import Run, interval_text
from coopt.optimize.state import (
    AttemptRecord,
    MeasurementRecord,
    Outcome,
    state_name,
)
from coopt.verify.evidence import Interval
from coopt.verify.program_level.bench import Interrupted


def best_kept(run: Run) -> Interval | None:
    """The best interval among the variants kept and not withdrawn."""
    ivs = [k.interval for k in run.state.kept.values() if not k.withdrawn]
    return max(ivs, key=lambda iv: iv.ratio) if ivs else None


def progress_line(run: Run, tu: HotTU, a: AttemptRecord) -> None:
    """One line per judged attempt: budget, TU, level, verdict, interval, best so far."""
    head = "[%s, %.0f s]" % (run.budget.describe().split(",")[0] if run.budget.max_evaluations else
                             "%d evals" % run.budget.evaluations, run.budget.seconds)
    text = "%s %s (%.1f%%) %s%s %r: %s" % (head, tu.name, 100 * tu.share, a.level,
                                          " on #%d" % a.parent if a.parent else "", a.label or "-", a.verdict)
    if a.interval:
        text += " %s" % interval_text(a.interval)
        if a.remeasured:
            text += " (measured again with %d pairs; first %s)" % (len(a.interval.samples_original),
                                                                  interval_text(a.remeasured))
    elif a.detail:
        text += " (%s)" % a.detail[:160]
    if a.kept:
        text += " -> stored"
    best = best_kept(run)
    text += "; best so far %s" % (interval_text(best) if best else "none")
    run.progress.line(text)


def final(run: Run) -> None:
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
            k.withdrawn = "the final program measured slower than the baseline: %s" % interval_text(iv)
        run.state.notes.append("all variants withdrawn: together they measured %s" % interval_text(iv))


def summary(run: Run) -> None:
    """The closing lines: why the run stopped, what it spent, what it kept."""
    s, say = run.state, run.progress.line
    say("stopped: %s; spent %s" % (s.stop_reason or s.status, run.budget.describe() if run.budget.max_seconds else
                                   "%d evaluations, %.0f s" % (run.budget.evaluations, run.budget.seconds)))
    live = [k for k in s.kept.values() if not k.withdrawn]
    if s.final and s.final.interval:
        say("final program (%d variant(s)) vs plain clang at your flags: %s over %d pairs"
            % (len(live), interval_text(s.final.interval), s.final.pairs))
    for note in s.notes:
        say("note: %s" % note)
    if live:
        say("stored %d variant(s): %s" % (len(live), ", ".join(
            "%s %s %r %s" % (os.path.basename(k.source), k.level, k.label, interval_text(k.interval)) for k in live)))
    else:
        say(nothing_stored(s.attempts, s.min_gain, [k.withdrawn for k in s.kept.values() if k.withdrawn]))
    how = "merge the shards with `coopt report --results %s`" if run.state.shard else "render it with " \
        "`coopt report --run %s`"
    say("run state: %s (%s)" % (os.path.join(run.run_dir, state_name(s)), how % run.run_dir))


# What each outcome of an attempt that was never timed means, for the closing line.
UNTIMED = {
    Outcome.DUPLICATE: "produced the baseline's object or one already tried (nothing to time)",
    Outcome.FAILED: "failed to build or propose",
    Outcome.REJECTED: "were rejected before timing",
    Outcome.INTERRUPTED: "were interrupted",
    Outcome.SCREENED: "were ranked below another row by a compiler sweep's screen",
}


def nothing_stored(attempts: list[AttemptRecord], min_gain: float, withdrawn: Sequence[str] = ()) -> str:
    """Why a run kept nothing, as it happened: variants accepted and then `withdrawn` (the reasons) by the final
    measurement; else only when some candidate was timed is it about min_gain."""
    if withdrawn:
        return "no variant stored: %d accepted variant(s) withdrawn: %s" % (len(withdrawn), withdrawn[0])
    if not attempts:
        return "no variant stored: nothing was evaluated"
    # A compiler sweep's screen (optimize/search/sweep.py) is a timing too, a short one: its rows count as timed.
    timed = [(a, a.interval or a.screen) for a in attempts if a.interval is not None or a.screen is not None]
    if timed:
        best, iv = max(timed, key=lambda t: t[1].low if t[1] else 0.0)
        assert iv is not None
        return ("no variant stored: %d of %d candidate(s) were timed and none's speed-up interval cleared min_gain "
                "%.2f (best: %s, %s%s)" % (len(timed), len(attempts), min_gain, best.label or best.level,
                                           interval_text(iv), "" if best.interval else ", on a sweep's screen"))
    counts = Counter(a.verdict for a in attempts)
    parts = ["%d %s" % (n, UNTIMED.get(v, str(v))) for v, n in counts.most_common()]
    every = "every candidate" if len(counts) == 1 else "of %d candidates, %s" % (len(attempts), "; ".join(parts))
    if len(counts) == 1:
        (verdict, n), = counts.items()
        return "no variant stored: nothing was timed: %s (%d) %s" % (every, n, UNTIMED.get(verdict, str(verdict)))
    return "no variant stored: nothing was timed: %s" % every
