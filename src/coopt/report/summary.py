"""The summary of an optimize run that every report format renders: per TU and for the whole program.

The report is computed from the run state alone (`optimize.state.RunState`): a `Summary` per TU and for the
whole program, then rendered by one of report/render.py's FORMATS. Speed-ups are whole-program measurements: a
TU's is the program with that TU's variant alone against the baseline (plain clang at the user's flags); the whole
program's is every kept variant, objects read back from the cache, against the same baseline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from coopt.optimize.state import AttemptRecord, KeptRecord, RunState
from coopt.report.changes import Change, kept_changes
from coopt.report.merge import Shards
from coopt.verify.evidence import Interval


@dataclass
class TuSummary:
    """One TU's line in the report."""

    name: str
    source: str
    object: str
    share: float
    note: str
    tried: dict[str, int]  # level -> candidates evaluated
    attempts: list[AttemptRecord]
    kept: KeptRecord | None
    seconds: float
    tokens: int
    shard: int | None = None  # the shard that owned it, in a merged report

    @property
    def best_tried(self) -> Interval | None:
        """The best measured candidate, kept or not (for the chart when nothing was kept)."""
        ivs = [a.interval for a in self.attempts if a.interval is not None]
        return max(ivs, key=lambda iv: iv.low) if ivs else None


@dataclass
class Summary:
    """The whole report."""

    state: RunState
    tus: list[TuSummary] = field(default_factory=list)
    shards: Shards | None = None  # set when the state is the merge of shard results
    changes: list[Change] = field(default_factory=list)  # what each kept variant changed, from its cache entry

    @property
    def kept(self) -> list[KeptRecord]:
        return [k for k in self.state.kept.values() if not k.withdrawn]

    @property
    def whole_program(self) -> Interval | None:
        return self.state.final.interval if self.state.final else None

    def whole_program_note(self) -> str:
        """Why there is no whole-program number, or how it was measured."""
        s = self.state
        if self.shards is not None:
            sh = self.shards
            text = "not measured as one program: each shard measured only its own variants against the baseline " \
                   "(see Shards); variants from %s" % (", ".join(
                       "shard %d/%d" % (i, sh.count) for i in sh.contributed) or "no shard")
            if sh.missing:
                text += "; MISSING: %s" % ", ".join("shard %d/%d" % (i, sh.count) for i in sh.missing)
            return text
        if s.final and s.final.interval:
            return "%d kept variant(s), objects from the cache, %d interleaved pairs of %s time, ratio of medians " \
                   "with a 95%% bootstrap interval" % (len(self.kept), s.final.pairs, s.measure)
        if not self.kept:
            return "no variant kept: the program is plain clang's"
        skipped = [n for n in s.notes if n.startswith("final measurement")]
        return skipped[-1] if skipped else "not measured"

    def workload_note(self) -> str:
        s = self.state
        if s.train is None:
            return "no PGO in this run: nothing was trained"
        if s.same_workload:
            return "PGO was trained on the same workload it was judged on (the bench); expect less gain on other " \
                   "inputs"
        return "PGO was trained on `%s` and judged on a different workload, the bench" % s.train.line


def summarize(state: RunState, shards: Shards | None = None) -> Summary:
    """The report's numbers, per TU (hottest first) and for the whole program."""
    out = Summary(state, shards=shards, changes=kept_changes(state))
    for t in sorted(state.tus, key=lambda t: -t.share):
        attempts = [a for a in state.attempts if a.object == t.object]
        tried: dict[str, int] = {}
        for a in attempts:
            tried[a.level] = tried.get(a.level, 0) + 1
        kept = state.kept.get(t.object)
        out.tus.append(TuSummary(
            os.path.basename(t.source), t.source, t.object, t.share, t.note, tried, attempts,
            kept if kept is not None and not kept.withdrawn else None,
            round(sum(a.seconds for a in attempts), 1), sum(a.tokens for a in attempts),
            shards.shard_of(t.object) if shards else None,
        ))
    return out


DETAIL_CHARS = 200  # an attempt's detail in the attempts table; the full text is in the run state (and HTML title)


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in an ellipsis when cut (the reader must see it is cut)."""
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "\u2026"


def iv_text(iv: Interval | None) -> str:
    return "%.3fx [%.3f, %.3f]" % (iv.ratio, iv.low, iv.high) if iv else "-"


def shard_rows(sm: Summary) -> list[list[str]]:
    """The Shards table: shard, result file, status, TUs owed, evaluations, variants kept, its final measurement."""
    rows = []
    assert sm.shards is not None
    for r in sm.shards.results:
        names = ", ".join(os.path.basename(t.source) for t in sm.tus if t.shard == r.index) or "none"
        if r.state is None:
            rows.append(["%d/%d" % (r.index, r.count), "MISSING: no result file", "-", names, "-", "-", "-"])
            continue
        s = r.state
        final = iv_text(s.final.interval) if s.final and s.final.interval else "-"
        rows.append(["%d/%d" % (r.index, r.count), r.path, "%s (%s)" % (s.status, s.stop_reason or "-"), names,
                     "%d" % s.spent.get("evaluations", 0),
                     ", ".join("%s %s %s" % (os.path.basename(k.source), k.level, k.label) for k in r.kept) or "none",
                     final])
    return rows


SHARD_HEAD = ["shard", "result", "status", "TUs", "evaluations", "kept", "its variants vs baseline [95% CI]"]
