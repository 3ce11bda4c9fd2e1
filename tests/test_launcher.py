"""coopt-cc in front of a launcher (ccache, sccache), in every form a build writes it: `coopt-cc ccache clang`,
CMake's `coopt-cc;ccache` (an absolute compiler after the launcher), `COOPT_LAUNCHER`, `[compiler] launcher`, and
ccache's symlink directory on PATH. Real ccache and sccache with private cache directories.

For each form: the journal names the real compiler and the key is the one a compile without the launcher gets (so
a variant is shared with builds that do not use ccache); the object is plain clang's; the launcher ran the compile
(the second compile is a ccache hit); coopt-cc-fast replays the decision through the launcher too; a stored variant
is served without the launcher being asked. Misconfigurations give one line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import Coopt, require, write_fast_launcher
from support.servers import free_port

F_C = '#include "f.h"\nint f(int x) { return x * K; }\n'
VARIANT_C = F_C + '__attribute__((used)) static const char m[] = "coopt-variant";\n'
FLAGS = ["-O2", "-c", "f.c", "-o", "f.o"]


def ccache_stats(env: dict) -> dict[str, int]:
    """ccache's counters (`ccache --print-stats`, the machine-readable `ccache -s`)."""
    out = subprocess.run(["ccache", "--print-stats"], env=env, capture_output=True, text=True, check=True).stdout
    pairs = (line.split("\t") for line in out.splitlines() if "\t" in line)
    return {k: int(v) for k, v in pairs if v.isdigit()}


def ccache_hits(env: dict) -> int:
    s = ccache_stats(env)
    return s.get("direct_cache_hit", 0) + s.get("preprocessed_cache_hit", 0)


@pytest.fixture(params=["python", "coopt-cc-fast"])
def chain(request: pytest.FixtureRequest, coopt: Coopt, tmp_path: Path) -> Coopt:
    """The `coopt` set-up with a private ccache directory; coopt-cc is the Python wrapper alone, or the installed
    kind (coopt-cc-fast first)."""
    require("clang", "ccache")
    env = dict(coopt.env, CCACHE_DIR=str(tmp_path / "ccache"))
    for k in list(env):
        if k.startswith("CCACHE_") and k != "CCACHE_DIR":
            del env[k]
    if request.param == "coopt-cc-fast":
        bindir = tmp_path / "fastbin"
        bindir.mkdir()
        write_fast_launcher(bindir, request.getfixturevalue("fast_binary"))
        env["PATH"] = "%s:%s" % (bindir, env["PATH"])
    return Coopt(bin=coopt.bin, cache_dir=coopt.cache_dir, env=env)


def _cc(c: Coopt) -> str:
    return shutil.which("coopt-cc", path=c.env["PATH"]) or ""


@pytest.fixture
def tu(tmp_path: Path) -> Path:
    d = tmp_path / "src"
    d.mkdir()
    (d / "f.h").write_text("#define K 3\n")
    (d / "f.c").write_text(F_C)
    subprocess.run([shutil.which("clang") or "clang", *FLAGS[:-1], "plain.o"], cwd=d, check=True)
    return d


CLANG = os.path.realpath(shutil.which("clang") or "/usr/bin/clang")


