"""Running the nightly steps in order, recording each, resuming an unfinished run.

Before any step runs the configuration is checked (a build hook, a profile workload, a writable cache, the real
compiler, coopt-cc): a problem there is EXIT_CONFIG with nothing run. Two `coopt nightly` in one nightly directory
at once would overwrite each other's state, so the directory is locked for the run.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

from filelock import FileLock, Timeout

from coopt.config import Config, environment
from coopt.hooks import tail
from coopt.nightly import state as st
from coopt.nightly.console import Console
from coopt.nightly.steps import (
    EXIT_DONE,
    EXIT_INTERRUPTED,
    EXIT_NOTHING_IMPROVED,
    STEP_FUNCTIONS,
    Context,
    Outcome,
)

LOCK_NAME = "nightly.lock"
# What a new run clears from the nightly directory (and nothing else: the directory may be shared).
OWN_FILES = ("state.json", "profile.json", "report.md", "report.html", "report.json")
OWN_DIRS = ("logs", "run")
TAIL_LINES = 12


class NightlyConfigError(Exception):
    """The configuration cannot drive a nightly run; one line saying what to set."""


def find_coopt_cc() -> str:
    """The coopt-cc of this installation: next to the running `coopt`, next to the interpreter, else on PATH."""
    for d in (os.path.dirname(os.path.abspath(sys.argv[0] or ".")), os.path.dirname(sys.executable)):
        cand = os.path.join(d, "coopt-cc")
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    found = shutil.which("coopt-cc")
    if not found:
        raise NightlyConfigError("coopt-cc is not on PATH: install coopt (pip install coopt-cc) or put its bin "
                                 "directory on PATH")
    return found


def _origin(config: Config, dotted: str) -> str:
    return str(config.setting(dotted).origin)


def preflight(config: Config) -> str:
    """Check the configuration can drive a run; returns coopt-cc's path. NightlyConfigError otherwise."""
    where = config.file or "coopt.toml"
    if config.hooks.build is None:
        raise NightlyConfigError("no build hook: set [hooks] build in %s (e.g. build = \"make -j2 CC=coopt-cc\") or "
                                 "COOPT_HOOK_BUILD" % where)
    if config.hooks.profile is None:
        raise NightlyConfigError("no profile workload: set [hooks] profile in %s to a command that runs the program "
                                 "by its path (e.g. profile = \"./app input.dat\") or COOPT_HOOK_PROFILE" % where)
    if config.cache.read_only:
        raise NightlyConfigError("the cache is read-only (read_only from %s): the nightly run stores variants; "
                                 "keep COOPT_READONLY for the day's builds only" % _origin(config, "cache.read_only"))
    compiler = config.compiler.path
    if not shutil.which(compiler):
        raise NightlyConfigError("the real compiler %r (from %s) is not found: install clang or set [compiler] path"
                                 % (compiler, _origin(config, "compiler.path")))
    return find_coopt_cc()


def hooks_env(config: Config, coopt_cc: str) -> dict[str, str]:
    """The hooks' environment: ours, the configuration as COOPT_* variables, coopt-cc's directory first on PATH."""
    env = dict(os.environ)
    env.update(environment(config))
    env["PATH"] = os.pathsep.join([os.path.dirname(coopt_cc), env.get("PATH", "")])
    return env


def _clear(directory: str) -> None:
    for name in OWN_FILES:
        try:
            os.unlink(os.path.join(directory, name))
        except FileNotFoundError:
            pass
    for name in OWN_DIRS:
        shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


def _start(config: Config, directory: str, console: Console, fresh: bool) -> tuple[st.NightlyState, int]:
    """The state to work on and the index of the first step to run."""
    prev = st.load(directory)
    fp = st.fingerprint(config)
    if prev is not None and not fresh and prev.status != "finished":
        point = st.resume_point(prev)
        if prev.fingerprint != fp:
            console.line("the configuration changed since the unfinished run of %s: starting a new run" % prev.started)
        elif point is not None:
            index = st.STEPS.index(point)
            console.line("resuming the run started %s (%s finished earlier); starting at %s" % (
                prev.started, ", ".join(st.STEPS[:index]) or "no step", point))
            prev.resumed += 1
            prev.status, prev.exit_code = "running", None
            for name in st.STEPS[index:]:
                prev.steps[name] = st.StepRecord(name)
            return prev, index
    _clear(directory)
    return st.new_state(config), 0


def _record(rec: st.StepRecord, out: Outcome, seconds: float) -> None:
    rec.status, rec.detail, rec.log = out.status, out.detail, out.log
    rec.files, rec.data = list(out.files), dict(out.data)
    rec.finished, rec.seconds = st.now_utc(), round(seconds, 2)


