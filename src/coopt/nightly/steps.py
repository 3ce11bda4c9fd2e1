"""The steps of a nightly run, one function each: clean, build, baseline tests, profile, optimize, rebuild, tests,
report. Each returns an `Outcome`; `run.py` records it and decides what comes next.

Why each step is there:
- clean + build: a build with every TU compiled through coopt-cc, so the journal knows every compile.
- baseline-test: the project's tests before any new variant, so a later failure is known to come from the variants
  (and a project whose tests already fail stops here, resumable once they are fixed).
- profile: `coopt profile` on the profile workload, in a child process (perf relays the workload's output, which
  belongs in the log, not in ours).
- optimize: the optimizer's Python API with the configured budget, levels and workloads; a resumed nightly
  continues the interrupted optimize run instead of starting it over.
- rebuild: the kept TUs compiled again through coopt-cc, which must now serve them from the cache.
- test: the project's tests with the variants; on failure this run's variants are withdrawn from the cache.
- report: the optimize run's report in three formats plus the steps, and the cache kept under its size limit.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from coopt.cache import stats
from coopt.cache.layout import CacheLayout
from coopt.config import Command, Config
from coopt.hooks import Hook, HookResult, run_hook, tail
from coopt.journal import log as journal
from coopt.nightly.console import Console
from coopt.nightly.state import NightlyState

# Exit codes of `coopt nightly`, for CI jobs to act on (documented in its --help and docs/nightly.md).
EXIT_DONE = 0  # variants stored, served by the rebuild, tests pass
EXIT_STEP_FAILED = 1  # a step could not complete (build or profile failed, a hook timed out): resumable
EXIT_CONFIG = 2  # the configuration is wrong or incomplete; nothing was run
EXIT_TESTS_FAILED = 3  # the project's tests fail (before optimizing: resumable; after: variants withdrawn)
EXIT_NOTHING_IMPROVED = 4  # the run finished but no variant cleared min_gain
EXIT_INTERRUPTED = 130  # Ctrl-C: resumable


@dataclass
class Outcome:
    """What a step came to."""

    status: str  # done, skipped, failed
    detail: str
    exit_code: int = EXIT_DONE  # for a failure: the code the run exits with
    final: bool = False  # a failure that ends the run for good (not resumable); the report is still written
    log: str = ""
    files: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """What every step needs."""

    config: Config
    directory: str  # the nightly dir: state, logs, profile, run, reports
    state: NightlyState
    console: Console
    env: dict[str, str]  # hooks' environment: the config as COOPT_* variables, coopt-cc first on PATH
    coopt_cc: str

    @property
    def layout(self) -> CacheLayout:
        return CacheLayout(self.config.cache.dir)

    @property
    def profile_path(self) -> str:
        return os.path.join(self.directory, "profile.json")

    @property
    def run_dir(self) -> str:
        return os.path.join(self.directory, "run")

    def log_path(self, step: str) -> str:
        return os.path.join(self.directory, "logs", "%s.log" % step)

    def build_env(self) -> dict[str, str]:
        """The build hook's environment: also CC=coopt-cc, for Makefiles that take CC from the environment."""
        return dict(self.env, CC=os.path.basename(self.coopt_cc))

    def hook(self, name: str, command: Command | None = None) -> Hook:
        cmd = command or getattr(self.config.hooks, name)
        return Hook(name, cmd, self.config.project_dir, self.config.hooks.timeout)

    def run(self, hook: Hook, step: str, env: dict[str, str] | None = None, append: bool = False) -> HookResult:
        """Run a hook, its output into the step's log, a status line on a terminal."""
        def tick(elapsed: float) -> None:
            self.console.status("%s: %s running, %.0f s" % (step, hook.name, elapsed))

        return run_hook(hook, self.log_path(step), env or self.env, tick, append=append)


def _failed(res: HookResult, what: str, code: int = EXIT_STEP_FAILED, final: bool = False) -> Outcome:
    return Outcome("failed", "%s (%s: %s)" % (what, res.command, res.describe()), code, final, res.log)


