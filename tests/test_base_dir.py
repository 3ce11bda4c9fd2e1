"""Checkouts at different paths share variants: `[cache] base_dir` / COOPT_BASE_DIR (cache/key.py) and the rebuild
of a hit stored from another directory (cache/rebase.py).

The rewriting follows ccache's documented examples (its manual, base_dir). The end-to-end tests use two checkouts
of one project at different paths sharing one remote store: the second serves the first's variant only with
base_dir, rebuilt with its own paths (llvm-dwarfdump names the second checkout), and never when the paths that
differ lie outside base_dir.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import Coopt, require
from coopt.cache import key as keymod
from coopt.cache.rebase import same_code

# --- the rewriting, as ccache documents it ---------------------------------------------------------------------

ALICE_CWD = "/home/alice/project1/build"
ALICE_ARGS = ["-I/usr/include/example", "-I/home/alice/project2/include"]
ALICE_SOURCE = "/home/alice/project1/src/example.c"


@pytest.mark.parametrize("base_dir, args, source", [
    ("", ALICE_ARGS, ALICE_SOURCE),
    ("/home", ["-I/usr/include/example", "-I{cwd}/../../project2/include"], "{cwd}/../src/example.c"),
    ("/home/alice", ["-I/usr/include/example", "-I{cwd}/../../project2/include"], "{cwd}/../src/example.c"),
    ("/home/alice/project1", ALICE_ARGS[:1] + ["-I/home/alice/project2/include"], "{cwd}/../src/example.c"),
    ("/home/alice/project1/src", ALICE_ARGS, "{cwd}/../src/example.c"),
    ("/", ["-I{cwd}/../../../../usr/include/example", "-I{cwd}/../../project2/include"], "{cwd}/../src/example.c"),
])
def test_paths_under_base_dir_are_keyed_relative_as_ccache_does(base_dir: str, args: list[str], source: str) -> None:
    assert [keymod.rebase_arg(a, ALICE_CWD, base_dir) for a in ALICE_ARGS] == args
    assert keymod.rebase_path(ALICE_SOURCE, ALICE_CWD, base_dir) == source


def test_other_forms_of_paths_in_arguments() -> None:
    cwd, base = "/src/a/build", "/src/a"
    cases = {
        "/src/a/inc": "{cwd}/../inc",  # the separate argument of -I, -include, -MF ...
        "-isystem/src/a/sys": "-isystem{cwd}/../sys",
        "--sysroot=/src/a/root": "--sysroot={cwd}/../root",
        "-Wl,-rpath,/src/a/lib": "-Wl,-rpath,{cwd}/../lib",
        "-I/src/ab/inc": "-I/src/ab/inc",  # a sibling whose name starts the same is not under base_dir
        "-I/src/a/x/../inc": "-I/src/a/x/../inc",  # not normalized: x may be a symbolic link
        '-DDIR="/src/a/data"': '-DDIR="/src/a/data"',  # reaches the object as written
        "-O2": "-O2",
        "-I": "-I",
        "src/a/rel": "src/a/rel",
    }
    assert {a: keymod.rebase_arg(a, cwd, base) for a in cases} == cases
    assert keymod.local_path("{cwd}/../inc/x.h", cwd) == "/src/a/inc/x.h"
    assert keymod.local_path("x.h", cwd) == "/src/a/build/x.h"
    assert keymod.local_path("/usr/include/x.h", cwd) == "/usr/include/x.h"


def _material(cwd: str, root: str, base_dir: str, args: tuple[str, ...] = ()) -> str:
    return keymod.direct_material(
        compiler_id="c", compiler_name="clang", language="c",
        key_args=["-O2", "-g", "-I%s/include" % root, *args], source="%s/src/f.c" % root, source_hash="h", cwd=cwd,
        debug=True, native=False, env={}, base_dir=base_dir)


def test_two_checkouts_get_one_key_only_with_base_dir() -> None:
    alice = _material("/home/alice/p/build", "/home/alice/p", "/home/alice")
    bob = _material("/srv/bob/w/p/build", "/srv/bob/w/p", "/srv/bob/w")
    assert alice == bob and "cwd={cwd}/.\n" in alice
    assert _material("/home/alice/p/build", "/home/alice/p", "") != _material("/srv/bob/w/p/build", "/srv/bob/w/p", "")
    # A path outside base_dir still counts.
    assert (_material("/home/alice/p/build", "/home/alice/p", "/home/alice", ("-I/opt/alice/inc",))
            != _material("/srv/bob/w/p/build", "/srv/bob/w/p", "/srv/bob/w", ("-I/opt/bob/inc",)))
    # A path the build wrote relative is kept apart from one rewritten to the same place: the object may differ.
    assert (_material("/home/alice/p/build", "/home/alice/p", "/home/alice").replace("{cwd}/../include", "../include")
            != _material("/home/alice/p/build", "/home/alice/p", "/home/alice"))
    # An argument already holding the mark turns the rewriting off rather than be confused with it.
    odd = _material("/home/alice/p/build", "/home/alice/p", "/home/alice", ("-DX={cwd}",))
    assert "arg=-I/home/alice/p/include" in odd and "source=/home/alice/p/src/f.c" in odd


# --- the code comparison that guards a rebuilt object -----------------------------------------------------------

CODE = """#include <assert.h>
#include "k.h"
static const char *where(void) { return __FILE__; }
int table[4] = {1, 2, 3, K};
int f(int n) { int s = 0; assert(n >= 0); for (int i = 0; i < n; i++) s += table[i & 3] * i; return s; }
const char *g(void) { return where(); }
"""


def _compile(root: Path, *flags: str) -> Path:
    (root / "inc").mkdir(parents=True, exist_ok=True)
    (root / "build").mkdir(exist_ok=True)
    (root / "inc" / "k.h").write_text("#define K 7\n")
    (root / "f.c").write_text(CODE)
    out = root / "build" / ("f%s.o" % "".join(flags).replace("-", "_").replace("=", "_"))
    subprocess.run(["clang", "-g", "-I%s" % (root / "inc"), *flags, "-c", str(root / "f.c"), "-o", str(out)],
                   cwd=root / "build", check=True)
    return out


def test_objects_from_two_paths_have_the_same_code_and_other_code_differs(tmp_path: Path) -> None:
    require("clang")
    a = _compile(tmp_path / "alice" / "checkout", "-O2")
    b = _compile(tmp_path / "bob" / "a-longer-path" / "checkout", "-O2")
    assert a.read_bytes() != b.read_bytes()  # the paths differ: debug info, __FILE__
    assert str(tmp_path / "alice").encode() in a.read_bytes()
    assert same_code(str(a), str(b)) == ""
    assert same_code(str(a), str(_compile(tmp_path / "bob" / "a-longer-path" / "checkout", "-O1"))) != ""
    other = tmp_path / "other"
    _compile(other, "-O2")
    (other / "inc" / "k.h").write_text("#define K 8\n")  # data: table[3]
    subprocess.run(["clang", "-g", "-O2", "-I%s" % (other / "inc"), "-c", str(other / "f.c"), "-o", "k8.o"],
                   cwd=other / "build", check=True)
    assert same_code(str(a), str(other / "build" / "k8.o")).startswith("section .data")
    assert same_code(str(a), str(tmp_path / "alice" / "checkout" / "f.c")).startswith("cannot compare")


# --- two checkouts at different paths, one remote store ---------------------------------------------------------

MAKEFILE = """CFLAGS = -O2 -g -I$(CURDIR)/include
prog: main.o lib/sum.o
\t$(CC) -o $@ $^
%.o: %.c
\t$(CC) $(CFLAGS) -c $(CURDIR)/$< -o $@
check: prog
\t./prog 10 | grep -qx 'sum 285 at lib/sum.c'
"""
SUM_C = """#include <assert.h>
#include "sum.h"
int sum_squares(int n) { int s = 0; assert(n >= 0); for (int i = 0; i < n; i++) s += i * i; return s; }
"""
MAIN_C = """#include <stdio.h>
#include <stdlib.h>
#include "sum.h"
int main(int argc, char **argv) { printf("sum %d at lib/sum.c\\n", sum_squares(atoi(argv[1]))); return 0; }
"""


def _checkout(root: Path) -> Path:
    (root / "include").mkdir(parents=True)
    (root / "lib").mkdir()
    (root / "Makefile").write_text(MAKEFILE)
    (root / "include" / "sum.h").write_text("int sum_squares(int n);\n")
    (root / "lib" / "sum.c").write_text(SUM_C)
    (root / "main.c").write_text(MAIN_C)
    return root


@dataclass
class Team:
    remote: Path
    alice: Path  # the checkout that stored the variant
    co: Coopt

    def developer(self, name: str, checkout: Path, **env: str) -> Coopt:
        cache = self.remote.parent / ("cache-" + name)
        return Coopt(self.co.bin, cache, dict(self.co.env, COOPT_CACHE_DIR=str(cache), **env))

    def build(self, dev: Coopt, checkout: Path) -> dict[str, int]:
        """A clean build and its `make check` with coopt-cc; the statistics counters it moved."""
        before = dev.stats()
        dev.run(["make", "-B", "CC=coopt-cc", "check"], cwd=checkout)
        after = dev.stats()
        return {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}


@pytest.fixture
def team(coopt: Coopt, tmp_path: Path) -> Team:
    """Alice's checkout stored a variant of lib/sum.c at the flags level (`coopt cache put` of the source itself) in
    her cache and the team's remote store. The Lua test below stores one `coopt optimize` verified."""
    require("clang", "make", "llvm-dwarfdump")
    remote = tmp_path / "remote"
    remote.mkdir()
    alice_tree = _checkout(tmp_path / "home" / "alice" / "src" / "proj")
    co = Coopt(coopt.bin, coopt.cache_dir, dict(coopt.env, COOPT_REMOTE_STORAGE="file://%s" % remote))
    t = Team(remote, alice_tree, co)
    alice = t.developer("alice", alice_tree, COOPT_BASE_DIR=str(tmp_path / "home" / "alice"))
    t.build(alice, alice_tree)
    put = alice.coopt("cache", "put", "--artifact", str(alice_tree / "lib" / "sum.c"), "--level", "flags",
                      "--for-object", "lib/sum.o", "--unverified", cwd=alice_tree)
    assert "uploaded" in put.stdout, put.stdout
    return t


