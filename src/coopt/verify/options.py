"""The knobs of one verification, read by the check pipeline and the side runs alike."""

from __future__ import annotations

from dataclasses import dataclass

from coopt.verify import inputs, sandbox
from coopt.verify.perfstats import PerfSettings


@dataclass(frozen=True)
class VerifyOptions:
    """Knobs of one verification. The defaults are what the optimizer uses."""

    max_inputs: int = 300  # per function, all input sources together
    input_timeout_s: int = 1
    total_timeout_s: float = 900.0
    sanitizers: bool = True
    msan: bool = True  # MemorySanitizer too (only where it can run: see build.MSAN), when sanitizers are on
    fp_tolerance: float = 0.0  # relative; 0 compares floating point exactly
    min_gain: float = 1.02
    perf: str = ""  # "", "wall" or "callgrind": the generated micro-benchmark
    perf_settings: PerfSettings = PerfSettings()
    bench_iterations: int = 20
    compare_files: tuple[str, ...] = ()
    input_sources: tuple[inputs.InputSource, ...] = ()  # extra sources (the LLM test agent)
    # Inputs sized for the hot path (the LLM test agent's speed inputs): compared like every input, then, once the
    # candidate is accepted, both sides are timed on them alone (Evidence.micro). The timing never decides.
    speed_sources: tuple[inputs.InputSource, ...] = ()
    fuzz_seconds: float = 0.0  # libFuzzer time box per function; 0: no fuzzing
    limits: sandbox.Limits = sandbox.Limits()
    clang: str = ""
    seed: int = 0
    # The static screen's findings end the run (screen.py). Off only to show that containment holds on its own
    # (tests/test_hostile.py): never for a verdict that may enter the cache.
    screen: bool = True