def form_call(form: str, c: Coopt, d: Path) -> tuple[list[str], dict]:
    """The command line and environment of one compile of f.c in `form`."""
    cc, env = _cc(c), dict(c.env)
    if form == "prefix":  # make CC="coopt-cc ccache clang"
        return [cc, "ccache", "clang", *FLAGS], env
    if form == "cmake":  # CMAKE_C_COMPILER_LAUNCHER="coopt-cc;ccache" runs `coopt-cc ccache /abs/cc ...`
        return [cc, "ccache", CLANG, *FLAGS], env
    if form == "launcher-only":  # make CC="coopt-cc ccache": the configured compiler behind it
        return [cc, "ccache", *FLAGS], dict(env, COOPT_COMPILER=CLANG)
    if form == "env":  # CC=coopt-cc with COOPT_LAUNCHER
        return [cc, *FLAGS], dict(env, COOPT_LAUNCHER="ccache", COOPT_COMPILER=CLANG)
    if form == "config":  # CC=coopt-cc with [compiler] launcher in coopt.toml
        (d / "coopt.toml").write_text('[compiler]\npath = "%s"\nlauncher = "ccache"\n' % CLANG)
        return [cc, *FLAGS], env
    if form == "symlinks":  # Debian's ccache set-up: /usr/lib/ccache first on PATH
        ccache_dir = d.parent / "ccache-links"
        ccache_dir.mkdir(exist_ok=True)
        link = ccache_dir / os.path.basename(CLANG)
        if not link.exists():
            link.symlink_to(shutil.which("ccache") or "/usr/bin/ccache")
        first, rest = env["PATH"].split(":", 1)  # coopt-cc's directory stays first
        return [cc, *FLAGS], dict(env, PATH="%s:%s:%s" % (first, ccache_dir, rest),
                                  COOPT_COMPILER=os.path.basename(CLANG))
    raise AssertionError(form)


FORMS = ("prefix", "cmake", "launcher-only", "env", "config", "symlinks")


@pytest.mark.parametrize("form", FORMS)
def test_chain_journals_the_real_compiler_and_ccache_caches(chain: Coopt, tu: Path, form: str) -> None:
    argv, env = form_call(form, chain, tu)
    for _ in range(2):
        (tu / "f.o").unlink(missing_ok=True)
        subprocess.run(argv, cwd=tu, env=env, check=True)
        assert (tu / "f.o").read_bytes() == (tu / "plain.o").read_bytes()
    # ccache compiled the first and answered the second from its cache.
    s = ccache_stats(env)
    assert s.get("cache_miss") == 1 and ccache_hits(env) == 1, s
    records = [r for r in chain.journal() if r["type"] == "compile"]
    assert len(records) == 2
    assert {os.path.realpath(r["compiler"]) for r in records} == {CLANG}
    assert all(r["args"] == FLAGS for r in records)
    stats = chain.stats()
    assert stats.get("internal_error", 0) == 0
    if "/fastbin" in argv[0]:  # the second call was replayed in C, through ccache (its hit above)
        assert stats == {"miss": 1, "miss_fast": 1}, stats
    else:
        assert stats == {"miss": 2}, stats

    # The key is the one a compile without the launcher gets: variants are shared with builds without ccache.
    env_plain = {k: v for k, v in env.items() if k != "COOPT_LAUNCHER"}
    (tu / "coopt.toml").unlink(missing_ok=True)
    subprocess.run([_cc(chain), CLANG, *FLAGS], cwd=tu, env=env_plain, check=True)
    keys = {r["key"] for r in chain.journal() if r["type"] == "compile"}
    assert len(keys) == 1, keys


@pytest.mark.parametrize("form", ["prefix", "cmake", "launcher-only", "symlinks"])
def test_a_variant_is_served_through_the_chain_without_asking_the_launcher(chain: Coopt, tu: Path, form: str) -> None:
    argv, env = form_call(form, chain, tu)
    subprocess.run(argv, cwd=tu, env=env, check=True)
    (tu / "v.c").write_text(VARIANT_C)
    chain.run([str(chain.bin / "coopt"), "cache", "put", "--artifact", "v.c", "--for-object", "f.o", "--unverified"],
              cwd=tu)
    before = ccache_stats(env)
    (tu / "f.o").unlink()
    subprocess.run(argv, cwd=tu, env=env, check=True)
    assert chain.stats().get("hit") == 1, chain.stats()
    assert b"coopt-variant" in (tu / "f.o").read_bytes()
    assert ccache_stats(env) == before  # the hit never reached ccache


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("coopt-cc: error: "), proc.stderr
    return lines[0]


