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

Where that cannot be guaranteed, classification already made the call a pass-through with a named reason
(wrapper/several.py).
"""

from __future__ import annotations

from coopt.cache import stats
from coopt.wrapper.call import Call
from coopt.wrapper.classify import classify
from coopt.wrapper.several import source_positions, spawn_wait, without

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    from collections.abc import Callable

    from coopt.wrapper.call import Looked

    Lookup = Callable[[Call], Looked | None]
    Serve = Callable[[Call, Looked], int | None]


def _first_failure(rc: int, more: int) -> int:
    return rc if rc else more


def compile_several(call: Call, lookup: Lookup, serve: Serve) -> int | None:
    """Compile each source of a "multi" call as its own TU; the exit code, or None to run the call as it is.

    `lookup` and `serve` are wrapper/main.py's: key and journal one source's compile, then serve its variant.
    """

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
    looked = [lookup(sub) for sub, _ in subs]
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
        return spawn_wait(call.resolved, without(args, set(at) - set(group)))

    rc = 0
    pending: list[int] = []
    for (sub, i), lk, maybe in zip(subs, looked, may_hit, strict=True):
        if lk is None or not maybe:
            pending.append(i)
            continue
        rc = _first_failure(rc, run(pending))
        pending = []
        got = serve(sub, lk)
        if got is None:
            pending.append(i)
        else:
            rc = _first_failure(rc, got)
    return _first_failure(rc, run(pending))