def _coopt_argv(*args: str) -> list[str]:
    """`coopt ARGS` run by this very interpreter and this very coopt (not whatever `coopt` is first on PATH)."""
    import coopt

    top = os.path.dirname(os.path.dirname(os.path.abspath(coopt.__file__)))
    boot = "import sys; sys.path.insert(0, %r); from coopt.cli import main; sys.exit(main(sys.argv[1:]))" % top
    return [sys.executable, "-c", boot, *args]


def _count_records(path: str) -> tuple[int, int]:
    recs = journal.read(path)
    return sum(r.get("type") == "compile" for r in recs), sum(r.get("type") == "link" for r in recs)


def step_clean(ctx: Context) -> Outcome:
    if ctx.config.hooks.clean is None:
        return Outcome("skipped", "no clean hook: the build starts from whatever the tree holds")
    res = ctx.run(ctx.hook("clean"), "clean")
    return Outcome("done", "clean hook: %s" % res.describe(), log=res.log) if res.ok else _failed(res, "clean failed")


def step_build(ctx: Context) -> Outcome:
    jpath = ctx.layout.journal_path
    compiles0, links0 = _count_records(jpath)
    res = ctx.run(ctx.hook("build"), "build", env=ctx.build_env())
    if not res.ok:
        return _failed(res, "the build failed")
    compiles1, links1 = _count_records(jpath)
    compiles, links = compiles1 - compiles0, links1 - links0
    if compiles == 0:
        why = ("the build hook compiled nothing through coopt-cc: make it use CC=coopt-cc (a Makefile that sets CC "
               "needs CC=coopt-cc on the make command line)")
        if ctx.config.hooks.clean is None:
            why += ", and set a clean hook so the nightly build starts clean"
        return Outcome("failed", why, EXIT_CONFIG, log=res.log)
    return Outcome("done", "%d compile(s) and %d link(s) journaled through coopt-cc" % (compiles, links),
                   log=res.log, files=[jpath], data={"compiles": compiles, "links": links, "journal": jpath})


def step_baseline_test(ctx: Context) -> Outcome:
    if ctx.config.hooks.test is None:
        return Outcome("skipped", "no test hook: variants are judged by the bench workload's output alone")
    res = ctx.run(ctx.hook("test"), "baseline-test")
    if not res.ok:
        return _failed(res, "the project's tests fail before any new variant; fix them, then run `coopt nightly` "
                       "again to resume", EXIT_TESTS_FAILED)
    return Outcome("done", "tests pass before optimizing (%.1f s)" % res.seconds, log=res.log)


def _workload(cmd: Command) -> list[str]:
    return ["/bin/sh", "-c", cmd.line] if cmd.line else list(cmd.argv)


def step_profile(ctx: Context) -> Outcome:
    from coopt.profile.errors import ProfileError
    from coopt.profile.model import load

    profile_cmd = ctx.config.hooks.profile
    assert profile_cmd is not None  # checked before the run starts
    # dwarf call chains (+~14% recording time, docs/profile.md) let the profile credit library time such as a
    # strlen in a loop condition to the journaled function that calls it, so the guide ranks that TU right.
    argv = _coopt_argv("profile", "--quiet", "--call-graph", "dwarf", "-o", ctx.profile_path, "--",
                       *_workload(profile_cmd))
    res = ctx.run(ctx.hook("profile", Command(argv=tuple(argv))), "profile")
    if not res.ok:
        errors = [ln for ln in tail(res.log, 40) if "error:" in ln]
        why = errors[-1].split("error:", 1)[1].strip() if errors else res.describe()
        return Outcome("failed", "profiling the workload failed: %s" % why, EXIT_STEP_FAILED, log=res.log)
    try:
        prof = load(ctx.profile_path)
    except ProfileError as exc:
        return Outcome("failed", "the profile cannot be read: %s" % exc, EXIT_STEP_FAILED, log=res.log)
    hot = [(os.path.basename(t.source), round(t.share, 4)) for t in prof.tus[:5]]
    return Outcome("done", "%d samples, %.0f%% in %d journaled TU(s); hottest: %s" % (
        prof.samples, 100 * prof.journaled_share, len(prof.tus),
        ", ".join("%s %.0f%%" % (n, 100 * s) for n, s in hot[:3]) or "none"),
        log=res.log, files=[ctx.profile_path], data={"samples": prof.samples, "hot": hot})


