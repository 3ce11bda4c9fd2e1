"""The state one run carries through its steps (`Run`): options, plan, workloads, budget, store, bench, baseline."""

from __future__ import annotations

from dataclasses import dataclass, field

from coopt.budget import Budget
from coopt.cache.store import Store
from coopt.hooks.workload import Workloads
from coopt.optimize.options import OptimizeOptions
from coopt.optimize.plan import Plan
from coopt.optimize.progress import Progress, StopFlag
from coopt.optimize.state import (
    AttemptRecord,
    RunState,
    save,
)
from coopt.verify.evidence import Evidence, Interval
from coopt.verify.program_level.bench import ProgramBench, ProgramSide


def interval_text(iv: Interval | None) -> str:
    """A speed-up and its interval for progress lines: `1.042 [1.010, 1.071]`, or "-"."""
    return "%.3f [%.3f, %.3f]" % (iv.ratio, iv.low, iv.high) if iv else "-"


@dataclass
class Run:
    """One run in progress: what it was asked, what it planned, what it has spent and measured so far."""

    opts: OptimizeOptions
    plan: Plan
    loads: Workloads
    state: RunState
    run_dir: str
    work: str
    budget: Budget
    store: Store
    progress: Progress
    stop: StopFlag
    bench: ProgramBench | None = None
    base: ProgramSide | None = None
    seen: dict[str, dict[str, int]] = field(default_factory=dict)  # TU object -> object hash -> attempt (0: base)
    behaviour: dict[int, Evidence] = field(default_factory=dict)  # accepted LLM nodes' behaviour evidence
    carried: list[AttemptRecord] = field(default_factory=list)  # judged before a resume: not proposed again

    def save(self) -> None:
        self.state.spent = {"evaluations": self.budget.evaluations, "seconds": round(self.budget.seconds, 1)}
        save(self.state, self.run_dir)

    def deadline(self) -> float:
        return self.budget.started + self.budget.max_seconds if self.budget.max_seconds else 0.0