def _debug_paths(obj: Path) -> str:
    return subprocess.run(["llvm-dwarfdump", "--debug-info", "--debug-line", str(obj)], capture_output=True,
                          text=True, check=True).stdout


def test_second_checkout_serves_the_variant_with_its_own_paths(team: Team, tmp_path: Path) -> None:
    bob_tree = _checkout(tmp_path / "srv" / "bob" / "work" / "proj")
    bob = team.developer("bob", bob_tree, COOPT_BASE_DIR=str(tmp_path / "srv" / "bob" / "work"))
    moved = team.build(bob, bob_tree)  # `make check` passes with the served object
    assert moved.get("hit") == 1 and moved.get("hit_rebuilt") == 1, moved
    assert moved.get("remote:hit:file://%s" % team.remote) == 1, moved
    assert "hits              1 (0 without a compiler run, 1 rebuilt with this checkout's paths)" in bob.coopt(
        "cache", "stats").stdout
    served = bob_tree / "lib" / "sum.o"
    paths = _debug_paths(served)
    assert str(bob_tree) in paths and str(team.alice) not in paths
    assert str(team.alice).encode() not in served.read_bytes()  # nor in __FILE__ (the assert message)
    # It is the object plain clang builds in Bob's checkout (the variant here is the unchanged source), and its
    # code is the code Alice's entry holds.
    plain = tmp_path / "plain.o"
    subprocess.run(["clang", "-O2", "-g", "-I%s/include" % bob_tree, "-c", str(bob_tree / "lib" / "sum.c"), "-o",
                    str(plain)], cwd=bob_tree, check=True)
    assert served.read_bytes() == plain.read_bytes()
    [entry] = (bob.cache_dir / "entries").glob("*/*/object.o")
    assert same_code(str(entry), str(served)) == "" and entry.read_bytes() != served.read_bytes()
    log = [r for r in bob.journal() if r.get("type") == "compile" and r["source"].endswith("sum.c")]
    assert log and log[-1]["cwd"] == str(bob_tree) and log[-1]["base_dir"] == str(tmp_path / "srv" / "bob" / "work")


