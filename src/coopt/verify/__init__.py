"""Verification: decides whether a candidate variant of a translation unit may enter the cache.

Roles, one module each: `signatures` (function signatures from clang's AST), `screen` (the static screen: calls
and instructions the original cannot reach, refused before anything runs), `inputs/` (input generators and
pluggable input sources), `fuzz` (the libFuzzer input source), `differential/` (the harness: each side's program,
the trusted driver that compares them), `sandbox/` (containment of code we did not write: bubblewrap, cgroups),
`program_level/` (the project's own test and bench hooks; the optimizer's program-level A/B judge), `diagnostics`
(new compiler warnings), `perfstats` (A/B timing statistics and instruction counts), `evidence` and `verdict`
(what is recorded), `acceptance` (the one rule: a speed-up interval against min_gain), `behaviour` (the check the
optimizer hands its agents), `options` (the knobs of one verification), `pipeline` (the one entry point:
`verify`).
Importing this package does no work.
"""

# libFuzzer's time box per driven function where a caller does not choose (the CLI, the optimizer's config): a
# few seconds find the comparisons of a few bytes the fixed inputs miss; the cost is in docs/verify.md.
DEFAULT_FUZZ_SECONDS = 3.0
