"""`coopt report`: what an optimize run tried, kept, gained and cost, as Markdown, JSON or HTML.

The report is computed from the run state alone (`optimize_state.RunState`): a `Summary` per TU and for the
whole program, then rendered. Speed-ups are whole-program measurements: a TU's is the program with that TU's
variant alone against the baseline (plain clang at the user's flags); the whole program's is every kept variant,
objects read back from the cache, against the same baseline. The JSON form has its own format version.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from coopt.optimize.state import AttemptRecord, KeptRecord, RunState, to_dict
from coopt.report.merge import Shards
from coopt.verify.evidence import Interval

REPORT_FORMAT = "coopt-optimize-report"
REPORT_VERSION = 1
FORMATS = ("md", "json", "html")


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
    out = Summary(state, shards=shards)
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


def iv_text(iv: Interval | None) -> str:
    return "%.3fx [%.3f, %.3f]" % (iv.ratio, iv.low, iv.high) if iv else "-"


def _budget_text(s: RunState) -> str:
    parts = []
    if s.budget.get("evaluations"):
        parts.append("%d of %d evaluations" % (s.spent.get("evaluations", 0), s.budget["evaluations"]))
    else:
        parts.append("%d evaluations" % s.spent.get("evaluations", 0))
    if s.budget.get("seconds"):
        parts.append("%.0f of %.0f s" % (s.spent.get("seconds", 0), s.budget["seconds"]))
    else:
        parts.append("%.0f s" % s.spent.get("seconds", 0))
    return ", ".join(parts)


def _tried_text(t: TuSummary) -> str:
    return ", ".join("%s x%d" % (lv, n) for lv, n in sorted(t.tried.items())) or "-"


def _kept_text(t: TuSummary) -> str:
    return "%s `%s`" % (t.kept.level, t.kept.label) if t.kept else "-"


def _shown(s: RunState, line: str) -> str:
    return line.replace("{program}", s.program)


def _shard_text(sm: Summary, obj: str) -> str:
    k = sm.shards.shard_of(obj) if sm.shards else None
    return "%d/%d" % (k, sm.shards.count) if sm.shards and k else "-"


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


def render_markdown(sm: Summary) -> str:
    s = sm.state
    show_tokens = any(t.tokens for t in sm.tus)
    sharded = sm.shards is not None
    lines = [
        "# coopt optimize report",
        "",
        "Program `%s`, run of %s: **%s** (%s). Budget spent: %s. Levels: %s; min gain %.2f; %d pairs per A/B of "
        "%s time." % (s.program, s.created, s.status, s.stop_reason or "-", _budget_text(s), ",".join(s.levels),
                      s.min_gain, s.pairs, s.measure),
        "",
        "**Whole program against plain clang at your flags: %s** (%s)." % (iv_text(sm.whole_program),
                                                                          sm.whole_program_note()),
        "",
        "- Bench (timed): `%s` in `%s` (%s)" % (_shown(s, s.bench.line), s.bench.cwd, s.bench.origin),
        "- Tests (output must equal the baseline's): %s" % "; ".join(
            "`%s` (%s)" % (_shown(s, t.line), t.origin) for t in s.tests),
        "- Training: %s" % sm.workload_note(),
    ]
    if s.noise and s.noise.interval:
        lines.append("- Noise: the baseline against a copy of itself measured %s over %d pairs"
                     % (iv_text(s.noise.interval), s.noise.pairs))
    if sm.shards is not None:
        sh = sm.shards
        lines += ["", "## Shards", "",
                  "Merged from %d of %d shard result(s) of split %s; budget and time are summed over the shards.%s"
                  % (sh.count - len(sh.missing), sh.count, sh.plan, (" **Missing: %s** (their TUs were not "
                     "optimized)." % ", ".join("shard %d/%d" % (i, sh.count) for i in sh.missing))
                     if sh.missing else ""), "",
                  "| %s |" % " | ".join(SHARD_HEAD), "|---|---|---|---|---:|---|---|"]
        lines += ["| %s |" % " | ".join(c.replace("|", "/") for c in row) for row in shard_rows(sm)]
    lines += ["", "## Per TU", "",
              "Speed-up: the whole program with this TU's variant alone, against the baseline.", ""]
    head = "| TU |%s share | tried | kept | speed-up [95%% CI] | time |%s" % (
        " shard |" if sharded else "", " tokens |" if show_tokens else "")
    lines += [head, "|---|%s---:|---|---|---|---:|%s" % ("---|" if sharded else "", "---:|" if show_tokens else "")]
    for t in sm.tus:
        row = "| %s |%s %.1f%% | %s | %s | %s | %.0f s |" % (
            t.name, " %s |" % _shard_text(sm, t.object) if sharded else "", 100 * t.share,
            _tried_text(t) if not t.note else "- (%s)" % t.note, _kept_text(t),
            iv_text(t.kept.interval) if t.kept else "-", t.seconds)
        lines.append(row + (" %d |" % t.tokens if show_tokens else ""))
    lines += ["", "## Attempts", ""]
    if not s.attempts:
        lines.append("No candidate was evaluated.")
    else:
        col, rule = (" shard |", "---|") if sharded else ("", "")
        lines += ["| # |%s TU | level | candidate | verdict | speed-up [95%% CI] | time | detail |" % col,
                  "|---:|%s---|---|---|---|---|---:|---|" % rule]
        for a in s.attempts:
            lines.append("| %d |%s %s | %s | `%s` | %s%s | %s | %.0f s | %s |" % (
                a.number, " %s |" % _shard_text(sm, a.object) if sharded else "", os.path.basename(a.source),
                a.level, a.label or "-", a.verdict, " (kept)" if a.kept else "",
                iv_text(a.interval), a.seconds, a.detail.replace("|", "/")[:200]))
    if not sm.kept:
        lines += ["", "Nothing was stored: no candidate's interval lower bound cleared min gain %.2f." % s.min_gain]
    if s.notes:
        lines += ["", "## Notes", ""] + ["- %s" % n for n in s.notes]
    return "\n".join(lines) + "\n"


def render_json(sm: Summary) -> str:
    s = sm.state
    data: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "program": s.program,
        "status": s.status,
        "stop_reason": s.stop_reason,
        "same_workload": s.same_workload,
        "training_note": sm.workload_note(),
        "whole_program": asdict(sm.whole_program) if sm.whole_program else None,
        "whole_program_note": sm.whole_program_note(),
        "tus": [{
            "source": t.source, "object": t.object, "share": t.share, "note": t.note, "tried": t.tried,
            "kept": {"level": t.kept.level, "label": t.kept.label, "key": t.kept.key,
                     "interval": asdict(t.kept.interval)} if t.kept else None,
            "seconds": t.seconds, "tokens": t.tokens, "shard": t.shard,
            "attempts": [{"level": a.level, "label": a.label, "verdict": a.verdict} for a in t.attempts],
        } for t in sm.tus],
        "shards": _shards_json(sm.shards) if sm.shards else None,
        "run": to_dict(s),
    }
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def _shards_json(sh: Shards) -> dict[str, Any]:
    return {
        "count": sh.count,
        "plan": sh.plan,
        "missing": sh.missing,
        "contributed": sh.contributed,
        "notes": sh.notes,
        "results": [{
            "index": r.index,
            "file": r.path or None,
            "missing": r.missing,
            "tus": r.tus,
            "status": r.state.status if r.state else None,
            "stop_reason": r.state.stop_reason if r.state else None,
            "spent": r.state.spent if r.state else None,
            "kept": [k.object for k in r.kept],
            "noise": asdict(r.state.noise.interval) if r.state and r.state.noise and r.state.noise.interval else None,
            "final": asdict(r.state.final.interval) if r.state and r.state.final and r.state.final.interval else None,
        } for r in sh.results],
    }


def render(state: RunState, fmt: str, shards: Shards | None = None) -> str:
    """The report of `state` in `fmt` (md, json or html); `shards` when `state` merges shard results."""
    sm = summarize(state, shards)
    if fmt == "md":
        return render_markdown(sm)
    if fmt == "json":
        return render_json(sm)
    if fmt == "html":
        from coopt.report.html import render_html

        return render_html(sm)
    raise ValueError("unknown report format %r (one of %s)" % (fmt, ", ".join(FORMATS)))
