"""The differential harness: the original and the candidate each in a program of its own, a trusted driver
comparing what they left behind.

`harness` (the generated per-function C; the shared runtime is in `c/`), `build` (compiling both sides and renaming
their symbols apart, linking each side's program), `sides` (building the side programs, the run's state, the
micro-benchmark), `diffrun` (the trusted driver: runs each side's program and judges each input), `results`
(reading the side programs' frames and comparing their results).
"""
