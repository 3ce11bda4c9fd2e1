"""The key: what goes in, what stays out, and that a nightly put keys a TU the way the build will look it up."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import Coopt, require
from coopt.cache import key as keymod


def _tu(tmp_path: Path) -> None:
    (tmp_path / "k.h").write_text("#define K 3\n")
    (tmp_path / "k.c").write_text('#include "k.h"\nint k(int x) { return x * K; }\n')


def test_debug_key_material_shows_what_differs(coopt: Coopt, tmp_path: Path) -> None:
    require("clang")
    _tu(tmp_path)
    env = dict(coopt.env, COOPT_DEBUG="1")
    subprocess.run([coopt.cc, "-O2", "-DA=1", "-c", "k.c", "-o", "a.o"], cwd=tmp_path, env=env, check=True)
    subprocess.run([coopt.cc, "-O2", "-DA=2", "-c", "k.c", "-o", "b.o"], cwd=tmp_path, env=env, check=True)
    a = (tmp_path / "a.o.coopt-key").read_text().splitlines()
    b = (tmp_path / "b.o.coopt-key").read_text().splitlines()
    assert [x for x in a if x not in b] == ["arg=-DA=1"]
    assert "version=%d" % keymod.KEY_VERSION in a
    assert any(line.startswith("compiler-id=") for line in a)
    assert not any(line.startswith("arg=-o") or line == "arg=a.o" for line in a)
    assert "miss: no variant for k.c" in (coopt.cache_dir / "coopt-cc.log").read_text()


def test_debug_info_puts_cwd_in_the_key_and_native_puts_the_cpu(coopt: Coopt, tmp_path: Path) -> None:
    require("clang")
    _tu(tmp_path)
    env = dict(coopt.env, COOPT_DEBUG="1")
    subprocess.run([coopt.cc, "-g", "-c", "k.c", "-o", "g.o"], cwd=tmp_path, env=env, check=True)
    subprocess.run([coopt.cc, "-march=native", "-c", "k.c", "-o", "n.o"], cwd=tmp_path, env=env, check=True)
    assert "cwd=%s" % tmp_path in (tmp_path / "g.o.coopt-key").read_text()
    native = (tmp_path / "n.o.coopt-key").read_text()
    assert "cpu=" + keymod.cpu_identity() in native and "cwd=" not in native


def test_environment_is_keyed_as_the_build_saw_it(coopt: Coopt, tmp_path: Path) -> None:
    """A nightly `cache put` in another environment still keys the TU with the build's CPATH."""
    require("clang")
    _tu(tmp_path)
    inc = tmp_path / "inc"
    inc.mkdir()
    build_env = dict(coopt.env, CPATH=str(inc), LANG="de_DE.UTF-8")
    subprocess.run([coopt.cc, "-O2", "-c", "k.c", "-o", "k.o"], cwd=tmp_path, env=build_env, check=True)
    rec = coopt.journal()[-1]
    assert rec["env"] == {"CPATH": str(inc)}  # locale variables are not keyed
    (tmp_path / "v.c").write_text('#include "k.h"\nint k(int x) { return x * K + 1; }\n')
    put_env = {k: v for k, v in coopt.env.items() if k not in ("CPATH", "LANG")}
    proc = subprocess.run([str(coopt.bin / "coopt"), "cache", "put", "--artifact", "v.c", "--for-object", "k.o",
                           "--unverified"], cwd=tmp_path, env=put_env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    os.unlink(tmp_path / "k.o")
    subprocess.run([coopt.cc, "-O2", "-c", "k.c", "-o", "k.o"], cwd=tmp_path, env=build_env, check=True)
    assert coopt.stats().get("hit") == 1
    # Another CPATH is another key.
    subprocess.run([coopt.cc, "-O2", "-c", "k.c", "-o", "k2.o"], cwd=tmp_path,
                   env=dict(build_env, CPATH=str(tmp_path)), check=True)
    assert coopt.stats().get("hit") == 1


def test_time_macros_refuse_a_put(coopt: Coopt, tmp_path: Path) -> None:
    require("clang")
    (tmp_path / "t.c").write_text('const char *built(void) { return __DATE__; }\n')
    coopt.run([coopt.cc, "-c", "t.c", "-o", "t.o"], cwd=tmp_path)
    proc = coopt.coopt("cache", "put", "--artifact", "t.c", "--for-object", "t.o", "--unverified",
                       cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "__DATE__" in proc.stderr
    assert coopt.coopt("cache", "ls", cwd=tmp_path).stdout.startswith("no entries")


def test_a_tu_whose_code_generation_warns_gets_no_variant(coopt: Coopt, tmp_path: Path) -> None:
    """A hit re-prints diagnostics with -fsyntax-only, which cannot reproduce back-end warnings: no variant."""
    require("clang")
    (tmp_path / "big.c").write_text("void use(char *);\nvoid f(void) { char buf[4096]; use(buf); }\n")
    args = ["-O2", "-Wframe-larger-than=64", "-c", "big.c", "-o", "big.o"]
    plain = subprocess.run(["clang", *args], cwd=tmp_path, capture_output=True, text=True)
    assert "stack frame size" in plain.stderr  # the back end warns
    coopt.run([coopt.cc, *args], cwd=tmp_path)
    proc = coopt.coopt("cache", "put", "--artifact", "big.c", "--for-object", "big.o", "--unverified",
                       cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "code generation prints diagnostics" in proc.stderr


def test_docs_name_the_key_environment_the_code_uses() -> None:
    """The README lists exactly the variables in the key, and no integration doc says the locale is one of them."""
    import re

    from coopt.cache.key import ENV_ALLOWLIST

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    start = readme.index("the environment variables that change the object:")
    listed = re.findall(r"`([A-Z_]+)`", readme[start:readme.index("with the values the build had", start)])
    assert sorted(listed) == sorted(ENV_ALLOWLIST)
    for doc in [root / "integration/scons/README.md", root / "src/coopt/data/site_tools/coopt.py"]:
        text = " ".join(doc.read_text().split())
        assert "part of the cache key:" not in text, doc
        assert "locale is not part of the cache key" in text, doc
