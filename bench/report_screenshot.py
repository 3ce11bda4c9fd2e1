"""Render a `coopt report` HTML page in headless Chromium: a PNG screenshot, or the layout of its SVG chart as the
browser itself measures it (every text's box, every line, the viewBox), which tests/test_report_view.py checks.

    .venv/bin/python bench/report_screenshot.py --run RUN_DIR -o report.png     # an optimize run's report
    .venv/bin/python bench/report_screenshot.py --html report.html -o report.png
    .venv/bin/python bench/report_screenshot.py --sample DIR -o docs/report.png  # the tests' sample run
    .venv/bin/python bench/report_screenshot.py --html report.html --layout     # the measured layout, as JSON

Chromium is Debian's (`apt-get install chromium`, in scripts/install-deps.sh). It runs with networking features
off and a fresh profile directory: the page is one self-contained file, and without these flags Chromium tries
to reach Google's services.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--hide-scrollbars", "--force-device-scale-factor=1"]
MARK = "coopt-layout"

# Runs in the page after the report has been laid out: writes what the browser measured into a <pre>, which
# --dump-dom then prints. getBBox is in the SVG's user units, the units of its viewBox.
_MEASURE = """<script>
(function () {
  var out = {svgs: [], page: {width: document.documentElement.scrollWidth,
                              height: document.documentElement.scrollHeight}};
  document.querySelectorAll("svg").forEach(function (svg) {
    var vb = svg.viewBox.baseVal, texts = [], lines = [];
    svg.querySelectorAll("text").forEach(function (t) {
      var b = t.getBBox(), own = "";
      t.childNodes.forEach(function (n) { if (n.nodeType === 3) own += n.data; });
      texts.push({text: own, x: b.x, y: b.y, width: b.width, height: b.height});
    });
    svg.querySelectorAll("line").forEach(function (l) {
      lines.push({x1: l.x1.baseVal.value, x2: l.x2.baseVal.value, y1: l.y1.baseVal.value, y2: l.y2.baseVal.value,
                  stroke: l.getAttribute("stroke") || ""});
    });
    var r = svg.getBoundingClientRect();
    out.svgs.push({viewBox: vb ? [vb.x, vb.y, vb.width, vb.height] : null, width: r.width, height: r.height,
                   texts: texts, lines: lines});
  });
  var pre = document.createElement("pre");
  pre.id = "%s";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>""" % MARK


def chromium() -> str | None:
    """Debian's Chromium (or another Chromium-based browser on PATH), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _browser(args: list[str], timeout: float = 120) -> str:
    exe = chromium()
    if exe is None:
        raise RuntimeError("no chromium on PATH (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="coopt-chromium-") as profile:
        proc = subprocess.run([exe, *FLAGS, "--user-data-dir=" + profile, *args], capture_output=True, text=True,
                              timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError("chromium exited %d: %s" % (proc.returncode, proc.stderr.strip()[-500:]))
    return proc.stdout


def layout(page: str, width: int = 1280) -> dict:
    """What the browser measured in the report `page` (HTML text): for each SVG its viewBox, rendered size, each
    text's own string and box, each line; and the page's scroll size."""
    with tempfile.TemporaryDirectory(prefix="coopt-layout-") as tmp:
        path = os.path.join(tmp, "report.html")
        with open(path, "w", encoding="utf-8") as f:
            f.write(page.replace("</body>", _MEASURE + "</body>", 1))
        dom = _browser(["--window-size=%d,900" % width, "--dump-dom", "file://" + path])
    start = dom.find('<pre id="%s">' % MARK)
    if start < 0:
        raise RuntimeError("the page's measuring script did not run (no #%s in the DOM)" % MARK)
    text = dom[start:].split(">", 1)[1].split("</pre>", 1)[0]
    data: dict = json.loads(html.unescape(text))
    return data


def screenshot(page: str, png: str, width: int = 1280) -> None:
    """A PNG of the whole report `page` (HTML text) at `width` pixels."""
    height = int(layout(page, width)["page"]["height"]) + 20
    with tempfile.TemporaryDirectory(prefix="coopt-shot-") as tmp:
        path = os.path.join(tmp, "report.html")
        with open(path, "w", encoding="utf-8") as f:
            f.write(page)
        _browser(["--window-size=%d,%d" % (width, height), "--screenshot=" + os.path.abspath(png),
                  "file://" + path])
    if not os.path.isfile(png):
        raise RuntimeError("chromium wrote no screenshot to %s" % png)


def _report(args: argparse.Namespace) -> str:
    sys.path[:0] = [os.path.join(ROOT, "src"), os.path.join(ROOT, "tests")]
    from coopt.optimize.state import load
    from coopt.report.render import render

    if args.html:
        with open(args.html, encoding="utf-8") as f:
            return f.read()
    if args.run:
        return render(load(args.run), "html")
    from pathlib import Path

    from support.report_sample import build

    return render(build(Path(args.sample)), "html")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--html", help="a report written by `coopt report --format html -o FILE`")
    src.add_argument("--run", help="an optimize run directory (its state.json)")
    src.add_argument("--sample", metavar="DIR", help="build the tests' sample run in DIR (compiles with clang)")
    ap.add_argument("-o", "--output", default="report.png", help="the PNG to write (default report.png)")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--layout", action="store_true", help="print the measured layout as JSON instead")
    args = ap.parse_args()
    page = _report(args)
    if args.layout:
        print(json.dumps(layout(page, args.width), indent=1))
        return 0
    screenshot(page, args.output, args.width)
    print("%s: %d bytes" % (args.output, os.path.getsize(args.output)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
