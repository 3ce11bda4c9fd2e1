"""Several C sources in one `-c` call (`cc -O2 -c a.c b.c c.c`), handled as the driver handles them.

The driver compiles each source on its own to `<basename>.o` in the working directory, in order, goes on after one
fails (clang 14 does: every source's diagnostics print and each good source's object is written), and exits with
the failure's status. coopt-cc does the same per source: each is a call of its own (the original arguments with
the other sources left out, which is what the driver hands each compile), journaled and keyed like a
single-source compile, and served when a variant is stored for it.

When no source may be served (the usual case: nothing stored yet), the original call runs as it is, once: the
objects and diagnostics are the real compiler's by construction and the cost is one decision. Otherwise the
sources run in order: each one with a variant is served (after the sources before it were compiled), consecutive
misses go to the real compiler together, in one call with the other sources left out.

Where that cannot be guaranteed, `several` makes the call a pass-through with a named reason (reasons.py).
"""

from __future__ import annotations

import os

from coopt.wrapper import options as opt
from coopt.wrapper.reasons import Reason

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    from coopt.wrapper.call import Call
    from coopt.wrapper.classify import Classified

# The source autoconf's configure checks compile and link (`cc -o conftest conftest.c`).
CONFIGURE_PROBE = "conftest.c"
# Dependency options that name one file for the whole call: with several compiles they would all write it.
_ONE_FILE_DEP = ("-MF", "-Wp,")


def several(c: Classified, sources: list[tuple[str, str]], forced: bool, dep_args: list[str],
            compile_link: bool) -> None:
    """Finish classifying a call with several sources (`c` is "multi") or a link with sources (`c` is "link").

    Fills `c.sources` and turns `c` into "compile_link" when each source can be a TU of its own; otherwise a
    "multi" becomes a pass-through and a link stays a plain link, both with a named reason.
    """
    if compile_link and all(os.path.basename(s) == CONFIGURE_PROBE for s, _ in sources):
        reason = Reason.CONFIGURE_PROBE  # autoconf's hundreds of checks: no TU worth keeping, and C replays them
    elif forced or any(lang != "c" for _, lang in sources):
        reason = Reason.LINK_SOURCES_NOT_C if compile_link else Reason.MULTIPLE_SOURCES_NOT_C
    elif compile_link and dep_args:
        reason = Reason.LINK_SOURCES_DEPFILE  # the driver names that file after the program: not a TU's
    elif not compile_link and any(a.startswith(_ONE_FILE_DEP) for a in dep_args):
        reason = Reason.MULTIPLE_SOURCES_DEPFILE
    elif not compile_link and len({_object_of(s) for s, _ in sources}) < len(sources):
        reason = Reason.MULTIPLE_SOURCES_SAME_OBJECT  # the last one wins; the journal could not say which
    else:
        reason = ""
    if reason:
        if compile_link:
            c.reason = reason
        else:
            c.kind, c.reason = "pass", reason
        return
    c.sources = [s for s, _ in sources]
    if compile_link:
        c.kind = "compile_link"


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


def spawn_wait(path: str, args: list[str]) -> int:
    """Run the real compiler with inherited stdio; its exit code (128+N for a signal, as a shell reports it).

    The depth variable is raised as for an exec, so a compiler that resolves back to coopt-cc journals nothing.
    """
    from coopt.wrapper.compiler import DEPTH_VAR

    env = dict(os.environ)
    env[DEPTH_VAR] = str(int(env.get(DEPTH_VAR, "0") or "0") + 1)
    pid = os.posix_spawn(path, [path, *args], env)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _first_failure(rc: int, more: int) -> int:
    return rc if rc else more


def compile_several(call: Call) -> int | None:
    """Compile each source of a "multi" call as its own TU; the exit code, or None to run the call as it is."""
    from coopt.cache import stats
    from coopt.wrapper import main as mainmod
    from coopt.wrapper.call import Call
    from coopt.wrapper.classify import classify

    args = call.args
    at = {i: args[i] for i in source_positions(args) if args[i] in call.c.sources}
    if sorted(at.values()) != sorted(call.c.sources):
        return None  # the walk disagrees with classify: let the real compiler have the call
    subs: list[tuple[Call, int]] = []
    for i in at:
        own = without(args, set(at) - {i})
        cc = classify(own)
        if cc.kind != "compile":
            return None
        subs.append((Call(call.resolved, call.settings, call.layout, call.cwd, call.started, own, cc,
                          call.debug_log, call.writable, memo=False), i))
    looked = [mainmod.lookup(sub) for sub, _ in subs]
    may_hit = [lk is not None and lk.may_hit(sub) for lk, (sub, _) in zip(looked, subs, strict=True)]
    misses = sum(1 for lk, m in zip(looked, may_hit, strict=True) if lk is not None and not m)
    if call.writable and misses:
        stats.bump(call.layout.stats_dir, *(["miss"] * misses))
    call.debug_log.append("several sources: %d, %d with a stored variant" % (len(subs), sum(may_hit)))
    if not any(may_hit):
        return None  # nothing to serve: the original call, once, is exactly what the build asked for

    def run(group: list[int]) -> int:
        """Compile the sources at positions `group` in one real compiler call."""
        if not group:
            return 0
        return spawn_wait(call.resolved.path, without(args, set(at) - set(group)))

    rc = 0
    pending: list[int] = []
    for (sub, i), lk, maybe in zip(subs, looked, may_hit, strict=True):
        if lk is None or not maybe:
            pending.append(i)
            continue
        rc = _first_failure(rc, run(pending))
        pending = []
        got = mainmod.serve(sub, lk)
        if got is None:
            pending.append(i)
        else:
            rc = _first_failure(rc, got)
    return _first_failure(rc, run(pending))
