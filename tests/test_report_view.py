"""What the report shows a reader: each kept variant's change (source, IR and assembly diffs; the flags and PGO
profile of the compiler tools), details cut with an ellipsis, and the HTML chart laid out so that nothing is cut
or drawn over, as headless Chromium measures it.

The kept variants are real cache entries stored by the cache's publish step for a small project compiled with
clang (tests/support/report_sample.py); their run state is constructed, a real optimize run's report being tested
in test_optimize.py and test_source_agent_e2e.py.
"""

from __future__ import annotations

import html
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import ROOT, require
from coopt.optimize.state import RunState
from coopt.report.changes import Change, unified
from coopt.report.markdown import render_markdown
from coopt.report.render import render
from coopt.report.summary import DETAIL_CHARS, summarize

sys.path.insert(0, str(ROOT / "bench"))

from report_screenshot import chromium, layout  # noqa: E402
from support.report_sample import LONG_DETAIL  # noqa: E402


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> RunState:
    require("clang", "llvm-profdata")
    from support.report_sample import build

    return build(tmp_path_factory.mktemp("report-sample"))


def test_kept_variants_show_what_they_changed(sample: RunState) -> None:
    md = render(sample, "md")
    changes = md.split("## What the kept variants changed", 1)[1]
    # The source variant: its diff against the original, the hunk named by its function.
    assert "```diff\n--- a/text.c (original)\n+++ b/text.c (variant)\n@@ -10,7 +10,8 @@ upcase\n" in changes
    assert "\n-    for (size_t i = 0; i < text_length(src); i++) {\n+    size_t n = text_length(src);\n" in changes
    # IR and assembly: the original made again from the job, only the changed function's hunk.
    assert "+++ b/ir.c (variant IR)\n@@ " in changes and "@@ sum_ir\n" in changes and "\n+; hand-tuned\n" in changes
    assert "+++ b/asm.c (variant assembly)\n@@ " in changes and "@@ sum_asm\n" in changes and "\n+\tnop\n" in changes
    assert changes.count("```diff") == 3  # compiler tools change no source: no diff for them
    # Compiler tools: the flags; PGO: the profile, its size, the training command.
    assert "own flags (-O2) plus: -O3 -funroll-loops" in changes
    assert "plus: -fprofile-instr-use=<the profile> -O3" in changes
    assert "PGO profile merged.profdata (0." in changes and " KiB)" in changes
    assert "trained on `{program} < input.txt` in %s (the bench workload itself)" % Path(sample.cache_dir).parent \
        in changes

    page = render(sample, "html")
    assert '<pre class="diff">' in page
    assert '<span class="add">+    size_t n = text_length(src);</span>' in page
    assert '<span class="del">-    for (size_t i = 0; i &lt; text_length(src); i++) {</span>' in page
    assert '<span class="hunk">@@ -10,7 +10,8 @@ upcase</span>' in page
    assert "own flags (-O2) plus: -O3 -funroll-loops" in page and "PGO profile merged.profdata" in page
    data = render(sample, "json")
    assert '"diff": [' in data and "size_t n = text_length(src);" in data


def test_a_variant_whose_entry_is_gone_or_whose_source_changed_says_so(sample: RunState, tmp_path: Path) -> None:
    text_o = next(o for o, k in sample.kept.items() if k.level == "source")
    gone = replace(sample, kept={**sample.kept, text_o: replace(sample.kept[text_o], key="0" * 64)})
    md = render(gone, "md")
    assert "entry 0000000000000000 is not in the cache %s" % sample.cache_dir in md
    assert "+    size_t n = text_length(src);" not in md
    source = Path(sample.kept[text_o].source)
    original = source.read_text()
    try:
        source.write_text(original.replace("void upcase", "/* edited */\nvoid upcase"))
        md = render(sample, "md")
    finally:
        source.write_text(original)
    assert "text.c changed since the run: the diff is against today's file" in md


