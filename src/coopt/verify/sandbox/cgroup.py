"""A cgroup per contained command: a memory limit on what it really uses, and a process limit that holds for root.

rlimits cannot do either job: RLIMIT_AS counts reserved address space (sanitizer builds reserve terabytes of
shadow, so they ran without one), and RLIMIT_NPROC counts every process of the user, and none at all for root.
A cgroup counts resident memory (tmpfs pages the command writes included) and the processes inside it, whatever
their uid. The OOM killer ends the command with SIGKILL when it goes over its memory; a fork beyond the process
limit fails with EAGAIN.

Only root can make cgroups here (cgroup v1, or v2 where the parent delegates the controllers); for other users,
or where the hierarchy is missing or read-only, `Cgroup.create` returns None and the caller relies on rlimits and
the sanitizers' own RSS limits (`hard_rss_limit_mb`, libFuzzer's `-rss_limit_mb`). Each group is made under the
caller's own cgroup, so limits set on coopt itself (a CI job's) still apply.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from dataclasses import dataclass

ROOT = "/sys/fs/cgroup"
_serial = itertools.count()


def _own_path(controller: str) -> str | None:
    """This process's cgroup path for `controller` (v1), or for the unified hierarchy when controller is ""."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3 and (parts[1].split(",") == [controller] if controller else parts[1] == ""):
            return parts[2]
    return None


def _write(path: str, value: str) -> None:
    with open(path, "w", encoding="ascii") as f:
        f.write(value)


@dataclass
class Cgroup:
    """The directories of one command's cgroup (one per controller on v1, one on v2)."""

    dirs: list[str]
    memory_file: str  # where the memory limit is; its OOM counter is read from the same directory
    v2: bool

    @staticmethod
    def create(memory_mb: int, processes: int) -> Cgroup | None:
        """A new cgroup with these limits (0: none), or None where this process cannot make one."""
        if os.geteuid() != 0 or not (memory_mb or processes):
            return None
        try:
            if os.path.exists(os.path.join(ROOT, "cgroup.controllers")):
                return _create_v2(memory_mb, processes)
            return _create_v1(memory_mb, processes)
        except OSError:
            return None

    def preexec(self) -> None:
        """Move the calling process (a child between fork and exec) into the group; what it starts follows."""
        pid = str(os.getpid())
        for d in self.dirs:
            _write(os.path.join(d, "cgroup.procs"), pid)

    def oom_killed(self) -> bool:
        """Whether the OOM killer killed a process of this group for going over its memory limit."""
        name = "memory.events" if self.v2 else "memory.oom_control"
        try:
            with open(os.path.join(os.path.dirname(self.memory_file), name), encoding="ascii") as f:
                fields = dict(line.split() for line in f if len(line.split()) == 2)
        except OSError:
            return False
        return int(fields.get("oom_kill", "0")) > 0

    def kill(self) -> None:
        """Kill whatever is in the group now (it may still be reaped for a moment)."""
        for d in self.dirs:
            _kill_members(d)

    def close(self) -> None:
        """Kill whatever is still in the group and remove it."""
        for d in self.dirs:
            for _ in range(100):
                _kill_members(d)
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)  # the killed processes are still being reaped


def _kill_members(d: str) -> None:
    """SIGKILL the processes in the group directory `d` (none when it is gone)."""
    try:
        with open(os.path.join(d, "cgroup.procs"), encoding="ascii") as f:
            pids = [int(p) for p in f.read().split()]
    except OSError:
        return
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _name() -> str:
    return "coopt-%d-%d" % (os.getpid(), next(_serial))


def _create_v1(memory_mb: int, processes: int) -> Cgroup | None:
    dirs: list[str] = []
    memory_file = ""
    try:
        for controller, wanted in (("memory", memory_mb), ("pids", processes)):
            if not wanted:
                continue
            mount = os.path.join(ROOT, controller)
            if not os.path.isdir(mount):
                continue
            own = (_own_path(controller) or "/").lstrip("/")
            parent = os.path.join(mount, own) if os.path.isdir(os.path.join(mount, own)) else mount
            d = os.path.join(parent, _name())
            os.mkdir(d)
            dirs.append(d)
            if controller == "memory":
                memory_file = os.path.join(d, "memory.limit_in_bytes")
                _write(memory_file, str(memory_mb << 20))
                swap = os.path.join(d, "memory.memsw.limit_in_bytes")
                if os.path.exists(swap):  # no swapping out instead of dying
                    _write(swap, str(memory_mb << 20))
            else:
                _write(os.path.join(d, "pids.max"), str(processes))
    except OSError:
        Cgroup(dirs, memory_file, False).close()
        raise
    return Cgroup(dirs, memory_file, False) if dirs else None


def _create_v2(memory_mb: int, processes: int) -> Cgroup | None:
    own = (_own_path("") or "/").lstrip("/")
    parent = os.path.join(ROOT, own)
    with open(os.path.join(parent, "cgroup.subtree_control"), encoding="ascii") as f:
        delegated = set(f.read().split())
    if (memory_mb and "memory" not in delegated) or (processes and "pids" not in delegated):
        return None  # enabling them here would move coopt itself: leave the hierarchy alone
    d = os.path.join(parent, _name())
    os.mkdir(d)
    group = Cgroup([d], os.path.join(d, "memory.max"), True)
    try:
        if memory_mb:
            _write(group.memory_file, str(memory_mb << 20))
            if os.path.exists(os.path.join(d, "memory.swap.max")):  # no swapping out instead of dying
                _write(os.path.join(d, "memory.swap.max"), "0")
        if processes:
            _write(os.path.join(d, "pids.max"), str(processes))
    except OSError:
        group.close()
        raise
    return group
