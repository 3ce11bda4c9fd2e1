"""The HTML form of `coopt report`: the same tables as the Markdown form, and an SVG bar chart of the speed-ups
with their intervals (one self-contained file, no scripts, no external resources)."""

from __future__ import annotations

import html
import os

from coopt.report.summary import SHARD_HEAD, Summary, iv_text, shard_rows
from coopt.verify.evidence import Interval

_STYLE = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:72em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
td.n{text-align:right}code{background:#f4f4f4;padding:0 .2em}.big{font-size:1.2em}.muted{color:#777}"""

_ROW, _LEFT, _PLOT, _RIGHT = 30, 180, 460, 220


def _e(text: object) -> str:
    return html.escape(str(text))


def chart(sm: Summary) -> str:
    """Horizontal bars: each TU's kept speed-up (grey: best measured, not kept) and the whole program's, with
    their 95% intervals as whiskers, a line at 1.0 and a dashed line at min gain."""
    rows: list[tuple[str, Interval | None, str]] = []
    for t in sm.tus:
        if t.note:
            continue
        if t.kept:
            rows.append((t.name, t.kept.interval, "kept %s %s" % (t.kept.level, t.kept.label)))
        else:
            rows.append((t.name, t.best_tried, "best measured, not kept" if t.best_tried else "nothing measured"))
    rows.append(("whole program", sm.whole_program, "all kept variants" if sm.whole_program else "not measured"))
    values = [v for _, iv, _ in rows if iv for v in (iv.low, iv.high)] + [1.0, sm.state.min_gain]
    lo, hi = min(values), max(values)
    pad = max(0.01, (hi - lo) * 0.1)
    lo, hi = lo - pad, hi + pad

    def x(v: float) -> float:
        return _LEFT + (v - lo) / (hi - lo) * _PLOT

    height = _ROW * len(rows) + 40
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" '
           'aria-label="speed-ups with 95%% intervals">' % (_LEFT + _PLOT + _RIGHT, height)]
    for i, (name, iv, what) in enumerate(rows):
        y = 10 + i * _ROW
        out.append('<text x="%d" y="%d" text-anchor="end" font-size="12">%s</text>' % (_LEFT - 8, y + 16, _e(name)))
        if iv is None:
            out.append('<text x="%d" y="%d" font-size="12" fill="#777">%s</text>' % (_LEFT + 4, y + 16, _e(what)))
            continue
        kept = not what.startswith(("best", "nothing"))
        color = ("#2b7a3d" if iv.low >= 1.0 else "#b8860b") if kept else "#aaa"
        x0, x1 = x(min(1.0, iv.ratio)), x(max(1.0, iv.ratio))
        out.append('<rect x="%.1f" y="%d" width="%.1f" height="14" fill="%s"/>' % (x0, y + 5, max(1.0, x1 - x0),
                                                                                  color))
        out.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#000"/>' % (x(iv.low), x(iv.high), y + 12,
                                                                                 y + 12))
        for v in (iv.low, iv.high):
            out.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#000"/>' % (x(v), x(v), y + 7, y + 17))
        out.append('<text x="%d" y="%d" font-size="12">%s  %s</text>' % (
            _LEFT + _PLOT + 8, y + 16, _e(iv_text(iv)), _e(what[:28])))
    axis_y = 10 + len(rows) * _ROW
    for v, dash, label in ((1.0, "", "1.0 (plain clang)"), (sm.state.min_gain, ' stroke-dasharray="4 3"',
                                                              "min gain %.2f" % sm.state.min_gain)):
        out.append('<line x1="%.1f" x2="%.1f" y1="5" y2="%d" stroke="#555"%s/>' % (x(v), x(v), axis_y, dash))
        out.append('<text x="%.1f" y="%d" font-size="11" text-anchor="middle" fill="#555">%s</text>' % (
            x(v), axis_y + (14 if v == 1.0 else 28), _e(label)))
    out.append("</svg>")
    return "\n".join(out)