def test_flags_on_top_of_a_pgo_node_name_the_profile_they_were_built_with(sample: RunState) -> None:
    pgo_o = next(o for o, k in sample.kept.items() if k.level == "pgo")
    pgo = next(a for a in sample.attempts if a.object == pgo_o and a.level == "pgo")
    profile = str(Path(sample.cache_dir).parent / "merged.profdata")
    training = {"workload": "{program} < input.txt", "cwd": "/w", "same_as_bench": True, "kind": "ir",
                "instrumented": ["pgo.c"], "profdata": profile}
    number = max(a.number for a in sample.attempts) + 1
    leaf = replace(pgo, number=number, level="flags", label="-O3 -funroll-loops", parent=pgo.number,
                   flags=["-fprofile-instr-use=" + profile, "-Wno-profile-instr-unprofiled", "-O3", "-funroll-loops"])
    state = replace(sample, attempts=[replace(pgo, training=training) if a is pgo else a for a in sample.attempts]
                    + [leaf], kept={**sample.kept, pgo_o: replace(sample.kept[pgo_o], attempt=number,
                                                                     level="flags", label=leaf.label)})
    md = render(state, "md")
    assert "lineage: original -> #%d pgo (pgo -O3) -> #%d flags (-O3 -funroll-loops)" % (pgo.number, number) in md
    assert "built on #%d with the TU's own flags plus: -O3 -funroll-loops" % pgo.number in md
    assert "PGO profile of #%d merged.profdata (0." % pgo.number in md and "IR-level instrumentation" in md
    assert "trained on `{program} < input.txt` in /w (the bench workload itself)" in md


def test_a_long_diff_is_cut_and_says_how_much_is_left() -> None:
    original = "\n".join("int f%d(void) { return %d; }" % (i, i) for i in range(200))
    variant = original.replace("return ", "return 1 + ")
    lines, more = unified(original, variant, "many.c", limit=30)
    assert len(lines) == 30 and more > 100 and lines[2].startswith("@@ -1,")
    whole, none_left = unified(original, variant, "many.c", limit=10_000)
    assert none_left == 0 and len(whole) == 30 + more
    sm = summarize(RunState(**{**vars(_empty()), "cache_dir": "/nonexistent"}))
    sm.changes = [Change("/p/many.o", "/p/many.c", "source", "s0", diff=lines, more=more)]
    assert "\n\u2026 %d more lines\n```" % more in render_markdown(sm)
    # A diff holding a fence of its own (a comment quoting markdown) is fenced with more backticks than it has.
    fenced, _ = unified("int x;\n", "/* ```c */\nint x;\n", "doc.c")
    sm.changes = [Change("/p/doc.o", "/p/doc.c", "source", "s0", diff=fenced)]
    md = render_markdown(sm)
    assert "\n````diff\n--- a/doc.c (original)\n" in md and "\n+/* ```c */\n int x;\n````" in md


def _empty() -> RunState:
    from coopt.optimize.state import CommandRecord

    bench = CommandRecord("{program}", "/p", "--bench")
    return RunState("2026-01-01T00:00:00Z", "/p/app", "", "", "/nonexistent", ["source"], 1.02, 3, "none",
                    {"evaluations": 1, "seconds": 0}, bench, None, [bench], False)


def test_cut_details_end_in_an_ellipsis_and_keep_the_whole_text_in_a_tooltip(sample: RunState) -> None:
    full = next(a.detail for a in sample.attempts if a.detail.startswith("test: the output differs"))
    assert len(full) > DETAIL_CHARS and full == LONG_DETAIL % (1, "x" * 40)
    md = render(sample, "md")
    shown = full[:DETAIL_CHARS - 1].rstrip() + "\u2026"
    assert "| %s |" % shown in md and full not in md
    page = render(sample, "html")
    assert '<td class="wide" title="%s">%s</td>' % (html.escape(full, quote=True), html.escape(shown)) in page
    assert '<td class="wide">speed-up 4.800x</td>' in page  # a short detail is shown whole, with no tooltip


# ---- the chart in a real browser -----------------------------------------------------------------------------


