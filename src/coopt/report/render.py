"""The one table of report formats and `render`: a run state to text in one of them.

Each format names the function that renders a `Summary`, imported only when asked for (html pulls in more), so the
renderers import the summary and never each other.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI reads FORMATS at start-up: the summary's imports wait until a report is rendered
    from collections.abc import Callable

    from coopt.optimize.state import RunState
    from coopt.report.merge import Shards
    from coopt.report.summary import Summary

# format -> "module:function" rendering a Summary to text.
FORMATS: dict[str, str] = {
    "md": "coopt.report.markdown:render_markdown",
    "json": "coopt.report.json_form:render_json",
    "html": "coopt.report.html:render_html",
}


def renderer(fmt: str) -> Callable[[Summary], str]:
    """The function that renders format `fmt`; ValueError for a format not in FORMATS."""
    if fmt not in FORMATS:
        raise ValueError("unknown report format %r (one of %s)" % (fmt, ", ".join(FORMATS)))
    module, _, name = FORMATS[fmt].partition(":")
    fn: Callable[[Summary], str] = getattr(importlib.import_module(module), name)
    return fn


def render(state: RunState, fmt: str, shards: Shards | None = None) -> str:
    """The report of `state` in `fmt` (md, json or html); `shards` when `state` merges shard results."""
    from coopt.report.summary import summarize

    return renderer(fmt)(summarize(state, shards))
