"""`coopt doctor` on this machine, and on machines missing something: a PATH without clang, LLVM tools of another
version, an unwritable or impossible cache directory, no perf, perf not permitted, a broken config, an LLM endpoint
that is down, refuses or serves another model, a local provider without a model. Each problem is named with its
fix and makes the exit status 1; the other checks still run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import Coopt, require

HOOKS = '[hooks]\nbuild = "make CC=coopt-cc"\nprofile = "./app"\ntest = "make test"\n'


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    d = tmp_path / "proj"
    d.mkdir()
    (d / "coopt.toml").write_text(HOOKS)
    return d


def doctor(coopt: Coopt, cwd: Path, *args: str) -> tuple[int, dict[str, list[tuple[str, str, str]]], str]:
    """Exit status, findings by area as (level, message, fix), and the text output."""
    text = coopt.coopt("doctor", *args, cwd=cwd, check=False)
    assert "Traceback" not in text.stderr, text.stderr
    js = coopt.coopt("doctor", "--json", *args, cwd=cwd, check=False)
    assert js.returncode == text.returncode
    data = json.loads(js.stdout)
    assert data["ok"] == (js.returncode == 0)
    by_area: dict[str, list[tuple[str, str, str]]] = {}
    for f in data["findings"]:
        by_area.setdefault(f["area"], []).append((f["level"], f["message"], f["fix"]))
    return text.returncode, by_area, text.stdout


def levels(findings: dict[str, list[tuple[str, str, str]]], area: str) -> set[str]:
    return {level for level, _, _ in findings.get(area, [])}


def path_without(tmp_path: Path, launcher_bin: Path, *prefixes: str) -> str:
    """A PATH holding coopt's launchers and every program of /usr/bin except those whose names start with one of
    `prefixes`: a machine where they are not installed."""
    farm = tmp_path / "usr-bin-without"
    farm.mkdir()
    for entry in os.scandir("/usr/bin"):
        if not entry.name.startswith(prefixes):
            (farm / entry.name).symlink_to(entry.path)
    return "%s:%s" % (launcher_bin, farm)


def test_this_machine_is_ready(coopt: Coopt, proj: Path) -> None:
    require("clang", "perf", "llvm-profdata")
    code, f, out = doctor(coopt, proj)
    assert code == 0, out
    for area in ("config", "compiler", "llvm", "pgo", "coopt-cc", "perf", "cache", "llm"):
        assert levels(f, area) <= {"ok", "info"}, (area, f.get(area))
    assert any("records cpu-clock" in m for _, m, _ in f["perf"])
    assert any(m.startswith(str(coopt.cache_dir)) for _, m, _ in f["cache"])
    assert out.rstrip().endswith("ready")


def test_path_without_clang(coopt: Coopt, proj: Path, tmp_path: Path, launcher_bin: Path) -> None:
    require("clang", "perf")
    coopt.env["PATH"] = path_without(tmp_path, launcher_bin, "clang")
    code, f, out = doctor(coopt, proj)
    assert code == 1
    [(level, msg, fix)] = f["compiler"]
    assert level == "error" and "'clang' (default) is not found on PATH" in msg
    assert "apt-get install clang" in fix and "COOPT_COMPILER" in fix
    assert levels(f, "perf") == {"ok"} and levels(f, "cache") == {"ok"}  # the other checks still ran
    assert re.search(r"^ERROR\s+compiler\s+the real compiler 'clang'", out, re.M)
    assert re.search(r"^\s+fix: install clang", out, re.M) and "1 problem(s) must be fixed" in out


def test_llvm_tools_of_the_clang_in_use(coopt: Coopt, proj: Path, tmp_path: Path, launcher_bin: Path) -> None:
    """A clang whose own directory has no LLVM tools, on a PATH without llvm-profdata: PGO cannot work."""
    require("clang")
    real = os.path.realpath(shutil.which("clang") or "")
    lone = tmp_path / "lone-clang"
    lone.mkdir()
    shutil.copy2(real, lone / "clang")
    major = re.search(r"version (\d+)", subprocess.run([real, "--version"], capture_output=True, text=True).stdout)
    assert major
    coopt.env["PATH"] = path_without(tmp_path, launcher_bin, "llvm-profdata")
    coopt.env["COOPT_COMPILER"] = str(lone / "clang")
    code, f, _ = doctor(coopt, proj, "--only", "compiler")
    assert code == 1
    errors = [(m, fix) for level, m, fix in f["llvm"] if level == "error"]
    assert len(errors) == 1 and errors[0][0].startswith("llvm-profdata matching clang %s" % major.group(1))
    assert "needed by level pgo" in errors[0][0] and errors[0][1] == "apt-get install llvm-%s" % major.group(1)
    # Without the pgo level the same machine is usable: the missing tool is a warning.
    coopt.env["COOPT_LEVELS"] = "flags"
    code, f, _ = doctor(coopt, proj, "--only", "compiler")
    assert code == 0 and {lv for lv, m, _ in f["llvm"] if "llvm-profdata" in m} == {"warn"}


def test_clang_without_its_profile_runtime(coopt: Coopt, proj: Path, tmp_path: Path) -> None:
    """A clang copied away from its resource directory links no instrumented program: PGO is an error with the
    package to install, and `coopt optimize` would not spend budget on it (tests/test_optimize_parts.py)."""
    require("clang", "llvm-profdata")
    real = os.path.realpath(shutil.which("clang") or "")
    lone = tmp_path / "lone-clang"
    lone.mkdir()
    shutil.copy2(real, lone / "clang")
    major = re.search(r"version (\d+)", subprocess.run([real, "--version"], capture_output=True, text=True).stdout)
    assert major
    coopt.env["COOPT_COMPILER"] = str(lone / "clang")
    code, f, _ = doctor(coopt, proj, "--only", "compiler")
    assert code == 1
    [(level, msg, fix)] = f["pgo"]
    assert level == "error" and "cannot link an instrumented program" in msg
    assert fix == "apt-get install libclang-rt-%s-dev" % major.group(1)


def test_unwritable_cache_directory(coopt: Coopt, proj: Path, tmp_path: Path) -> None:
    cache = tmp_path / "frozen-cache"
    cache.mkdir()
    if subprocess.run(["chattr", "+i", str(cache)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here (needs root and a file system with attributes)")
    try:
        coopt.env["COOPT_CACHE_DIR"] = str(cache)
        code, f, out = doctor(coopt, proj, "--only", "cache")
        assert code == 1, out
        [(level, msg, fix)] = f["cache"]
        assert level == "error" and msg.startswith("cache directory %s (env COOPT_CACHE_DIR) cannot be written" % cache)
        assert "Operation not permitted" in msg and "COOPT_CACHE_DIR" in fix
        # Read-only, the same directory is fine: builds only read it.
        coopt.env["COOPT_READONLY"] = "1"
        code, f, _ = doctor(coopt, proj, "--only", "cache")
        assert code == 0 and f["cache"][0][0] == "info" and "read-only (env COOPT_READONLY)" in f["cache"][0][1]
    finally:
        subprocess.run(["chattr", "-i", str(cache)], check=True)


def test_cache_directory_that_cannot_exist(coopt: Coopt, proj: Path, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    coopt.env["COOPT_CACHE_DIR"] = str(tmp_path / "a-file" / "cache")
    code, f, _ = doctor(coopt, proj, "--only", "cache")
    assert code == 1
    [(level, msg, _)] = f["cache"]
    assert level == "error" and "is not a directory" in msg and str(tmp_path / "a-file") in msg


def test_cache_over_its_size_limit(coopt: Coopt, proj: Path) -> None:
    require("clang")
    (proj / "f.c").write_text("int f(int x) { return x * 3; }\n")
    (proj / "v.c").write_text("int f(int x) { return (x << 1) + x; }\n")
    coopt.coopt("cache", "put", "--artifact", "v.c", "--unverified", "--", "clang", "-O2", "-c", "f.c", cwd=proj)
    coopt.env["COOPT_CACHE_MAX_SIZE"] = "1"
    code, f, _ = doctor(coopt, proj, "--only", "cache")
    assert code == 0  # a warning, not a missing part
    [(level, msg, fix)] = [x for x in f["cache"] if "entr" in x[1]]
    assert level == "warn" and msg.startswith("1 entry, ") and fix.startswith("coopt cache evict")


def test_perf_missing_or_not_permitted(coopt: Coopt, proj: Path, tmp_path: Path) -> None:
    coopt.env["COOPT_PERF"] = str(tmp_path / "no-such-perf")
    code, f, _ = doctor(coopt, proj, "--only", "perf")
    assert code == 1
    [(level, msg, fix)] = f["perf"]
    assert level == "error" and "perf is not installed" in msg and "linux-perf" in fix
    # perf_event_paranoid refusing an unprivileged user cannot be produced as root: a stand-in perf prints the
    # real perf's refusal (the only double here; the real perf is checked in test_this_machine_is_ready).
    fake = tmp_path / "perf"
    fake.write_text("#!/bin/sh\necho 'Error:' >&2\necho 'Access to performance monitoring and observability "
                    "operations is limited.' >&2\necho 'Consider adjusting /proc/sys/kernel/perf_event_paranoid "
                    "setting' >&2\nexit 255\n")
    fake.chmod(0o755)
    coopt.env["COOPT_PERF"] = str(fake)
    code, f, _ = doctor(coopt, proj, "--only", "perf")
    assert code == 1
    [(level, msg, fix)] = f["perf"]
    assert level == "error" and "cannot record cpu-clock" in msg and "kernel.perf_event_paranoid=" in msg
    assert "sysctl -w kernel.perf_event_paranoid=1" in fix


def test_broken_config_is_a_finding_and_the_rest_still_runs(coopt: Coopt, proj: Path) -> None:
    (proj / "coopt.toml").write_text('[optimize]\nmin_gain = "fast"\n')
    code, f, out = doctor(coopt, proj)
    assert code == 1
    [(level, msg, fix)] = f["config"]
    assert level == "error" and msg.startswith("%s:2: [optimize] min_gain: expected a number" % (proj / "coopt.toml"))
    assert "docs/config.md" in fix
    assert {"compiler", "perf", "cache", "llm"} <= set(f)


def test_missing_hooks_are_warnings(coopt: Coopt, proj: Path) -> None:
    (proj / "coopt.toml").write_text('[hooks]\nbuild = "make"\n')
    _, f, _ = doctor(coopt, proj, "--only", "config")
    assert ("warn", "no profile hook: `coopt nightly` cannot run") in [(lv, m) for lv, m, _ in f["config"]]


class _Models(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        body = json.dumps({"object": "list", "data": [{"id": "served-model", "object": "model"}]}).encode()
        code = 200 if self.path.endswith("/models") else 404
        if self.headers.get("Authorization") != "Bearer sekret":
            code = 401
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    """A real HTTP server on loopback answering the OpenAI protocol's GET /v1/models (with a key)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Models)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%d/v1" % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_llm_endpoint(coopt: Coopt, proj: Path, endpoint: str) -> None:
    coopt.env.update(COOPT_LLM_PROVIDER="openai", COOPT_LLM_BASE_URL=endpoint, COOPT_LLM_MODEL="served-model",
                     COOPT_LLM_API_KEY_ENV="TEST_KEY", TEST_KEY="sekret")
    code, f, _ = doctor(coopt, proj, "--only", "llm")
    assert code == 0 and f["llm"] == [("ok", "%s answers; model served-model" % endpoint, "")]
    coopt.env["COOPT_LLM_MODEL"] = "other-model"
    code, f, _ = doctor(coopt, proj, "--only", "llm")
    assert code == 0 and f["llm"][0][0] == "warn" and "does not list model 'other-model'" in f["llm"][0][1]
    coopt.env["TEST_KEY"] = "wrong"
    code, f, _ = doctor(coopt, proj, "--only", "llm")
    assert code == 1 and f["llm"][0][:2] == ("error", "%s answered HTTP 401 to GET /models" % endpoint)


