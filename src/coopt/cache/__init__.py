"""The content-addressed store of verified variants: key, store, manifests, header search, publish, statistics,
remote/ (the second level). The journal of compiles is `coopt.journal`, below this package.

Modules are imported by the wrapper on every compile, so nothing here may do work at import time or import
heavy modules (json, subprocess, dataclasses, typing) at module level on the miss path.
"""
