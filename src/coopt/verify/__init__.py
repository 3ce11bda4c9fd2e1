"""Verification: decides whether a candidate variant of a translation unit may enter the cache.

Roles, one module each: `signatures` (function signatures from clang's AST), `screen` (the static screen: calls
and instructions the original cannot reach, refused before anything runs), `inputs` (input generators and
pluggable input sources), `fuzz` (the libFuzzer input source), `harness` (the generated per-function C of the
side programs; the rest is in `c/`), `build` (compiling both sides and renaming their symbols apart), `sides`
(building each side's program, the run's state, the micro-benchmark), `sandbox` (containment of code we did not
write), `diffrun` (the trusted driver: runs each side's program and judges each input), `results` (reading the
side programs' frames and comparing their results), `warnings` (new compiler warnings), `program`
(the project's own test and bench hooks), `perfstats` (A/B timing statistics and instruction counts), `evidence`
and `verdict` (what is recorded), `acceptance` (the one rule: a speed-up interval against min_gain),
`program_bench` (the program-level A/B judge of the optimizer), `pipeline` (the one entry point: `verify`).
Importing this package does no work.
"""

# libFuzzer's time box per driven function where a caller does not choose (the CLI, the optimizer's config): a
# few seconds find the comparisons of a few bytes the fixed inputs miss; the cost is in docs/verify.md.
DEFAULT_FUZZ_SECONDS = 3.0