def test_llm_endpoint_down(coopt: Coopt, proj: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    coopt.env.update(COOPT_LLM_PROVIDER="openai", COOPT_LLM_BASE_URL="http://127.0.0.1:%d/v1" % port,
                     COOPT_LLM_MODEL="m", COOPT_LLM_API_KEY_ENV="TEST_KEY", TEST_KEY="k")
    code, f, _ = doctor(coopt, proj, "--only", "llm")
    assert code == 1
    [(level, msg, fix)] = f["llm"]
    assert level == "error" and msg.startswith("cannot reach http://127.0.0.1:%d/v1" % port)
    assert "COOPT_LLM_BASE_URL" in fix
    coopt.env["COOPT_LLM_BASE_URL"] = "localhost:8000"
    code, f, _ = doctor(coopt, proj, "--only", "llm")
    assert code == 1 and "needs an http(s) base URL" in f["llm"][0][1]


def test_local_model_missing(coopt: Coopt, proj: Path, tmp_path: Path) -> None:
    coopt.env.update(COOPT_LLM_PROVIDER="local", COOPT_MODELS_DIR=str(tmp_path / "no-models"))
    code, f, _ = doctor(coopt, proj, "--only", "llm")
    assert code == 1
    model = [(m, fix) for level, m, fix in f["llm"] if "model" in m and level == "error"]
    assert model and model[0][1] == "coopt model fetch" and "no local model here" in model[0][0]


@pytest.mark.parametrize("fast", ["built for this version", "built for another", "missing"])
def test_an_installed_coopt_without_a_working_coopt_cc_fast_is_a_warning(coopt: Coopt, proj: Path, tmp_path: Path,
                                                                          fast_binary: Path, fast: str) -> None:
    """An installed coopt (in a site-packages directory) whose coopt-cc-fast is missing or stale hands every call
    to Python: a warning with its fix. Its absence from a source tree is only information (see the test above)."""
    import sys

    from conftest import SRC

    site = tmp_path / "lib" / "site-packages"
    shutil.copytree(SRC / "coopt", site / "coopt", ignore=shutil.ignore_patterns("__pycache__"))
    binary = site / "coopt" / "data" / "coopt-cc-fast"
    if fast == "built for this version":
        shutil.copy2(fast_binary, binary)
    elif fast == "built for another":
        binary.write_bytes(fast_binary.read_bytes().replace(b"fast-", b"fast+"))
        binary.chmod(0o755)
    code = "import sys; sys.path[:0] = [%r]; from coopt.cli import main; sys.exit(main())" % str(site)
    proc = subprocess.run([sys.executable, "-c", code, "doctor", "--json", "--only", "coopt-cc"], cwd=proj,
                          env=coopt.env, capture_output=True, text=True)
    found = [f for f in json.loads(proc.stdout)["findings"] if "coopt-cc-fast" in f["message"]]
    assert len(found) == 1, proc.stdout
    if fast == "built for this version":
        assert found[0]["level"] == "ok" and str(binary) in found[0]["message"]
    else:
        assert found[0]["level"] == "warn" and "reinstall coopt" in found[0]["fix"], found
        assert ("another coopt version" in found[0]["message"]) == (fast == "built for another")
    assert proc.returncode == 0  # a warning, not an error: builds work, only slower


@pytest.mark.parametrize("kind", ["redis", "http"])
def test_remotes_are_checked_as_configured(coopt: Coopt, proj: Path, tmp_path: Path, kind: str) -> None:
    """A configured remote is asked, not assumed: writable when configured so (a probe written and removed),
    read-only as configured, refusing writes where they are expected, or dead."""
    from support.servers import have, remote_store

    if not have({"redis": "/usr/bin/redis-server", "http": "/usr/sbin/nginx"}[kind]):
        pytest.skip("%s server not installed" % kind)
    with remote_store(kind, tmp_path / "store") as store:
        coopt.env["COOPT_REMOTE_STORAGE"] = store.spec
        code, f, out = doctor(coopt, proj)
        assert f["remote"][0][0] == "ok" and "writable (a probe entry was written and removed)" in f["remote"][0][1]
        assert not re.search(r"w-[0-9a-f]{16}", out)  # the write credential is never shown
        coopt.env["COOPT_REMOTE_STORAGE"] = store.read_only_spec + "|read-only"
        _, f, _ = doctor(coopt, proj)
        assert f["remote"][0][0] == "ok" and "read-only as configured" in f["remote"][0][1]
        coopt.env["COOPT_REMOTE_STORAGE"] = store.read_only_spec  # reads work, writes are refused
        code, f, _ = doctor(coopt, proj)
        level, message, fix = f["remote"][0]
        assert (level, code) == ("error", 1) and "reachable but refuses writes" in message
        assert "|read-only" in fix
        store.kill()
        coopt.env["COOPT_REMOTE_STORAGE"] = store.spec + "|connect-timeout=500|timeout=500"
        code, f, _ = doctor(coopt, proj)
        assert f["remote"][0][0] == "error" and "cannot be reached" in f["remote"][0][1] and code == 1
