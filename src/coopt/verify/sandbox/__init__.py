"""Containment for code the project did not write: candidates, harnesses, and the commands run on them.

Every command runs under bubblewrap (`bwrap.py`: read-only system, the scratch directory the only writable place,
private /tmp, own PID and network namespaces, uid 65534, no capabilities), in its own process group and session,
with a wall-clock timeout after which the whole group is killed (as it is when the caller is interrupted or fails
while waiting), rlimits set before exec (CPU seconds, file size, no core files; address space and process count
where no cgroup holds them), and, as root, a cgroup (`cgroup.py`) that limits resident memory and processes.

The environment is exactly the one the caller passes (`scrubbed_env` builds the usual one), less any variable
whose name looks like a secret (API keys, tokens, passwords, coopt's cache key): a caller that passes os.environ
by mistake still leaks none.

Where bubblewrap does not work (`unavailable()` says why), `run` refuses (SandboxUnavailable) unless the user
opted in (`[verify] allow_unsandboxed`, COOPT_ALLOW_UNSANDBOXED=1, passed on by the CLI through
`permit_unsandboxed`) or the command runs the project's own code (`own_code`: compiler-tool candidates such as
flags and PGO); those run with the old containment: rlimits, process group, and an empty network namespace
(`unshare -n`) where the OS permits one. A command killed by a signal under bwrap ends with 128 + the signal's
number (the shell that waits for it inside reports it so), not with a negative return code. Its CPU time reaches
the caller's RUSAGE_CHILDREN, as the optimizer's `cpu` measure needs.
"""

from __future__ import annotations

import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from coopt.verify.sandbox import bwrap, pipes
from coopt.verify.sandbox.cgroup import Cgroup

# Names of variables never passed into a sandbox, whatever the caller says.
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|COOKIE|SESSION|AUTH", re.IGNORECASE)
ALLOW_ENV = "COOPT_ALLOW_UNSANDBOXED"


class SandboxUnavailable(RuntimeError):
    """Candidate code would run without bubblewrap and the user has not allowed that."""


@dataclass(frozen=True)
class Limits:
    """Resource limits for one contained command. Zero means: leave that limit alone."""

    cpu_s: int = 120
    address_space_mb: int = 4096
    file_size_mb: int = 256
    processes: int = 256
    wall_s: float = 300.0
    network: bool = False  # False: run in a new, empty network namespace
    memory_mb: int = 4096  # resident memory of the command and all it starts (a cgroup, as root; 0: none)
    output_mb: int = 64  # what is kept of stdout and of stderr each; more ends the command (0: no bound)


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
    sandboxed: bool = False  # ran under bubblewrap
    memory_exceeded: bool = False  # the cgroup's OOM killer ended a process of it
    output_exceeded: bool = False  # killed for writing more than Limits.output_mb to stdout or stderr


_permit = ""


def permit_unsandboxed(why: str) -> None:
    """Let `run` fall back to the old containment where bubblewrap does not work (`why`: the user's opt-in,
    for the record); an empty `why` withdraws the permission."""
    global _permit
    _permit = why


