"""Judging at the level of the whole program rather than one function: `hooks` (the project's own build, test and
bench commands run once per side, outputs compared), `bench` (the optimizer's program-level judge: relinked sides,
test outputs, interleaved A/B timing), `differential` with `inputs` (a rewrite of `main` judged by running both
programs on the tests, generated arguments/stdin/files and stdin mutations).
"""
