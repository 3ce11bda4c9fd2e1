"""Containment (verify/sandbox/) with real bubblewrap and real processes: what a contained
command can reach (files, other processes, the network, the environment), who it runs as, the limits that stop fork
and memory bombs (ASan builds too), that nothing it starts outlives it, and what coopt does where bubblewrap is
missing (doctor's finding, verify's refusal, the opt-in).

These tests run as root in CI, which is the hard case: root writes anywhere, ignores RLIMIT_NPROC, and a user
namespace made by root maps the sandbox's user to root outside.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import SRC, Coopt, require
from coopt.verify import sandbox
from coopt.verify.sandbox import bwrap
from coopt.verify.sandbox.cgroup import Cgroup

pytestmark = pytest.mark.skipif(bool(bwrap.unavailable()), reason="bubblewrap does not work here: %s"
                                % bwrap.unavailable())


def _processes_with(token: str) -> list[int]:
    """Live processes (not zombies) of the whole machine whose command line holds `token`."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ")
            state = Path(entry.path, "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if token.encode() in cmdline and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def _token_seconds() -> str:
    """A sleep duration no other process on the machine uses: `sleep <it>` is findable by command line."""
    return "%d.%06d" % (300 + os.getpid() % 100, uuid.uuid4().int % 1000000)


def _build(tmp_path: Path, name: str, source: str, *flags: str) -> str:
    require("clang")
    src = tmp_path / (name + ".c")
    src.write_text(source)
    exe = tmp_path / name
    subprocess.run(["clang", "-O1", *flags, str(src), "-o", str(exe)], check=True, capture_output=True)
    return str(exe)


@pytest.fixture
def scratch(tmp_path: Path) -> str:
    d = tmp_path / "scratch"
    d.mkdir()
    return str(d)


def test_runs_as_nobody_in_a_pid_namespace_without_the_parents_environ(scratch: str, monkeypatch:
                                                                        pytest.MonkeyPatch) -> None:
    canary = "canary-%s" % uuid.uuid4().hex
    monkeypatch.setenv("OPENAI_API_KEY", canary)  # the parent holds a secret in its environment
    me = os.getpid()
    res = sandbox.run(["id -u; id -g; ls /proc | grep -x '[0-9]*' | tr '\\n' ' '; echo; "
                       "cat /proc/%d/environ; cat /proc/[0-9]*/environ | tr '\\0' '\\n' | grep -c %s; "
                       "cat /etc/shadow; ls /root /home" % (me, canary)], scratch, shell=True)
    lines = res.stdout.splitlines()
    assert res.sandboxed and lines[:2] == ["65534", "65534"], res.stdout + res.stderr
    pids = [int(p) for p in lines[2].split()]
    assert me not in pids and max(pids) < 50, pids  # a PID namespace of its own: only its few processes
    assert lines[3] == "0"  # no /proc/*/environ it can read holds the canary
    assert "/proc/%d/environ: No such file" % me in res.stderr
    assert "/etc/shadow: Permission denied" in res.stderr
    assert "/root': No such file" in res.stderr and "/home': No such file" in res.stderr
    assert canary not in res.stdout


def test_writes_nowhere_but_scratch(scratch: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = "coopt-probe-%s" % uuid.uuid4().hex
    cache = tmp_path / "cache"
    cache.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.setenv("COOPT_CACHE_DIR", str(cache))
    targets = [Path(os.path.expanduser("~")) / name, Path("/tmp") / name, cache / name, outside / name,
               Path("/var/tmp") / name, Path(scratch).parent / name]
    (outside / "given").write_text("given\n")  # a read-only path it was given: readable, not writable
    res = sandbox.run(["for f in %s; do echo x > $f; done; cat %s/given; echo y >> %s/given; echo ok > inside"
                       % (" ".join(map(str, targets)), outside, outside)], scratch, shell=True,
                      readonly=[str(outside)])
    assert res.sandboxed
    leaked = [str(t) for t in targets if t.exists()]
    for t in leaked:
        t.unlink()
    assert not leaked, leaked
    assert res.stdout.splitlines() == ["given"] and (outside / "given").read_text() == "given\n"
    assert (Path(scratch) / "inside").read_text() == "ok\n"
    assert os.stat(scratch).st_uid == (65534 if os.geteuid() == 0 else os.geteuid())


def test_no_network_not_even_loopback(scratch: str, tmp_path: Path) -> None:
    exe = _build(tmp_path, "connect", r"""
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(atoi(argv[1]));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    if (r == 0) write(s, "leak", 4);
    printf("%s\n", r == 0 ? "connected" : "refused");
    return 0;
}
""")
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.setblocking(False)
    try:
        port = server.getsockname()[1]
        assert subprocess.run([exe, str(port)], capture_output=True, text=True).stdout == "connected\n"
        server.accept()[0].close()  # the same program, not contained, reaches it
        res = sandbox.run([exe, str(port)], scratch)
        assert res.sandboxed and res.isolated_network and res.stdout == "refused\n", res.stdout + res.stderr
        with pytest.raises(BlockingIOError):  # a connection would be waiting in the backlog by now
            server.accept()
    finally:
        server.close()


def test_environment_is_only_what_was_passed_less_secrets(scratch: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "ASAN_OPTIONS": "detect_leaks=0", "COOPT_INPUT_TIMEOUT": "2",
           "OPENAI_API_KEY": "sk-1", "COOPT_CACHE_HMAC_KEY": "k", "GITHUB_TOKEN": "t", "DB_PASSWORD": "p"}
    res = sandbox.run(["/usr/bin/env"], scratch, env=env)
    got = dict(line.split("=", 1) for line in res.stdout.splitlines())
    assert res.sandboxed and got.pop("PWD") == scratch  # bwrap's --chdir sets it
    assert got == {"PATH": "/usr/bin:/bin", "ASAN_OPTIONS": "detect_leaks=0", "COOPT_INPUT_TIMEOUT": "2"}, got


def test_setsid_double_fork_does_not_outlive_the_run(scratch: str) -> None:
    token = _token_seconds()
    res = sandbox.run(["setsid sh -c 'sleep %s & echo started' </dev/null; sleep 0.2; echo done" % token],
                      scratch, shell=True)
    survivors = _processes_with("sleep " + token)
    for pid in survivors:  # leave nothing behind on this machine, then fail
        os.kill(pid, signal.SIGKILL)
    assert res.stdout.split() == ["started", "done"], res.stdout + res.stderr
    assert not survivors, "the daemonized child outlived the contained command"


def test_timeout_kills_everything_it_started(scratch: str) -> None:
    token = _token_seconds()
    res = sandbox.run(["sleep %s & setsid sleep %s & sleep %s" % (token, token, token)], scratch,
                      sandbox.Limits(wall_s=1), shell=True)
    survivors = _processes_with("sleep " + token)
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert res.timed_out and not survivors
    # Killed, not waited for: the run came back long before the sleeps would have ended by themselves (as root,
    # the uid change cleared bwrap's --die-with-parent signal and this took the sleeps' whole 300 s).
    assert res.seconds < float(token) / 10, res.seconds


def test_an_output_flood_is_cut_at_the_limit_and_stopped(scratch: str) -> None:
    """A command that prints without end (a wrong rewrite looping over a write) is killed once one stream passes
    the limit, and only that much is kept (without it, 5 GB in a few seconds)."""
    token = _token_seconds()
    for redirect, stream in (("", "stdout"), (" >&2", "stderr")):
        res = sandbox.run(["yes %s%s" % (token, redirect)], scratch, sandbox.Limits(wall_s=float(token),
                          output_mb=1), shell=True)
        survivors = _processes_with("yes " + token)
        for pid in survivors:
            os.kill(pid, signal.SIGKILL)
        kept = res.stdout if stream == "stdout" else res.stderr
        assert res.output_exceeded and not res.timed_out and not survivors, (res.notes, survivors)
        assert len(kept) == 1 << 20 and kept.startswith(token + "\n"), len(kept)
        assert res.returncode != 0 and any("more than 1 MB to %s" % stream in n for n in res.notes), res.notes


def test_a_timed_run_may_print_past_the_limit(scratch: str) -> None:
    """Timings and training runs discard stdout: a benchmark that prints 100 MB is timed, not stopped."""
    from coopt.verify.perfstats import timed

    line = ["head -c 100000000 /dev/zero"]
    res = sandbox.run(line, scratch, sandbox.Limits(wall_s=120), shell=True, keep_stdout=False)
    assert res.returncode == 0 and not res.output_exceeded and res.stdout == ""
    assert timed(line, scratch, sandbox.scrubbed_env(scratch), sandbox.Limits(wall_s=120), shell=True) > 0
    assert sandbox.run(line, scratch, sandbox.Limits(wall_s=120), shell=True).output_exceeded


def test_large_input_and_output_pass_through_whole(scratch: str) -> None:
    data = os.urandom(3 << 20).hex().encode()  # 6 MiB each way: feeding and reading must interleave
    res = sandbox.run(["cat"], scratch, sandbox.Limits(wall_s=120), stdin=data)
    assert res.returncode == 0 and not res.timed_out and not res.output_exceeded
    assert res.stdout.encode() == data


def test_a_command_that_closes_its_output_and_runs_on_is_timed_out(scratch: str) -> None:
    token = _token_seconds()
    res = sandbox.run(["exec >/dev/null 2>&1; sleep %s" % token], scratch, sandbox.Limits(wall_s=1), shell=True)
    survivors = _processes_with("sleep " + token)
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert res.timed_out and not survivors


FORK_BOMB = r"""
#include <stdio.h>
#include <unistd.h>
int main(void) {
    int n = 0;
    for (; n < 2000; n++) {
        pid_t p = fork();
        if (p < 0) break;
        if (p == 0) { pause(); _exit(0); }
    }
    printf("%d\n", n);
    return 0;
}
"""


def test_fork_bomb_is_stopped_even_for_root(scratch: str, tmp_path: Path) -> None:
    exe = _build(tmp_path, "forks", FORK_BOMB)
    res = sandbox.run([exe], scratch, sandbox.Limits(processes=20, wall_s=120))
    assert res.sandboxed and not res.timed_out, res.stderr
    assert 0 < int(res.stdout) <= 20, res.stdout  # the 21st process was refused
    assert not _processes_with(exe)  # and the 20 it made are gone with it


MEMORY_BOMB = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
char *kept[1024];
int main(void) {
    long sum = 0;
    for (int mb = 0; mb < 1024; mb++) {
        kept[mb] = malloc(1 << 20);
        if (!kept[mb]) { printf("malloc failed at %d MB\n", mb); return 3; }
        memset(kept[mb], mb & 0x7f, 1 << 20);
        sum += kept[mb][(mb * 4099) & ((1 << 20) - 1)];
    }
    printf("allocated 1024 MB (%ld)\n", sum);  /* uses every block: the compiler cannot drop them */
    return 0;
}
"""


@pytest.mark.parametrize("sanitized", [False, True], ids=["plain", "asan"])
def test_memory_bomb_is_stopped(scratch: str, tmp_path: Path, sanitized: bool) -> None:
    if Cgroup.create(64, 0) is None:
        pytest.skip("no cgroup here (not root): memory is limited by rlimits and the sanitizers' RSS limits")
    exe = _build(tmp_path, "eat", MEMORY_BOMB, *(["-fsanitize=address"] if sanitized else []))
    # As the verifier runs sanitizer builds: no address-space limit (ASan reserves terabytes of shadow) and
    # ASan's own RSS limit far above the cgroup's.
    env = sandbox.scrubbed_env(scratch, {"ASAN_OPTIONS": "detect_leaks=0:hard_rss_limit_mb=4096"})
    res = sandbox.run([exe], scratch, sandbox.Limits(address_space_mb=0, memory_mb=128, wall_s=120), env)
    assert res.sandboxed and "allocated" not in res.stdout, res.stdout
    assert res.returncode == 128 + signal.SIGKILL and res.memory_exceeded, (res.returncode, res.stderr[-500:])
    assert "memory limit of 128 MB reached" in res.notes


def test_compilers_and_sanitizer_runtimes_work_inside(scratch: str, tmp_path: Path) -> None:
    require("clang")
    src = tmp_path / "project" / "main.c"
    src.parent.mkdir()
    src.write_text('#include <stdio.h>\nint main(void) { char b[4]; sprintf(b, "%d", 7); puts(b); return 0; }\n')
    line = "clang -O1 -fsanitize=address,undefined %s -o app && ./app" % src
    res = sandbox.run([line], scratch, sandbox.Limits(address_space_mb=0), shell=True, readonly=[str(src.parent)])
    assert res.sandboxed and res.returncode == 0 and res.stdout == "7\n", res.stderr


def test_scratch_symlinks_are_not_followed_when_handing_it_over(scratch: str, tmp_path: Path) -> None:
    # A candidate leaves a link to a file of root's in its scratch; the next run must not chown that file.
    victim = tmp_path / "victim"
    victim.write_text("root's\n")
    sandbox.run(["ln -s %s link" % victim], scratch, shell=True)
    sandbox.run(["true"], scratch, shell=True)
    assert victim.stat().st_uid == os.geteuid()


# The caller: a Python process running sandbox.run on a command that leaves a grandchild sleeping.
CALLER = """
import sys
sys.path.insert(0, %r)
from coopt.verify import sandbox
try:
    sandbox.run(["sh -c 'sleep %s & echo started > started; sleep 300'"], %r, sandbox.Limits(wall_s=600),
                shell=True)
except KeyboardInterrupt:
    sys.exit(42)
sys.exit(0)
"""


def test_interrupt_kills_the_whole_group(tmp_path: Path) -> None:
    """sandbox.run() when its caller is interrupted: the contained command and everything it started are killed
    before the KeyboardInterrupt goes on (they run in their own session: the terminal's Ctrl-C never reaches
    them)."""
    scratch = tmp_path / "scratch"
    token = _token_seconds()
    proc = subprocess.Popen([sys.executable, "-c", CALLER % (str(SRC), token, str(scratch))])
    try:
        deadline = time.monotonic() + 60
        while not (scratch / "started").exists():
            assert proc.poll() is None, "the caller ended early"
            assert time.monotonic() < deadline, "the contained command never started"
            time.sleep(0.05)
        assert _processes_with("sleep " + token)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 42  # the interrupt went on to the caller
    finally:
        if proc.poll() is None:
            proc.kill()
    survivors = _processes_with("sleep " + token)
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert not survivors, "the grandchild survived the interrupt"


# Where bubblewrap is missing: a PATH with everything of /usr/bin but bwrap.
@pytest.fixture
def without_bwrap(coopt: Coopt, tmp_path: Path, launcher_bin: Path) -> Iterator[Coopt]:
    farm = tmp_path / "usr-bin-without-bwrap"
    farm.mkdir()
    for entry in os.scandir("/usr/bin"):
        if entry.name != "bwrap":
            (farm / entry.name).symlink_to(entry.path)
    coopt.env["PATH"] = "%s:%s" % (launcher_bin, farm)
    yield coopt


def test_doctor_names_what_is_missing(without_bwrap: Coopt, tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "coopt.toml").write_text('[llm]\nprovider = "openai"\nbase_url = "http://127.0.0.1:9"\n')
    out = without_bwrap.coopt("doctor", "--only", "sandbox", cwd=proj, check=False)
    assert out.returncode == 1 and "bubblewrap (bwrap) is not installed" in out.stdout, out.stdout + out.stderr
    assert "fix: apt-get install bubblewrap" in out.stdout
    (proj / "coopt.toml").write_text('[verify]\nallow_unsandboxed = true\n')
    out = without_bwrap.coopt("doctor", "--only", "sandbox", cwd=proj, check=False)
    assert out.returncode == 0 and "WARN" in out.stdout and "rlimits only" in out.stdout, out.stdout


def test_doctor_where_bubblewrap_works(coopt: Coopt, tmp_path: Path) -> None:
    out = coopt.coopt("doctor", "--only", "sandbox", cwd=tmp_path, check=False)
    assert out.returncode == 0 and "bubblewrap works" in out.stdout, out.stdout + out.stderr
    assert ("by cgroup" in out.stdout) == (Cgroup.create(64, 64) is not None)


def test_verify_refuses_without_bubblewrap_unless_allowed(without_bwrap: Coopt, tmp_path: Path) -> None:
    require("clang", "llvm-objcopy", "llvm-nm")
    orig = tmp_path / "o.c"
    orig.write_text("int add(int a, int b) { return a + b; }\n")
    args = ["verify", "--original", str(orig), "--candidate", str(orig), "--max-inputs", "20", "--no-sanitizers"]
    refused = without_bwrap.coopt(*args, cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stdout + refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "bubblewrap (bwrap) is not installed" in lines[0] and "allow_unsandboxed" in lines[0]
    without_bwrap.env["COOPT_ALLOW_UNSANDBOXED"] = "1"
    allowed = without_bwrap.coopt(*args, cwd=tmp_path, check=False)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "WITHOUT a sandbox" in allowed.stderr


def test_paths_in_scratch_named_on_the_command_line_stay_writable(scratch: str) -> None:
    # argv's absolute paths are made readable; one inside scratch (a fuzzer's corpus) must stay writable.
    corpus = Path(scratch) / "corpus"
    corpus.mkdir()
    res = sandbox.run(["/bin/sh", "-c", 'echo unit > "$1"/new', "sh", str(corpus)], scratch)
    assert res.returncode == 0 and (corpus / "new").read_text() == "unit\n", res.stderr


def test_optimize_refuses_llm_levels_without_bubblewrap_but_runs_compiler_tools(without_bwrap: Coopt,
                                                                                 tmp_path: Path) -> None:
    llm = without_bwrap.coopt("optimize", "--levels", "source", "--llm", "local", cwd=tmp_path, check=False)
    assert llm.returncode == 2 and "bubblewrap (bwrap) is not installed" in llm.stderr, llm.stdout + llm.stderr
    assert "allow_unsandboxed" in llm.stderr and "Traceback" not in llm.stderr
    # Compiler tools run the project's own code: a warning, and the run goes on (to its next problem here: no
    # journal or profile in an empty directory).
    tools = without_bwrap.coopt("optimize", "--levels", "flags", cwd=tmp_path, check=False)
    assert "WITHOUT a sandbox" in tools.stderr and "allow_unsandboxed" not in tools.stderr, tools.stderr


def test_cpu_time_of_the_contained_command_reaches_the_caller(scratch: str) -> None:
    # The optimizer times workloads by RUSAGE_CHILDREN: the command's CPU must be counted, not only bwrap's.
    loop = "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    plain = subprocess.run(["/bin/sh", "-c", loop], check=True)
    mid = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = sandbox.run([loop], scratch, shell=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    outside = mid.ru_utime - before.ru_utime
    inside = after.ru_utime - mid.ru_utime
    assert plain.returncode == 0 and res.returncode == 0 and res.sandboxed
    assert inside > outside / 2, (inside, outside)  # the same loop: about the same user time, not none


def test_the_command_is_not_pid_1_and_dies_by_its_signals(scratch: str) -> None:
    res = sandbox.run(["/bin/sh", "-c", "echo $$; kill -TERM $$; echo survived"], scratch)
    assert res.stdout.split() != ["1"] and "survived" not in res.stdout
    assert res.returncode == 128 + signal.SIGTERM, (res.returncode, res.stdout, res.stderr)


def test_a_shell_line_reads_the_files_it_names_but_not_the_directories(scratch: str, tmp_path: Path) -> None:
    # A project's test hook names its check script by absolute path (`lua /abs/check.lua`): the script is readable
    # inside the sandbox; a file beside it that the line does not name is not, nor is a directory the line names.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "check.txt").write_text("named\n")
    (outside / "secret.txt").write_text("not named\n")
    res = sandbox.run(["cat '%s'; ls %s; cat /proc/self/stat >/dev/null" % (outside / "check.txt", outside)],
                      scratch, shell=True)
    assert res.sandboxed and res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["named", "check.txt"], res.stdout + res.stderr
