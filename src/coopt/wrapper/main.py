"""coopt-cc's entry point: decide, journal, then either serve a verified variant or exec the real compiler.

Promise: whatever goes wrong inside coopt-cc, the real compiler runs with the original arguments, so a build with
coopt-cc succeeds exactly when it succeeds with the real compiler.
"""

from __future__ import annotations

import os
import sys
import time

from coopt.cache import stats
from coopt.cache.layout import CacheLayout
from coopt.journal import log as journal
from coopt.wrapper import compiler as compmod
from coopt.wrapper import settings as settingsmod
from coopt.wrapper.call import Call, Describer, Looked
from coopt.wrapper.reasons import Reason

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing these modules is deferred to where they are needed
    from coopt.journal.job import CompileJob


def _exec(resolved: compmod.Resolved, args: list[str]) -> int:
    """Run the real compiler with `args` in place of this process, through the launcher when there is one."""
    path, argv = resolved.command(args)
    depth = int(os.environ.get(compmod.DEPTH_VAR, "0") or "0")
    os.environ[compmod.DEPTH_VAR] = str(depth + 1)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    try:
        os.execv(path, argv)
    except OSError as exc:
        sys.stderr.write("coopt-cc: error: cannot run %s: %s\n" % (path, exc.strerror))
        return 127
    return 127  # not reached


def _log(layout: CacheLayout | None, lines: list[str]) -> None:
    if layout is not None:
        layout.append_log(lines)


def _record_internal_error(
    layout: CacheLayout | None, settings: settingsmod.Settings, debug_log: list[str], exc: Exception
) -> None:
    """Count and log an internal error. The fallback to the real compiler comes next, so nothing here may raise:
    the cache that made the call fail (full, read-only, gone) is the cache this writes to."""
    try:
        import traceback

        debug_log.append("internal error, running the real compiler: %r" % exc)
        debug_log.extend(traceback.format_exc().rstrip().splitlines())
        if layout is not None and not settings.read_only:
            stats.bump(layout.stats_dir, Reason.INTERNAL_ERROR)
        _log(layout, debug_log)
    except Exception:  # noqa: S110 (the one place an error must be dropped: the build comes first)
        pass


def main(argv: list[str]) -> int:
    """Run one compiler call. Returns an exit code, or never returns (exec of the real compiler)."""
    started = time.time()
    if len(argv) < 1:
        argv = ["coopt-cc"]
    if len(argv) == 2 and argv[1] in ("--coopt-help", "--coopt-version"):
        from coopt import __version__

        print("coopt-cc %s: use it as CC (CC=coopt-cc), as a prefix (coopt-cc clang ...) or through shims "
              "(coopt shims DIR). See `coopt --help`." % __version__)
        return 0
    try:
        cwd = os.getcwd()
        settings = settingsmod.load(cwd)
    except settingsmod.ConfigError as exc:
        sys.stderr.write("coopt-cc: error: bad config %s\n" % exc)
        return 2
    except OSError as exc:
        sys.stderr.write("coopt-cc: error: %s\n" % exc)
        return 2
    try:
        resolved = compmod.resolve(argv, settings.compiler, settings.launcher)
    except compmod.Recursion as exc:
        sys.stderr.write(str(exc) + "\n")
        return 2
    except compmod.CompilerNotFound as exc:
        sys.stderr.write(str(exc) + "\n")
        return 127

    layout: CacheLayout | None = None
    debug_log: list[str] = []
    try:
        layout = CacheLayout(settings.cache_dir)
        rc = _decide(resolved, settings, layout, cwd, started, debug_log)
        if rc is not None:
            if settings.debug:
                _log(layout, debug_log)
            return rc
    except Exception as exc:  # never break a build: log and run the real compiler
        _record_internal_error(layout, settings, debug_log, exc)
        return _exec(resolved, resolved.args)
    if settings.debug:
        _log(layout, debug_log)
    return _exec(resolved, resolved.args)


