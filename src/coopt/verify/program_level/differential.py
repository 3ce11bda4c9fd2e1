"""Program-level verification: the original and the candidate program, each relinked from the journaled link with
one object replaced, run side by side and compared.

This is how a rewrite of `main` (or of a function the differential harness cannot call) is judged. Each side runs
contained (verify/sandbox), and must match the original's stdout, exit status and the files it leaves in its
working directory on:
1. the project's tests (the run's test workloads, shell lines naming the program as `{program}`);
2. the test-generation agent's program runs (arguments, stdin, files: `ProgramInput`);
3. when the program reads standard input, mutations of the stdin of those runs (inputs.stdin_mutations).
A run on which the original itself hangs or dies of a signal is outside its contract and not compared. The verdict
is ACCEPTED when every compared run matches (the speed is judged afterwards, by the optimizer's A/B), REJECTED with
a reproducer at the first difference, INCONCLUSIVE when no run could be compared.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

from coopt.hooks.workload import Workload
from coopt.journal.relink import LinkRecord, RelinkError
from coopt.verify import sandbox
from coopt.verify.evidence import CheckResult, Evidence
from coopt.verify.program_level import hooks as program
from coopt.verify.program_level.bench import ProgramBench, ProgramSide
from coopt.verify.program_level.inputs import ProgramInput, reads_stdin, safe_name, stdin_mutations
from coopt.verify.verdict import Reason, Reproducer, Verdict

MAX_OUTPUT_FILES = 32


@dataclass(frozen=True)
class ProgramContext:
    """What the judge needs to run the whole program: its journaled link, the project's tests, a scratch place."""

    link: LinkRecord
    workdir: str
    tests: tuple[Workload, ...] = ()
    run_timeout_s: float = 60.0  # one run of a project test on one side
    input_timeout_s: float = 10.0  # one run of a generated input on one side (they are meant to be small)
    fuzz_runs: int = 24  # stdin mutations, when the program reads stdin
    float_tolerance: float = 0.0


def _undefined(obj: str) -> list[str]:
    nm = shutil.which("nm") or shutil.which("llvm-nm")
    if nm is None:
        return []
    proc = subprocess.run([nm, "-u", obj], capture_output=True, text=True, errors="replace")
    return [ln.split()[-1].split("@")[0] for ln in proc.stdout.splitlines() if ln.strip()]


