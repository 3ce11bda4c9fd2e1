"""Behaviour evidence for proposers: the `check` callable the optimizer hands to agents, built once per run.

An agent asks "does this rewrite of these functions behave like the original?" with a `BehaviourRequest`; the
run's judge settings (time box, floating-point tolerance, fuzzing) are fixed when the callable is made, so they are
not copied through the agents, and agents never import the verifier's pipeline.

A request about `main`, or about functions the differential harness cannot call, is judged at the program level when
the run gave a `ProgramContext` (program_level/differential.py): the pipeline's own checks first (compile, static
screen, interface, the functions it can drive), then both programs relinked and run on the project's tests, the
request's `program_inputs` and stdin mutations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from coopt.verify.evidence import Evidence
from coopt.verify.program_level.differential import ProgramContext
from coopt.verify.program_level.inputs import ProgramInput

if TYPE_CHECKING:  # the pipeline is imported when a check runs, not when agents import this module
    from coopt.verify.pipeline import VerifyOptions


@dataclass(frozen=True)
class BehaviourRequest:
    """One question: `candidate` (.c, .ll or .s) as a replacement of `functions` of `original`, compiled with
    `cflags` by `clang`, linked with `link_with`; `input_sources` add inputs to the verifier's own."""

    original: str
    candidate: str
    functions: Sequence[str]
    cflags: Sequence[str]
    clang: str = ""
    link_with: Sequence[str] = ()
    input_sources: Sequence[object] = field(default_factory=tuple)  # verify.inputs.InputSource
    replaces: str = ""  # the journaled object the candidate replaces in the program (program-level checks)
    program_inputs: Sequence[ProgramInput] = field(default_factory=tuple)  # runs of the whole program to compare
    # Inputs sized for the hot path: checked like the others, then both sides are timed on them (Evidence.micro).
    speed_sources: Sequence[object] = field(default_factory=tuple)


@dataclass(frozen=True)
class JudgeSettings:
    """The run's settings for behaviour checks: built once from the run's options."""

    timeout_s: float = 900.0  # the whole check, at most the verifier's own limit
    float_tolerance: float = 0.0  # [optimize] float_tolerance: floating-point outputs within it compare equal
    fuzz_seconds: float = 0.0  # [optimize] fuzz_seconds: libFuzzer time per rewritten function


Check = Callable[[BehaviourRequest], Evidence]


PROGRAM_ONLY = ("main",)  # functions only a run of the whole program can judge


def checker(settings: JudgeSettings, program: ProgramContext | None = None) -> Check:
    """The `check` callable for agents: the verifier's evidence on a request, under `settings`; with `program`,
    requests the harness cannot decide alone are judged by running the whole program."""

    def check(req: BehaviourRequest) -> Evidence:
        from coopt.verify.pipeline import VerifyInputError, verify
        from coopt.verify.verdict import Verdict

        if program is not None and req.replaces:
            return _program_check(req, settings, program)

        try:
            return verify(req.original, req.candidate, list(req.functions), list(req.cflags),
                          options=_options(req, settings), link_with=list(req.link_with))
        except VerifyInputError as exc:
            return Evidence(req.original, req.candidate, Verdict.unsupported(str(exc)))

    return check


def _options(req: BehaviourRequest, settings: JudgeSettings) -> VerifyOptions:
    """The verifier's options for `req` under `settings`, the same for the function-level and program-level paths."""
    from coopt.verify.pipeline import VerifyOptions

    base = VerifyOptions()
    # The built-in generator keeps its full share: merged() splits max_inputs evenly between the sources.
    extra = len(req.input_sources) + len(req.speed_sources)
    return VerifyOptions(max_inputs=base.max_inputs * (1 + extra),
                         total_timeout_s=min(base.total_timeout_s, settings.timeout_s),
                         input_sources=tuple(req.input_sources), clang=req.clang,  # type: ignore[arg-type]
                         speed_sources=tuple(req.speed_sources),  # type: ignore[arg-type]
                         fp_tolerance=settings.float_tolerance, fuzz_seconds=settings.fuzz_seconds)


def _program_check(req: BehaviourRequest, settings: JudgeSettings, ctx: ProgramContext) -> Evidence:
    """The pipeline's checks on what it can judge, then, where it could not drive something, the whole program."""
    import os
    import shutil
    import tempfile

    from coopt.verify.pipeline import VerifyInputError, plain_object, verify
    from coopt.verify.program_level.differential import ProgramJudge
    from coopt.verify.verdict import Code, Verdict

    options = _options(req, settings)
    os.makedirs(ctx.workdir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="check-", dir=ctx.workdir)
    try:
        drivable = [f for f in req.functions if f not in PROGRAM_ONLY]
        try:
            ev = verify(req.original, req.candidate, drivable, list(req.cflags), options=options,
                        workdir=os.path.join(work, "tu"), link_with=list(req.link_with))
        except VerifyInputError as exc:
            return Evidence(req.original, req.candidate, Verdict.unsupported(str(exc)))
        whole = len(drivable) < len(req.functions) or ev.verdict.code is Code.UNSUPPORTED
        if ev.verdict.code not in (Code.ACCEPTED, Code.UNSUPPORTED) or not whole:
            return ev
        tu = os.path.join(work, "tu")
        judge = ProgramJudge(ctx, os.path.join(work, "program"))
        ev.verdict = judge.judge(req.replaces, plain_object(tu, "o"), plain_object(tu, "c"), req.program_inputs, ev)
        return ev
    finally:
        shutil.rmtree(work, ignore_errors=True)
