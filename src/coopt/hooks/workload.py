"""The project's commands that run the program: workloads (bench, PGO training, tests) as one record.

A workload is a shell line that names the program either as `{program}` or by its path as the user would type it
(`./lua bench.lua`, `src/lua x.lua`): each whitespace-separated word that resolves to the program is replaced by
`{program}`, so the same command can run any relinked copy of it (`render`). Where it comes from does not matter:
`--bench`/`--train`/`--test` lines, the `[hooks]` commands of coopt.toml (`coopt nightly` passes their shell lines),
or a profile's recorded argv (`from_argv`). The optimizer's three (`Workloads`) are resolved from these;
verify/program_level runs them, contained, on each side through one runner (`hooks.run_line`), and the pipeline's
own test and bench hooks go through the same runner.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections.abc import Sequence
from dataclasses import dataclass

PLACEHOLDER = "{program}"


class WorkloadError(Exception):
    """A workload command cannot be used (it does not run the program, or fails on the baseline)."""


@dataclass(frozen=True)
class Workload:
    """A shell line with `{program}` for the program, run in `cwd`; `origin` says where it came from."""

    line: str
    cwd: str
    origin: str

    def render(self, program_path: str) -> str:
        """The line with `program_path` (shell-quoted) in place of `{program}`."""
        return self.line.replace(PLACEHOLDER, shlex.quote(program_path))


@dataclass(frozen=True)
class Workloads:
    """The optimizer's workloads: what is timed, what PGO trains on, what the candidates must reproduce."""

    bench: Workload
    train: Workload
    tests: list[Workload]

    @property
    def same(self) -> bool:
        """PGO trains on exactly the workload it is judged on."""
        return (self.train.line, self.train.cwd) == (self.bench.line, self.bench.cwd)


def _names_program(word: str, cwd: str, program: str) -> bool:
    try:
        text = shlex.split(word)
    except ValueError:
        return False
    if len(text) != 1 or not text[0]:
        return False
    name = text[0]
    path = os.path.join(cwd, name) if "/" in name else shutil.which(name) or ""
    return bool(path) and os.path.realpath(path) == os.path.realpath(program)


def from_line(line: str, cwd: str, program: str, origin: str) -> Workload:
    """A workload from a shell line; WorkloadError when it names the program neither by path nor as {program}."""
    parts = re.split(r"(\s+)", line)
    out = [PLACEHOLDER if p.strip() and _names_program(p, cwd, program) else p for p in parts]
    text = "".join(out)
    if PLACEHOLDER not in text:
        raise WorkloadError(
            "the %s command %r does not run %s: name the program by its path (e.g. ./%s) or as {program}"
            % (origin, line, program, os.path.basename(program))
        )
    return Workload(text, os.path.abspath(cwd), origin)


def from_argv(argv: Sequence[str], cwd: str, program: str, origin: str) -> Workload:
    """A workload from an argv list (a profile's recorded command)."""
    return from_line(" ".join(shlex.quote(a) for a in argv), cwd, program, origin)