def test_a_variant_that_cannot_be_rebuilt_here_is_compiled_for_real(coopt: Coopt, tmp_path: Path) -> None:
    """A bare object (level `object`) holds Alice's paths and no recipe: Bob's build compiles the TU itself."""
    require("clang", "make")
    remote = tmp_path / "remote"
    remote.mkdir()
    co = Coopt(coopt.bin, coopt.cache_dir, dict(coopt.env, COOPT_REMOTE_STORAGE="file://%s" % remote))
    t = Team(remote, _checkout(tmp_path / "home" / "alice" / "proj"), co)
    alice = t.developer("alice", t.alice, COOPT_BASE_DIR=str(tmp_path / "home" / "alice"))
    t.build(alice, t.alice)
    variant = tmp_path / "variant.o"
    subprocess.run(["clang", "-O1", "-g", "-I%s/include" % t.alice, "-c", str(t.alice / "lib" / "sum.c"), "-o",
                    str(variant)], cwd=t.alice, check=True)
    alice.coopt("cache", "put", "--artifact", str(variant), "--for-object", "lib/sum.o", "--unverified", cwd=t.alice)
    bob_tree = _checkout(tmp_path / "srv" / "bob" / "proj")
    bob = t.developer("bob", bob_tree, COOPT_BASE_DIR=str(tmp_path / "srv" / "bob"))
    moved = t.build(bob, bob_tree)
    assert moved.get("miss_rebuild") == 1 and not moved.get("hit"), moved
    plain = tmp_path / "plain.o"
    subprocess.run(["clang", "-O2", "-g", "-I%s/include" % bob_tree, "-c", str(bob_tree / "lib" / "sum.c"), "-o",
                    str(plain)], cwd=bob_tree, check=True)
    assert (bob_tree / "lib" / "sum.o").read_bytes() == plain.read_bytes()
    # In Alice's own directory the same entry is served as stored.
    again = t.developer("alice-again", t.alice, COOPT_BASE_DIR=str(tmp_path / "home" / "alice"))
    assert t.build(again, t.alice).get("hit") == 1
    assert (t.alice / "lib" / "sum.o").read_bytes() == variant.read_bytes()