def unsandboxed_permitted() -> bool:
    """Whether the user allowed running candidates without bubblewrap (permit_unsandboxed or the variable)."""
    return bool(_permit) or os.environ.get(ALLOW_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def gate(allowed: bool, llm_candidates: bool) -> str:
    """Before a run that judges candidates: where bubblewrap cannot contain them, raise SandboxUnavailable (one
    line) for LLM candidates unless `allowed` ([verify] allow_unsandboxed); else permit the old containment and
    return the warning to show (on every run). "" when bubblewrap works."""
    why = unavailable()
    if not why:
        return ""
    if llm_candidates and not allowed:
        raise SandboxUnavailable("%s; candidate code is not run without a sandbox (to run it with rlimits only, "
                                 "knowing the risk: [verify] allow_unsandboxed = true or %s=1)" % (why, ALLOW_ENV))
    permit_unsandboxed("[verify] allow_unsandboxed" if llm_candidates else "compiler-tool candidates only")
    return "warning: %s; candidates run WITHOUT a sandbox (rlimits only)" % why


def stderr_with_notes(res: Result, tail: int = 2000) -> str:
    """The end of a command's stderr followed by the sandbox's notes (why it may have failed: a path uid 65534
    cannot read, the memory limit), for messages that show a user why a hook failed."""
    return (res.stderr[-tail:] + "".join("\ncoopt: " + n for n in res.notes))[-tail:]


def machine_memory_mb() -> int:
    """Physical memory of this machine in MB (a bound for commands that may legitimately use most of it)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") >> 20


def unavailable() -> str:
    """Why commands cannot run under bubblewrap here, in one line with what to install; "" when they can."""
    return bwrap.unavailable()


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


def _preexec(limits: Limits, group: Cgroup | None) -> Callable[[], None]:
    def apply() -> None:
        def cap(what: int, value: int) -> None:
            soft, hard = resource.getrlimit(what)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(what, (value, value if hard == resource.RLIM_INFINITY else hard))

        if group is not None:
            group.preexec()
        if limits.cpu_s:
            cap(resource.RLIMIT_CPU, limits.cpu_s)
        # With a cgroup, resident memory is limited there; reserved address space says nothing about it.
        if limits.address_space_mb and (group is None or not limits.memory_mb):
            cap(resource.RLIMIT_AS, limits.address_space_mb << 20)
        if limits.file_size_mb:
            cap(resource.RLIMIT_FSIZE, limits.file_size_mb << 20)
        if limits.processes:
            # Counts every process of uid 65534 (or of the user) on the machine; the cgroup counts exactly
            # the command's, so the rlimit is only a backstop with room for other sandboxes.
            cap(resource.RLIMIT_NPROC, limits.processes if group is None else max(limits.processes, 4096))
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


def without_secrets(env: Mapping[str, str]) -> dict[str, str]:
    """`env` less the variables whose names look like secrets (SECRET_NAME)."""
    return {k: v for k, v in env.items() if not SECRET_NAME.search(k)}


PSEUDO = ("/proc/", "/sys/", "/dev/")  # filesystems the sandbox makes its own


def _named_paths(cmd: Sequence[str]) -> list[str]:
    """Absolute paths a command line names, as arguments or as `--option=PATH`: the command may read them. The
    sandbox's own /proc, /sys and /dev are not the host's: a path there is not mounted in."""
    out = []
    for arg in cmd:
        tail = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
        if tail.startswith("/") and not tail.startswith(PSEUDO) and os.path.exists(tail):
            out.append(tail)
    return out


def _line_files(line: str) -> list[str]:
    """Files a shell line names by absolute path as words (a project's `lua /abs/check.lua`): the command may
    read them. Files only: a directory a line names (`cd /`) would open everything under it to candidate code."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)  # `a;b`, `<in`, `x|y` are separate words
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:  # an unbalanced quote: the shell will say so
        return []
    return [p for p in _named_paths(words) if os.path.isfile(p)]


def run(
    argv: Sequence[str],
    scratch: str,
    limits: Limits = Limits(),
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    shell: bool = False,
    readonly: Sequence[str] = (),
    cwd: str | None = None,
    own_code: bool = False,
    keep_stdout: bool = True,
) -> Result:
    """Run one command contained: bubblewrap, limits, scratch directory, own process group, timeout, no network.

    With `shell`, argv is one command line run by /bin/sh (the project's hook commands are shell lines). The
    command may write only in `scratch`; it may read the system, `readonly` paths, `cwd` (default: scratch) and
    the absolute paths its argv names (of a shell line: the files it names).
    `own_code`: the command runs the project's own code built by the compiler
    (flags, PGO), which may run with the old containment where bubblewrap does not work; anything else then
    raises SandboxUnavailable unless the user allowed it (permit_unsandboxed). What it writes is kept up to
    `limits.output_mb` a stream (more ends it: `output_exceeded`); with `keep_stdout` False its stdout goes to
    /dev/null (timings, training runs: output nobody reads, however large, costs nothing and ends nothing)."""
    os.makedirs(scratch, exist_ok=True)
    cmd = ["/bin/sh", "-c", argv[0]] if shell else list(argv)
    workdir = cwd or scratch
    notes: list[str] = []
    why = bwrap.unavailable()
    if why and not (own_code or unsandboxed_permitted()):
        raise SandboxUnavailable(
            "%s; candidate code is not run without a sandbox unless you allow it ([verify] allow_unsandboxed = "
            "true or %s=1)" % (why, ALLOW_ENV)
        )
    if why:
        notes.append("not sandboxed: " + why)
        prefix: tuple[str, ...] = () if limits.network else network_namespace_prefix()
        full = [*prefix, *cmd]
    else:
        bwrap.prepare_scratch(scratch)
        visible = [*readonly, workdir, *(_line_files(argv[0]) if shell else _named_paths(cmd))]
        full = bwrap.argv(cmd, scratch, workdir, visible, limits.network)
        hidden = bwrap.hidden_from_nobody([p for p in visible if p != scratch])
        if hidden:
            notes.append("not readable by uid 65534 inside the sandbox (chmod o+rx, or run coopt as another user "
                         "than root): %s" % ", ".join(hidden))
    clean = without_secrets(env if env is not None else scrubbed_env(scratch))
    group = Cgroup.create(limits.memory_mb, limits.processes)
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            full,
            cwd=workdir,
            env=clean,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if keep_stdout else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_preexec(limits, group),
        )
        cap = limits.output_mb << 20
        try:
            got = pipes.collect(proc, stdin, limits.wall_s or None, cap)
            timed_out = got.timed_out
            if not timed_out and not got.over:
                left = limits.wall_s - (time.monotonic() - start) if limits.wall_s else None
                try:
                    proc.wait(timeout=None if left is None else max(left, 0.01))
                except subprocess.TimeoutExpired:  # it closed its output and went on running
                    timed_out = True
            if timed_out or got.over:
                kill_group(proc)
                if group is not None:  # what the sandbox started is in another session: the group holds it all
                    group.kill()
                proc.wait()
                if timed_out:  # what it wrote before it was killed, for the messages
                    rest = pipes.collect(proc, None, 5.0, max(cap - len(got.stdout), 1) if cap else 0)
                    got.stdout, got.stderr = got.stdout + rest.stdout, got.stderr + rest.stderr
        except BaseException:
            # Ctrl-C (or any error) here: the command is in its own session, so the terminal's SIGINT never
            # reached it or what it started; leaving them would keep a candidate running after coopt is gone.
            kill_group(proc)
            proc.wait()
            raise
        finally:
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        out, err = got.stdout, got.stderr
        if got.over:
            notes.append("stopped: it wrote more than %d MB to %s (the output limit)" % (limits.output_mb, got.over))
        oom = group is not None and group.oom_killed()
    finally:
        if group is not None:
            group.close()  # anything that got out of the PID namespace's reach is still in the group
    if oom:
        notes.append("memory limit of %d MB reached" % limits.memory_mb)
    return Result(
        argv=cmd,
        returncode=proc.returncode,
        stdout=out.decode("utf-8", errors="replace"),
        stderr=err.decode("utf-8", errors="replace"),
        seconds=time.monotonic() - start,
        timed_out=timed_out,
        isolated_network=not limits.network and (not why or bool(prefix)),
        notes=notes,
        sandboxed=not why,
        memory_exceeded=oom,
        output_exceeded=bool(got.over),
    )


def kill_group(proc: subprocess.Popen) -> None:
    """Kill a command started with its own session and everything it started.

    bwrap's command runs in a session of its own, as pid 1 of its PID namespace: killing it takes every process
    of the namespace with it (a setsid double fork included). Its --die-with-parent would do that when bwrap dies,
    but changing to uid 65534 (setpriv, as root) clears that signal (prctl(2)), so the children of bwrap are
    killed by pid first."""
    for pid in _children(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _children(pid: int) -> list[int]:
    """The direct children of `pid` (Linux /proc; none where it cannot be read)."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid), encoding="ascii") as f:
            return [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        return []
