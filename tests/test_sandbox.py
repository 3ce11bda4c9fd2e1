"""sandbox.run() when its caller is interrupted: the contained command and everything it started are killed
before the KeyboardInterrupt goes on (they run in their own session, so the terminal's Ctrl-C never reaches them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import SRC

# The caller: a Python process running sandbox.run on a command that leaves a grandchild sleeping.
CALLER = """
import sys
sys.path.insert(0, %r)
from coopt.verify import sandbox
try:
    sandbox.run(["sh -c 'sleep 300 & echo $! > grandchild.pid; sleep 300'"], %r, sandbox.Limits(wall_s=600),
                shell=True)
except KeyboardInterrupt:
    sys.exit(42)
sys.exit(0)
"""


def _alive(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def test_interrupt_kills_the_whole_group(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    pidfile = scratch / "grandchild.pid"
    proc = subprocess.Popen([sys.executable, "-c", CALLER % (str(SRC), str(scratch))])
    try:
        deadline = time.monotonic() + 60
        while not (pidfile.exists() and pidfile.read_text().strip()):
            assert proc.poll() is None, "the caller ended early"
            assert time.monotonic() < deadline, "the contained command never started"
            time.sleep(0.05)
        grandchild = int(pidfile.read_text())
        assert _alive(grandchild)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 42  # the interrupt went on to the caller
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    survived = _alive(grandchild)
    if survived:  # leave nothing behind on this machine, then fail
        os.killpg(os.getpgid(grandchild), signal.SIGKILL)
    assert not survived, "the grandchild survived the interrupt"
