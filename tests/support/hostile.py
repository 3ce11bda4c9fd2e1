"""Canaries for hostile candidates (tests/hostile_corpus, tests/test_hostile.py, tests/test_hostile_e2e.py,
bench/verify_hostile.py): fake secrets in the verifier's environment and in a file of the real home directory, a
listener on the port the candidates connect to, and the checks afterwards: no file outside the scratch
directory, no secret in any file a candidate could have written, no process left, nothing received.

Run as a script it is the verifier in a process of its own, so the secrets sit in a real process environment
(/proc/PID/environ shows a process's environment as it was at exec, not what os.environ changed later):

    python tests/support/hostile.py ORIGINAL CANDIDATE --workdir DIR [--screen on|off] [--function F ...]
                                    [--max-inputs N]

prints {"screen_option": bool, "evidence": {...}} as JSON on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pwd
import resource
import secrets
import shutil
import signal
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PROBE_PREFIX = "coopt-hostile-"  # every file a candidate leaves starts with it
PROCESS_NAME = "czhostile"  # the name (comm) the candidates give the processes they start
PORT = 47391  # the port socket_exfil connects to
SECRET_ENV = ("OPENAI_API_KEY", "COOPT_CACHE_HMAC_KEY", "COOPT_LLM_API_KEY")


def real_home() -> Path:
    """The home directory of the user in the password database (what getpwuid gives a candidate; $HOME may
    differ)."""
    return Path(pwd.getpwuid(os.getuid()).pw_dir)


def probe_dirs() -> list[Path]:
    """The fixed places outside any scratch directory the candidates write to (besides the directories above
    their working directory, which the caller checks under its own tmp directory)."""
    return [Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"), real_home()]


@dataclass
class Canaries:
    """Fake secrets for one run and what the listener on PORT received."""

    token: str
    env: dict[str, str]
    secret_file: Path
    received: list[bytes] = field(default_factory=list)
    listening: bool = False

    def leaks(self, paths: Sequence[Path]) -> list[str]:
        """The paths among `paths` (files, or directories searched recursively) whose bytes hold the token."""
        found = []
        needle = self.token.encode()
        for p in paths:
            for f in [p] if p.is_file() else (q for q in p.rglob("*") if q.is_file() and not q.is_symlink()):
                try:
                    if needle in f.read_bytes():
                        found.append(str(f))
                except OSError:
                    continue
        return found


@contextmanager
def canaries() -> Iterator[Canaries]:
    """Secrets for the environment of the verifier, a secret file in the real home directory (the "canary
    directory"), and a listener on 127.0.0.1:PORT that records whatever arrives. Removes what it made and
    every probe file the candidates left in the fixed places when done."""
    token = "canary-" + secrets.token_hex(8)
    env = {name: "%s-%s" % (name.lower(), token) for name in SECRET_ENV}
    env["OPENAI_API_KEY"] = "sk-" + token
    secret_dir = real_home() / ".coopt-hostile-canary"
    secret_dir.mkdir(exist_ok=True)
    (secret_dir / "secret").write_text("secret-%s\n" % token)
    c = Canaries(token, env, secret_dir / "secret")
    remove_probes()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    stop = threading.Event()
    worker = None
    try:
        listener.bind(("127.0.0.1", PORT))
        listener.listen(16)
        listener.settimeout(0.1)
        c.listening = True
    except OSError:
        pass

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                data = b"(connected)"
                try:
                    data += conn.recv(65536)
                except OSError:
                    pass
                c.received.append(data)

    if c.listening:
        worker = threading.Thread(target=serve, daemon=True)
        worker.start()
    try:
        yield c
    finally:
        stop.set()
        if worker is not None:
            worker.join()
        listener.close()
        shutil.rmtree(secret_dir, ignore_errors=True)
        remove_probes()


def escaped_files(extra: Sequence[Path] = ()) -> list[str]:
    """Probe files in the fixed places and directly in each of `extra`."""
    return sorted({str(p) for d in [*probe_dirs(), *extra] if d.is_dir() for p in d.glob(PROBE_PREFIX + "*")})


def remove_probes(extra: Sequence[Path] = ()) -> None:
    """Remove the probe files from the fixed places and from `extra`."""
    for name in escaped_files(extra):
        try:
            os.unlink(name)
        except OSError:
            pass


def survivors(under: Path) -> list[int]:
    """Processes a candidate started that are still alive: named PROCESS_NAME, or running an executable under
    `under` (the test's tmp directory, where the verifier built the harness)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            exe = os.readlink(entry / "exe")
        except OSError:
            continue
        if comm == PROCESS_NAME or exe.startswith(str(under) + os.sep):
            found.append(int(entry.name))
    return sorted(found)


def kill_survivors(under: Path) -> None:
    """SIGKILL what survivors() finds: processes this test's own run started."""
    for pid in survivors(under):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def main() -> int:
    here = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(here / "src"))
    from coopt.verify.pipeline import VerifyOptions, verify

    p = argparse.ArgumentParser(description="one verification, evidence as JSON")
    p.add_argument("original")
    p.add_argument("candidate")
    p.add_argument("--workdir", required=True)
    p.add_argument("--screen", choices=("on", "off"), default="on")
    p.add_argument("--function", action="append", default=[])
    p.add_argument("--max-inputs", type=int, default=VerifyOptions.max_inputs)
    a = p.parse_args()
    # ASSUMPTION (issue 12, the `screen` branch): VerifyOptions gets `screen: bool = True`. Until then there is
    # no screen, and both settings run the verifier as it is.
    has_screen = "screen" in {f.name for f in dataclasses.fields(VerifyOptions)}
    kw: dict[str, object] = {"max_inputs": a.max_inputs}
    if has_screen:
        kw["screen"] = a.screen == "on"
    options = VerifyOptions(**kw)  # type: ignore[arg-type]
    ev = verify(a.original, a.candidate, functions=a.function, options=options, workdir=a.workdir)
    # Peak resident memory of this verifier (kB on Linux): what a candidate's output or inputs made it hold.
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    json.dump({"screen_option": has_screen, "evidence": ev.to_dict(), "max_rss_mb": rss_mb}, sys.stdout,
              sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
