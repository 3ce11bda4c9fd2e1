"""The project's own commands (build, clean, test, bench, profile workload) from the configuration.

`run_hook` (runner.py) runs one in the project directory, in its own process group, with a timeout, its output
captured to a log file, and returns a `HookResult` whose exit status the caller checks. `workload.py` describes the
commands that run the program itself (bench, PGO training, tests: a shell line with `{program}`), which the
optimizer and the verifier run, contained, on each relinked side of the program.
"""

from __future__ import annotations

from coopt.hooks.runner import Hook, HookResult, run_hook, tail

__all__ = ["Hook", "HookResult", "run_hook", "tail"]