def test_a_rewritten_source_is_rebuilt_under_the_local_source_name(team: Team, tmp_path: Path) -> None:
    alice = team.developer("alice", team.alice, COOPT_BASE_DIR=str(team.alice.parent.parent))
    rewrite = tmp_path / "rewrite" / "sum.c"
    rewrite.parent.mkdir()
    rewrite.write_text(SUM_C.replace("s += i * i;", "s += i * i; /* rewritten */")
                       + '__attribute__((used)) static const char marker[] = "coopt-rewrite";\n')
    alice.coopt("cache", "put", "--artifact", str(rewrite), "--for-object", "lib/sum.o", "--unverified",
                cwd=team.alice)
    bob_tree = _checkout(tmp_path / "srv" / "bob" / "work" / "proj")
    bob = team.developer("bob", bob_tree, COOPT_BASE_DIR=str(tmp_path / "srv" / "bob" / "work"))
    moved = team.build(bob, bob_tree)
    assert moved.get("hit") == 1 and moved.get("hit_rebuilt") == 1, moved
    served = bob_tree / "lib" / "sum.o"
    assert b"coopt-rewrite" in served.read_bytes()
    paths = _debug_paths(served)
    # The object names Bob's source, not the entry's copy of the rewrite nor Alice's checkout.
    assert str(bob_tree / "lib" / "sum.c") in paths and "artifact.c" not in paths and str(team.alice) not in paths