def _decide(
    resolved: compmod.Resolved,
    settings: settingsmod.Settings,
    layout: CacheLayout,
    cwd: str,
    started: float,
    debug_log: list[str],
) -> int | None:
    """Return an exit code when a hit was served, None to exec the real compiler."""
    from coopt.wrapper.classify import ResponseFileError, classify, expand_response_files

    # A nested coopt-cc (the real compiler resolved back to a wrapper) must not journal the same compile twice.
    writable = not settings.read_only and os.environ.get(compmod.DEPTH_VAR, "0") in ("", "0")
    if settings.disabled:
        if writable:
            stats.bump(layout.stats_dir, Reason.DISABLED)
        return None
    try:
        args = expand_response_files(resolved.args, cwd)
    except ResponseFileError as exc:
        debug_log.append("pass-through: %s (%s)" % (Reason.BAD_RESPONSE_FILE, exc))
        if writable:
            stats.bump(layout.stats_dir, Reason.BAD_RESPONSE_FILE)
        return None
    call = Call(resolved, settings, layout, cwd, started, args, classify(args), debug_log, writable)
    if resolved.launcher:
        debug_log.append("launcher: %s (compiler %s)" % (resolved.launcher, resolved.path))
    c = call.c
    if c.kind == "pass":
        debug_log.append("pass-through: %s: %s" % (c.reason, " ".join(args)))
        if writable:
            stats.bump(layout.stats_dir, c.reason)
            _leave_replay_memo(call)
        return None
    if c.kind == "link":
        from coopt.journal.job import LinkJob

        if writable:
            journal.append(layout.journal_path, LinkJob(cwd, resolved.path, args, c.output, c.inputs).to_record())
            stats.bump(layout.stats_dir, c.reason)
            _leave_replay_memo(call)
        debug_log.append("link: %s" % c.output)
        return None
    if c.kind == "multi":  # several sources in one -c call (wrapper/multi.py)
        from coopt.wrapper import multi

        return multi.compile_several(call, lookup, serve)
    if c.kind == "compile_link":  # sources compiled and linked in one call (wrapper/compile_link.py)
        from coopt.wrapper import compile_link

        return compile_link.compile_and_link(call, lookup, serve)
    return _compile(call)


def _compile(call: Call) -> int | None:
    looked = lookup(call)
    return None if looked is None else serve(call, looked)


def lookup(call: Call) -> Looked | None:
    """Key and journal the compile of `call` (a single-source compile); None when its source cannot be read."""
    from coopt.cache import key as keymod
    from coopt.cache.identity import compiler_identity

    c, layout, settings, resolved = call.c, call.layout, call.settings, call.resolved
    source_path = c.source if os.path.isabs(c.source) else os.path.join(call.cwd, c.source)
    try:
        with open(source_path, "rb") as f:
            data = f.read()
    except OSError:
        if call.writable:
            stats.bump(layout.stats_dir, Reason.SOURCE_UNREADABLE)
        return None
    real = os.path.realpath(resolved.path)
    compiler_id = compiler_identity(real, os.path.join(layout.root, "compilers"), write=call.writable)
    describer = Describer(call.cwd, resolved.path, resolved.name, compiler_id, keymod.source_digest(data),
                          keymod.env_subset(os.environ), settings.base_dir)
    job, direct = describer.describe(call.args, c)
    direct_key = keymod.key_of(direct)
    if call.writable:
        journal.append(layout.journal_path, job.to_record(direct_key))
    if settings.debug:
        _write_key_debug(job, direct)
    return Looked(describer, job, direct, direct_key)


def serve(call: Call, looked: Looked) -> int | None:
    """Serve the variant of a looked-up compile: its exit code, or None (a miss) to run the real compiler."""
    c, layout, settings = call.c, call.layout, call.settings
    describer, job, direct, direct_key = looked.describer, looked.job, looked.direct, looked.direct_key
    if not os.path.exists(layout.manifest_path(direct_key)):
        fetched = _from_remotes(call, direct_key) if settings.remote else None
        if fetched is None:
            call.debug_log.append("miss: no variant for %s (%s)" % (c.source, direct_key))
            if call.writable:
                stats.bump(layout.stats_dir, "miss")
                _leave_replay_memo(call, describer, direct_key)
            return None
        if fetched is not layout:  # a read-only cache: the remote hit sits in a private temporary cache
            return _serve_from(call, fetched, job, direct, direct_key)
        from coopt.wrapper.serve import try_hit

        return try_hit(call, job, direct, direct_key, layout, settings.read_only)
    from coopt.wrapper.serve import try_hit

    def refetch() -> bool:
        # The local variant is for other headers; the team's store may hold one for these (e.g. a header edit
        # the nightly run has seen). Only into a writable cache: it lands in the local manifest tried again.
        return _from_remotes(call, direct_key) is layout

    use_remote = bool(settings.remote) and not settings.read_only
    rc = try_hit(call, job, direct, direct_key, layout, settings.read_only, refetch if use_remote else None)
    if rc == 0 and call.served is not None and call.writable and not settings.remote:
        # A direct hit from the local cache: coopt-cc-fast may serve it next time (with remotes configured
        # Python decides every hit: a header change there is a remote lookup).
        _leave_replay_memo(call, describer, direct_key)
    return rc


