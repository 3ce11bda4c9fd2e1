"""coopt-cc-fast, the C miss path: it replays the Python wrapper's decisions exactly, and hands anything it cannot
vouch for back to Python."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import ROOT, Coopt, require

sys.path.insert(0, str(ROOT))
import build_fastcc  # noqa: E402

from coopt.wrapper import fastpath  # noqa: E402


def _cc(c: Coopt) -> str:
    return shutil.which("coopt-cc", path=c.env["PATH"]) or ""


def _tu(d: Path) -> None:
    (d / "f.h").write_text("#define K 3\n")
    (d / "f.c").write_text('#include "f.h"\nint f(int x) { return x * K; }\n')


def _without_time(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k != "time"}


def test_memo_directory_matches_the_build(fast_binary: Path) -> None:
    assert build_fastcc.memo_dir_name() == fastpath.memo_dir_name()
    assert fastpath.memo_dir_name().encode() in fast_binary.read_bytes()


def test_second_identical_compile_is_replayed_in_c_exactly(fast: Coopt, tmp_path: Path) -> None:
    require("clang")
    _tu(tmp_path)
    subprocess.run(["clang", "-O2", "-c", "f.c", "-o", "plain.o"], cwd=tmp_path, check=True)
    for _ in range(2):
        fast.run([_cc(fast), "-O2", "-c", "f.c", "-o", "f.o"], cwd=tmp_path)
        assert (tmp_path / "f.o").read_bytes() == (tmp_path / "plain.o").read_bytes()
    assert fast.stats() == {"miss": 1, "miss_fast": 1}
    python_rec, c_rec = fast.journal()
    assert _without_time(python_rec) == _without_time(c_rec)

    # A changed source: C completes the key the way Python computes it.
    (tmp_path / "f.c").write_text('#include "f.h"\nint f(int x) { return x * K + 2; }\n')
    fast.run([_cc(fast), "-O2", "-c", "f.c", "-o", "f.o"], cwd=tmp_path)
    assert fast.stats()["miss_fast"] == 2
    env = dict(fast.env, COOPT_DEBUG="1")  # makes coopt-cc-fast defer: Python decides
    subprocess.run([_cc(fast), "-O2", "-c", "f.c", "-o", "f.o"], cwd=tmp_path, env=env, check=True)
    by_c, by_python = fast.journal()[-2:]
    assert _without_time(by_c) == _without_time(by_python)


def test_a_stored_variant_goes_to_python_and_is_served(fast: Coopt, tmp_path: Path) -> None:
    require("clang")
    _tu(tmp_path)
    fast.run([_cc(fast), "-O2", "-c", "f.c", "-o", "f.o"], cwd=tmp_path)
    (tmp_path / "v.c").write_text('#include "f.h"\nint f(int x) { return x * K + 1; }\n')
    fast.coopt("cache", "put", "--artifact", "v.c", "--for-object", "f.o", "--unverified", cwd=tmp_path)
    fast.run([_cc(fast), "-O2", "-c", "f.c", "-o", "f.o"], cwd=tmp_path)
    assert fast.stats().get("hit") == 1 and "miss_fast" not in fast.stats()


def test_a_new_compiler_ahead_on_path_goes_to_python(fast: Coopt, tmp_path: Path) -> None:
    require("clang")
    _tu(tmp_path)
    early = tmp_path / "early-bin"
    early.mkdir()
    env = dict(fast.env, PATH="%s:%s" % (fast.env["PATH"].split(":", 1)[0], early) + ":" + fast.env["PATH"])
    subprocess.run([_cc(fast), "-O2", "-c", "f.c", "-o", "f.o"], cwd=tmp_path, env=env, check=True)
    wrapper = early / "clang"
    wrapper.write_text('#!/bin/sh\necho "$*" >> "%s"\nexec %s "$@"\n' % (tmp_path / "calls", shutil.which("clang")))
    wrapper.chmod(0o755)
    subprocess.run([_cc(fast), "-O2", "-c", "f.c", "-o", "f.o"], cwd=tmp_path, env=env, check=True)
    compiles = [c for c in (tmp_path / "calls").read_text().splitlines() if "-c f.c" in c]
    assert compiles == ["-O2 -c f.c -o f.o"]  # (coopt also asked it for --version: a new compiler identity)
    assert fast.journal()[-1]["compiler"] == str(wrapper)
    assert "miss_fast" not in fast.stats()


@pytest.mark.parametrize("variable", ["COOPT_DISABLE", "COOPT_READONLY", "COOPT_DEBUG"])
def test_settings_that_change_behaviour_go_to_python(fast: Coopt, tmp_path: Path, variable: str) -> None:
    require("clang")
    _tu(tmp_path)
    fast.run([_cc(fast), "-O2", "-c", "f.c", "-o", "f.o"], cwd=tmp_path)
    env = dict(fast.env, **{variable: "1"})
    subprocess.run([_cc(fast), "-O2", "-c", "f.c", "-o", "f.o"], cwd=tmp_path, env=env, check=True)
    assert "miss_fast" not in fast.stats()


def test_prefix_form(fast: Coopt, tmp_path: Path) -> None:
    require("clang")
    _tu(tmp_path)
    subprocess.run(["clang", "-O1", "-c", "f.c", "-o", "plain.o"], cwd=tmp_path, check=True)
    for _ in range(2):
        fast.run([_cc(fast), "clang", "-O1", "-c", "f.c", "-o", "p.o"], cwd=tmp_path)
        assert (tmp_path / "p.o").read_bytes() == (tmp_path / "plain.o").read_bytes()
    assert fast.stats() == {"miss": 1, "miss_fast": 1}
    assert [r["args"] for r in fast.journal()] == [["-O1", "-c", "f.c", "-o", "p.o"]] * 2


def test_a_config_file_is_part_of_the_decision_c_replays(fast: Coopt, tmp_path: Path) -> None:
    require("clang")
    build = tmp_path / "build"
    build.mkdir()
    _tu(build)
    (build / "g.c").write_text("int g(int x) { return x - 1; }\n")
    config = tmp_path / "coopt.toml"  # above the build directory
    config.write_text('[compiler]\npath = "clang"\n')

    def compile_(source: str, env: dict | None = None) -> None:
        subprocess.run([_cc(fast), "-O1", "-c", source, "-o", source[:-1] + "o"], cwd=build, env=env or fast.env,
                       check=True)

    compile_("f.c")
    compile_("f.c")
    compile_("g.c")  # another TU of the same shape
    assert fast.stats() == {"miss": 1, "miss_fast": 2}
    # Another configuration (here another compiler): Python decides again, once.
    fake = tmp_path / "fake-bin"
    fake.mkdir()
    (fake / "mycc").symlink_to(shutil.which("clang") or "clang")
    config.write_text('[compiler]\npath = "%s"\n' % (fake / "mycc"))
    compile_("f.c")
    compile_("f.c")
    assert fast.stats() == {"miss": 2, "miss_fast": 3}
    assert [r["compiler"] for r in fast.journal()][-2:] == [str(fake / "mycc")] * 2
    # A nearer config file takes over.
    (build / "coopt.toml").write_text("")
    compile_("f.c")
    assert fast.stats() == {"miss": 3, "miss_fast": 3}
    # A config naming the cache directory: coopt-cc-fast finds its directory from the environment alone, so
    # Python leaves it no memo and decides every time (even where both name the same directory, as here).
    named = tmp_path / "xdg" / "coopt"
    (build / "coopt.toml").write_text('[cache]\ndir = "%s"\n' % named)
    env = {k: v for k, v in fast.env.items() if k != "COOPT_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")  # where coopt-cc-fast looks
    compile_("f.c", env)
    compile_("f.c", env)
    assert Coopt(fast.bin, named, env).stats() == {"miss": 2}


@pytest.mark.slow
def test_lua_rebuild_is_replayed_in_c_with_identical_objects(fast: Coopt, debian_source) -> None:
    require("clang", "make")
    src = debian_source("lua5.4", pristine=True) / "src"
    subprocess.run(["make", "-j2", "linux-noreadline", "CC=clang"], cwd=src, check=True, capture_output=True)
    plain = {p.name: p.read_bytes() for p in src.glob("*.o")}
    for _ in range(2):
        fast.run(["make", "clean"], cwd=src)
        fast.run(["make", "-j2", "linux-noreadline", "CC=coopt-cc"], cwd=src)
        assert {p.name: p.read_bytes() for p in src.glob("*.o")} == plain
    stats = fast.stats()
    assert stats["miss"] + stats["miss_fast"] == 2 * len(plain)
    # The first build too: after its first compiles (two at once under -j2) every TU has their shape.
    assert stats["miss"] <= 4, stats
    compiles = [r for r in fast.journal() if r["type"] == "compile"]
    first = {r["output"]: _without_time(r) for r in compiles[: len(plain)]}
    second = {r["output"]: _without_time(r) for r in compiles[len(plain) :]}
    assert first == second


def _expire_memo(cache_dir: Path) -> int:
    """Make every replay memo of a cache expired, as it is `remote_recheck` seconds after it was written."""
    count = 0
    for memo in cache_dir.glob(fastpath.memo_dir_name() + "/*/*"):
        data, fields = memo.read_bytes(), []
        while data:
            length, _, rest = data.partition(b"\n")
            fields.append(rest[: int(length)])
            data = rest[int(length) + 1 :]
        at = fastpath.FIELDS.index("expires")
        assert len(fields) == len(fastpath.FIELDS) and int(fields[at]) > 0, "a memo without expiry"
        fields[at] = b"1"
        memo.write_bytes(b"".join(b"%d\n%s\n" % (len(f), f) for f in fields))
        count += 1
    return count


def test_with_remotes_a_replayed_miss_expires_and_then_a_remote_variant_is_served(fast: Coopt, tmp_path: Path) -> None:
    require("clang")
    _tu(tmp_path)
    subprocess.run(["clang", "-O2", "-c", "f.c", "-o", "plain.o"], cwd=tmp_path, check=True)
    remote = tmp_path / "remote"
    remote.mkdir()
    env = dict(fast.env, COOPT_REMOTE_STORAGE="file://%s" % remote)
    other = dict(env, COOPT_CACHE_DIR=str(tmp_path / "cache-a"))  # a second machine sharing the remote

    def compile_(e: dict) -> bytes:
        subprocess.run([_cc(fast), "-O2", "-c", "f.c", "-o", "f.o"], cwd=tmp_path, env=e, check=True)
        return (tmp_path / "f.o").read_bytes()

    def counts() -> dict:
        return {k: v for k, v in fast.stats().items() if not k.startswith("remote:")}

    compile_(env)
    compile_(env)
    assert counts() == {"miss": 1, "miss_fast": 1}
    compile_(other)
    (tmp_path / "v.c").write_text('#include "f.h"\nint f(int x) { return x * K + 1; }\n')
    put = Coopt(fast.bin, tmp_path / "cache-a", other).coopt(
        "cache", "put", "--artifact", "v.c", "--for-object", "f.o", "--unverified", cwd=tmp_path)
    assert "uploaded" in put.stdout, put.stdout
    # Within remote_recheck the C side still replays the miss without asking the remote (what the expiry bounds).
    assert compile_(env) == (tmp_path / "plain.o").read_bytes()
    assert counts() == {"miss": 1, "miss_fast": 2}
    # Once the memo has expired, Python decides again: the remote holds a variant now, and it is served.
    assert _expire_memo(fast.cache_dir) == 1  # (no shape memo with remotes)
    assert compile_(env) != (tmp_path / "plain.o").read_bytes()
    assert counts() == {"miss": 1, "miss_fast": 2, "hit": 1}
    # A zero recheck never lets C replay a miss (another TU, so no variant exists for it).
    (tmp_path / "g.c").write_text("int g(int x) { return x - 1; }\n")
    zero = dict(env, COOPT_REMOTE_RECHECK="0")
    for _ in range(2):
        subprocess.run([_cc(fast), "-O2", "-c", "g.c", "-o", "g.o"], cwd=tmp_path, env=zero, check=True)
    assert counts() == {"miss": 3, "miss_fast": 2, "hit": 1}


# Shape memos: the first compile of a build leaves one; the build's other TUs of the same shape are decided in C.

SHAPES = {
    "make": (["-O2", "-Wall", "-c", "-o", "{o}", "{c}"], "{base}.o"),
    "cmake": (["-DK2=1", "-O2", "-MD", "-MT", "{o}", "-MF", "{o}.d", "-o", "{o}", "-c", "{abs}"], "obj/{base}.c.o"),
    "prefix": (["clang", "-O1", "-c", "{c}", "-o", "{o}"], "{base}.o"),
    "no -o": (["-Os", "-c", "{c}"], ""),  # Lua's Makefile compiles lcode.c like this
}


def _shaped_call(form: str, d: Path, source: str) -> list[str]:
    args, out = SHAPES[form]
    base = source[:-2]
    o = out.format(base=base)
    return [a.format(o=o, c=source, abs=d / source) for a in args]


@pytest.mark.parametrize("form", sorted(SHAPES))
def test_other_tus_of_a_first_build_are_decided_in_c_as_python_would(fast: Coopt, tmp_path: Path, form: str) -> None:
    require("clang")
    _tu(tmp_path)
    (tmp_path / "obj").mkdir()
    (tmp_path / "sub").mkdir()
    (tmp_path / "g.c").write_text('#include "f.h"\nint g(int x) { return x - K; }\n')
    (tmp_path / "sub" / "h.c").write_text("int h(int x) { return x * x; }\n")
    (tmp_path / "obj" / "sub").mkdir()
    calls = [_shaped_call(form, tmp_path, s) for s in ("f.c", "g.c", "sub/h.c")]
    for call in calls:
        fast.run([_cc(fast), *call], cwd=tmp_path)
    assert fast.stats() == {"miss": 1, "miss_fast": 2}
    # The same objects (and dependency files) as the real compiler's, and the journal Python would have written.
    by_c = fast.journal()[1:]
    env = dict(fast.env, COOPT_DEBUG="1")  # makes coopt-cc-fast defer: Python decides
    for call, rec in zip(calls[1:], by_c, strict=True):
        out = tmp_path / (call[call.index("-o") + 1] if "-o" in call else os.path.basename(call[-1])[:-2] + ".o")
        mine = out.read_bytes()
        real = call[1:] if form == "prefix" else call
        subprocess.run(["clang", *real], cwd=tmp_path, check=True)
        assert out.read_bytes() == mine
        subprocess.run([_cc(fast), *call], cwd=tmp_path, env=env, check=True)
        assert _without_time(fast.journal()[-1]) == _without_time(rec)
        assert rec["source"] in call and rec["output"] == str(out.relative_to(tmp_path))


def test_calls_of_another_shape_or_with_unusual_names_go_to_python(fast: Coopt, tmp_path: Path) -> None:
    require("clang")
    _tu(tmp_path)
    (tmp_path / "g.c").write_text("int g(void) { return 1; }\n")
    (tmp_path / ".hidden.c").write_text("int hidden(void) { return 1; }\n")
    (tmp_path / "x.S").write_text("\t.text\n")
    fast.run([_cc(fast), "-O2", "-c", "f.c", "-o", "f.o"], cwd=tmp_path)
    fast.run([_cc(fast), "-O1", "-c", "g.c", "-o", "g.o"], cwd=tmp_path)  # other flags: another shape
    fast.run([_cc(fast), "-O2", "-c", ".hidden.c", "-o", "hidden.o"], cwd=tmp_path)
    fast.run([_cc(fast), "-O2", "-c", "./g.c", "-o", "g.o"], cwd=tmp_path)
    fast.run([_cc(fast), "-O2", "-c", "x.S", "-o", "x.o"], cwd=tmp_path)  # assembler: a pass-through
    fast.run([_cc(fast), "-O2", "-c", "g.c", "-o", "g2~.o"], cwd=tmp_path)
    assert fast.stats() == {"miss": 5, "assembler_source": 1}


def test_a_variant_for_a_tu_of_a_known_shape_is_served_by_python(fast: Coopt, tmp_path: Path) -> None:
    require("clang")
    _tu(tmp_path)
    (tmp_path / "g.c").write_text("int g(int x) { return x - 1; }\n")
    (tmp_path / "v.c").write_text("int g(int x) { return x - 2; }\n")
    fast.run([_cc(fast), "-O2", "-c", "f.c", "-o", "f.o"], cwd=tmp_path)
    fast.coopt("cache", "put", "--artifact", "v.c", "--unverified", "--", "clang", "-O2", "-c", "g.c", "-o", "g.o",
               cwd=tmp_path)
    fast.run([_cc(fast), "-O2", "-c", "g.c", "-o", "g.o"], cwd=tmp_path)
    assert fast.stats() == {"miss": 1, "hit": 1, "hit_direct": 1}


def test_with_remotes_each_tu_of_a_first_build_asks_them(fast: Coopt, tmp_path: Path) -> None:
    require("clang")
    _tu(tmp_path)
    (tmp_path / "g.c").write_text("int g(int x) { return x - 1; }\n")
    (tmp_path / "v.c").write_text("int g(int x) { return x - 2; }\n")
    remote = tmp_path / "remote"
    remote.mkdir()
    env = dict(fast.env, COOPT_REMOTE_STORAGE="file://%s" % remote)
    teammate = Coopt(fast.bin, tmp_path / "cache-b", dict(env, COOPT_CACHE_DIR=str(tmp_path / "cache-b")))
    teammate.coopt("cache", "put", "--artifact", "v.c", "--unverified", "--", "clang", "-O2", "-c", "g.c", "-o",
                   "g.o", cwd=tmp_path)
    for source in ("f.c", "g.c"):
        subprocess.run([_cc(fast), "-O2", "-c", source, "-o", source[:-1] + "o"], cwd=tmp_path, env=env, check=True)
    assert {k: v for k, v in fast.stats().items() if not k.startswith("remote:")} == {"miss": 1, "hit": 1}


def _without_python(fast: Coopt) -> str:
    """The same coopt-cc (its path is part of every memo's fingerprint) with a Python part that fails: a call
    succeeds through it only when coopt-cc-fast decided it alone."""
    launcher = Path(_cc(fast))
    launcher.write_text(launcher.read_text().replace('"%s"' % sys.executable, '"/bin/false"'))
    return str(launcher)


def test_links_and_pass_throughs_are_replayed_in_c(fast: Coopt, tmp_path: Path) -> None:
    require("clang")
    _tu(tmp_path)
    (tmp_path / "main.c").write_text("int f(int);\nint main(void) { return f(1) - 3; }\n")
    (tmp_path / "conftest.c").write_text("int main(void) { return 0; }\n")
    (tmp_path / "t2.c").write_text("int main(void) { return 0 * 2; }\n")
    for source in ("f.c", "main.c"):
        fast.run([_cc(fast), "-O2", "-c", source, "-o", source[:-1] + "o"], cwd=tmp_path)
    link = ["-o", "prog", "main.o", "f.o"]
    preprocess = ["-E", "-DK2=1", "f.c"]
    probe = ["-O2", "-o", "conftest", "conftest.c"]  # a configure check: a link of a source, kept a link
    fast.run([_cc(fast), *link], cwd=tmp_path)
    by_python = fast.run([_cc(fast), *preprocess], cwd=tmp_path).stdout
    fast.run([_cc(fast), *probe], cwd=tmp_path)
    python_records = [_without_time(r) for r in fast.journal() if r["type"] == "link"]

    alone = _without_python(fast)
    (tmp_path / "prog").unlink()
    (tmp_path / "conftest").unlink()
    fast.run([alone, *link], cwd=tmp_path)
    assert subprocess.run([str(tmp_path / "prog")]).returncode == 0
    assert fast.run([alone, *preprocess], cwd=tmp_path).stdout == by_python
    fast.run([alone, *probe], cwd=tmp_path)
    assert subprocess.run([str(tmp_path / "conftest")]).returncode == 0
    c_records = [_without_time(r) for r in fast.journal() if r["type"] == "link"][2:]
    assert c_records == python_records
    assert fast.stats() == {"miss": 1, "miss_fast": 1, "link": 2, "configure_probe": 2, "preprocess_only": 2}
    # Another program compiled and linked in one call: its source is a TU (wrapper/compile_link.py), which only
    # Python decides; C never replays it as a plain link.
    assert fast.run([alone, "-O2", "-o", "t2", "t2.c"], cwd=tmp_path, check=False).returncode != 0
    # A call never decided before still needs Python (which this launcher lacks).
    assert fast.run([alone, "-S", "f.c"], cwd=tmp_path, check=False).returncode != 0


def test_shape_replaces_exactly_the_names_and_refuses_what_it_cannot_stand_for() -> None:
    s, o = fastpath.SOURCE_TOKEN, fastpath.OUTPUT_TOKEN
    assert fastpath.shape(["-O2", "-c", "-o", "a.o", "a.c"]) == (["-O2", "-c", "-o", o, s], "a.c", "a.o")
    assert fastpath.shape(["-c", "sub/a.c", "-MT", "a.o"]) == (["-c", s, "-MT", o], "sub/a.c", "a.o")
    assert fastpath.shape(["-MT", "x/a.c.o", "-MF", "x/a.c.o.d", "-o", "x/a.c.o", "-c", "/p/a.c"]) == (
        ["-MT", o, "-MF", o + ".d", "-o", o, "-c", "/" + s], "/p/a.c", "x/a.c.o")
    for args in (
        ["-c", "a.c", "-o", "-"],
        ["-c", "a.c", "-o", "a.o", "-o", "b.o"],  # two
        ["-c", "a.c", "b.c", "-o", "a.o"],  # two sources
        ["-c", "./a.c", "-o", "a.o"],
        ["-c", "a b.c", "-o", "a.o"],
        ["-c", "a.c", "-o", "a~.o"],
        ["-c", "a.c", "-o", "../a.o"],
        ["-c", "a.c", "-o", "a.o", "-DX=@@coopt:source@@"],
        ["-c", "a.c", "-o"],
    ):
        assert fastpath.shape(args) is None, args


def test_a_decision_that_depends_on_the_names_otherwise_leaves_no_shape_memo(tmp_path: Path) -> None:
    from coopt.cache.layout import CacheLayout

    layout = CacheLayout(str(tmp_path / "cache"))
    target = fastpath.MemoTarget(layout, shutil.which("true") or "/bin/true", "", "", 0, 0)
    raw = ["-c", "a.c", "-o", "a.o"]

    def rendering(args: list[str], extra: str) -> fastpath.Rendering:
        src = args[1]
        direct = "arg=-c\nsource=%s\nsource-hash=%s\n%s" % (src, "0" * 32, extra)
        record = '{"source":"%s","key":"%s"}' % (src, "k" * 32)
        return fastpath.Rendering("compile", "miss_fast", "/w/" + src, direct, record)

    class Renders(fastpath.Renderer):
        """The decision as `extra(args)` makes it: a stand-in for the key material's name-dependent parts."""

        def __init__(self, extra: Callable[[list[str]], str]) -> None:
            super().__init__("/w", "/bin/true", None, "k" * 32)
            self.extra = extra

        def render(self, call_args: list[str], cc: object = None) -> fastpath.Rendering:
            return rendering(call_args, self.extra(call_args))

    own = rendering(raw, "")
    no_config = ("", "")
    written = fastpath.write_shape_memo(target, "/bin/coopt-cc", raw, "/w", {}, no_config, own,
                                        Renders(lambda a: ""), "0" * 32, "k" * 32)
    assert written and len(list((tmp_path / "cache").glob(fastpath.memo_dir_name() + "/*/*"))) == 1
    # A decision with the source name's length in it: not a function of the tokens; no memo.
    (tmp_path / "cache").rename(tmp_path / "old")
    by_length = fastpath.write_shape_memo(target, "/bin/coopt-cc", raw, "/w", {}, no_config, rendering(raw, "n=3\n"),
                                          Renders(lambda a: "n=%d\n" % len(a[1])), "0" * 32, "k" * 32)
    assert not by_length and not (tmp_path / "cache").exists()


def test_cache_clear_drops_the_memos_and_evict_those_of_other_versions(fast: Coopt, tmp_path: Path) -> None:
    require("clang")
    _tu(tmp_path)

    def compile_() -> None:
        fast.run([_cc(fast), "-O2", "-c", "f.c", "-o", "f.o"], cwd=tmp_path)

    compile_()
    compile_()
    old = fast.cache_dir / "fast-0.0.1-k1-j1" / "ab"
    old.mkdir(parents=True)
    (old / "ab12").write_text("a memo of an older coopt\n")
    fast.coopt("cache", "evict", "--max-size", "1G")
    assert not old.parent.exists() and (fast.cache_dir / fastpath.memo_dir_name()).is_dir()
    compile_()
    assert fast.stats() == {"miss": 1, "miss_fast": 2}
    fast.coopt("cache", "clear")
    assert not (fast.cache_dir / fastpath.memo_dir_name()).exists()
    compile_()  # decided by Python again
    assert fast.stats()["miss"] == 2


# Python's `shape` and fastcc.c's must agree word for word: a call of a shape Python left a memo for is decided by
# the C side alone (it succeeds with Python gone), and a call Python would not shape needs Python.
SHAPE_PARITY = [
    (["-O1", "-c", "-o", "{o}", "{c}"], True),
    (["-O1", "-c", "{c}"], True),  # the implied output
    (["-O1", "-c", "{c}", "-o", "{o}", "-MD", "-MF", "{o}.d", "-MT", "{o}"], True),
    (["-O1", "-o", "{x}", "{c}"], False),  # a program compiled and linked in one call: Python splits it
    (["-E", "-DZ=1", "{c}"], True),  # a pass-through
    (["-O1", "-c", "./{c}", "-o", "{o}"], False),  # "./": normpath would change it
    (["-O1", "-c", "{c}", "-o", "{o}", "-include", "extra.c"], False),  # two words ending in .c
    (["-O1", "-c", "{c}", "-o", "{o}", "-o", "{o}"], False),  # two -o
    (["-O1", "-c", "{c}", "-o", "sub/../{o}"], False),  # a relative component
    (["-O1", "-c", "{c}", "-o", "{o}", "-DN=@@coopt:source@@"], False),  # the token text itself
]


@pytest.mark.parametrize("words,in_c", SHAPE_PARITY, ids=lambda v: " ".join(v) if isinstance(v, list) else str(v))
def test_the_c_side_shapes_a_call_exactly_as_python(fast: Coopt, tmp_path: Path, words: list[str],
                                                     in_c: bool) -> None:
    require("clang")
    for name in ("a", "b"):
        (tmp_path / ("%s.c" % name)).write_text("int main(void) { return 0; }\n")
    (tmp_path / "extra.c").write_text("int extra_n;\n")
    (tmp_path / "sub").mkdir()

    def call(name: str) -> list[str]:
        return [w.format(c=name + ".c", o=name + ".o", x=name) for w in words]

    first = fast.run([_cc(fast), *call("a")], cwd=tmp_path, check=False)
    second_by_python = call("b")
    alone = _without_python(fast)
    second = fast.run([alone, *second_by_python], cwd=tmp_path, check=False)
    assert first.returncode == 0, first.stderr
    assert (second.returncode == 0) == in_c, (second.returncode, second.stderr)
    if in_c:  # every token filled in
        assert all("@@coopt" not in str(r) for r in fast.journal())
