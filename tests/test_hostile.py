"""The verifier against hostile candidates (issue 12): one row of tests/hostile_corpus/manifest.toml per case,
each run twice, with the static screen on (the verdict must be one of `reasons`) and off (containment as defence
in depth: the verdict must be one of `unscreened`). Both runs must hold the canaries (support/hostile.py): no
file outside the scratch directory, the fake secrets of the verifier's environment and of the canary file in
no file a candidate could have written nor in the evidence, no process the candidate started left alive,
nothing received on the port the candidates connect to, and the verifier itself still alive and within
MAX_VERIFIER_RSS_MB of memory (a candidate that floods stdout must not make it hold the flood).

The verifier runs in a process of its own (support/hostile.py as a script) with the secrets in its environment:
a candidate reads them from /proc/<ancestor>/environ as it would from coopt's own process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import require
from coopt.verify.verdict import Reason
from support import hostile

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

CORPUS = Path(__file__).parent / "hostile_corpus"
CASES = tomllib.loads((CORPUS / "manifest.toml").read_text())["case"]
DRIVER = Path(hostile.__file__)
VERIFY_TIMEOUT_S = 900  # the driver is killed past this (a hung verifier is a failure, not a timing assertion)
# Inputs per function: every attack acts on every call, on the first, or (memory_bomb) on n == 7, which the
# first 100 generated inputs hold; the optimizer's 300 would triple the cost of 58 runs for nothing.
MAX_INPUTS = 100
# What the verifier may hold: Python, the inputs, and each run's output up to sandbox.Limits.output_mb per stream.
MAX_VERIFIER_RSS_MB = 1024


def test_manifest_covers_the_attacks_of_issue_12() -> None:
    assert len([c for c in CASES if "gap" not in c]) >= 15
    attacks = " | ".join(c["attack"] for c in CASES)
    for kind in ("forged harness output", "forged harness result", "getenv", "/proc/<getppid()>/environ",
                 "/etc/shadow", "outside the scratch directory", "socket", "fork storm", "daemon", "inline asm",
                 "asm sideeffect", "syscall instruction", "first call only", "memory bomb", "signal to the parent",
                 "constructor", "atexit", "errno", "environ[0]", "dlsym", "system()", "harness detection"):
        assert kind in attacks, kind
    for c in CASES:
        assert (CORPUS / c["original"]).is_file() and (CORPUS / c["candidate"]).is_file(), c["name"]
        assert ("gap" in c) != ("reasons" in c), c["name"]
        for r in c.get("reasons", []) + [u for u in c.get("unscreened", []) if u != "accepted"]:
            Reason(r)  # a real reason name


def candidate_file(case: dict, tmp_path: Path) -> Path:
    """The candidate as the verifier gets it: .ll files are written with typed pointers (LLVM 14-16); an LLVM
    with opaque pointers gets them as `ptr`."""
    path = CORPUS / case["candidate"]
    if path.suffix != ".ll":
        return path
    probe = subprocess.run(["clang", "-S", "-emit-llvm", "-x", "c", "-", "-o", "-"], input="void f(int *p) {}",
                           capture_output=True, text=True, check=True).stdout
    if "(ptr" not in probe:
        return path
    out = tmp_path / path.name
    out.write_text(path.read_text().replace("i32*", "ptr"))
    return out


def run_case(case: dict, screen: bool, tmp_path: Path, canaries: hostile.Canaries) -> tuple[dict | None, str]:
    """Verify the case in a process of its own; its evidence (None when the process died) and its output."""
    work = tmp_path / "work"
    argv = [sys.executable, str(DRIVER), str(CORPUS / case["original"]), str(candidate_file(case, tmp_path)),
            "--workdir", str(work), "--screen", "on" if screen else "off", "--max-inputs", str(MAX_INPUTS)]
    for f in case.get("functions", []):
        argv += ["--function", f]
    env = {**os.environ, **canaries.env}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=VERIFY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return None, "the verifier ran past %d s\n%s" % (VERIFY_TIMEOUT_S, err[-2000:])
    if proc.returncode != 0:
        return None, "the verifier exited with %d\n%s" % (proc.returncode, err[-2000:])
    result = json.loads(out)
    if result["max_rss_mb"] > MAX_VERIFIER_RSS_MB:
        return None, "the verifier grew to %d MB of memory\n%s" % (result["max_rss_mb"], err[-2000:])
    return result["evidence"], out + err


def containment_problems(tmp_path: Path, canaries: hostile.Canaries, output: str) -> list[str]:
    """What escaped: probe files outside the scratch directories, the secret anywhere a candidate could write
    or in the verifier's output, live processes, bytes on the port."""
    work = tmp_path / "work"
    problems = []
    outside = hostile.escaped_files([tmp_path.parent, tmp_path, work])
    outside += [str(p) for p in tmp_path.rglob(hostile.PROBE_PREFIX + "*") if work not in p.parents]
    if outside:
        problems.append("files outside the scratch directory: %s" % ", ".join(sorted(set(outside))))
    leaked = canaries.leaks([tmp_path, *map(Path, hostile.escaped_files([tmp_path.parent]))])
    if canaries.token in output:
        leaked.append("(the verifier's output)")
    if leaked:
        problems.append("the secret reached: %s" % ", ".join(leaked))
    alive = hostile.survivors(tmp_path)
    if alive:
        problems.append("%d processes outlived the check (pids %s)" % (len(alive), alive[:10]))
    if canaries.received:
        problems.append("the port received: %r" % canaries.received[:3])
    return problems


@pytest.fixture
def canaries() -> Iterator[hostile.Canaries]:
    with hostile.canaries() as c:
        yield c


@pytest.mark.slow
@pytest.mark.parametrize("screen", [True, False], ids=["screened", "unscreened"])
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_hostile_candidate(case: dict, screen: bool, tmp_path: Path, canaries: hostile.Canaries) -> None:
    require("clang", "llvm-objcopy", "llvm-nm")
    if "socket" in case["name"] and not canaries.listening:
        pytest.skip("port %d is taken" % hostile.PORT)
    try:
        ev, output = run_case(case, screen, tmp_path, canaries)
        problems = containment_problems(tmp_path, canaries, output)
    finally:
        hostile.kill_survivors(tmp_path)
        hostile.remove_probes([tmp_path.parent])
    if ev is None:
        problems.append(output)
    else:
        v = ev["verdict"]
        got = v["reason"] or v["code"]
        allowed = case.get("reasons" if screen else "unscreened")
        if allowed is not None and got not in allowed:
            problems.append("verdict %s (%s), expected one of %s" % (got, v["detail"][:300], allowed))
    assert not problems, "%s (%s):\n- %s" % (case["name"], case["attack"], "\n- ".join(problems))