def _from_remotes(call: Call, direct_key: str) -> CacheLayout | None:
    """A local miss: ask the remote stores (cache/remote/sync.py). The layout now holding the variant, or None.

    Whatever goes wrong here (a bad spec, a backend's bug) is a miss, never a failed compile.
    """
    settings, layout, debug_log = call.settings, call.layout, call.debug_log
    try:
        from coopt.cache.remote import sync as tiermod

        tier = tiermod.Tier(
            layout,
            settings.remote,
            remote_read_only=settings.remote_read_only,
            retry_after=settings.remote_retry_after,
            local_read_only=settings.read_only,
            sign_key=tiermod.team_key(),
        )
    except Exception as exc:
        debug_log.append("remote: not consulted: %s: %s" % (type(exc).__name__, exc))
        if not settings.read_only:
            stats.bump(layout.stats_dir, "remote_unusable")
        return None
    try:
        return tier.fetch(direct_key, call.cwd, call.started)
    except Exception as exc:
        debug_log.append("remote: lookup failed: %s: %s" % (type(exc).__name__, exc))
        tier.count(None, "remote_internal_error")
        return None
    finally:
        debug_log.extend(tier.log)
        tier.flush()


def _serve_from(call: Call, fetched: CacheLayout, job: CompileJob, direct: str, direct_key: str) -> int | None:
    import shutil

    from coopt.wrapper.serve import try_hit

    try:
        return try_hit(call, job, direct, direct_key, fetched, True)
    finally:
        shutil.rmtree(fetched.root, ignore_errors=True)


def _leave_replay_memo(call: Call, describer: Describer | None = None, key: str = "") -> None:
    """Let coopt-cc-fast (C) take this decision next time, and the same decision for the build's other calls of
    this shape: a build's second run, and most of its first, then cost ~1 ms per call.

    `describer` and `key` come with a compile (one that missed, or a direct hit: `call.served`); without them the
    call was a link or a pass-through.
    """
    from coopt.wrapper import fastpath

    resolved, settings = call.resolved, call.settings
    raw = resolved.raw_args
    if not call.memo:
        return  # one source of a call with several: a memo would stand for the whole call
    if settings.debug or not fastpath.eligible(resolved.self_path, raw, call.cwd, settings.cache_dir_from_config):
        return
    renderer = fastpath.Renderer(call.cwd, resolved.path, describer, key)
    own = renderer.render(call.args, call.c)
    if own is None:
        return
    target = fastpath.MemoTarget(
        call.layout,
        resolved.path,
        resolved.lookup_name,
        resolved.skip_dir,
        len(raw) - len(resolved.args),
        # With remotes, a local miss may become a remote hit: the C side replays it only for remote_recheck s.
        int(time.time() + settings.remote_recheck) if settings.remote and own.kind == "compile" else 0,
        resolved.launcher,
    )
    config = (settings.config_path, settings.config_digest)
    source_hash = describer.source_hash if describer is not None else ""
    hit = None
    if call.served is not None:
        hit = fastpath.hit_replay(call.served, key, os.path.join(call.cwd, call.c.output), call.cwd)
        if hit is None:
            return  # this hit cannot be replayed: a miss memo would defer anyway (the manifest exists)
    fastpath.write_memo(target, fastpath.fingerprint(resolved.self_path, raw, call.cwd, os.environ, "1", config),
                        own, source_hash, key, hit)
    fastpath.write_shape_memo(target, resolved.self_path, raw, call.cwd, os.environ, config, own, renderer,
                              source_hash, key)


def _write_key_debug(job: CompileJob, direct: str) -> None:
    """COOPT_DEBUG: the key material next to the object, so two compiles' keys can be diffed."""
    out = job.output_path
    if os.path.exists(out) and not os.path.isfile(out):
        return  # -o /dev/null and the like: there is no "next to"
    try:
        with open(job.output_path + ".coopt-key", "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(direct)
    except OSError:
        pass
