"""Running one project command: in its directory, in its own process group, with a timeout, output to a log.

The command's stdout and stderr go, interleaved as written, to a log file that starts with a header (the command,
the directory, the time) and ends with the outcome; nothing reaches our own output, so a CI log shows coopt's
progress lines and, on failure, the log's last lines. On a timeout or Ctrl-C the whole process group is stopped
(SIGTERM, then SIGKILL after a grace period), so a `make -j` leaves no compiler behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from coopt.config.schema import Command

GRACE_S = 5.0  # between SIGTERM and SIGKILL of a stopped hook
TICK_S = 1.0


@dataclass(frozen=True)
class Hook:
    """One configured command, ready to run."""

    name: str  # build, clean, test, bench, profile
    command: Command
    cwd: str
    timeout: float

    def args(self) -> list[str]:
        return ["/bin/sh", "-c", self.command.line] if self.command.line else list(self.command.argv)


@dataclass(frozen=True)
class HookResult:
    """How a hook ended."""

    name: str
    command: str
    returncode: int | None  # None when it timed out or could not start
    seconds: float
    log: str
    timed_out: bool = False
    error: str = ""  # why it could not start

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        """`exit 0`, `exit 2`, `timed out after 3600 s` or `could not start: ...`."""
        if self.error:
            return "could not start: %s" % self.error
        if self.timed_out:
            return "timed out after %.0f s" % self.seconds
        if self.returncode is not None and self.returncode < 0:
            return "killed by signal %d" % -self.returncode
        return "exit %s" % self.returncode


def tail(path: str, lines: int = 15) -> list[str]:
    """The last `lines` lines of a log (without our header and footer lines)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read().splitlines()
    except OSError:
        return []
    return [ln for ln in text if not ln.startswith("# coopt ")][-lines:]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, GRACE_S), (signal.SIGKILL, GRACE_S)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_hook(hook: Hook, log_path: str, env: Mapping[str, str], tick: Callable[[float], None] | None = None,
             append: bool = False) -> HookResult:
    """Run `hook` with `env`, its output into `log_path`; `tick(elapsed)` is called about once a second.

    Ctrl-C stops the hook's process group and propagates KeyboardInterrupt."""
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    shown = hook.command.shell_line()
    start = time.monotonic()
    with open(log_path, "ab" if append else "wb") as log:
        log.write(("# coopt hook %s: %s\n# coopt cwd: %s\n# coopt started: %s\n" % (
            hook.name, shown, hook.cwd, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))).encode())
        log.flush()
        try:
            proc = subprocess.Popen(hook.args(), cwd=hook.cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            what = "%s: %s" % (exc.filename or hook.args()[0], exc.strerror or exc)
            log.write(("# coopt could not start: %s\n" % what).encode())
            return HookResult(hook.name, shown, None, 0.0, log_path, error=what)
        timed_out = False
        try:
            while True:
                try:
                    proc.wait(timeout=TICK_S)
                    break
                except subprocess.TimeoutExpired:
                    elapsed = time.monotonic() - start
                    if elapsed > hook.timeout:
                        timed_out = True
                        _stop(proc)
                        break
                    if tick:
                        tick(elapsed)
        except BaseException:
            _stop(proc)
            log.write(b"# coopt stopped: interrupted\n")
            raise
        seconds = time.monotonic() - start
        code = None if timed_out else proc.returncode
        log.write(("# coopt %s after %.1f s\n" % ("timed out" if timed_out else "exit %s" % code, seconds)).encode())
    return HookResult(hook.name, shown, code, round(seconds, 2), log_path, timed_out=timed_out)
