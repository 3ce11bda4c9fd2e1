"""The compiler sweep: every compiler level's rows on one node of a TU, screened together, as one evaluation.

The compiler levels propose from fixed tables (flag sets, PGO kinds, other compilers at -O3 and at the TU's own
flags), which know nothing of the program: judged one row per evaluation, a small budget sees the first rows of one
level only. At budget 3 the `compilers` level spent its evaluation on gcc -O3 (0.41x on popcount_bits) and clang 19
-O3 (1.22x) was never judged; `all`, with six levels, never reached the compiler levels at all. So a sweep:

1. builds the pending rows of every compiler level the guide offers on the node, round-robin across the levels
   (so a cut falls evenly), at most SWEEP_WIDTH, each a record of its own (`swept`: it costs nothing of its own);
2. drops duplicates (the baseline's object, an earlier node's, another row's) and rows that fail to build;
3. times each remaining row against the baseline with a short interleaved screen (SCREEN_PAIRS pairs; the tests
   are not run: nothing is kept on a screen's word), within `screen_s` seconds, rows beyond it left for a later
   sweep;
4. judges the row the screen ranked fastest exactly as any candidate (attempt.evaluate: the tests, the full A/B,
   the one acceptance rule, a second measurement when promising); that judgement is the sweep's one evaluation.
   When even that row's screen interval lies wholly below 1.0 (and below min_gain) it is rejected on the screen's
   word (a rejection needs no full measurement; only an acceptance does), and the evaluation is spent all the
   same.
   The other rows are SCREENED with their screen interval, and are not proposed again on this node.
5. the rows the screen could not tell from the judged one (overlapping screen intervals or ratios within 3%, and
   faster than the baseline) are its contenders: when the guide has no live direction left and budget remains,
   each is judged in full as an evaluation of its own (`judge_contender`), most expected gain first. A near tie on
   2 pairs is a coin toss; the budget left over is better spent settling it than unspent.

The code screened is the compiler's, of the user's source or of a rewrite already verified; the screen runs it in
the bench's sandbox like every timing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from coopt.agents.compiler.tools import ToolError
from coopt.agents.levels import Candidate, HotTU, LevelAgent, LevelUnavailable, NoCandidate, Node
from coopt.budget import BudgetExhausted
from coopt.journal.relink import RelinkError
from coopt.optimize import lineage
from coopt.optimize.search.attempt import describe, evaluate, new_record
from coopt.optimize.session import Run, interval_text
from coopt.optimize.state import AttemptRecord, Outcome
from coopt.verify.evidence import Interval
from coopt.verify.program_level.bench import Interrupted

SWEEP_WIDTH = 16  # rows one sweep builds at most
SCREEN_PAIRS = 2  # interleaved pairs of a row's screen: enough to rank 0.4x, 1.0x and 1.2x apart, not to accept
TIE = 1.03  # screens within 3% of each other are a near tie


@dataclass
class Contender:
    """A row the screen could not tell from the one the sweep judged (`_tie`, and it screened faster than the
    baseline): judged in full later, when the guide has nothing else to spend on."""

    tu: HotTU
    parent: AttemptRecord | None
    rec: AttemptRecord
    cand: Candidate
    agent: LevelAgent


def sweep(run: Run, tu: HotTU, agents: Sequence[LevelAgent], parent: AttemptRecord | None, reserve_s: float,
          owed: int, screen_s: float) -> tuple[AttemptRecord, list[AttemptRecord], list[Contender]]:
    """One evaluation of the compiler levels `agents` on node `parent` of `tu` (None: the journaled compile):
    (the record that carries the evaluation, the sweep's other records, its contenders, fastest first). Every
    record is already in the state."""
    assert run.bench is not None and run.base is not None
    out_dir = os.path.join(run.work, "candidates")
    os.makedirs(out_dir, exist_ok=True)
    node = lineage.node(tu, run.state.attempts, parent)
    seen = run.seen.setdefault(tu.object, {})
    made: list[AttemptRecord] = []
    ranked: list[tuple[AttemptRecord, Candidate, LevelAgent]] = []
    active = list(agents)
    deadline = time.monotonic() + screen_s
    try:
        while active and len(made) < SWEEP_WIDTH and time.monotonic() < deadline:
            for agent in list(active):
                if not run.budget.fits(evaluations=1, seconds=reserve_s):  # the judgement must still fit
                    active.clear()
                    break
                if len(made) >= SWEEP_WIDTH or not agent.has_more(tu, node):
                    active.remove(agent)
                    continue
                row = _row(run, tu, agent, parent, node, out_dir, seen, made)
                if row is None:
                    if agent.unavailable():  # e.g. PGO training failed: the level has nothing else to offer
                        active.remove(agent)
                    continue
                ranked.append((row[0], row[1], agent))
                if len(ranked) > 1 or _more(active, tu, node):
                    _screen(run, tu, row[0], row[1], len(made))
                    if row[0].verdict == Outcome.FAILED:
                        ranked.pop()
                if time.monotonic() >= deadline:
                    break
    except Interrupted:
        _interrupted(made)
        return made[-1], made[:-1], []
    if not ranked:
        return (*_nothing(run, made), [])
    ranked.sort(key=lambda r: -(r[0].screen.ratio if r[0].screen else 0.0))
    rec, cand, agent = ranked[0]
    rec.swept = False
    for other, _, _ in ranked[1:]:
        assert other.screen is not None
        other.verdict = Outcome.SCREENED
        other.detail = "screened out: %s against the baseline on %d pairs; the sweep judged %r%s" % (
            interval_text(other.screen), SCREEN_PAIRS, rec.label,
            " (%s)" % interval_text(rec.screen) if rec.screen else "")
    if rec.screen is not None and rec.screen.high < min(1.0, run.opts.min_gain):
        # Even the fastest row is slower than the baseline (and than what min_gain would take, when it takes a
        # slowdown): rejecting on the screen's word is safe (only an acceptance needs the full measurement), and
        # the sweep's evaluation is spent all the same.
        run.budget.charge(evaluations=1)
        rec.verdict = Outcome.REJECTED
        rec.detail = "not faster: the fastest of %d rows screened at %s against the baseline on %d pairs" % (
            len(ranked), interval_text(rec.screen), SCREEN_PAIRS)
        return rec, [r for r in made if r is not rec], []
    spent = rec.seconds
    judged = evaluate(run, tu, agent, parent, reserve_s, owed, proposed=(rec, cand))
    judged.seconds = round(judged.seconds + spent, 2)
    if judged.verdict == Outcome.INTERRUPTED:  # a resumed run sweeps the node again, whole
        _interrupted(made)
    if len(ranked) > 1:
        judged.detail += "; the fastest of %d rows screened (%d pairs each)" % (len(ranked), SCREEN_PAIRS)
    close = [Contender(tu, parent, r, c, a) for r, c, a in ranked[1:] if judged.verdict != Outcome.INTERRUPTED
             and r.screen and rec.screen and r.screen.ratio > 1.0 and _tie(r.screen, rec.screen)]
    return judged, [r for r in made if r is not judged], close


def _interrupted(made: list[AttemptRecord]) -> None:
    """Every row of a sweep the user stopped: a resumed run drops them and sweeps the node again, whole."""
    for rec in made:
        rec.verdict, rec.detail = Outcome.INTERRUPTED, "stopped by the user during a compiler sweep"


def _tie(a: Interval, b: Interval) -> bool:
    """Whether a screen cannot tell row `a` from the judged row `b`: their intervals overlap, or their ratios are
    within TIE (an interval of 2 pairs understates the noise between two runs of a program)."""
    return a.high >= b.low or a.ratio * TIE >= b.ratio


def judge_contender(run: Run, c: Contender, reserve_s: float) -> AttemptRecord:
    """Judge a contender in full, as one evaluation of its own (its record leaves the sweep)."""
    rec = c.rec
    seen = run.seen.get(rec.object, {})
    if seen.get(rec.object_digest) == rec.number:  # it was recorded as seen when screened out; not a duplicate
        del seen[rec.object_digest]
    rec.swept, rec.verdict = False, Outcome.FAILED
    screened = rec.detail
    judged = evaluate(run, c.tu, c.agent, c.parent, reserve_s, 0, proposed=(rec, c.cand))
    judged.detail += "; judged in full after the sweep (%s)" % screened
    return judged


def _more(active: list[LevelAgent], tu: HotTU, node: Node | None) -> bool:
    """Whether another row may follow (then even the first row is screened, to be ranked against it)."""
    return any(a.has_more(tu, node) for a in active)


def _row(run: Run, tu: HotTU, agent: LevelAgent, parent: AttemptRecord | None, node: Node | None, out_dir: str,
         seen: dict[str, int], made: list[AttemptRecord]) -> tuple[AttemptRecord, Candidate] | None:
    """Build the agent's next row on the node: its record and candidate, or None when it failed to build or
    repeats an object already seen (the record says which)."""
    t = time.monotonic()
    rec = new_record(run, tu, agent, parent)
    rec.swept = True
    made.append(rec)
    run.progress.status("%s: compiler sweep, building row %d (%s)" % (tu.name, len(made), agent.level))
    try:
        cand = agent.propose(tu, out_dir, node)
    except (ToolError, LevelUnavailable) as exc:
        rec.verdict, rec.detail = Outcome.FAILED, str(exc)
        rec.no_candidate = isinstance(exc, NoCandidate)
        rec.seconds = round(time.monotonic() - t, 2)
        return None
    describe(rec, cand)
    digest = rec.object_digest = lineage.code_digest(cand.built.object_path)
    first = seen.get(digest, next((r.number for r in made[:-1] if r.object_digest == digest), None))
    rec.seconds = round(time.monotonic() - t, 2)
    if first is not None:
        rec.verdict, rec.duplicate_of = Outcome.DUPLICATE, first
        rec.detail = "the same object as %s: not screened" % ("the baseline" if not first else "attempt #%d" % first)
        return None
    rec.verdict = Outcome.SCREENED
    return rec, cand


def _screen(run: Run, tu: HotTU, rec: AttemptRecord, cand: Candidate, i: int) -> None:
    """The row's short A/B against the baseline, on its record; a row that does not link or run is FAILED."""
    assert run.bench is not None and run.base is not None
    t = time.monotonic()
    run.bench.on_round = lambda text: run.progress.status("%s: compiler sweep, screening row %d %r: %s"
                                                          % (tu.name, i, rec.label, text))
    try:
        side = run.bench.side("s%03d" % rec.number, {tu.object: cand.built.object_path})
        rec.screen = run.bench.time_ab(run.base, side, pairs=SCREEN_PAIRS)
    except (RelinkError, RuntimeError) as exc:
        rec.verdict, rec.detail = Outcome.FAILED, "screen: %s" % exc
    rec.seconds = round(rec.seconds + time.monotonic() - t, 2)


def _nothing(run: Run, made: list[AttemptRecord]) -> tuple[AttemptRecord, list[AttemptRecord]]:
    """No row could be judged: a sweep that built something that failed costs its evaluation, charged to its first
    failed row; one whose every row repeated a known object costs nothing."""
    failed = [r for r in made if r.verdict == Outcome.FAILED]
    if not made:  # the judgement would not fit what is left of the budget
        raise BudgetExhausted(run.budget.describe())
    if not failed:
        return made[0], made[1:]
    run.budget.charge(evaluations=1)
    failed[0].swept = False
    return failed[0], [r for r in made if r is not failed[0]]
