"""The HTML form of `coopt report`: the same tables as the Markdown form, and an SVG bar chart of the speed-ups
with their intervals (one self-contained file, no scripts, no external resources)."""

from __future__ import annotations

import html
import math
import os

from coopt.report.summary import DETAIL_CHARS, SHARD_HEAD, Summary, clip, iv_text, shard_rows
from coopt.verify.evidence import Interval

_STYLE = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:72em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
td.n{text-align:right}td.iv{white-space:nowrap}td.wide{min-width:16em}td{vertical-align:top}td.name{overflow-wrap:anywhere}
code{background:#f4f4f4;padding:0 .2em}.big{font-size:1.2em}.muted{color:#777}
pre.diff{background:#f8f8f8;border:1px solid #ddd;padding:.5em;overflow-x:auto;font-size:12px;line-height:1.35}
pre.diff .add{color:#116329;background:#e6ffec}pre.diff .del{color:#82071e;background:#ffebe9}
pre.diff .hunk{color:#0550ae}pre.diff .file{color:#555;font-weight:bold}pre.diff .more{color:#777}"""

_ROW, _LEFT, _PLOT, _TOP = 30, 180, 460, 26  # row height, name column, plot width, header row (line labels)
_FONT, _SMALL = 12, 11
# Text is laid out without a browser: a width per character, in em, at least what common sans-serif fonts draw
# (DejaVu Sans, Debian's default: digits 0.64, "m" 0.97), so a label never runs past the room reserved for it.
_NARROW, _WIDE = frozenset(" .,:;'|!()[]ijlft-"), frozenset("mwMW@%")


def _char_em(c: str) -> float:
    return 0.4 if c in _NARROW else 1.0 if c in _WIDE else 0.68


def _e(text: object) -> str:
    return html.escape(str(text))


def _width(text: str, size: int) -> float:
    return sum(_char_em(c) for c in text) * size


def _fit(text: str, room: float, size: int) -> str:
    """`text` cut with an ellipsis to fit `room` pixels at font `size`."""
    limit = len(text)
    while limit > 4 and _width(clip(text, limit), size) > room:
        limit -= 1
    return clip(text, limit)


def _ticks(lo: float, hi: float, most: int = 7) -> list[float]:
    """Round values between lo and hi, at most `most` of them, for the axis."""
    span = hi - lo
    step = next(m * 10 ** e for e in range(-3, 4) for m in (1, 2, 5) if span / (m * 10 ** e) <= most)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 6) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _tick_text(v: float, ticks: list[float]) -> str:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    digits = max(1, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 1
    return "%.*f" % (digits, v)


def chart(sm: Summary) -> str:
    """Horizontal bars: each TU's kept speed-up (grey: best measured, not kept) and the whole program's, with
    their 95% intervals as whiskers, a line at 1.0 and a dashed line at min gain, and a value axis.

    Every label has room of its own: names are cut to the name column (full name in a tooltip), the value column
    is as wide as its longest text, the two reference lines are labelled in a header row on either side of their
    lines, and a row with nothing to draw says so in the value column, clear of the lines."""
    rows: list[tuple[str, Interval | None, str]] = []
    for t in sm.tus:
        if t.note:
            continue
        if t.kept:
            rows.append((t.name, t.kept.interval, "kept %s %s" % (t.kept.level, t.kept.label)))
        else:
            rows.append((t.name, t.best_tried, "best measured, not kept" if t.best_tried else "nothing measured"))
    rows.append(("whole program", sm.whole_program, "all kept variants" if sm.whole_program else "not measured"))
    gain = sm.state.min_gain
    values = [v for _, iv, _ in rows if iv for v in (iv.low, iv.high)] + [1.0, gain]
    lo, hi = min(values), max(values)
    pad = max(0.01, (hi - lo) * 0.08)
    lo, hi = lo - pad, hi + pad

    def x(v: float) -> float:
        return _LEFT + (v - lo) / (hi - lo) * _PLOT

    values_text = [("%s  %s" % (iv_text(iv), clip(what, 40))) if iv else what for _, iv, what in rows]
    refs = sorted([(1.0, "", "1.0 (plain clang)"), (gain, ' stroke-dasharray="4 3"', "min gain %.2f" % gain)],
                  key=lambda r: r[0])
    # Wide enough for the longest value text, and for the higher line's label where that line is far right.
    width = math.ceil(max(_LEFT + _PLOT + 12 + max(_width(t, _FONT) for t in values_text) + 8,
                          x(refs[1][0]) + 4 + _width(refs[1][2], _SMALL) + 8))
    axis_y = _TOP + len(rows) * _ROW
    height = axis_y + 44
    # The viewBox lets a narrow window scale the chart down whole instead of cutting it.
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" '
           'style="max-width:100%%;height:auto" font-family="sans-serif" aria-label="speed-ups with 95%% '
           'intervals">' % (width, height, width, height)]
    for i, ((name, iv, what), text) in enumerate(zip(rows, values_text, strict=True)):
        y = _TOP + i * _ROW
        out.append('<text x="%d" y="%d" text-anchor="end" font-size="%d"><title>%s</title>%s</text>' % (
            _LEFT - 8, y + 16, _FONT, _e(name), _e(_fit(name, _LEFT - 16, _FONT))))
        tx = _LEFT + _PLOT + 12
        if iv is None:
            out.append('<text x="%d" y="%d" font-size="%d" fill="#777">%s</text>' % (tx, y + 16, _FONT, _e(text)))
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
        out.append('<text x="%d" y="%d" font-size="%d"><title>%s</title>%s</text>' % (
            tx, y + 16, _FONT, _e("%s  %s" % (iv_text(iv), what)), _e(text)))
    # The reference lines, labelled in the header row: the lower value's label ends left of its line, the
    # higher's starts right of its own, so the two never meet however close 1.0 and min gain are.
    for j, (v, dash, label) in enumerate(refs):
        out.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#555"%s/>' % (x(v), x(v), _TOP - 6, axis_y,
                                                                                   dash))
        out.append('<text x="%.1f" y="%d" font-size="%d" text-anchor="%s" fill="#555">%s</text>' % (
            x(v) + (-4 if j == 0 else 4), _TOP - 10, _SMALL, "end" if j == 0 else "start", _e(label)))
    ticks = _ticks(lo, hi)
    out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#000"/>' % (_LEFT, _LEFT + _PLOT, axis_y, axis_y))
    for v in ticks:
        out.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#000"/>' % (x(v), x(v), axis_y, axis_y + 5))
        out.append('<text x="%.1f" y="%d" font-size="%d" text-anchor="middle">%s</text>' % (
            x(v), axis_y + 18, _SMALL, _tick_text(v, ticks)))
    out.append('<text x="%d" y="%d" font-size="%d" text-anchor="middle" fill="#555">speed-up (x) against plain clang; '
               'whiskers: 95%% interval</text>' % (
                   _LEFT + _PLOT // 2, axis_y + 36, _SMALL))
    out.append("</svg>")
    return "\n".join(out)


def _cell(text: str, classes: str, limit: int | None) -> str:
    """One table cell; a text longer than `limit` is cut with an ellipsis and kept whole in its tooltip."""
    attrs = ' class="%s"' % classes if classes else ""
    if limit is not None and len(text) > limit:
        attrs += ' title="%s"' % html.escape(text, quote=True)
        text = clip(text, limit)
    return "<td%s>%s</td>" % (attrs, _e(text))


def _table(head: list[str], rows: list[list[str]], numeric: set[int], limits: dict[int, int] | None = None) -> str:
    """A table; `numeric` columns are right-aligned, a speed-up column is kept on one line (an interval read
    across three lines is hard to compare), `limits` cut a column's long texts (which keeps room to be read), a
    TU's file name may break anywhere (a long name with no spaces would widen the page past the window)."""
    keep = {i for i, h in enumerate(head) if h.startswith("speed-up") or h == "time"}

    def classes(i: int) -> str:
        return " ".join(c for c, on in (("n", i in numeric), ("iv", i in keep), ("wide", i in (limits or {})),
                                        ("name", head[i] == "TU")) if on)

    out = ["<table><tr>%s</tr>" % "".join("<th>%s</th>" % _e(h) for h in head)]
    for r in rows:
        out.append("<tr>%s</tr>" % "".join(_cell(c, classes(i), (limits or {}).get(i)) for i, c in enumerate(r)))
    out.append("</table>")
    return "\n".join(out)


def _diff_html(lines: list[str]) -> str:
    """A unified diff, escaped, each line styled by its kind (added, removed, hunk header)."""
    out = []
    for line in lines:
        kind = ("file" if line.startswith(("+++", "---")) else "add" if line.startswith("+")
                else "del" if line.startswith("-") else "hunk" if line.startswith("@@") else "")
        out.append('<span class="%s">%s</span>' % (kind, _e(line)) if kind else _e(line))
    return "\n".join(out)


def _changes(sm: Summary) -> list[str]:
    if not sm.changes:
        return []
    parts = ["<h2>What the kept variants changed</h2>"]
    for ch in sm.changes:
        parts.append("<h3>%s: %s <code>%s</code></h3>" % (_e(os.path.basename(ch.source)), _e(ch.level),
                                                         _e(ch.label)))
        facts = ch.facts + ([ch.note] if ch.note else [])
        if facts:
            parts.append("<ul>%s</ul>" % "".join("<li>%s</li>" % _e(f) for f in facts))
        if ch.diff:
            more = '\n<span class="more">\u2026 %d more lines</span>' % ch.more if ch.more else ""
            parts.append('<pre class="diff">%s%s</pre>' % (_diff_html(ch.diff), more))
    return parts


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
        [str(a.number), os.path.basename(a.source), a.level + (" on #%d" % a.parent if a.parent else ""),
         a.label or "-", a.verdict + (" (kept)" if a.kept else ""),
         iv_text(a.interval), "%.0f s" % a.seconds, a.detail] for a in s.attempts], {0, 6}, {7: DETAIL_CHARS}))
    if not sm.kept:
        parts.append("<p>Nothing was stored: no candidate's interval lower bound cleared min gain %.2f.</p>"
                     % s.min_gain)
    parts += _changes(sm)
    if s.notes:
        parts.append("<h2>Notes</h2><ul>%s</ul>" % "".join("<li>%s</li>" % _e(n) for n in s.notes))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