def _table(head: list[str], rows: list[list[str]], numeric: set[int]) -> str:
    out = ["<table><tr>%s</tr>" % "".join("<th>%s</th>" % _e(h) for h in head)]
    for r in rows:
        out.append("<tr>%s</tr>" % "".join(
            '<td class="n">%s</td>' % _e(c) if i in numeric else "<td>%s</td>" % _e(c) for i, c in enumerate(r)))
    out.append("</table>")
    return "\n".join(out)


def render_html(sm: Summary) -> str:
    s = sm.state
    prog = lambda line: line.replace("{program}", s.program)  # noqa: E731
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8"><title>coopt optimize report</title>',
        "<style>%s</style></head><body>" % _STYLE,
        "<h1>coopt optimize report</h1>",
        "<p>Program <code>%s</code>, run of %s: <b>%s</b> (%s). Levels %s; min gain %.2f; %d pairs per A/B of %s "
        "time.</p>" % (_e(s.program), _e(s.created), _e(s.status), _e(s.stop_reason or "-"), _e(",".join(s.levels)),
                       s.min_gain, s.pairs, _e(s.measure)),
        '<p class="big">Whole program against plain clang at your flags: <b>%s</b> <span class="muted">(%s)</span>'
        "</p>" % (_e(iv_text(sm.whole_program)), _e(sm.whole_program_note())),
        "<ul><li>Bench (timed): <code>%s</code> in <code>%s</code> (%s)</li>" % (
            _e(prog(s.bench.line)), _e(s.bench.cwd), _e(s.bench.origin)),
        "<li>Tests: %s</li>" % "; ".join("<code>%s</code> (%s)" % (_e(prog(t.line)), _e(t.origin)) for t in s.tests),
        "<li>Training: %s</li>" % _e(sm.workload_note()),
    ]
    if s.noise and s.noise.interval:
        parts.append("<li>Noise: the baseline against a copy of itself measured %s over %d pairs</li>"
                     % (_e(iv_text(s.noise.interval)), s.noise.pairs))
    parts.append("</ul>")
    sh = sm.shards
    if sh is not None:
        parts.append("<h2>Shards</h2><p>Merged from %d of %d shard result(s) of split %s; budget and time are "
                     "summed over the shards.%s</p>" % (sh.count - len(sh.missing), sh.count, _e(sh.plan), (
                         " <b>Missing: %s</b> (their TUs were not optimized)." % _e(", ".join(
                             "shard %d/%d" % (i, sh.count) for i in sh.missing))) if sh.missing else ""))
        parts.append(_table(SHARD_HEAD, shard_rows(sm), {4}))
    parts += ["<h2>Speed-ups</h2>", chart(sm), "<h2>Per TU</h2>",
              "<p>Speed-up: the whole program with this TU's variant alone, against the baseline.</p>"]
    tokens = any(t.tokens for t in sm.tus)
    rows = []
    for t in sm.tus:
        row = [t.name + (" (shard %d/%d)" % (t.shard, sh.count) if sh is not None and t.shard else ""),
               "%.1f%%" % (100 * t.share),
               ", ".join("%s x%d" % kv for kv in sorted(t.tried.items())) or ("- (%s)" % t.note if t.note else "-"),
               "%s %s" % (t.kept.level, t.kept.label) if t.kept else "-",
               iv_text(t.kept.interval) if t.kept else "-", "%.0f s" % t.seconds]
        rows.append(row + (["%d" % t.tokens] if tokens else []))
    parts.append(_table(["TU", "share", "tried", "kept", "speed-up [95% CI]", "time"] + (["tokens"] if tokens else []),
                        rows, {1, 5, 6}))
    parts.append("<h2>Attempts</h2>")
    parts.append(_table(["#", "TU", "level", "candidate", "verdict", "speed-up [95% CI]", "time", "detail"], [
        [str(a.number), os.path.basename(a.source), a.level, a.label or "-", a.verdict + (" (kept)" if a.kept else ""),
         iv_text(a.interval), "%.0f s" % a.seconds, a.detail[:200]] for a in s.attempts], {0, 6}))
    if not sm.kept:
        parts.append("<p>Nothing was stored: no candidate's interval lower bound cleared min gain %.2f.</p>"
                     % s.min_gain)
    if s.notes:
        parts.append("<h2>Notes</h2><ul>%s</ul>" % "".join("<li>%s</li>" % _e(n) for n in s.notes))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
