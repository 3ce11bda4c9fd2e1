"""The project hooks runner: a command in the project directory, its output in a log with a header and the outcome,
its exit status checked, a timeout that stops the whole process group (grandchildren too), shell lines and argv
lists, commands that cannot start."""

from __future__ import annotations

import os
import time
from pathlib import Path

from coopt.config import Command
from coopt.hooks import Hook, run_hook, tail


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its parent (init, here) is gone for our purposes
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_output_exit_status_and_directory(tmp_path: Path) -> None:
    (tmp_path / "proj").mkdir()
    hook = Hook("build", Command(line="echo out; echo err >&2; pwd; echo $HOOK_VAR; exit 3"), str(tmp_path / "proj"),
                60)
    res = run_hook(hook, str(tmp_path / "logs" / "build.log"), dict(os.environ, HOOK_VAR="from-env"))
    assert res.returncode == 3 and not res.ok and res.describe() == "exit 3" and not res.timed_out
    text = (tmp_path / "logs" / "build.log").read_text().splitlines()
    assert text[0] == "# coopt hook build: echo out; echo err >&2; pwd; echo $HOOK_VAR; exit 3"
    assert text[1] == "# coopt cwd: %s" % (tmp_path / "proj") and text[2].startswith("# coopt started: ")
    assert text[3:7] == ["out", "err", str(tmp_path / "proj"), "from-env"]
    assert text[-1].startswith("# coopt exit 3 after ")
    assert tail(res.log) == ["out", "err", str(tmp_path / "proj"), "from-env"]
    assert tail(res.log, 2) == [str(tmp_path / "proj"), "from-env"]


def test_argv_list_is_run_without_a_shell(tmp_path: Path) -> None:
    script = tmp_path / "args.sh"
    script.write_text('#!/bin/sh\nfor a in "$@"; do echo "[$a]"; done\n')
    script.chmod(0o755)
    hook = Hook("test", Command(argv=(str(script), "two words", "$HOME", "*")), str(tmp_path), 60)
    res = run_hook(hook, str(tmp_path / "t.log"), os.environ)
    assert res.ok and res.describe() == "exit 0"
    assert tail(res.log) == ["[two words]", "[$HOME]", "[*]"]
    assert res.command == "%s 'two words' '$HOME' '*'" % script


def test_appending_to_a_log(tmp_path: Path) -> None:
    log = str(tmp_path / "rebuild.log")
    run_hook(Hook("clean", Command(line="echo cleaned"), str(tmp_path), 60), log, os.environ)
    run_hook(Hook("build", Command(line="echo built"), str(tmp_path), 60), log, os.environ, append=True)
    assert tail(log) == ["cleaned", "built"]
    assert Path(log).read_text().count("# coopt hook ") == 2


def test_command_that_cannot_start(tmp_path: Path) -> None:
    res = run_hook(Hook("bench", Command(argv=("no-such-program-here",)), str(tmp_path), 60), str(tmp_path / "b.log"),
                   os.environ)
    assert not res.ok and res.returncode is None and "no-such-program-here" in res.error
    assert res.describe().startswith("could not start: no-such-program-here")
    shell = run_hook(Hook("bench", Command(line="no-such-program-here"), str(tmp_path), 60), str(tmp_path / "s.log"),
                     os.environ)
    assert shell.returncode == 127 and "not found" in " ".join(tail(shell.log))


def test_timeout_stops_the_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    line = "sleep 300 & echo $! > %s; sh -c 'echo $$ >> %s; sleep 300'; wait" % (pids, pids)
    ticks: list[float] = []
    res = run_hook(Hook("build", Command(line=line), str(tmp_path), 2.0), str(tmp_path / "b.log"), os.environ,
                   tick=ticks.append)
    assert res.timed_out and res.returncode is None and not res.ok
    assert res.describe().startswith("timed out after ")
    assert ticks  # the status line was fed while it ran
    children = [int(p) for p in pids.read_text().split()]
    assert len(children) == 2
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in children), "a grandchild of the hook survived its timeout"
    assert Path(res.log).read_text().splitlines()[-1].startswith("# coopt timed out after ")
