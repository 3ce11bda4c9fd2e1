"""The hot path: argv classification, key, cache lookup, exec of the real compiler.

Runs once per compile. Keep imports light: no json, subprocess, dataclasses, typing or enum on the miss path.
"""
