"""Containment for code the project did not write: candidates, harnesses, and the commands run on them.

Every command runs in its own process group and session, in a scratch directory, with resource limits set in
the child before exec (CPU seconds, address space, file size, number of processes, no core files), a wall-clock
timeout after which the whole group is killed (as it is when the caller is interrupted or fails while waiting),
and, where the OS allows unprivileged or root namespaces, a new network namespace with no interfaces
(`unshare -n`). Sanitizer builds reserve terabytes of shadow address space, so for them the address-space limit is
left to the sanitizer runtime (`hard_rss_limit_mb`) instead.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache


@dataclass(frozen=True)
class Limits:
    """Resource limits for one contained command. Zero means: leave that limit alone."""

    cpu_s: int = 120
    address_space_mb: int = 4096
    file_size_mb: int = 256
    processes: int = 256
    wall_s: float = 300.0
    network: bool = False  # False: run in a new, empty network namespace where that is permitted


@dataclass
class Result:
    """How a contained command ended."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False
    isolated_network: bool = False
    notes: list[str] = field(default_factory=list)


@lru_cache(maxsize=1)
def network_namespace_prefix() -> tuple[str, ...]:
    """`unshare -n` when it works here (root or unprivileged user namespaces), else nothing."""
    unshare = shutil.which("unshare")
    if not unshare:
        return ()
    for prefix in ((unshare, "-n"), (unshare, "-r", "-n")):
        try:
            ok = subprocess.run([*prefix, "true"], capture_output=True, timeout=10, check=False).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            return prefix
    return ()


def _preexec(limits: Limits) -> Callable[[], None]:
    def apply() -> None:
        def cap(what: int, value: int) -> None:
            soft, hard = resource.getrlimit(what)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(what, (value, value if hard == resource.RLIM_INFINITY else hard))

        if limits.cpu_s:
            cap(resource.RLIMIT_CPU, limits.cpu_s)
        if limits.address_space_mb:
            cap(resource.RLIMIT_AS, limits.address_space_mb << 20)
        if limits.file_size_mb:
            cap(resource.RLIMIT_FSIZE, limits.file_size_mb << 20)
        if limits.processes:
            cap(resource.RLIMIT_NPROC, limits.processes)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def scrubbed_env(scratch: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A small environment: PATH, locale, HOME and TMPDIR inside the scratch directory, plus `extra`."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LC_ALL": "C",
        "HOME": scratch,
        "TMPDIR": scratch,
    }
    env.update(extra or {})
    return env


def run(
    argv: Sequence[str],
    scratch: str,
    limits: Limits = Limits(),
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    shell: bool = False,
) -> Result:
    """Run one command contained: limits, scratch directory as cwd, own process group, timeout, no network.

    With `shell`, argv is one command line run by /bin/sh (the project's hook commands are shell lines)."""
    os.makedirs(scratch, exist_ok=True)
    cmd = ["/bin/sh", "-c", argv[0]] if shell else list(argv)
    prefix: tuple[str, ...] = () if limits.network else network_namespace_prefix()
    full = [*prefix, *cmd]
    start = time.monotonic()
    proc = subprocess.Popen(
        full,
        cwd=scratch,
        env=dict(env) if env is not None else scrubbed_env(scratch),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_preexec(limits),
    )
    timed_out = False
    try:
        out, err = proc.communicate(stdin, timeout=limits.wall_s or None)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_group(proc)
        out, err = proc.communicate()
    except BaseException:
        # Ctrl-C (or any error) here: the command is in its own session, so the terminal's SIGINT never reached
        # it or what it started; leaving them would keep a candidate running after coopt is gone.
        kill_group(proc)
        proc.wait()
        raise
    return Result(
        argv=cmd,
        returncode=proc.returncode,
        stdout=out.decode("utf-8", errors="replace"),
        stderr=err.decode("utf-8", errors="replace"),
        seconds=time.monotonic() - start,
        timed_out=timed_out,
        isolated_network=bool(prefix),
    )


def kill_group(proc: subprocess.Popen) -> None:
    """Kill a command started with its own session and everything it started."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
