"""The project's own commands (build, clean, test, bench, profile workload) from the configuration.

`run_hook` runs one in the project directory, in its own process group, with a timeout, its output captured to a
log file, and returns a `HookResult` whose exit status the caller checks.
"""

from __future__ import annotations

from coopt.hooks.runner import Hook, HookResult, run_hook, tail

__all__ = ["Hook", "HookResult", "run_hook", "tail"]
