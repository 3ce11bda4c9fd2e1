"""Judging a candidate by the whole program: relink it, run the test commands, time the bench command A/B.

Workloads are the project's commands that run the program (coopt.hooks.workload: a shell line with `{program}`),
run on each side through the one sandboxed runner of project commands (program_level/hooks.py `run_line`). Each
side (the baseline, a candidate, the final program) is a relinked copy of the program in its own directory, so both
sides of a comparison are built and started the same way.

Timing uses the verifier's statistics (`verify.perfstats`): interleaved pairs, order flipped every round, speed-up
= ratio of medians with a percentile-bootstrap interval. What is timed is either the CPU time of the bench command
and everything it started (`cpu`, user + system, the default) or its wall time (`wall`). On a shared machine CPU
time is the steadier one: time spent waiting for a core, which other work decides, is not in it. A stop request
(Ctrl-C) or the end of the time budget ends a measurement between two runs.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from coopt.budget import BudgetExhausted
from coopt.hooks.workload import Workload, WorkloadError
from coopt.journal.relink import LinkRecord, relink
from coopt.journal.shared_libs import ProgramRun
from coopt.journal.shared_libs import side as launched_side
from coopt.verify import sandbox
from coopt.verify.evidence import Interval
from coopt.verify.perfstats import PerfSettings, interleaved, timed
from coopt.verify.program_level import hooks as program

MEASURES = ("cpu", "wall")


class Interrupted(Exception):
    """The user asked the run to stop (Ctrl-C); what was verified so far is kept."""


@dataclass(frozen=True)
class ProgramSide:
    """One program to run: its name (baseline, cand-3, final) and where its relinked copy is. Not hooks.py's
    `Side`, which is one TU's side (source and object) in the pipeline's own hook runs: this one is a whole program."""

    name: str
    program: str
    reads: tuple[str, ...] = ()  # what the program reads outside its directory (a build's executable, .libs)

    @property
    def directory(self) -> str:
        return os.path.dirname(self.program)

    def visible(self, cwd: str) -> list[str]:
        """The paths a contained run of this side in `cwd` must be able to read."""
        return [cwd, self.directory, *self.reads]


@dataclass
class ProgramBench:
    """Builds sides of one journaled program and judges them against the baseline's outputs and speed."""

    link: LinkRecord
    workdir: str
    bench: Workload
    tests: list[Workload]
    pairs: int
    timeout_s: float
    should_stop: Callable[[], bool]
    deadline: Callable[[], float]  # monotonic time the run must end by; 0: none
    measure: str = "cpu"
    on_round: Callable[[str], None] = lambda _text: None
    expected: list[program.Observation] | None = None
    float_tolerance: float = 0.0  # [optimize] float_tolerance: how close floating-point numbers in output must be
    # Set when the program runs through a launcher: `link` is a shared library's, which the program loads, or the
    # program is run by a libtool wrapper script (journal/shared_libs.py).
    runner: ProgramRun | None = None

    def side(self, name: str, replacements: dict[str, str]) -> ProgramSide:
        """Relink the program with `replacements` ({original object: new object}) into its own directory; for a
        shared library, relink the library there and run the program against it (journal/shared_libs.py).

        Give every side a name of the same length: the program's path and the environment shift the initial
        stack, and with it the alignment the code runs at, enough to show in a timing."""
        d = os.path.join(self.workdir, "sides", name)
        os.makedirs(d, exist_ok=True)
        if self.runner is not None:
            built = launched_side(self.link, replacements, self.runner, d)
            return ProgramSide(name, built.launcher, built.reads)
        out = os.path.join(d, os.path.basename(self.link.output))
        relink(self.link, replacements, out, workdir=d)
        return ProgramSide(name, out)

    def _limits(self) -> sandbox.Limits:
        wall = self.timeout_s
        end = self.deadline()
        if end:
            left = end - time.monotonic()
            if left <= 0:
                raise BudgetExhausted("the time budget is spent")
            wall = min(wall, left)
        # Programs under test may be big and long: the wall clock, core files, and bounds no real workload here
        # reaches but that stop a fork or memory bomb before it takes the machine.
        return sandbox.Limits(cpu_s=0, address_space_mb=0, file_size_mb=0, processes=4096, wall_s=wall,
                              memory_mb=sandbox.machine_memory_mb() * 3 // 4)

    def _env(self, side: ProgramSide) -> dict[str, str]:
        # Not os.environ: a candidate must not see the caller's API keys. HOME and TMPDIR are the side's scratch.
        return sandbox.scrubbed_env(self._scratch(side), {"COOPT_SIDE": side.name, "COOPT_PROGRAM": side.program})

    @staticmethod
    def _scratch(side: ProgramSide) -> str:
        """The one place a workload may write (the project directory it runs in is read-only)."""
        return os.path.join(side.directory, "scratch")


    def _checkpoint(self) -> None:
        if self.should_stop():
            raise Interrupted("stopped by the user")
        end = self.deadline()
        if end and time.monotonic() >= end:
            raise BudgetExhausted("the time budget is spent")

    def observe(self, side: ProgramSide, w: Workload) -> program.Observation:
        self._checkpoint()
        return program.run_line(w.render(side.program), self._scratch(side), self._limits(), self._env(side),
                                cwd=w.cwd, readonly=side.visible(w.cwd))

    def record_baseline(self, base: ProgramSide) -> None:
        """Run every test on the baseline twice: its output is what candidates must reproduce, so it must be
        the same every time. WorkloadError when a test fails or is not deterministic."""
        expected = []
        for w in self.tests:
            first = self.observe(base, w)
            if first.timed_out or first.returncode != 0:
                raise WorkloadError("the %s command %r fails on the original program (exit %d%s): %s" % (
                    w.origin, w.line, first.returncode, ", timed out" if first.timed_out else "",
                    first.stderr_tail.strip()[-300:] or "no error output"))
            again = self.observe(base, w)
            diff = program.compare(first, again)
            if diff:
                raise WorkloadError("the %s command %r gives different output on two runs of the same program "
                                    "(%s): it cannot judge candidates; give a deterministic --test" % (
                                        w.origin, w.line, diff))
            expected.append(first)
        self.expected = expected

    def check(self, cand: ProgramSide) -> str:
        """Empty when every test gives the baseline's output on `cand`, else what differs."""
        assert self.expected is not None, "record_baseline first"
        for w, want in zip(self.tests, self.expected, strict=True):
            got = self.observe(cand, w)
            diff = program.compare(want, got, self.float_tolerance)
            if diff:
                return "%s command %s: %s" % (w.origin, w.line, diff)
        return ""

    def time_ab(self, base: ProgramSide, cand: ProgramSide, pairs: int = 0) -> Interval:
        """Interleaved timing of the bench command on both sides (`pairs`, default the bench's); speed-up of
        `cand` over `base`."""
        pairs = pairs or self.pairs
        runs = [0]
        total = 2 * (pairs + 1)

        def run(side: ProgramSide) -> Callable[[], float]:
            def one() -> float:
                self._checkpoint()
                runs[0] += 1
                self.on_round("timing %s: run %d/%d" % (cand.name, runs[0], total))
                line = self.bench.render(side.program)
                return timed([line], self._scratch(side), self._env(side), self._limits(), shell=True,
                             cpu=self.measure == "cpu", cwd=self.bench.cwd, readonly=side.visible(self.bench.cwd))

            return one

        settings = PerfSettings(rounds=pairs, warmup=1)
        return dataclasses.replace(interleaved(run(base), run(cand), settings), method=self.measure)
