"""Serving a hit: only reached for a TU that has a manifest, i.e. a verified variant was stored for it.

Order of checks, each falling back to the real compiler when it fails:
1. the manifest names a result whose headers all still have their recorded content (and are not newer than
   the compile's start);
2. the entry exists, its key material equals ours, its checksums hold, and its evidence is an accepted verdict
   that covers it (cache/accept.py; `--unverified` entries only with the user's opt-in);
3. the real compiler, run with `-fsyntax-only` and the original arguments, succeeds: that prints the same
   diagnostics a real compile would (a TU gets a variant only if its code generation prints nothing) and writes
   the same dependency file;
4. that same run, through clang's CC_PRINT_HEADERS_FILE, lists exactly the headers the manifest names (no new
   header shadows an old one);
then the variant's object is copied into place atomically (or, for an entry stored by a checkout at another path
under base_dir, rebuilt here with this checkout's paths and served only when its code is the stored object's:
cache/rebase.py). One compiler run per hit, with no `subprocess` import.
If step 4 fails (a new header appeared on the include path since the variant was stored: rare), the real compiler
runs after all, so the build is right but that TU's diagnostics print twice.

A *direct* hit (counted as `hit` and `hit_direct`) skips steps 3-4, so it costs a few stats instead of a compiler
run. It is taken only when all of these hold: the manifest result says `direct clean` (the original compile
printed nothing for these key arguments, and put time recorded its header search: cache/header_search.py); no
dependency file is asked for (-MD/-MMD/-Wp,-MD... keep the compiler run, which writes it); and every recorded
fact about the search still holds (each path tried before a found header is still absent, each search directory
still there: manifest.lookups_hold). Then there is nothing to print, nothing that could fail and no header
that could shadow another, so the object alone is what the real compile would produce. A direct hit served from
the local cache is left in the call's replay memo (`Call.served`, wrapper/fastpath.hit_replay), so that
coopt-cc-fast serves it next time while every fact above still holds.
"""

from __future__ import annotations

import os
from stat import S_ISREG

from coopt.cache import key as keymod
from coopt.cache import manifest, stats
from coopt.cache.layout import CacheLayout
from coopt.cache.store import Entry, Store
from coopt.journal.job import CompileJob

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from coopt.wrapper.call import Call


def _count(layout: CacheLayout, read_only: bool, counter: str, *more: str) -> None:
    if not read_only:  # a read-only cache is never written, not even its counters
        stats.bump(layout.stats_dir, counter, *more)


def _spawn_wait(argv: list[str], env: dict[str, str]) -> int:
    """Run argv with inherited stdio and return its exit code (128+N for a signal, as a shell reports it)."""
    pid = os.posix_spawn(argv[0], argv, env)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _header_path(line: str) -> str:
    """The path in one CC_PRINT_HEADERS line: either the bare path or nesting dots, a space, the path (-H style)."""
    dots = len(line) - len(line.lstrip("."))
    if dots and line[dots : dots + 1] == " ":
        return line[dots + 1 :]
    return line


