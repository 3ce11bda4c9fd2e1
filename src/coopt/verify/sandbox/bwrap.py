"""The bubblewrap command line that contains one command, and whether bubblewrap works here.

What the contained command sees (built by `argv`):

- a root of its own (bwrap's empty tmpfs) holding only the system, read-only: /usr, /etc, /opt and the /bin, /lib*,
  /sbin links or directories; /etc/shadow and /etc/gshadow are /dev/null. No /root, /home, /srv, /var, /run, no
  cache directory: nothing of the user's but what the caller names.
- the caller's read-only paths (the executable, the project directory, objects it links) and the scratch directory,
  the only writable place, each mounted at its own path; parents of these are fresh directories, so a scratch
  directory under a private 0700 temporary directory is still reachable.
- a private /tmp (tmpfs), a minimal /dev (null, zero, full, random, urandom, tty, shm), and a fresh /proc of its
  own PID namespace: the caller's processes and their /proc/<pid>/environ are not there.
- new PID, network (a loopback of its own, nothing else), IPC, UTS and (where possible) cgroup namespaces;
  `--die-with-parent` plus the PID namespace take every process it started (a setsid double fork included) when
  it ends or is killed; `--new-session` keeps it off the caller's terminal.
- an unprivileged user, uid and gid 65534, no capabilities and no-new-privileges (setuid binaries stay
  unprivileged). When coopt runs as root, bwrap runs without a user namespace (a user namespace made by root maps
  uid 65534 inside to root outside, whose files it could then read as their owner) and `setpriv` drops to the
  real uid 65534 inside the sandbox, which also makes RLIMIT_NPROC count (it does not apply to root). When coopt
  runs as another user, bwrap makes a user namespace that maps 65534 inside to that user.

As root, the scratch directory is handed to uid 65534 (`prepare_scratch`), and read-only paths must be readable by
other users to be of use inside (`hidden_from_nobody` names those that are not).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Sequence
from functools import lru_cache

NOBODY = 65534
# The system a compiler, a linker, sanitizer runtimes and ordinary shell tools need, read-only.
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
# Readable by root only, but masked too: with a user namespace the sandbox's user is the caller outside.
MASKED = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-")
INSTALL_HINT = "install bubblewrap (apt-get install bubblewrap, dnf install bubblewrap)"


def as_root() -> bool:
    """Whether coopt runs as root: then the drop to uid 65534 happens inside the sandbox (see the module doc)."""
    return os.geteuid() == 0


def _system_mounts() -> list[str]:
    out: list[str] = []
    for path in SYSTEM:
        if os.path.islink(path):  # merged /usr: /bin -> usr/bin
            out += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            out += ["--ro-bind", path, path]
    for path in MASKED:
        if os.path.exists(path):
            out += ["--ro-bind", "/dev/null", path]
    return out


def _inside(path: str, tops: Sequence[str] | dict[str, str]) -> bool:
    """Whether `path` is one of `tops` or lies below one of them."""
    return any(path == t or path.startswith(t.rstrip("/") + "/") for t in tops)


def _bind_order(path: str) -> tuple[int, str]:
    return (path.rstrip("/").count("/"), path)  # parents before what is mounted inside them


def argv(
    cmd: Sequence[str], scratch: str, cwd: str, readonly: Sequence[str] = (), network: bool = False
) -> list[str]:
    """bwrap (and setpriv, as root) around `cmd`: `scratch` writable, `readonly` paths read-only, cwd `cwd`.

    Paths are mounted at their real paths (symlinks resolved), so the names the caller computed stay valid
    inside. `network` keeps the host's network (only for callers that ask for it; no contained run here does)."""
    bwrap = shutil.which("bwrap") or "bwrap"
    out = [bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if not network:
        out.append("--unshare-net")
    root = as_root()
    if not root:
        out += ["--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY)]
    # --as-pid-1 with a shell as that pid 1: bwrap's own init hands the exit status to its monitor, which then
    # exits without waiting for it, so the CPU time of everything contained was lost to the caller's
    # RUSAGE_CHILDREN (the optimizer times workloads by it). The shell waits for the command and exits with its
    # status (128 + the signal's number when a signal killed it); the command itself is not pid 1, so signals
    # keep their usual effect on it.
    out += ["--as-pid-1", "--die-with-parent", "--new-session", *_system_mounts(), "--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--tmpfs", "/tmp"]
    writable = os.path.realpath(scratch)
    binds: dict[str, str] = {writable: "--bind"}
    for path in readonly:
        real = os.path.realpath(path)
        # What lies in the scratch directory stays writable (a fuzzer's corpus named on its command line).
        if os.path.exists(real) and real != "/" and not _inside(real, [*SYSTEM, writable]):
            binds.setdefault(real, "--ro-bind")
    made: set[str] = set()
    for path in sorted(binds, key=_bind_order):
        # Parents get fresh, traversable directories: the real ones may be private (0700) to the caller.
        parents = []
        parent = os.path.dirname(path)
        while parent not in ("/", "/tmp") and parent not in made and not _inside(parent, [*binds, *SYSTEM]):
            parents.append(parent)
            parent = os.path.dirname(parent)
        for parent in reversed(parents):
            out += ["--perms", "0755", "--dir", parent]
            made.add(parent)
        out += [binds[path], path, path]
    out += ["--chdir", os.path.realpath(cwd)]
    if root:
        out += ["--cap-add", "CAP_SETUID,CAP_SETGID,CAP_SETPCAP", "--", shutil.which("setpriv") or "setpriv",
                "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups", "--inh-caps=-all",
                "--bounding-set=-all", "--no-new-privs"]
    return [*out, "--", "/bin/sh", "-c", '"$@"; exit $?', "sh", *cmd]


def hidden_from_nobody(paths: Sequence[str]) -> list[str]:
    """Those of `paths` that uid 65534 cannot read (a file) or enter (a directory) when coopt runs as root: a
    mount keeps its modes, and only the parents of a mounted path are fresh. A private (0700) project directory
    is one; its files are then out of the contained command's reach."""
    if not as_root():
        return []
    out = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if st.st_uid == NOBODY:
            continue
        need = stat.S_IXOTH if stat.S_ISDIR(st.st_mode) else stat.S_IROTH
        if not st.st_mode & need:
            out.append(path)
    return out


def prepare_scratch(scratch: str) -> None:
    """Make `scratch` writable by uid 65534 when coopt runs as root: chown what in it is not 65534's yet.

    Symbolic links are never followed (a candidate may leave one pointing at /etc/passwd for the next run), and a
    file with other hard links is left alone (its other names may be outside)."""
    if not as_root():
        return
    for top, _dirs, files in os.walk(scratch):
        for path in [top, *(os.path.join(top, name) for name in files)]:
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode) or (not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1):
                continue
            if st.st_uid != NOBODY:
                os.chown(path, NOBODY, NOBODY, follow_symlinks=False)


@lru_cache(maxsize=1)
def unavailable() -> str:
    """Why commands cannot be contained with bubblewrap here, in one line; "" when they can.

    Tries the real thing once: a shell that must come up as uid 65534 in its own PID namespace."""
    if not shutil.which("bwrap"):
        return "bubblewrap (bwrap) is not installed: " + INSTALL_HINT
    if as_root() and not shutil.which("setpriv"):
        return "setpriv is not installed (util-linux): it drops to uid 65534 inside the sandbox"
    probe = tempfile.mkdtemp(prefix="coopt-bwrap-probe-")
    try:
        prepare_scratch(probe)
        proc = subprocess.run(argv(["/bin/sh", "-c", "id -u; echo $$"], probe, probe), capture_output=True,
                              text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.SubprocessError) as exc:
        return "bubblewrap cannot start: %s" % exc
    finally:
        shutil.rmtree(probe, ignore_errors=True)
    if proc.returncode != 0 or proc.stdout.split()[:1] != [str(NOBODY)]:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        why = lines[-1] if lines else "exit %d, output %r" % (proc.returncode, proc.stdout[:80])
        return "bubblewrap does not work here (%s): it needs unprivileged user namespaces " \
            "(sysctl kernel.unprivileged_userns_clone=1) or root" % why
    return ""
