"""Building real projects with plain clang and with coopt-cc, and comparing what the builds leave behind.

A `Recipe` is one project's own build, written as its users run it: configure (if any), build, the project's own
tests, clean. Commands are argv lists whose elements may name `{cc}` (the C compiler for this build) and
`{support}` (this directory). Each build runs in the same tree at the same path, so debug info (which records the
working directory) is comparable byte for byte between builds.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

SUPPORT = Path(__file__).resolve().parent

Command = tuple[str, ...]


@dataclass(frozen=True)
class Recipe:
    """How one real project builds, tests and cleans itself, and what its build must leave behind."""

    name: str
    package: str
    pristine: bool  # upstream's tree from the .orig tarball rather than Debian's patched one
    build: tuple[Command, ...]
    test: tuple[Command, ...]
    clean: tuple[Command, ...]
    objects: tuple[str, ...]  # globs, relative to the tree, of every object file the build writes
    links: tuple[str, ...]  # programs and shared libraries the build links, relative to the tree
    configure: tuple[Command, ...] = ()  # run with CC={cc} in the environment
    # (suffix, template): an object with this suffix was compiled to another name and renamed by the build
    # (zlib compiles objs/X.o and moves it to X.lo); the journal names the compile's own output.
    renamed: tuple[tuple[str, str], ...] = ()


LUA = Recipe(
    name="lua5.4",
    package="lua5.4",
    pristine=True,
    # Lua's Makefile sets CC (with -std=gnu99) itself: CC must be given on the command line.
    build=(("make", "-j2", "-C", "src", "linux", "CC={cc} -std=gnu99"),),
    test=(("make", "test"), ("src/lua", "{support}/test_real_lua_check.lua")),
    clean=(("make", "clean"),),
    objects=("src/*.o",),
    links=("src/lua", "src/luac"),
)

ZLIB = Recipe(
    name="zlib",
    package="zlib",
    pristine=False,
    configure=(("./configure",),),
    build=(("make", "-j2"),),
    test=(("make", "test"),),
    clean=(("make", "distclean"),),
    objects=("*.o", "*.lo"),
    links=("libz.so.1.2.13", "example", "minigzip", "examplesh", "minigzipsh", "example64", "minigzip64"),
    renamed=((".lo", "objs/{stem}.o"),),
)

BZIP2 = Recipe(
    name="bzip2",
    package="bzip2",
    pristine=False,
    # The `all` target runs bzip2's own tests (compress and decompress the samples, compare with references).
    build=(("make", "-j2", "CC={cc}"),),
    test=(),
    clean=(("make", "clean"),),
    objects=("*.o", "*.sho"),
    links=("bzip2", "bzip2recover", "libbz2.so.1.0.4"),
)

MAKE_RECIPES = (LUA, ZLIB, BZIP2)


@dataclass(frozen=True)
class BuildResult:
    """What one build left: every object file's bytes (by path relative to the tree) and the tests' output."""

    objects: dict[str, bytes]
    test_output: str


@dataclass
class Runner:
    """Runs commands in one tree with one environment; a failing command fails the test with its output."""

    tree: Path
    env: dict[str, str]

    def run(self, cmd: Iterable[str], extra_env: Mapping[str, str] | None = None) -> str:
        """Run `cmd` in the tree; returns its standard output."""
        argv = [str(a) for a in cmd]
        env = dict(self.env, **(extra_env or {}))
        proc = subprocess.run(argv, cwd=self.tree, env=env, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise AssertionError(
                "%s failed (exit %d) in %s:\n%s\n%s"
                % (" ".join(argv), proc.returncode, self.tree, proc.stdout[-4000:], proc.stderr[-4000:])
            )
        return proc.stdout


def expand(cmd: Command, cc: str) -> list[str]:
    """A recipe command with `{cc}` and `{support}` filled in."""
    return [a.format(cc=cc, support=SUPPORT) for a in cmd]


def build(recipe: Recipe, runner: Runner, cc: str, extra_env: Mapping[str, str] | None = None) -> BuildResult:
    """Configure, build and test the project with `cc` as its C compiler; returns its objects and test output."""
    env = dict(extra_env or {})
    for cmd in recipe.configure:
        runner.run(expand(cmd, cc), {**env, "CC": cc})
    for cmd in recipe.build:
        runner.run(expand(cmd, cc), env)
    out = [runner.run(expand(cmd, cc), env) for cmd in recipe.test]
    return BuildResult(snapshot(runner.tree, recipe.objects), "".join(out))


def clean(recipe: Recipe, runner: Runner) -> None:
    """Run the project's own clean, then check it really left no objects (else a rebuild would compile nothing)."""
    for cmd in recipe.clean:
        runner.run(cmd)
    left = snapshot(runner.tree, recipe.objects)
    assert not left, "%s's clean left objects behind: %s" % (recipe.name, sorted(left))


def snapshot(tree: Path, patterns: Iterable[str]) -> dict[str, bytes]:
    """Every file matching the globs, by path relative to `tree`, with its bytes."""
    found: dict[str, bytes] = {}
    for pattern in patterns:
        for path in tree.glob(pattern):
            if path.is_file():
                found[str(path.relative_to(tree))] = path.read_bytes()
    return found


def differing(expected: Mapping[str, bytes], actual: Mapping[str, bytes]) -> list[str]:
    """Names missing on either side or whose bytes differ, sorted (empty when the two builds are identical)."""
    names = set(expected) | set(actual)
    return sorted(n for n in names if expected.get(n) != actual.get(n))


def journal_output(recipe: Recipe, obj: str) -> str:
    """The output the compile of `obj` (relative to the tree) named on its command line."""
    path = Path(obj)
    for suffix, template in recipe.renamed:
        if path.suffix == suffix:
            return str(path.parent / template.format(stem=path.stem))
    return obj


def compile_outputs(records: Iterable[dict]) -> set[str]:
    """Absolute paths of the objects that journaled compiles wrote."""
    return {os.path.normpath(os.path.join(r["cwd"], r["output"])) for r in records if r.get("type") == "compile"}


def link_outputs(records: Iterable[dict]) -> set[str]:
    """Absolute paths of the programs and libraries that journaled links wrote."""
    return {os.path.normpath(os.path.join(r["cwd"], r["output"])) for r in records if r.get("type") == "link"}


def stats_delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """Counters that moved between two readings of the stats."""
    names = set(before) | set(after)
    return {n: after.get(n, 0) - before.get(n, 0) for n in names if after.get(n, 0) != before.get(n, 0)}


def misses(counters: Mapping[str, int]) -> int:
    return sum(v for k, v in counters.items() if k.startswith("miss"))


def load_compdb(path: Path) -> list[dict]:
    """Read compile_commands.json, checking the shape clang tools expect: a list of entries, each with a
    directory, a file and the arguments (or a command)."""
    db = json.loads(path.read_text())
    assert isinstance(db, list) and db, "%s is not a non-empty JSON list" % path
    for entry in db:
        assert isinstance(entry, dict), entry
        assert isinstance(entry.get("directory"), str) and os.path.isabs(entry["directory"]), entry
        assert isinstance(entry.get("file"), str) and entry["file"], entry
        args = entry.get("arguments")
        assert (isinstance(args, list) and args and all(isinstance(a, str) for a in args)) or isinstance(
            entry.get("command"), str
        ), entry
    return db
