"""The import contract (DESIGN.md "Layout"): which part of coopt may import which, and no import cycles.

Every module under src/coopt is parsed (not imported) and each `import`/`from ... import`, also those inside
functions, becomes an edge between two modules. The rules are one table: a part and the parts it must not
import. The same engine is first run on a small synthetic graph with a violation and a cycle, so a rule engine
that finds nothing cannot pass silently.
"""

from __future__ import annotations

import ast
import functools
import pathlib
from collections.abc import Iterable, Mapping

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"

# Parts above the storage layers, named once for the rows below.
_UPPER = ("wrapper", "profile", "hooks", "verify", "llm", "agents", "optimize", "report", "config", "nightly",
          "doctor", "toolchain", "budget", "cli")

# part -> the parts it must never import (a part never needs to list itself). Modules directly under coopt/ are
# parts of their own name ("toolchain", "budget", "doctor"). `coopt` (the package's __init__) is free for all.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    # The hot path runs once per compile: storage and the journal only.
    "wrapper": tuple(p for p in _UPPER if p != "wrapper"),
    # Storage does not know who proposes, judges or configures.
    "cache": _UPPER,
    "journal": ("cache",) + _UPPER,
    # The judge does not depend on the proposer.
    "verify": ("agents", "optimize", "llm", "report", "nightly", "cli", "wrapper"),
    "llm": ("agents", "optimize", "verify", "cache", "journal", "report", "nightly", "cli", "wrapper"),
    "agents": ("optimize", "report", "nightly", "cli", "wrapper"),
    "optimize": ("report", "nightly", "cli", "wrapper"),
    "report": ("nightly", "cli", "wrapper"),
    # Configuration does not depend on the hot path.
    "config": ("wrapper", "agents", "optimize", "verify", "llm", "report", "nightly", "cli"),
    "profile": ("agents", "optimize", "verify", "llm", "report", "nightly", "cli", "wrapper"),
    "hooks": ("agents", "optimize", "verify", "llm", "report", "nightly", "cli", "wrapper"),
    "budget": tuple(p for p in _UPPER if p != "budget"),
    "toolchain": tuple(p for p in _UPPER if p != "toolchain"),
    # coopt.toml's search, shared by coopt-cc and config/: below both.
    "locate": ("cache", "journal") + _UPPER,
    # Secret masking: a leaf that cache, config, report and the CLI all use.
    "redact": ("cache", "journal") + _UPPER,
    "nightly": ("cli",),
    "doctor": ("cli",),
}
# The console entry (`python -m coopt`) is the one module that may import the CLI.
ENTRY_POINTS = frozenset({"coopt.__main__"})
# Modules any part may read although their part is above it: tables that import nothing. The levels' registry is
# what config checks `[optimize] levels` against (one table of levels, not a copy in config).
SHARED_TABLES = frozenset({"coopt.agents.registry"})


