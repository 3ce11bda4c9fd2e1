"""Calls with several sources, before they are split: which ones can be (`refusal`, asked by classify), where
their sources are among the arguments, and running the real compiler on a part of such a call.

wrapper/multi.py splits several sources in one `-c` call, wrapper/compile_link.py a compile-and-link call.
"""

from __future__ import annotations

import os

from coopt.wrapper import options as opt
from coopt.wrapper.reasons import Reason

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    from coopt.wrapper.compiler import Resolved

# The source autoconf's configure checks compile and link (`cc -o conftest conftest.c`).
CONFIGURE_PROBE = "conftest.c"
# Dependency options that name one file for the whole call: with several compiles they would all write it.
_ONE_FILE_DEP = ("-MF", "-Wp,")


def refusal(sources: list[tuple[str, str]], forced: bool, dep_args: list[str], compile_link: bool) -> str:
    """Why a call with several sources (`compile_link`: a link with sources) cannot be split into one TU per
    source, as a reason name (reasons.py); "" when it can. `sources` are (name, language) as classify found them,
    `forced` says a `-x` was given. A "multi" call refused becomes a pass-through, a link stays a plain link."""
    if compile_link and all(os.path.basename(s) == CONFIGURE_PROBE for s, _ in sources):
        return Reason.CONFIGURE_PROBE  # autoconf's hundreds of checks: no TU worth keeping, and C replays them
    if forced or any(lang != "c" for _, lang in sources):
        return Reason.LINK_SOURCES_NOT_C if compile_link else Reason.MULTIPLE_SOURCES_NOT_C
    if compile_link:
        return Reason.LINK_SOURCES_DEPFILE if dep_args else ""  # the driver names that file after the program
    if any(a.startswith(_ONE_FILE_DEP) for a in dep_args):
        return Reason.MULTIPLE_SOURCES_DEPFILE
    if len({_object_of(s) for s, _ in sources}) < len(sources):
        return Reason.MULTIPLE_SOURCES_SAME_OBJECT  # the last one wins; the journal could not say which
    return ""


def _object_of(source: str) -> str:
    """The object the driver writes for `source` in a `-c` call without `-o`."""
    return os.path.splitext(os.path.basename(source))[0] + ".o"


def source_positions(args: list[str]) -> list[int]:
    """Where the source and linker-input words of `args` are (words that are neither options nor option values),
    walked with the option table as classify walks it."""
    found: list[int] = []
    i = 0
    n = len(args)
    while i < n:
        arg = args[i]
        i += 1
        if not arg.startswith("-"):
            found.append(i - 1)
            continue
        row, value = opt.lookup(arg)
        if row is not None and value is None and row[1] & opt.TAKES_ARG:
            i += 1
    return found


def without(args: list[str], drop: set[int]) -> list[str]:
    """`args` with the words at positions `drop` left out."""
    return [a for i, a in enumerate(args) if i not in drop]


def spawn_wait(resolved: Resolved, args: list[str]) -> int:
    """Run the real compiler with `args` (through the launcher when there is one, as an exec would) with inherited
    stdio; its exit code (128+N for a signal, as a shell reports it).

    The depth variable is raised as for an exec, so a compiler that resolves back to coopt-cc journals nothing.
    """
    from coopt.wrapper.compiler import DEPTH_VAR

    env = dict(os.environ)
    env[DEPTH_VAR] = str(int(env.get(DEPTH_VAR, "0") or "0") + 1)
    path, argv = resolved.command(args)
    pid = os.posix_spawn(path, argv, env)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