def _live_kept(data: dict[str, Any]) -> list[dict[str, Any]]:
    return list(data.get("kept") or [])


def step_optimize(ctx: Context) -> Outcome:
    from coopt.agents.registry import LLM_LEVELS
    from coopt.optimize.final import nothing_stored
    from coopt.optimize.options import OptimizeOptions
    from coopt.optimize.plan import OptimizeError
    from coopt.optimize.progress import StopFlag
    from coopt.optimize.run import optimize
    from coopt.verify import sandbox

    hooks = ctx.config.hooks
    assert hooks.profile is not None
    try:  # where bubblewrap cannot contain candidates: LLM levels only with [verify] allow_unsandboxed
        llm_candidates = bool(set(ctx.config.optimize.levels) & set(LLM_LEVELS)) and ctx.config.llm.provider != "none"
        warning = sandbox.gate(ctx.config.verify.allow_unsandboxed, llm_candidates)
    except sandbox.SandboxUnavailable as exc:
        return Outcome("failed", "optimize: %s" % exc, EXIT_CONFIG)
    if warning:
        ctx.console.line("coopt: " + warning)
    bench = hooks.bench or hooks.profile
    log_path = ctx.log_path("optimize")
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    # An interrupted attempt left its run state in run_dir: the optimizer continues it (resume) when it is of
    # this same profile and these settings, so the candidates it judged are neither redone nor paid for twice.
    opts = OptimizeOptions.from_config(ctx.config, profile=ctx.profile_path, bench=bench.shell_line(),
                                       train=hooks.profile.shell_line(), run_dir=ctx.run_dir, resume=True)
    with open(log_path, "a", encoding="utf-8") as log, _tee_progress(ctx.console, log) as progress:
        try:
            state = optimize(opts, progress, StopFlag())
        except OptimizeError as exc:
            log.write("error: %s\n" % exc)
            return Outcome("failed", "optimize: %s" % exc, EXIT_STEP_FAILED, log=log_path)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # the nightly records it and stops; the traceback goes to the log
            log.write(traceback.format_exc())
            return Outcome("failed", "optimize stopped on an internal error: %s: %s" % (type(exc).__name__, exc),
                           EXIT_STEP_FAILED, log=log_path)
    if state.status == "interrupted":
        raise KeyboardInterrupt
    kept = [{"object": k.object, "source": k.source, "key": k.key, "level": k.level, "label": k.label,
             "ratio": k.interval.ratio, "low": k.interval.low, "high": k.interval.high}
            for k in state.kept.values() if not k.withdrawn]
    final = state.final.interval if state.final else None
    withdrawn = sum(1 for k in state.kept.values() if k.withdrawn)
    data = {"run_dir": ctx.run_dir, "status": state.status, "stop_reason": state.stop_reason,
            "attempts": len(state.attempts), "spent": dict(state.spent), "kept": kept, "withdrawn": withdrawn,
            "why_nothing": nothing_stored(state.attempts, state.min_gain, [
                k.withdrawn for k in state.kept.values() if k.withdrawn]).removeprefix("no variant stored: "),
            "final": {"ratio": final.ratio, "low": final.low, "high": final.high} if final else None}
    detail = "%d candidate(s) built, %d evaluation(s), %d variant(s) stored" % (
        len(state.attempts), state.spent.get("evaluations", 0), len(kept))
    if final:
        detail += "; whole program %.3f [%.3f, %.3f]" % (final.ratio, final.low, final.high)
    return Outcome("done", detail, log=log_path, files=[os.path.join(ctx.run_dir, "state.json")], data=data)


def _tee_progress(console: Console, log: TextIO) -> Any:
    """The optimizer's progress on our console and, as whole lines, in the optimize log."""
    from coopt.optimize.progress import Progress

    class TeeProgress(Progress):
        def line(self, text: str) -> None:
            with self._lock:
                console.line(text)
                log.write(text + "\n")
                log.flush()
                self._last_write = time.monotonic()

        def status(self, text: str) -> None:
            console.status(text)
            if not self.tty:
                super().status(text)  # the heartbeat through silent stretches of a CI log

    return TeeProgress(console.stream, console.tty)


