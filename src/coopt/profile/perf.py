"""Running `perf record` on a workload and reading recordings back with `perf script`, with perf's failures turned
into one line each: perf missing, not permitted, event not supported, the workload missing or failing.

`perf record` passes the workload's stdout through untouched; its stderr is relayed line by line (perf's own
progress lines left out) and the tail is kept for the error message when the workload fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from coopt.profile.errors import ProfileError

PERF_ENV = "COOPT_PERF"  # the perf binary to run (default: `perf` on PATH)
DEFAULT_EVENT = "cpu-clock"  # a software event: hardware counters are often missing in VMs and containers
# comm first so perf's default layout and ours parse alike; no period (shares need only counts) and no time.
SCRIPT_FIELDS = "comm,pid,tid,event,ip,sym,symoff,dso"
_TAIL_LINES = 3

INSTALL_HINT = "install it with `apt-get install linux-perf` (Ubuntu: linux-tools-$(uname -r)) or set COOPT_PERF"


@dataclass
class Recording:
    """A finished `perf record` run."""

    data: str
    exit_code: int
    seconds: float
    stderr_tail: list[str]


def find_perf() -> str:
    """The perf binary, or a ProfileError saying how to install it."""
    name = os.environ.get(PERF_ENV) or "perf"
    path = shutil.which(name)
    if path is None:
        raise ProfileError("perf is not installed (%s not found): %s" % (name, INSTALL_HINT))
    return path


def paranoid_level() -> str:
    try:
        with open("/proc/sys/kernel/perf_event_paranoid", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return "?"


def _perf_failure(text: str, event: str) -> ProfileError | None:
    """The ProfileError for perf's own failure described in `text` (its stderr), or None if perf did not fail."""
    low = text.lower()
    if "not found for kernel" in low:  # Debian's /usr/bin/perf wrapper without the matching linux-perf
        return ProfileError("perf for this kernel is not installed: %s" % INSTALL_HINT)
    if "perf_event_paranoid" in low or "no permission" in low or "permission denied" in low:
        return ProfileError(
            "perf is not permitted to record %s here (kernel.perf_event_paranoid=%s): run as root, or allow it with "
            "`sysctl -w kernel.perf_event_paranoid=1` (user-space only: =2 with --event %s:u)"
            % (event, paranoid_level(), event.split(":")[0])
        )
    if "not supported" in low or "invalid or unsupported event" in low or "event syntax error" in low:
        return ProfileError(
            "perf cannot record event %r here (hardware counters are often missing in VMs and containers): "
            "use --event %s" % (event, DEFAULT_EVENT)
        )
    if "failed to collect" in low or "workload failed" in low:
        line = next((ln for ln in text.splitlines() if "ailed" in ln), text.strip())
        return ProfileError("perf could not start the workload: %s" % line.strip())
    return None


def _check_command(cmd: list[str]) -> None:
    if not cmd:
        raise ProfileError("no workload given: use `coopt profile [-o FILE] -- COMMAND ARGS...`")
    prog = cmd[0]
    if os.sep in prog:
        if not os.path.isfile(prog) or not os.access(prog, os.X_OK):
            raise ProfileError("workload %s is not an executable file" % prog)
    elif shutil.which(prog) is None:
        raise ProfileError("workload command %r not found on PATH" % prog)


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ctrl-C stops the workload (perf then writes what it has); coopt keeps running to resolve it."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return "signal %d" % num