def test_coopt_compiler_naming_a_launcher_says_to_use_the_launcher_setting(coopt: Coopt, tu: Path) -> None:
    require("ccache")
    for configured in ("ccache", shutil.which("ccache") or "/usr/bin/ccache", "sccache"):
        env = dict(coopt.env, COOPT_COMPILER=configured)
        proc = subprocess.run([coopt.cc, *FLAGS], cwd=tu, env=env, capture_output=True, text=True)
        line = _one_error_line(proc)
        assert "COOPT_LAUNCHER=%s" % os.path.basename(configured) in line and "[compiler] launcher" in line
    assert not (tu / "f.o").exists() and coopt.journal() == []


def test_a_missing_launcher_is_one_line(coopt: Coopt, tu: Path) -> None:
    env = dict(coopt.env, COOPT_LAUNCHER="no-such-launcher-xyz")
    line = _one_error_line(subprocess.run([coopt.cc, *FLAGS], cwd=tu, env=env, capture_output=True, text=True))
    assert "launcher 'no-such-launcher-xyz' not found" in line
    proc = subprocess.run([coopt.cc, "ccache", "no-such-clang-xyz", *FLAGS], cwd=tu, env=coopt.env,
                          capture_output=True, text=True)
    if shutil.which("ccache"):
        assert "compiler 'no-such-clang-xyz'" in _one_error_line(proc)
    assert not (tu / "f.o").exists()


def test_links_and_pass_throughs_go_through_the_launcher(chain: Coopt, tu: Path) -> None:
    (tu / "main.c").write_text("int f(int);\nint main(void) { return f(1) - 3; }\n")
    cc = _cc(chain)
    for argv in ([cc, "ccache", "clang", "-c", "main.c"], [cc, "ccache", "clang", "-O2", "-c", "f.c"],
                 [cc, "ccache", "clang", "-o", "app", "main.o", "f.o"], [cc, "ccache", "clang", "-E", "f.c"]):
        subprocess.run(argv, cwd=tu, env=chain.env, check=True, capture_output=True)
    assert subprocess.run(["./app"], cwd=tu).returncode == 0
    s = ccache_stats(chain.env)
    assert s.get("called_for_link") == 1 and s.get("called_for_preprocessing") == 1, s
    records = chain.journal()
    assert [r["type"] for r in records] == ["compile", "compile", "link"]
    assert {os.path.realpath(r["compiler"]) for r in records} == {CLANG}


def test_several_sources_and_compile_and_link_calls_go_through_the_launcher(coopt: Coopt, tu: Path,
                                                                             tmp_path: Path) -> None:
    require("clang", "ccache")
    env = dict(coopt.env, CCACHE_DIR=str(tmp_path / "ccache"))
    (tu / "main.c").write_text("int f(int);\nint main(void) { return f(1) - 3; }\n")
    cc = _cc(coopt)
    # A compile and link in one call: each source's kept object is compiled through ccache, then the link.
    for _ in range(2):
        subprocess.run([cc, "ccache", "clang", "-O2", "-o", "app", "main.c", "f.c"], cwd=tu, env=env, check=True)
        assert subprocess.run(["./app"], cwd=tu).returncode == 0
    s = ccache_stats(env)
    assert s.get("cache_miss") == 2 and ccache_hits(env) == 2 and s.get("called_for_link") == 2, s
    # Several sources in one -c call, split because one has a stored variant: the other compiles through ccache.
    subprocess.run([cc, "ccache", "clang", "-O2", "-c", "f.c", "main.c"], cwd=tu, env=env, check=True)
    (tu / "v.c").write_text(VARIANT_C)
    coopt.run([str(coopt.bin / "coopt"), "cache", "put", "--artifact", "v.c", "--for-object", "f.o", "--unverified"],
              cwd=tu)
    before = ccache_stats(env)
    subprocess.run([cc, "ccache", "clang", "-O2", "-c", "f.c", "main.c"], cwd=tu, env=env, check=True)
    assert b"coopt-variant" in (tu / "f.o").read_bytes()
    after = ccache_stats(env)

    def compiled(st: dict[str, int]) -> int:
        return sum(st.get(k, 0) for k in ("cache_miss", "direct_cache_hit", "preprocessed_cache_hit"))

    assert compiled(after) == compiled(before) + 1, (before, after)  # main.c alone, through ccache