def layout_problems(data: dict) -> list[str]:
    """Everything wrong with the measured layout of a report's chart: a text outside the SVG's box, two texts
    overlapping, a line drawn through a text."""
    [svg] = data["svgs"]
    assert svg["viewBox"], "the chart has no viewBox"
    x0, y0, w, h = svg["viewBox"]
    problems = []
    texts = svg["texts"]
    eps = 0.5
    for t in texts:
        if t["x"] < x0 - eps or t["y"] < y0 - eps or t["x"] + t["width"] > x0 + w + eps or \
                t["y"] + t["height"] > y0 + h + eps:
            problems.append("%r (x %.0f..%.0f, y %.0f..%.0f) is outside the chart's box %s" % (
                t["text"], t["x"], t["x"] + t["width"], t["y"], t["y"] + t["height"], svg["viewBox"]))
    for i, a in enumerate(texts):
        for b in texts[i + 1:]:
            dx = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
            dy = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
            if dx > eps and dy > eps:
                problems.append("%r and %r overlap" % (a["text"], b["text"]))
    for ln in svg["lines"]:
        for t in texts:
            lx0, lx1 = sorted((ln["x1"], ln["x2"]))
            ly0, ly1 = sorted((ln["y1"], ln["y2"]))
            if lx0 < t["x"] + t["width"] - eps and lx1 > t["x"] + eps and ly0 < t["y"] + t["height"] - eps and \
                    ly1 > t["y"] + eps:
                problems.append("a line (%.0f,%.0f)-(%.0f,%.0f) crosses %r" % (
                    ln["x1"], ln["y1"], ln["x2"], ln["y2"], t["text"]))
    return problems


def _nothing_kept(s: RunState) -> RunState:
    return replace(s, kept={}, final=None, attempts=[a for a in s.attempts if a.interval is None])


@pytest.mark.parametrize("variant", ["sample", "min gain 1.0", "nothing kept", "min gain at the right edge"])
def test_the_chart_fits_its_box_and_no_label_overlaps_in_chromium(sample: RunState, variant: str) -> None:
    if chromium() is None:
        pytest.skip("chromium is not installed (apt-get install chromium; `make test` installs it)")
    state = {"sample": sample, "min gain 1.0": replace(sample, min_gain=1.0),
             "nothing kept": _nothing_kept(sample),
             "min gain at the right edge": replace(_nothing_kept(sample), min_gain=3.0)}[variant]
    data = layout(render(state, "html"), width=1000)
    problems = layout_problems(data)
    if data["page"]["width"] > 1000:  # the tables and the chart fit the window: nothing to scroll sideways to
        problems.append("the page is %d px wide in a 1000 px window" % data["page"]["width"])
    assert not problems, "\n".join(problems)
    shown = [t["text"] for t in data["svgs"][0]["texts"]]
    assert "1.0 (plain clang)" in shown and "min gain %.2f" % state.min_gain in shown
    assert "nothing measured" in shown
    ticks = [t for t in shown if t.replace(".", "", 1).isdigit()]
    assert len(ticks) >= 3, shown  # the value axis has ticks with values
    if variant == "sample":
        assert any(t.startswith("4.800x [4.200, 5.300]  kept source") for t in shown)
        assert any(t.startswith("a_translation_unit") and t.endswith("\u2026") for t in shown)


def test_the_layout_check_finds_what_is_wrong() -> None:
    """The checker itself on a layout with each fault, so a checker that finds nothing cannot pass."""
    box = {"viewBox": [0, 0, 100, 50], "width": 100, "height": 50, "lines": [{"x1": 50, "x2": 50, "y1": 0,
                                                                               "y2": 50}]}
    inside = {"text": "a", "x": 2, "y": 2, "width": 10, "height": 10}
    assert layout_problems({"svgs": [{**box, "lines": [], "texts": [inside]}]}) == []
    cut = {"text": "cut", "x": 90, "y": 2, "width": 20, "height": 10}
    over = {"text": "over", "x": 5, "y": 5, "width": 10, "height": 10}
    crossed = {"text": "crossed", "x": 40, "y": 30, "width": 20, "height": 10}
    problems = layout_problems({"svgs": [{**box, "texts": [inside, cut, over, crossed]}]})
    assert any("'cut'" in p and "outside" in p for p in problems)
    assert any("'a' and 'over' overlap" in p for p in problems)
    assert any("crosses 'crossed'" in p for p in problems)
