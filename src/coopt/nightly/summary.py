"""The nightly run's steps as a Markdown table, at the head of report.md."""

from __future__ import annotations

from coopt.nightly.state import STEPS, NightlyState


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def steps_markdown(state: NightlyState) -> str:
    """`# coopt nightly` with one row per step: status, time, what it did."""
    rows = ["# coopt nightly", "",
            "Project `%s`, run started %s%s." % (state.project, state.started,
                                                  ", resumed %d time(s)" % state.resumed if state.resumed else ""),
            "", "| step | status | seconds | result |", "| --- | --- | ---: | --- |"]
    for name in STEPS:
        rec = state.steps.get(name)
        if rec is None or rec.status == "running":  # the report step writes this table while it runs
            continue
        rows.append("| %s | %s | %s | %s |" % (name, rec.status, "%.1f" % rec.seconds if rec.started else "",
                                               _cell(rec.detail)))
    return "\n".join(rows) + "\n"