def record(
    cmd: list[str],
    data: str,
    event: str = DEFAULT_EVENT,
    call_graph: str | None = None,
    freq: int | None = None,
    allow_failure: bool = False,
) -> Recording:
    """Run `cmd` under `perf record -e event` into `data`. Raises ProfileError when perf cannot record or, unless
    `allow_failure`, when the workload exits non-zero (its code and the tail of its stderr in the message)."""
    perf = find_perf()
    _check_command(cmd)
    argv = [perf, "record", "-e", event, "-o", data]
    if freq:
        argv += ["-F", str(freq)]
    if call_graph:
        argv += ["--call-graph", call_graph]
    argv += ["--", *cmd]
    tail: deque[str] = deque(maxlen=40)
    started = time.monotonic()
    try:
        proc = subprocess.Popen(argv, stderr=subprocess.PIPE)
    except OSError as exc:
        raise ProfileError("cannot run %s: %s: %s" % (perf, exc.strerror or exc, INSTALL_HINT)) from exc
    assert proc.stderr is not None
    with _sigint_ignored():
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line.startswith("[ perf record:"):
                continue
            sys.stderr.write(line + "\n")
            tail.append(line)
        rc = proc.wait()
    seconds = time.monotonic() - started
    text = "\n".join(tail)
    # perf writes its file only once recording started: an empty or missing file means perf itself failed, and
    # then what it printed is perf's message, not the workload's.
    if not os.path.exists(data) or os.path.getsize(data) == 0:
        failure = _perf_failure(text, event)
        if failure is not None:
            raise failure
        said = next((ln.strip() for ln in tail if ln.strip() and ln.strip() != "Error:"), "no message")
        raise ProfileError("perf record failed (exit code %d): %s" % (rc, said))
    interrupted = rc in (-signal.SIGINT, 128 + signal.SIGINT)  # Ctrl-C: the profile covers the run until then
    if rc != 0 and not allow_failure and not interrupted:
        how = "was killed by %s" % _signal_name(-rc) if rc < 0 else "exited with code %d" % rc
        last = [ln.strip() for ln in tail if ln.strip()][-_TAIL_LINES:]
        said = ("; its stderr ended with: %s" % " | ".join(last))[:400] if last else "; it wrote nothing to stderr"
        raise ProfileError(
            "the workload `%s` %s%s (fix it, or pass --allow-failure to keep the profile)" % (" ".join(cmd), how, said)
        )
    return Recording(data, rc, seconds, list(tail))


def recorded_call_graph(data: str) -> str | None:
    """The call graph mode a recording was made with, read from its event attributes (`perf evlist -v`): dwarf
    when user stacks were sampled, lbr when branch call stacks were, fp for kernel-walked chains alone, None for
    no chains (or when perf cannot say)."""
    proc = subprocess.run([find_perf(), "evlist", "-v", "-f", "-i", data], capture_output=True, text=True,
                          errors="replace")
    if proc.returncode != 0:
        return None
    text = proc.stdout
    if "STACK_USER" in text:
        return "dwarf"
    if "CALL_STACK" in text:
        return "lbr"
    if "CALLCHAIN" in text:
        return "fp"
    return None


@contextmanager
def script_lines(data: str, event: str | None = None) -> Iterator[Iterator[str]]:
    """The lines of `perf script` for the recording `data`, streamed. Raises ProfileError if perf cannot read it."""
    perf = find_perf()
    if not os.path.isfile(data):
        raise ProfileError("perf data file %s not found" % data)
    # -f: read recordings made by another user (root's perf.data read by a user, or the reverse);
    # --no-inline: inline frames cost an addr2line run per address and are not what a TU defines;
    # --show-mmap-events: where each binary was loaded, to read PIE and shared-library addresses.
    argv = [perf, "script", "-f", "-i", data, "-F", SCRIPT_FIELDS, "--no-inline", "--show-mmap-events"]
    # stderr goes to a file: perf can warn a lot (one line per unreadable binary), and a full stderr pipe nobody
    # reads while we read stdout would block it.
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as errfile:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errfile, text=True, errors="surrogateescape")
        assert proc.stdout is not None
        try:
            yield iter(proc.stdout)
        finally:
            proc.stdout.close()
            rc = proc.wait()
            errfile.seek(0)
            err = errfile.read()
    if rc != 0:
        failure = _perf_failure(err, event or DEFAULT_EVENT)
        if failure is not None:
            raise failure
        first = next((ln.strip() for ln in err.splitlines() if ln.strip()), "exit code %d" % rc)
        raise ProfileError("perf script cannot read %s: %s" % (data, first))
