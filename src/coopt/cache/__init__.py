"""The content-addressed store of verified variants, the key, the journal of compiles, and statistics.

Modules are imported by the wrapper on every compile, so nothing here may do work at import time or import
heavy modules (json, subprocess, dataclasses, typing) at module level on the miss path.
"""
