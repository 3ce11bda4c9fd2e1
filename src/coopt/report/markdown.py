"""The Markdown form of a run's report (`coopt report`, the default format)."""

from __future__ import annotations

import os
import re

from coopt.optimize.state import RunState
from coopt.report.summary import DETAIL_CHARS, SHARD_HEAD, Summary, TuSummary, clip, iv_text, shard_rows


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


def _changes(sm: Summary) -> list[str]:
    """Each kept variant's change: its facts as a list, its diff in a ```diff block."""
    if not sm.changes:
        return []
    lines = ["", "## What the kept variants changed"]
    for ch in sm.changes:
        lines += ["", "### %s: %s `%s`" % (os.path.basename(ch.source), ch.level, ch.label)]
        facts = ch.facts + ([ch.note] if ch.note else [])
        lines += ([""] + ["- %s" % f for f in facts]) if facts else []
        if ch.diff:
            # A fence longer than any run of backticks inside, so a diff of markdown-like text cannot close it.
            fence = "`" * max(3, 1 + max((len(r) for r in re.findall("`+", "\n".join(ch.diff))), default=0))
            lines += ["", fence + "diff", *ch.diff]
            if ch.more:
                lines.append("\u2026 %d more lines" % ch.more)
            lines.append(fence)
    return lines


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
                a.level + (" on #%d" % a.parent if a.parent else ""), a.label or "-", a.verdict,
                " (kept)" if a.kept else "",
                iv_text(a.interval) + (" (function alone: %s)" % iv_text(a.micro) if a.micro else ""), a.seconds,
                clip(a.detail.replace("|", "/"), DETAIL_CHARS)))
    if not sm.kept:
        lines += ["", "Nothing was stored: no candidate's interval lower bound cleared min gain %.2f." % s.min_gain]
    lines += _changes(sm)
    if s.notes:
        lines += ["", "## Notes", ""] + ["- %s" % n for n in s.notes]
    return "\n".join(lines) + "\n"