class ProgramJudge:
    """Runs both sides of one candidate on every program input and compares what they did."""

    def __init__(self, ctx: ProgramContext, work: str) -> None:
        self.ctx = ctx
        self.work = work
        self.bench = ProgramBench(ctx.link, work, ctx.tests[0] if ctx.tests else Workload("{program}", work, "none"),
                                  list(ctx.tests), 0, ctx.run_timeout_s, lambda: False, lambda: 0.0,
                                  float_tolerance=ctx.float_tolerance)
        self._runs = 0

    def _limits(self) -> sandbox.Limits:
        return sandbox.Limits(cpu_s=0, address_space_mb=0, file_size_mb=64, processes=256,
                              wall_s=self.ctx.input_timeout_s, memory_mb=min(4096, sandbox.machine_memory_mb() // 2))

    def run_input(self, side: ProgramSide, pi: ProgramInput) -> program.Observation:
        """One run of `side`'s program on `pi` in a fresh directory, with the files it left there."""
        self._runs += 1
        scratch = os.path.join(side.directory, "run-%d" % self._runs)
        os.makedirs(scratch, exist_ok=True)
        given = {}
        for name, data in pi.files:
            if safe_name(name):
                with open(os.path.join(scratch, name), "wb") as f:
                    f.write(data)
                given[name] = data
        env = sandbox.scrubbed_env(scratch, {"COOPT_SIDE": side.name})
        res = sandbox.run([side.program, *pi.args], scratch, self._limits(), env, stdin=pi.stdin,
                          readonly=[side.directory])
        files: list[tuple[str, bytes | None]] = []
        names = sorted(os.listdir(scratch))
        for name in names[:MAX_OUTPUT_FILES]:
            path = os.path.join(scratch, name)
            if name.startswith(".") or not os.path.isfile(path) or os.path.islink(path):
                continue
            data = program.file_content(path)
            if given.get(name) != data:  # an input file it left alone is not output
                files.append((name, data))
        if len(names) > MAX_OUTPUT_FILES:  # the rest are compared by number only
            files.append(("(%d more entries)" % (len(names) - MAX_OUTPUT_FILES), b""))
        files += [(name, None) for name in sorted(set(given) - set(names))]  # an input it removed (gzip does)
        shutil.rmtree(scratch, ignore_errors=True)
        return program.Observation(res.returncode, res.stdout, tuple(files), res.timed_out,
                                   sandbox.stderr_with_notes(res), res.output_exceeded)

    def judge(self, replaces: str, original_obj: str, candidate_obj: str, inputs: Sequence[ProgramInput],
              ev: Evidence) -> Verdict:
        """The verdict on `candidate_obj` replacing `replaces` (the journaled object) in the program, against
        `original_obj` in its place; checks are added to `ev`."""
        t = time.monotonic()
        try:
            base = self.bench.side("orig", {replaces: original_obj})
        except RelinkError as exc:
            return Verdict.unsupported("the program cannot be relinked with the original TU: %s" % exc)
        try:
            cand = self.bench.side("cand", {replaces: candidate_obj})
        except RelinkError as exc:
            ev.checks.append(CheckResult("program-link", False, str(exc)[:300], round(time.monotonic() - t, 3)))
            return Verdict.rejected(Reason.COMPILE, "the program does not link with the candidate: %s" % exc)
        compared = {"tests": 0, "inputs": 0, "fuzz": 0}
        for w in self.ctx.tests:
            o = self.bench.observe(base, w)
            if o.timed_out:
                continue
            c = self.bench.observe(cand, w)
            diff = program.compare(o, c, self.ctx.float_tolerance)
            compared["tests"] += 1
            if diff:
                ev.checks.append(CheckResult("program-tests", False, diff, round(time.monotonic() - t, 3)))
                return Verdict.rejected(Reason.TEST_OUTPUT, "%s %s: %s" % (w.origin, w.line, diff),
                                        Reproducer("(program)", "test command: %s" % w.line))
        runs = list(inputs)
        if reads_stdin(_undefined(original_obj)):
            seeds = [pi for pi in runs if pi.stdin] or [ProgramInput(pi.args, b"", pi.files, pi.origin)
                                                        for pi in runs[:4]] or [ProgramInput()]
            runs += stdin_mutations(seeds, self.ctx.fuzz_runs, seed=len(runs))
        for pi in runs:
            o = self.run_input(base, pi)
            if o.timed_out or o.output_exceeded or o.returncode < 0 or o.returncode >= 128:
                continue  # the original hangs, floods or dies on it: outside its contract
            c = self.run_input(cand, pi)
            diff = program.compare(o, c, self.ctx.float_tolerance)
            compared["fuzz" if pi.origin == "fuzz" else "inputs"] += 1
            if diff:
                detail = "on %s: %s" % (pi.describe(), diff)
                ev.checks.append(CheckResult("program-inputs", False, detail, round(time.monotonic() - t, 3)))
                repro = Reproducer("(program)", pi.describe(4096), pi.stdin.hex()[:4096],
                                   "%s %s" % (os.path.basename(self.ctx.link.output), " ".join(pi.args)),
                                   source=pi.origin)
                reason = Reason.HANG if c.timed_out else Reason.PROGRAM_OUTPUT
                return Verdict.rejected(reason, "the program differs %s" % detail, repro)
        total = sum(compared.values())
        text = "%d program runs compared (%d project tests, %d generated inputs, %d stdin mutations)" % (
            total, compared["tests"], compared["inputs"], compared["fuzz"])
        ev.checks.append(CheckResult("program", total > 0, text, round(time.monotonic() - t, 3)))
        if not total:
            return Verdict.inconclusive("no program run could be compared: give a test command or test inputs")
        return Verdict.accepted("the program behaves like the original: " + text)
