"""Behaviour evidence for proposers: the `check` callable the optimizer hands to agents, built once per run.

An agent asks "does this rewrite of these functions behave like the original?" with a `BehaviourRequest`; the
run's judge settings (time box, floating-point tolerance, fuzzing) are fixed when the callable is made, so they are
not copied through the agents, and agents never import the verifier's pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from coopt.verify.evidence import Evidence


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
    # Inputs sized for the hot path: checked like the others, then both sides are timed on them (Evidence.micro).
    speed_sources: Sequence[object] = field(default_factory=tuple)


@dataclass(frozen=True)
class JudgeSettings:
    """The run's settings for behaviour checks: built once from the run's options."""

    timeout_s: float = 900.0  # the whole check, at most the verifier's own limit
    float_tolerance: float = 0.0  # [optimize] float_tolerance: floating-point outputs within it compare equal
    fuzz_seconds: float = 0.0  # [optimize] fuzz_seconds: libFuzzer time per rewritten function


Check = Callable[[BehaviourRequest], Evidence]


def checker(settings: JudgeSettings) -> Check:
    """The `check` callable for agents: the verifier's evidence on a request, under `settings`."""

    def check(req: BehaviourRequest) -> Evidence:
        from coopt.verify.pipeline import VerifyInputError, VerifyOptions, verify
        from coopt.verify.verdict import Verdict

        base = VerifyOptions()
        # The built-in generator keeps its full share: merged() splits max_inputs evenly between the sources.
        extra = len(req.input_sources) + len(req.speed_sources)
        options = VerifyOptions(max_inputs=base.max_inputs * (1 + extra),
                                total_timeout_s=min(base.total_timeout_s, settings.timeout_s),
                                input_sources=tuple(req.input_sources), clang=req.clang,  # type: ignore[arg-type]
                                speed_sources=tuple(req.speed_sources),  # type: ignore[arg-type]
                                fp_tolerance=settings.float_tolerance, fuzz_seconds=settings.fuzz_seconds)
        try:
            return verify(req.original, req.candidate, list(req.functions), list(req.cflags), options=options,
                          link_with=list(req.link_with))
        except VerifyInputError as exc:
            return Evidence(req.original, req.candidate, Verdict.unsupported(str(exc)))

    return check