def _headers_read(path: str, cwd: str) -> set[str] | None:
    """The headers clang listed in CC_PRINT_HEADERS_FILE, normalized against the compile's directory."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    return {os.path.normpath(os.path.join(cwd, _header_path(line))) for line in lines if line.strip()}


def try_hit(
    call: Call,
    job: CompileJob,
    direct: str,
    direct_key: str,
    layout: CacheLayout,
    read_only: bool,
    refetch: Callable[[], bool] | None = None,
) -> int | None:
    """Serve the variant for `call`'s compile `job` from `layout` (the cache, or a private temporary one holding a
    remote hit); returns the exit code, or None to fall back to a real compile.

    `refetch` (remote stores configured, writable cache): called when no result of the local manifest matches the
    headers on disk; True when it brought a newer variant into the local manifest, which is then matched again.
    Entries stored with `coopt cache put --unverified` are served only with the user's opt-in (serve_unverified).
    """
    args, started, debug_log = call.args, call.started, call.debug_log
    debug, serve_unverified = call.settings.debug, call.settings.serve_unverified
    try:
        special = not S_ISREG(os.stat(job.output_path).st_mode)
    except OSError:
        special = False  # not there yet: the usual case
    if special:
        # `-o /dev/null`: the compiler writes through a device; os.replace would put a file in its place.
        debug_log.append("miss: %s is not a regular file" % job.output_path)
        _count(layout, read_only, "miss_special_output")
        return None
    results = manifest.load(layout.manifest_path(direct_key))
    found, why = manifest.match(results, job.cwd, started)
    if found is None and why == "manifest_mismatch" and refetch is not None and refetch():
        found, why = manifest.match(manifest.load(layout.manifest_path(direct_key)), job.cwd, started)
    if found is None:
        debug_log.append("miss: " + why)
        _count(layout, read_only, "miss_" + why)
        return None
    material = keymod.result_material(direct, found.deps)
    if debug:
        try:
            with open(job.output_path + ".coopt-key", "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write(material)  # the full material: direct part plus every header and its hash
        except OSError:
            pass
    store = Store(layout.root, read_only=read_only)
    entry = store.lookup(found.key, material, serve_unverified)
    if entry is None and store.refused:
        # Never served, whoever wrote it (a hand-written entry, a remote's): only accepted evidence is.
        debug_log.append("miss: entry %s not served: %s" % (found.key, store.refused))
        _count(layout, read_only, "miss_unverified" if store.refused == "unverified" else "miss_not_accepted")
        return None
    if entry is None:
        debug_log.append("miss: entry %s missing, corrupt or for other inputs" % found.key)
        _count(layout, read_only, "miss_entry")
        return None
    if found.direct == "clean" and not job.dep_args and manifest.lookups_hold(found.checks, job.cwd):
        placed = _serve_object(entry, material, job, debug_log, layout, read_only)
        if placed is None:
            return None
        if not placed and not read_only and layout is call.layout:
            from coopt.wrapper.call import Served

            call.served = Served(found, entry, layout.manifest_path(direct_key))
        debug_log.append("hit (direct%s): %s" % (placed and ", rebuilt here", found.key))
        _count(layout, read_only, "hit", "hit_direct", *(["hit_rebuilt"] if placed else []))
        return 0
    if found.direct != "clean":
        debug_log.append("checking with the compiler: %s" % (found.direct or "no direct record"))
    else:
        debug_log.append("checking with the compiler: %s" % (
            "a dependency file is asked for" if job.dep_args else "the header search changed"))
    check = [job.compiler] + [a for a in args if a != "-c"] + ["-fsyntax-only"]
    expected = {os.path.normpath(keymod.local_path(p, job.cwd)) for p, _ in found.deps[1:]}
    if any(a == "-MMD" or a.startswith("-Wp,-MMD") for a in job.dep_args):
        # CC_PRINT_HEADERS makes clang list system headers in an -MMD file too, so list them in a run of their own.
        from coopt.cache.deps import list_deps

        try:
            read: set[str] | None = {os.path.normpath(os.path.join(job.cwd, p)) for p in list_deps(job)[1:]}
        except Exception as exc:
            debug_log.append("miss: dependency listing failed: %s" % exc)
            _count(layout, read_only, "miss_deps_failed")
            return None
        if read == expected:
            rc = _spawn_wait(check, dict(os.environ))
    else:
        headers_file = os.path.join(os.environ.get("TMPDIR") or "/tmp", "coopt-headers-%d" % os.getpid())
        try:
            rc = _spawn_wait(check, dict(os.environ, CC_PRINT_HEADERS="1", CC_PRINT_HEADERS_FILE=headers_file))
            read = _headers_read(headers_file, job.cwd)
        finally:
            try:
                os.unlink(headers_file)
            except OSError:
                pass
    if read == expected and rc != 0:
        # The real compile would have failed the same way (it printed its diagnostics); keep its exit code.
        _count(layout, read_only, "hit_check_failed")
        return rc
    if read != expected:
        debug_log.append("miss: the compiler now reads other headers than the manifest names")
        _count(layout, read_only, "miss_deps_changed")
        return None
    placed = _serve_object(entry, material, job, debug_log, layout, read_only)
    if placed is None:
        return None
    debug_log.append("hit%s: %s" % (placed and " (rebuilt here)", found.key))
    _count(layout, read_only, "hit", *(["hit_rebuilt"] if placed else []))
    return 0


def _serve_object(entry: Entry, material: str, job: CompileJob, debug_log: list[str], layout: CacheLayout,
                  read_only: bool) -> str | None:
    """Put the variant's object in place: "" when the stored object was copied, "rebuilt" when it was rebuilt with
    this checkout's paths (a hit stored from another directory: cache/rebase.py), None to compile for real."""
    if keymod.REL_MARK in material:  # base_dir rebased a path: the entry may come from another checkout
        from coopt.cache import rebase

        if rebase.needs_rebuild(material, entry, job.cwd):
            why = rebase.rebuild(entry, job, job.output_path)
            if why:
                debug_log.append("miss: stored from %s, not rebuilt here: %s" % (rebase.stored_cwd(entry), why))
                _count(layout, read_only, "miss_rebuild")
                return None
            return "rebuilt"
    return "" if _place(entry.object_path, job.output_path, debug_log) else None


def _place(obj: str, out: str, debug_log: list[str]) -> bool:
    """Copy the variant's object to `out` atomically; False (fall back to a real compile) when that fails."""
    tmp = "%s.coopt-%d.tmp" % (out, os.getpid())
    try:
        with open(obj, "rb") as src:
            data = src.read()
        with open(tmp, "wb") as dst:
            dst.write(data)
        os.replace(tmp, out)
    except OSError as exc:
        debug_log.append("miss: cannot write %s: %s" % (out, exc))
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False
    return True
