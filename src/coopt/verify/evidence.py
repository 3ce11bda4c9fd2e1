"""The evidence record of one verification: what was checked, on which inputs, with what result.

It goes into the cache entry next to the variant, so it is plain data with a format version and a stable JSON
form (sorted keys).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from coopt.verify.verdict import Code, Verdict

EVIDENCE_VERSION = 3  # 2: `fuzz` (libFuzzer runs), reproducer `source`; 3: `micro` (speed-input micro-benchmark)


@dataclass
class CheckResult:
    """One check (compile, warnings, differential, sanitizers, program test, performance) and how it went."""

    name: str
    ok: bool
    detail: str = ""
    seconds: float = 0.0


@dataclass
class FunctionInputs:
    """Inputs tried on one function, per harness build ('plain' or 'sanitized')."""

    function: str
    build: str
    generated: int = 0
    compared: int = 0  # the original ran cleanly, both sides compared
    invalid: int = 0  # the original itself failed (crash, sanitizer, UB): outside its contract
    inconclusive: int = 0  # the original ran past the time limit
    sources: dict[str, int] = field(default_factory=dict)  # input source name -> inputs it produced


@dataclass
class FuzzRun:
    """What the libFuzzer source did for one function. `status`: "ran", or "unsupported" with the reason in
    `note` (no libFuzzer runtime, a fuzz target that does not build)."""

    function: str
    status: str
    seconds: float = 0.0
    executions: int = 0  # inputs the fuzz target ran, over all starts
    edges: int = 0  # coverage libFuzzer reported (edges of both sides and the harness)
    corpus: int = 0  # new inputs the fuzzer kept; all of them go to the differential run
    findings: int = 0  # inputs the target stopped on (a difference or a candidate crash in-process)
    dismissed: int = 0  # findings the differential run did not confirm (fuzzing then went on)
    starts: int = 0
    note: str = ""


@dataclass
class Interval:
    """A speed-up (original cost / candidate cost) with its confidence interval."""

    ratio: float
    low: float
    high: float
    method: str  # "wall" (ratio of medians, bootstrap CI) or "callgrind" (instruction counts)
    samples_original: list[float] = field(default_factory=list)
    samples_candidate: list[float] = field(default_factory=list)


@dataclass
class Evidence:
    """Everything recorded about one candidate. `verdict` is the decision; the rest says why."""

    original: str
    candidate: str
    verdict: Verdict
    functions: list[str] = field(default_factory=list)
    unsupported_functions: dict[str, str] = field(default_factory=dict)  # name -> why it cannot be driven
    checks: list[CheckResult] = field(default_factory=list)
    inputs: list[FunctionInputs] = field(default_factory=list)
    sanitizers: str = ""  # what ran under sanitizers ("asan+ubsan", or why not)
    fuzz: list[FuzzRun] = field(default_factory=list)  # empty when fuzzing was not asked for
    interval: Interval | None = None
    # The function alone on the test-generation agent's speed inputs (original vs candidate side programs): a
    # fast, low-noise signal recorded next to the verdict; it never decides it.
    micro: Interval | None = None
    hot_spots: str = ""  # the candidate's hottest instructions on the speed inputs (perf), when micro was run
    timings: dict[str, float] = field(default_factory=dict)
    cflags: list[str] = field(default_factory=list)
    version: int = EVIDENCE_VERSION

    @property
    def accepted(self) -> bool:
        return self.verdict.code is Code.ACCEPTED

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["verdict"] = {
            "code": self.verdict.code.value,
            "detail": self.verdict.detail,
            "reason": self.verdict.reason.value if self.verdict.reason else None,
            "reproducer": asdict(self.verdict.reproducer) if self.verdict.reproducer else None,
        }
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)
