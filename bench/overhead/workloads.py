"""What is compiled: a small TU written here, and Lua (upstream's tree and Makefile) with its hot TU lvm.c.

Lua's commands are taken from its own Makefile (`make -n`), so lvm.c is compiled with exactly the flags a Lua build
uses when CC is given on the make command line, as users of coopt-cc do.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from overhead.timing import BenchError, clean_env, progress

LUA_TARGET = "linux-noreadline"
LUA_HOT_TU = "lvm.c"

SMALL_SOURCE = """\
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct counter { const char *word; int n; };

static int cmp(const void *a, const void *b) {
    const struct counter *x = a, *y = b;
    return y->n != x->n ? y->n - x->n : strcmp(x->word, y->word);
}

int count_words(const char **words, int n, struct counter *out) {
    int used = 0;
    for (int i = 0; i < n; i++) {
        int j = 0;
        while (j < used && strcmp(out[j].word, words[i]) != 0) j++;
        if (j == used) { out[used].word = words[i]; out[used].n = 0; used++; }
        out[j].n++;
    }
    qsort(out, (size_t)used, sizeof *out, cmp);
    return used;
}

int main(int argc, char **argv) {
    struct counter *c = calloc((size_t)argc, sizeof *c);
    int used = count_words((const char **)argv + 1, argc - 1, c);
    for (int i = 0; i < used; i++) printf("%s %d\\n", c[i].word, c[i].n);
    free(c);
    return 0;
}
"""
SMALL_FLAGS = ("-O2", "-Wall")


@dataclass(frozen=True)
class Tu:
    """One TU to compile, with the directory and arguments (after the compiler) of each call measured on it."""

    label: str
    cwd: Path
    source: str
    compile_args: tuple[str, ...]
    object_name: str
    preprocess_args: tuple[str, ...]
    link_args: tuple[str, ...]
    link_output: str


def _run(argv: list[str], cwd: Path) -> None:
    proc = subprocess.run(argv, cwd=cwd, env=clean_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise BenchError("`%s` failed (exit %d) in %s: %s" % (" ".join(argv), proc.returncode, cwd, " | ".join(tail)))


TINY_SOURCE = "int main(void) {\n  return 0;\n}\n"


def tiny_tu(workdir: Path) -> Tu:
    """A 3-line TU with no headers: where a hit's fixed cost (Python start-up, any compiler run) shows most."""
    d = workdir / "tiny"
    d.mkdir(parents=True)
    (d / "tiny.c").write_text(TINY_SOURCE)
    tu = Tu(
        label="tiny",
        cwd=d,
        source="tiny.c",
        compile_args=("-O2", "-c", "tiny.c", "-o", "tiny.o"),
        object_name="tiny.o",
        preprocess_args=("-O2", "-E", "tiny.c", "-o", "tiny.i"),
        link_args=("tiny.o", "-o", "tiny"),
        link_output="tiny",
    )
    _run(["clang", *tu.compile_args], d)
    return tu


def small_tu(workdir: Path) -> Tu:
    """A ~40-line TU with a few libc headers, compiled and linked as a one-file program."""
    d = workdir / "small"
    d.mkdir(parents=True)
    (d / "small.c").write_text(SMALL_SOURCE)
    tu = Tu(
        label="small",
        cwd=d,
        source="small.c",
        compile_args=(*SMALL_FLAGS, "-c", "small.c", "-o", "small.o"),
        object_name="small.o",
        preprocess_args=(*SMALL_FLAGS, "-E", "small.c", "-o", "small.i"),
        link_args=("small.o", "-o", "small"),
        link_output="small",
    )
    _run(["clang", *tu.compile_args], d)
    return tu


def lua_upstream() -> Path:
    """Lua's pristine upstream tree (fetched once by the tests' source helper)."""
    from support.debian_sources import SourceUnavailable, upstream

    try:
        return upstream("lua5.4")
    except SourceUnavailable as exc:
        raise BenchError("Lua's source is not available: %s" % exc) from exc


def copy_lua(dest: Path) -> Path:
    """A private copy of Lua's upstream tree at `dest`."""
    shutil.copytree(lua_upstream(), dest, symlinks=True)
    return dest


def lua_make(tree: Path, cc: str, jobs: int = 2) -> list[str]:
    """The command that builds Lua in `tree` with `cc` as the compiler, as Lua's README says (CC on make's line)."""
    return ["make", "-C", str(tree / "src"), "-j%d" % jobs, LUA_TARGET, "CC=%s" % cc]


def lua_commands(tree: Path) -> list[list[str]]:
    """Lua's compile and link commands, as `make -n` prints them for a build with CC=clang."""
    proc = subprocess.run(
        ["make", "-n", "-C", str(tree / "src"), LUA_TARGET, "CC=clang"], env=clean_env(), capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise BenchError("`make -n` in Lua's tree failed: %s" % proc.stderr.strip()[-300:])
    commands = []
    for line in proc.stdout.splitlines():
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        if words and words[0] == "clang":
            commands.append(words[1:])
    return commands


def lua_tu(workdir: Path) -> Tu:
    """lvm.c, Lua's hottest TU, in a built copy of Lua (so its real link command has its inputs)."""
    tree = copy_lua(workdir / "lua-tu")
    commands = lua_commands(tree)
    compiles = [c for c in commands if LUA_HOT_TU in c and "-c" in c]
    links = [c for c in commands if "-c" not in c and "-o" in c and c[c.index("-o") + 1] == "lua"]
    if not compiles or not links:
        raise BenchError("cannot find the %s compile and the lua link in Lua's `make -n` output" % LUA_HOT_TU)
    compile_args = tuple(compiles[0])
    obj = compile_args[compile_args.index("-o") + 1] if "-o" in compile_args else "lvm.o"
    flags = [a for a in compile_args if a not in ("-c", LUA_HOT_TU)]
    if "-o" in flags:
        i = flags.index("-o")
        del flags[i:i + 2]
    progress("building Lua once with plain clang (inputs of the link case)")
    _run(lua_make(tree, "clang"), tree)
    return Tu(
        label="lua",
        cwd=tree / "src",
        source=LUA_HOT_TU,
        compile_args=compile_args,
        object_name=obj,
        preprocess_args=(*flags, "-E", LUA_HOT_TU, "-o", "lvm.i"),
        link_args=tuple(links[0]),
        link_output="lua",
    )
