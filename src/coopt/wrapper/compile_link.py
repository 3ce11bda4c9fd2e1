"""Compile and link in one call (`cc -O2 -o prog main.c util.c -lm`), split as the driver splits it.

The driver compiles each source to a temporary object, then links those objects in the sources' places. coopt-cc
does the same, except that each object is one coopt keeps (`<cache>/linked-objects/`, one stable path per program
and source), so the optimizer can relink the program with one of them replaced. Each source is a call of its own
(the call's compile options, `-c SOURCE -o KEPT`), journaled, keyed and served like any single-source compile; the
link (the original arguments with each source replaced by its object) is journaled as a link and run.

As the driver does, every source is compiled even after one fails, and then nothing is linked. The compile calls
leave out the options only the linker uses (LINK_ONLY), which would warn "argument unused during compilation", and
add `-Qunused-arguments` for the ones this table does not know: the link call keeps every argument, so an
argument neither step uses is still reported, once. The program is byte-identical to the driver's (neither the
objects nor the program record the objects' names; docs/several-sources.md).
"""

from __future__ import annotations

import os

from coopt.cache import stats
from coopt.cache.layout import LINKED_OBJECTS
from coopt.journal import log as journal
from coopt.journal.job import LinkJob
from coopt.wrapper import options as opt
from coopt.wrapper.call import Call
from coopt.wrapper.classify import classify
from coopt.wrapper.several import source_positions, spawn_wait

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    from collections.abc import Callable

    from coopt.wrapper.call import Looked

    Lookup = Callable[[Call], Looked | None]
    Serve = Callable[[Call, Looked], int | None]

# The kept objects go in the cache; on a cache with less room than this the call runs as written instead (an object
# that cannot be written would fail the build, and a compile error is not worth telling from a full disk).
MIN_FREE_BYTES = 64 << 20
# Options only the link step uses; each is left out of the compile calls (with its value when it takes one).
# Checked with `clang -###`: none of them changes the compiler's own (-cc1) command.
LINK_ONLY = frozenset({
    "-L", "-l", "-Xlinker", "-T", "-u", "-z", "-shared", "-rdynamic", "-pie", "-no-pie", "-s",
    "-static-libgcc", "-static-libstdc++", "-nodefaultlibs",
})
LINK_ONLY_PREFIXES = ("-Wl,", "-fuse-ld=", "--ld-path=", "-rtlib=", "--rtlib=", "-unwindlib=", "--unwindlib=")
# Also not for the compile calls: the program's name (each compile gets its own -o) and -c itself.
_OUTPUT = "-o"


def kept_object(root: str, cwd: str, output: str, source: str) -> str:
    """The object coopt keeps for `source` of the program `output`: a stable path, so a rebuild replaces it."""
    from coopt.cache.hashing import short_hash

    program = os.path.normpath(os.path.join(cwd, output))
    src = os.path.normpath(os.path.join(cwd, source))
    h = short_hash("%s\0%s" % (program, src))
    stem = os.path.splitext(os.path.basename(source))[0]
    return os.path.join(root, LINKED_OBJECTS, h[:2], h, stem + ".o")


def compile_args(args: list[str], sources: set[int]) -> list[str]:
    """The call's arguments for compiling one of its sources: without the sources, the linker inputs, `-o` and
    the link-only options (LINK_ONLY); the caller adds `-c SOURCE -o OBJECT`."""
    inputs = set(source_positions(args))
    out: list[str] = []
    i = 0
    n = len(args)
    while i < n:
        arg = args[i]
        i += 1
        if i - 1 in inputs:
            continue  # a source (compiled on its own) or a linker input
        row, value = opt.lookup(arg)
        takes = row is not None and value is None and bool(row[1] & opt.TAKES_ARG)
        name = row[0] if row is not None else arg
        if name in LINK_ONLY or name == _OUTPUT or arg.startswith(LINK_ONLY_PREFIXES):
            i += 1 if takes else 0
            continue
        out.append(arg)
        if takes and i < n:
            out.append(args[i])
            i += 1
    return out


def compile_and_link(call: Call, lookup: Lookup, serve: Serve) -> int | None:
    """Compile each C source of a "compile_link" call to a kept object, then link; the exit code, or None to run
    the call as it is. `lookup` and `serve` are wrapper/main.py's (see multi.compile_several)."""

    args, c, layout, path = call.args, call.c, call.layout, call.resolved.path
    if not call.writable:
        return None  # a read-only cache (or a nested call) keeps no objects: the link runs as written
    at = [i for i in source_positions(args) if args[i] in c.sources]
    if [args[i] for i in at] != c.sources:
        return None  # the walk disagrees with classify: let the real compiler have the call
    common = compile_args(args, set(at))
    kept = {i: kept_object(layout.root, call.cwd, c.output, args[i]) for i in at}
    if not kept:
        return None
    subs: list[Call] = []
    for i in at:
        own = [*common, "-Qunused-arguments", "-c", args[i], "-o", kept[i]]
        cc = classify(own)
        if cc.kind != "compile":
            return None
        subs.append(Call(call.resolved, call.settings, layout, call.cwd, call.started, own, cc, call.debug_log,
                         call.writable, memo=False))
    try:
        for obj in kept.values():
            os.makedirs(os.path.dirname(obj), exist_ok=True)
        room = os.statvfs(os.path.dirname(obj))
    except OSError:
        return None
    if room.f_bavail * room.f_frsize < MIN_FREE_BYTES:
        return None  # a failing disk must not fail the build: the call runs as written, nothing kept
    rc = 0
    for sub in subs:
        looked = lookup(sub)
        got = None
        if looked is not None and looked.may_hit(sub):
            got = serve(sub, looked)
        elif looked is not None and call.writable:
            stats.bump(layout.stats_dir, "miss")
        if got is None:
            got = spawn_wait(call.resolved, sub.args)
        rc = rc or got
    if rc:
        return rc  # as the driver: every source compiled, nothing linked
    link_args = [kept.get(i, a) for i, a in enumerate(args)]
    inputs = [kept.get(i, args[i]) for i in source_positions(args)] + [a for a in c.inputs if a.startswith("-l")]
    if call.writable:
        journal.append(layout.journal_path, LinkJob(call.cwd, path, link_args, c.output, inputs).to_record())
        stats.bump(layout.stats_dir, c.reason)
    call.debug_log.append("compile and link: %s from %d sources" % (c.output, len(at)))
    return spawn_wait(call.resolved, link_args)