def test_a_pgo_variant_is_rebuilt_with_the_profile_the_entry_holds(team: Team, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A `pgo` entry as the optimizer stores it (the judged object, the profile as artifact, the profile flag in its
    extra flags naming the run directory on Alice's machine): Bob's build uses the entry's copy of the profile."""
    from coopt.cache.publish import Remotes, put_variant
    from coopt.cache.store import Store
    from coopt.journal.job import CompileJob
    from coopt.toolchain import find_toolchain

    alice_cache = team.remote.parent / "cache-alice"
    train = tmp_path / "alice-run"
    train.mkdir()
    sources = [str(team.alice / "main.c"), str(team.alice / "lib" / "sum.c")]
    subprocess.run(["clang", "-O2", "-fprofile-instr-generate", "-I%s/include" % team.alice, *sources, "-o", "p"],
                   cwd=train, check=True)
    subprocess.run(["./p", "300"], cwd=train, check=True, env={"LLVM_PROFILE_FILE": "p.profraw"},
                   capture_output=True)
    profile = train / "merged.profdata"
    subprocess.run([find_toolchain("clang").tool("llvm-profdata"), "merge", "-o", str(profile), "p.profraw"],
                   cwd=train, check=True)
    flags = ["-fprofile-instr-use=%s" % profile, "-Wno-profile-instr-unprofiled", "-Wno-profile-instr-out-of-date"]
    [rec] = [r for r in Coopt(team.co.bin, alice_cache, team.co.env).journal()
             if r.get("type") == "compile" and r["source"].endswith("sum.c")][-1:]
    job = CompileJob.from_record(rec)
    judged = train / "judged.o"
    subprocess.run(job.replay_command(job.source, str(judged), flags), cwd=job.cwd, check=True)
    monkeypatch.setenv("COOPT_CACHE_DIR", str(alice_cache))
    entry = put_variant(Store(str(alice_cache)), job, str(profile), "c", {"verified": False, "by": "test"}, flags,
                        prebuilt_object=str(judged), remotes=Remotes(("file://%s" % team.remote,)), level="pgo")
    plain = tmp_path / "plain-alice.o"
    subprocess.run(job.replay_command(job.source, str(plain)), cwd=job.cwd, check=True)
    assert same_code(str(judged), str(plain)) != ""  # the profile changed the code: the test can tell them apart
    shutil.rmtree(train)  # the profile's path on Alice's machine is gone; only the entry's copy remains

    bob_tree = _checkout(tmp_path / "srv" / "bob" / "work" / "proj")
    bob = team.developer("bob", bob_tree, COOPT_BASE_DIR=str(tmp_path / "srv" / "bob" / "work"))
    moved = team.build(bob, bob_tree)
    assert moved.get("hit") == 1 and moved.get("hit_rebuilt") == 1, moved
    served = bob_tree / "lib" / "sum.o"
    assert same_code(entry.object_path, str(served)) == ""
    assert str(bob_tree) in _debug_paths(served) and str(team.alice) not in _debug_paths(served)


def test_base_dir_dot_in_each_checkouts_coopt_toml(coopt: Coopt, tmp_path: Path) -> None:
    """The form a team commits: `base_dir = "."` in the project's coopt.toml is each checkout's own root."""
    require("clang", "make")
    remote = tmp_path / "remote"
    remote.mkdir()
    co = Coopt(coopt.bin, coopt.cache_dir, dict(coopt.env, COOPT_REMOTE_STORAGE="file://%s" % remote))
    t = Team(remote, _checkout(tmp_path / "a" / "proj"), co)
    bob_tree = _checkout(tmp_path / "b" / "deeper" / "proj")
    for tree in (t.alice, bob_tree):
        (tree / "coopt.toml").write_text('[cache]\nbase_dir = "."\n')
    alice = t.developer("alice", t.alice)
    t.build(alice, t.alice)
    alice.coopt("cache", "put", "--artifact", str(t.alice / "lib" / "sum.c"), "--level", "flags", "--for-object",
                "lib/sum.o", "--unverified", cwd=t.alice)
    moved = t.build(t.developer("bob", bob_tree), bob_tree)
    assert moved.get("hit") == 1 and moved.get("hit_rebuilt") == 1, moved
    assert str(t.alice) not in _debug_paths(bob_tree / "lib" / "sum.o")


def test_without_base_dir_the_second_checkout_does_not_hit(team: Team, tmp_path: Path) -> None:
    bob_tree = _checkout(tmp_path / "srv" / "bob" / "work" / "proj")
    moved = team.build(team.developer("bob", bob_tree), bob_tree)
    assert not moved.get("hit") and moved.get("miss") == 2, moved


def test_paths_outside_base_dir_still_count(team: Team, tmp_path: Path) -> None:
    # Bob's base_dir holds his sources but not the include directory the Makefile names: no hit.
    bob_tree = _checkout(tmp_path / "srv" / "bob" / "work" / "proj")
    shutil.move(str(bob_tree / "include"), str(tmp_path / "srv" / "bob" / "include"))
    text = (bob_tree / "Makefile").read_text().replace("-I$(CURDIR)/include", "-I%s" % (tmp_path / "srv/bob/include"))
    (bob_tree / "Makefile").write_text(text)
    moved = team.build(team.developer("bob", bob_tree, COOPT_BASE_DIR=str(tmp_path / "srv" / "bob" / "work")),
                       bob_tree)
    assert not moved.get("hit") and moved.get("miss") == 2, moved


def test_the_same_directory_is_served_as_stored(team: Team) -> None:
    # Alice rebuilds in her own checkout with a fresh cache: the remote's object names her paths already.
    alice = team.developer("alice-again", team.alice, COOPT_BASE_DIR=str(team.alice.parent.parent))
    moved = team.build(alice, team.alice)
    assert moved.get("hit") == 1 and not moved.get("hit_rebuilt"), moved
    [entry] = (alice.cache_dir / "entries").glob("*/*/object.o")
    assert (team.alice / "lib" / "sum.o").read_bytes() == entry.read_bytes()
    # In the cache that stored it, the header search recorded at put time (its paths rebased too) still holds:
    # a direct hit, without a compiler run.
    own = team.developer("alice", team.alice, COOPT_BASE_DIR=str(team.alice.parent.parent))
    moved = team.build(own, team.alice)
    assert moved.get("hit_direct") == 1 and not moved.get("hit_rebuilt"), moved


def test_a_relative_base_dir_in_the_environment_is_refused(coopt: Coopt, tmp_path: Path) -> None:
    require("clang")
    (tmp_path / "f.c").write_text("int f(void) { return 1; }\n")
    proc = subprocess.run([coopt.cc, "-c", "f.c"], cwd=tmp_path, env=dict(coopt.env, COOPT_BASE_DIR="src"),
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("coopt-cc: error: bad config COOPT_BASE_DIR (environment): must be an absolute "
                                   "path, got 'src'")


# --- coopt-cc-fast (the C miss path) keys as Python does --------------------------------------------------------


def test_the_c_fast_path_keys_with_base_dir_as_python_does(coopt: Coopt, fast_binary: Path, tmp_path: Path) -> None:
    require("clang")
    from conftest import write_fast_launcher

    bindir = tmp_path / "fastbin"
    bindir.mkdir()
    write_fast_launcher(bindir, fast_binary)
    fast = Coopt(coopt.bin, coopt.cache_dir, dict(coopt.env, PATH="%s:%s" % (bindir, coopt.env["PATH"])))
    tree = _checkout(tmp_path / "dev" / "proj")
    cc = str(bindir / "coopt-cc")
    args = [cc, "-O2", "-g", "-I%s" % (tree / "include"), "-c", str(tree / "lib" / "sum.c"), "-o", "sum.o"]

    def compile_(**env: str) -> dict:
        subprocess.run(args, cwd=tree, env=dict(fast.env, **env), check=True)
        return fast.journal()[-1]

    plain = compile_()
    compile_()
    assert fast.stats() == {"miss": 1, "miss_fast": 1}
    # COOPT_BASE_DIR changes the key: the memo left without it is not replayed; Python decides once, then C.
    base = str(tmp_path / "dev")
    by_python = compile_(COOPT_BASE_DIR=base)
    by_c = compile_(COOPT_BASE_DIR=base)
    assert fast.stats() == {"miss": 2, "miss_fast": 2}
    assert by_python["key"] == by_c["key"] != plain["key"] and by_c["base_dir"] == base
    # The same key from another checkout: only base_dir-relative paths entered it.
    other = _checkout(tmp_path / "elsewhere" / "deeper" / "proj")
    moved = [a.replace(str(tree), str(other)) if a.startswith(("-I/", "/")) else a for a in args]
    subprocess.run(moved, cwd=other, env=dict(fast.env, COOPT_BASE_DIR=str(tmp_path / "elsewhere" / "deeper")),
                   check=True)
    assert fast.journal()[-1]["key"] == by_c["key"]


# --- a real project: Lua, a variant `coopt optimize` verified in one checkout, served in another -----------------

SUPPORT = Path(__file__).resolve().parent / "support"
BENCH_LUA = """local t = {}
for i = 1, 60000 do t[i] = (i * 7919) % 10007 end
table.sort(t)
local parts = {}
for i = 1, 20000 do parts[#parts + 1] = tostring(i) .. ":" .. (i % 10) end
print(#t, #table.concat(parts, ","))
"""


def _lua_checkout(dest: Path) -> Path:
    from support.debian_sources import SourceUnavailable, copy_tree

    try:
        tree = copy_tree("lua5.4", dest, pristine=True)
    except SourceUnavailable as exc:
        pytest.skip(str(exc))
    (tree / "bench.lua").write_text(BENCH_LUA)
    return tree


def _lua_build(dev: Coopt, tree: Path) -> None:
    # Debug info and an absolute include directory: both put the checkout's path in the key without base_dir.
    dev.run(["make", "-j2", "linux-noreadline", "CC=coopt-cc", "MYCFLAGS=-g -I%s" % (tree / "src")], cwd=tree / "src")


@pytest.mark.slow
def test_lua_variant_verified_in_one_checkout_is_served_in_another(coopt: Coopt, tmp_path: Path) -> None:
    require("clang", "make", "perf", "llvm-dwarfdump")
    remote = tmp_path / "remote"
    remote.mkdir()
    team_env = {k: v for k, v in coopt.env.items() if k != "COOPT_SERVE_UNVERIFIED"}  # verified entries only
    team_env["COOPT_REMOTE_STORAGE"] = "file://%s" % remote

    def developer(name: str, base_dir: str) -> Coopt:
        cache = tmp_path / ("cache-" + name)
        return Coopt(coopt.bin, cache, dict(team_env, COOPT_CACHE_DIR=str(cache), COOPT_BASE_DIR=base_dir))

    alice_tree = _lua_checkout(tmp_path / "home" / "alice" / "lua")
    alice = developer("alice", str(tmp_path / "home" / "alice"))
    _lua_build(alice, alice_tree)
    expected = alice.run(["src/lua", "bench.lua"], cwd=alice_tree).stdout
    alice.coopt("profile", "--quiet", "-o", "profile.json", "--", "src/lua", "bench.lua", cwd=alice_tree)
    # Speed is noise on a shared machine: --min-gain 0.5 stores whatever the judge accepts (tests/test_optimize.py).
    proc = alice.coopt("optimize", "--profile", "profile.json", "--levels", "flags", "--budget", "2", "--pairs", "3",
                       "--min-gain", "0.5", "--no-final", "--run-dir", str(tmp_path / "run"),
                       cwd=alice_tree)
    from coopt.cache.store import Store

    stored = Store(str(alice.cache_dir)).entries()
    assert stored, proc.stdout
    for e in stored:
        assert e.meta["evidence"]["verdict"]["code"] == "accepted" and e.meta["level"] == "flags"
        assert e.meta["extra_flags"] == e.meta["evidence"]["proposer"]["flags"] and e.meta["extra_flags"]
    assert sorted(p.name for p in remote.rglob("*") if p.is_file()), "nothing reached the remote store"

    bob_tree = _lua_checkout(tmp_path / "srv" / "bob" / "work" / "lua")
    bob = developer("bob", str(tmp_path / "srv" / "bob" / "work"))
    _lua_build(bob, bob_tree)
    moved = bob.stats()
    assert moved.get("hit") == len(stored) and moved.get("hit_rebuilt") == len(stored), moved
    for e in stored:
        served = bob_tree / "src" / e.meta["job"]["output"]
        paths = _debug_paths(served)
        assert str(bob_tree) in paths and str(alice_tree) not in paths, served
        assert same_code(e.object_path, str(served)) == ""
    # The project's own test and the workload's output, with the served variants linked in.
    bob.run(["make", "test"], cwd=bob_tree)
    bob.run(["src/lua", str(SUPPORT / "test_real_lua_check.lua")], cwd=bob_tree)
    assert bob.run(["src/lua", "bench.lua"], cwd=bob_tree).stdout == expected

    # Without base_dir, Carol's checkout at a third path finds nothing to serve.
    carol_tree = _lua_checkout(tmp_path / "carol" / "lua")
    carol = developer("carol", "")
    carol.env.pop("COOPT_BASE_DIR")
    _lua_build(carol, carol_tree)
    assert not carol.stats().get("hit"), carol.stats()