def _kept(ctx: Context) -> list[dict[str, Any]]:
    return _live_kept(ctx.state.step("optimize").data)


def step_rebuild(ctx: Context) -> Outcome:
    kept = _kept(ctx)
    if not kept:
        return Outcome("skipped", "no new variant to serve: the first build stands")
    log = ctx.log_path("rebuild")
    append = False
    if ctx.config.hooks.clean is not None:
        res = ctx.run(ctx.hook("clean"), "rebuild")
        if not res.ok:
            return _failed(res, "clean before the rebuild failed")
        append = True
    else:
        for k in kept:  # without a clean hook, removing the kept TUs' objects makes the build compile them again
            try:
                os.unlink(k["object"])
            except FileNotFoundError:
                pass
    before = stats.read(ctx.layout.stats_dir).get("hit", 0)
    res = ctx.run(ctx.hook("build"), "rebuild", env=ctx.build_env(), append=append)
    if not res.ok:
        return _failed(res, "the rebuild with the variants failed")
    hits = stats.read(ctx.layout.stats_dir).get("hit", 0) - before
    detail = "served %d of %d new variant(s) from the cache" % (min(hits, len(kept)), len(kept))
    if hits < len(kept):
        detail += " (a TU not served: its compile differs from the journaled one; COOPT_DEBUG=1 shows why)"
    return Outcome("done", detail, log=log, data={"hits": hits, "variants": len(kept)})


def step_test(ctx: Context) -> Outcome:
    if ctx.config.hooks.test is None:
        return Outcome("skipped", "no test hook: the variants were judged by the bench workload's output alone")
    if ctx.state.step("rebuild").status != "done":
        return Outcome("skipped", "nothing was rebuilt: the baseline tests stand")
    res = ctx.run(ctx.hook("test"), "test")
    if res.ok:
        return Outcome("done", "tests pass with the variants (%.1f s)" % res.seconds, log=res.log)
    from coopt.cache.store import Store

    store = Store(ctx.config.cache.dir)
    withdrawn = [k["key"] for k in _kept(ctx) if store.remove(k["key"])]
    out = _failed(res, "the project's tests fail with this run's variants: withdrew %d variant(s) from the cache; "
                  "the next build compiles those TUs as before" % len(withdrawn), EXIT_TESTS_FAILED, final=True)
    out.data = {"withdrawn": withdrawn}
    return out


def step_report(ctx: Context) -> Outcome:
    from coopt.cache.store import Store
    from coopt.nightly.summary import steps_markdown
    from coopt.optimize.state import RunStateError, load
    from coopt.report.render import render

    written = []
    try:
        run_state = load(ctx.run_dir)
    except RunStateError as exc:
        return Outcome("failed", "no optimize run to report: %s" % exc, EXIT_STEP_FAILED)
    for fmt, name in (("md", "report.md"), ("html", "report.html"), ("json", "report.json")):
        path = os.path.join(ctx.directory, name)
        text = render(run_state, fmt)
        if fmt == "md":
            text = steps_markdown(ctx.state) + "\n" + text
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
        written.append(path)
    evicted: list[str] = []
    if not ctx.config.cache.read_only:
        store = Store(ctx.config.cache.dir)
        evicted = store.evict(ctx.config.cache.max_size)
        store.trim_history()  # a nightly job's cache must not grow by every build's journal records
    detail = "wrote %s" % ", ".join(os.path.relpath(p, ctx.config.project_dir) for p in written)
    if evicted:
        detail += "; evicted %d old entr%s to keep the cache under its size limit" % (
            len(evicted), "y" if len(evicted) == 1 else "ies")
    return Outcome("done", detail, files=written, data={"reports": written, "evicted": len(evicted)})


STEP_FUNCTIONS: dict[str, Callable[[Context], Outcome]] = {
    "clean": step_clean,
    "build": step_build,
    "baseline-test": step_baseline_test,
    "profile": step_profile,
    "optimize": step_optimize,
    "rebuild": step_rebuild,
    "test": step_test,
    "report": step_report,
}