def part_of(module: str) -> str:
    """The part a module belongs to: `coopt.agents.rewrite.ir` -> "agents", `coopt` -> "coopt"."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else pieces[0]


def module_name(path: pathlib.Path, root: pathlib.Path) -> str:
    """Dotted name of a source file under `root`."""
    parts = list(path.with_suffix("").relative_to(root).parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The coopt modules one parsed module imports, at any depth (function-level imports count too)."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                # `from coopt.cache import stats` imports the module coopt.cache.stats, not the package.
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return {m for m in found if m == "coopt" or m.startswith("coopt.")}


@functools.cache  # parsed once for the tests below
def module_graph(root: pathlib.Path) -> dict[str, set[str]]:
    """Every module under root/coopt and the coopt modules it imports."""
    files = sorted((root / "coopt").rglob("*.py"))
    known = {module_name(f, root) for f in files}
    return {module_name(f, root): imports_of(ast.parse(f.read_text(encoding="utf-8")), module_name(f, root),
                                             f.name == "__init__.py", known)
            for f in files}


def violations(graph: Mapping[str, Iterable[str]], forbidden: Mapping[str, tuple[str, ...]] = FORBIDDEN,
               entry_points: frozenset[str] = ENTRY_POINTS,
               shared_tables: frozenset[str] = SHARED_TABLES) -> list[str]:
    """One line per import that breaks a rule: "importer -> imported (part must not import part)"."""
    found = []
    for importer, imported in sorted(graph.items()):
        mine = part_of(importer)
        for target in sorted(imported):
            theirs = part_of(target)
            if theirs == mine or target in shared_tables:
                continue
            if theirs == "cli" and importer not in entry_points:
                found.append(f"{importer} -> {target} (nothing imports cli)")
            elif theirs in forbidden.get(mine, ()):
                found.append(f"{importer} -> {target} ({mine} must not import {theirs})")
    return found


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The import cycles between modules: each strongly connected component of more than one module (Tarjan).

    A package's __init__ importing its own submodules is not a cycle worth reporting when the submodule imports
    a sibling through the package; edges into a package are kept, so such a loop still shows."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_engine_finds_a_wrong_import_and_a_cycle() -> None:
    # A synthetic house with one import per rule kind that must fail, and one that must pass.
    graph = {
        "coopt.wrapper.main": {"coopt.cache.store", "coopt.journal.log", "coopt.config"},  # config: wrong
        "coopt.cache.store": {"coopt.journal.job"},
        "coopt.journal.job": set(),
        "coopt.journal.log": {"coopt.journal.job"},
        "coopt.verify.pipeline": {"coopt.agents.levels"},  # wrong: the judge imports a proposer
        "coopt.agents.levels": {"coopt.verify.pipeline"},  # fine as a rule, but closes a cycle
        "coopt.report.summary": {"coopt.cli.common"},  # wrong: nothing imports cli
        "coopt.__main__": {"coopt.cli"},  # fine: the entry point
        "coopt.config": {"coopt.agents.registry"},  # fine: a shared table
        "coopt.config.load": {"coopt.agents.levels"},  # wrong: the agents themselves
        "coopt.cli": set(),
        "coopt.cli.common": set(),
    }
    assert violations(graph) == [
        "coopt.config.load -> coopt.agents.levels (config must not import agents)",
        "coopt.report.summary -> coopt.cli.common (nothing imports cli)",
        "coopt.verify.pipeline -> coopt.agents.levels (verify must not import agents)",
        "coopt.wrapper.main -> coopt.config (wrapper must not import config)",
    ]
    assert cycles(graph) == [["coopt.agents.levels", "coopt.verify.pipeline"]]
    # And the parser sees a function-level import and resolves `from package import module`.
    tree = ast.parse("def f():\n    from coopt.cache import stats\n    import coopt.cli\n")
    assert imports_of(tree, "coopt.wrapper.main", False, {"coopt.cache.stats"}) == {"coopt.cache.stats", "coopt.cli"}


def test_every_module_keeps_the_import_rules() -> None:
    graph = module_graph(SRC)
    assert len(graph) > 50  # the parser found the source tree
    assert violations(graph) == []


def test_no_import_cycles_between_modules() -> None:
    assert cycles(module_graph(SRC)) == []


def test_shared_tables_import_nothing() -> None:
    # A table anyone may read must not pull its part in behind it.
    graph = module_graph(SRC)
    assert {m: graph[m] for m in SHARED_TABLES} == {m: set() for m in SHARED_TABLES}


def test_every_part_has_a_row() -> None:
    # A new top-level part must say what it may not import; `data` holds files shipped with coopt, not a part.
    parts = {part_of(m) for m in module_graph(SRC)} - {"coopt", "__main__", "data"}
    assert parts <= set(FORBIDDEN) | {"cli"}, parts - set(FORBIDDEN)


# Standard-library modules a warm miss must not load: each costs milliseconds on every Python-decided compile
# (`typing` alone pulls in re, enum, functools and collections: ~4 ms; a `from typing import TYPE_CHECKING` in
# journal/log.py once made the launcher's imports 16x slower, and a hit slower than clang's own compile).
HEAVY_STDLIB = ("typing", "re", "enum", "json", "dataclasses", "subprocess", "inspect", "ast", "traceback",
                "tempfile", "shutil", "argparse", "logging")


def test_a_warm_miss_loads_no_heavy_standard_library_module(tmp_path: pathlib.Path) -> None:
    import os
    import subprocess
    import sys

    (tmp_path / "t.c").write_text("int f(int x) { return x + 1; }\n")
    drive = ("import sys; sys.path.insert(0, %r); from coopt.wrapper.main import main; "
             "sys.exit(main(['coopt-cc', 'clang', '-O2', '-c', 't.c', '-o', 't.o']))" % str(SRC))
    env = {"PATH": os.environ.get("PATH", ""), "COOPT_CACHE_DIR": str(tmp_path / "cache"), "HOME": str(tmp_path)}
    site = [p for p in sys.path if p.endswith("site-packages")]  # xxhash, as the launcher appends it under -S
    drive = "import sys; sys.path.extend(%r); " % site + drive
    loaded: list[str] = []
    for _ in range(2):  # the first call into an empty cache hashes the compiler's identity (it runs the compiler)
        proc = subprocess.run([sys.executable, "-I", "-S", "-X", "importtime", "-c", drive], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr[-2000:]
        loaded = [line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
                  if line.startswith("import time:") and "|" in line]
    assert (tmp_path / "t.o").is_file() and "coopt.wrapper.main" in loaded
    assert not set(loaded) & set(HEAVY_STDLIB), sorted(set(loaded) & set(HEAVY_STDLIB))