def test_sccache_chain(coopt: Coopt, tu: Path, tmp_path: Path, fast_binary: Path) -> None:
    require("sccache", "clang")
    bindir = tmp_path / "fastbin"
    bindir.mkdir()
    write_fast_launcher(bindir, fast_binary)
    env = dict(coopt.env, PATH="%s:%s" % (bindir, coopt.env["PATH"]), SCCACHE_DIR=str(tmp_path / "sccache"),
               SCCACHE_SERVER_PORT=str(free_port()), SCCACHE_IDLE_TIMEOUT="60")
    env.pop("RUSTC_WRAPPER", None)
    try:
        for _ in range(2):
            (tu / "f.o").unlink(missing_ok=True)
            subprocess.run([str(bindir / "coopt-cc"), "sccache", "clang", *FLAGS], cwd=tu, env=env, check=True)
            assert (tu / "f.o").read_bytes() == (tu / "plain.o").read_bytes()
        shown = subprocess.run(["sccache", "--show-stats"], env=env, capture_output=True, text=True).stdout
    finally:
        subprocess.run(["sccache", "--stop-server"], env=env, capture_output=True, timeout=60)
    hits = [line.split()[-1] for line in shown.splitlines() if line.startswith("Cache hits ") or
            line.startswith("Cache hits\t")]
    assert hits and int(hits[0]) == 1, shown
    records = coopt.journal()
    assert len(records) == 2 and {os.path.realpath(r["compiler"]) for r in records} == {CLANG}
    assert coopt.stats() == {"miss": 1, "miss_fast": 1}


def _doctor(c: Coopt, cwd: Path, env: dict) -> tuple[int, list[dict]]:
    import json

    proc = subprocess.run([str(c.bin / "coopt"), "doctor", "--json", "--only", "launcher"], cwd=cwd, env=env,
                          capture_output=True, text=True)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)["findings"]


def test_doctor_shows_the_launcher_in_effect_and_checks_it(coopt: Coopt, tu: Path) -> None:
    require("ccache")
    code, (f,) = _doctor(coopt, tu, dict(coopt.env, COOPT_LAUNCHER="ccache"))
    assert code == 0 and f["level"] == "ok", f
    assert shutil.which("ccache", path=coopt.env["PATH"]) in f["message"] and "ccache version" in f["message"]
    assert "env COOPT_LAUNCHER" in f["message"]

    (tu / "coopt.toml").write_text('[compiler]\nlauncher = "no-such-launcher-xyz"\n')
    code, (f,) = _doctor(coopt, tu, coopt.env)
    assert code == 1 and f["level"] == "error" and "no-such-launcher-xyz" in f["message"], f
    assert "coopt.toml" in f["message"] and "[compiler] launcher" in f["fix"]
    (tu / "coopt.toml").unlink()

    code, (f,) = _doctor(coopt, tu, dict(coopt.env, COOPT_COMPILER="ccache"))
    assert code == 1 and f["level"] == "error" and "is a launcher" in f["message"], f

    # ccache's symlink directory first on PATH: shown as the launcher in effect, with the real compiler behind it.
    links = tu.parent / "ccache-links"
    links.mkdir()
    (links / "clang").symlink_to(shutil.which("ccache") or "/usr/bin/ccache")
    first, rest = coopt.env["PATH"].split(":", 1)
    code, (f,) = _doctor(coopt, tu, dict(coopt.env, PATH="%s:%s:%s" % (first, links, rest), COOPT_COMPILER="clang"))
    assert code == 0 and f["level"] == "ok", f
    assert os.path.realpath(shutil.which("ccache") or "") in f["message"] and "keys them on" in f["message"]

    code, (f,) = _doctor(coopt, tu, coopt.env)
    assert code == 0 and f["level"] == "info" and "none" in f["message"], f
