"""The JSON form of a run's report: the summary plus the whole run state, with its own format name and version."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from coopt.optimize.state import to_dict
from coopt.report.merge import Shards
from coopt.report.summary import Summary

REPORT_FORMAT = "coopt-optimize-report"
REPORT_VERSION = 1


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
            "attempts": [{"level": a.level, "label": a.label, "verdict": a.verdict, "parent": a.parent}
                         for a in t.attempts],
        } for t in sm.tus],
        "changes": [asdict(ch) for ch in sm.changes],
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