def _show_tail(console: Console, log: str, project: str) -> None:
    if not log:
        return
    lines = tail(log, TAIL_LINES)
    console.line("  log %s%s" % (os.path.relpath(log, project), ", last lines:" if lines else " (no output)"))
    for ln in lines:
        console.line("  | " + ln)


def run_nightly(config: Config, console: Console, fresh: bool = False) -> int:
    """Run (or resume) the nightly steps; returns the exit code. NightlyConfigError before any step runs."""
    coopt_cc = preflight(config)
    directory = config.nightly.dir
    os.makedirs(directory, exist_ok=True)
    lock = FileLock(os.path.join(directory, LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise NightlyConfigError("another coopt nightly is running with %s (lock %s)" % (
            directory, os.path.join(directory, LOCK_NAME))) from None
    try:
        try:
            state, first = _start(config, directory, console, fresh)
        except st.StateError as exc:
            raise NightlyConfigError(str(exc)) from exc
        ctx = Context(config, directory, state, console, hooks_env(config, coopt_cc), coopt_cc)
        return _run_steps(ctx, first)
    finally:
        lock.release()


def _run_steps(ctx: Context, first: int) -> int:
    state, console, n = ctx.state, ctx.console, len(st.STEPS)
    st.save(state, ctx.directory)
    final: Outcome | None = None
    for i, name in enumerate(st.STEPS):
        rec = state.step(name)
        head = "[%d/%d] %s" % (i + 1, n, name)
        if i < first:
            console.line("%s: %s earlier" % (head, rec.status))
            continue
        rec.status, rec.started = "running", st.now_utc()
        st.save(state, ctx.directory)
        console.status("%s ..." % head)
        t0 = time.monotonic()
        try:
            out = STEP_FUNCTIONS[name](ctx)
        except KeyboardInterrupt:
            rec.status, rec.seconds, rec.detail = "interrupted", round(time.monotonic() - t0, 2), "stopped by Ctrl-C"
            state.status, state.exit_code, state.outcome = "interrupted", EXIT_INTERRUPTED, "interrupted at " + name
            st.save(state, ctx.directory)
            console.line("%s: interrupted; run `coopt nightly` again to resume here" % head)
            return EXIT_INTERRUPTED
        _record(rec, out, time.monotonic() - t0)
        st.save(state, ctx.directory)
        console.line("%s: %s (%.1f s) %s" % (head, out.status, rec.seconds, out.detail))
        if out.status != "failed":
            continue
        _show_tail(console, out.log, ctx.config.project_dir)
        if out.final:
            final = out  # the run ends here for good, with its report
            continue
        state.status, state.exit_code, state.outcome = "failed", out.exit_code, out.detail
        st.save(state, ctx.directory)
        console.line("nightly: stopped at %s (exit %d); fix it and run `coopt nightly` again to resume there, or "
                     "`coopt nightly --fresh` to start over" % (name, out.exit_code))
        return out.exit_code
    return _finish(ctx, final)


def _finish(ctx: Context, final: Outcome | None) -> int:
    state = ctx.state
    opt = state.step("optimize").data
    kept = opt.get("kept") or []
    report = os.path.join(ctx.directory, "report.md")
    if final is not None:
        code, outcome = final.exit_code, final.detail
    elif not kept and opt.get("withdrawn"):
        code = EXIT_NOTHING_IMPROVED
        fin = opt.get("final") or {}
        outcome = ("nothing improved: %d variant(s) cleared min_gain alone but were withdrawn: together the program "
                   "measured slower than plain clang (%.3f [%.3f, %.3f])" % (
                       opt["withdrawn"], fin.get("ratio", 0), fin.get("low", 0), fin.get("high", 0)))
    elif not kept:
        code = EXIT_NOTHING_IMPROVED
        why = opt.get("why_nothing") or "no candidate's speed-up cleared min_gain %.2f" % ctx.config.optimize.min_gain
        outcome = "nothing improved: %s (%d evaluation(s))" % (why, opt.get("spent", {}).get("evaluations", 0))
    else:
        code = EXIT_DONE
        fin = opt.get("final")
        outcome = "done: %d variant(s) stored; %s" % (len(kept), state.step("rebuild").detail)
        if fin:
            outcome += "; whole program %.3f [%.3f, %.3f] against plain clang" % (fin["ratio"], fin["low"],
                                                                                  fin["high"])
    state.status, state.exit_code, state.outcome = "finished", code, outcome
    st.save(state, ctx.directory)
    ctx.console.line("nightly: %s" % outcome)
    if os.path.exists(report):
        ctx.console.line("nightly: report %s; exit %d" % (os.path.relpath(report, ctx.config.project_dir), code))
    else:
        ctx.console.line("nightly: exit %d" % code)
    return code
