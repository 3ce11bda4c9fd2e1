"""The one table of optimization levels: who proposes at each level, whether it needs an LLM, what it hands over.

Config (the allowed values of `[optimize] levels`), the CLI (`--levels`), the optimizer (which agent to make) and
the cache's publish step (how to compile the artifact) all read this table. It imports nothing: the agents'
modules load only when a run asks for their level (a dict from name to import path, not a registry filled by
importing every file).
"""

from __future__ import annotations

from dataclasses import dataclass

ROOT = "root"  # the lineage's root: the TU's journaled compile


@dataclass(frozen=True)
class Level:
    """One level: its name, the factory `(level, llm, context) -> LevelAgent` as "module:function", whether it needs
    an LLM, the kind of artifact its candidates are (cache.publish's ARTIFACT_KINDS: c, ir, asm, object), how a step
    of this level makes its node (for reports), which nodes it can build on (ROOT or another level's verified node:
    the lineage's edges), and whether the offline default (`[optimize] levels` unset) runs it."""

    name: str
    factory: str
    needs_llm: bool
    artifact: str
    step: str
    builds_on: tuple[str, ...]
    default: bool = True


# Compiler levels first: they are the offline default and the order `--levels` help shows.
# IR and assembly rewrites are leaves: their code is no longer C, so no compile of it can be replayed with flags or a
# profile (an llc step on a rewritten IR node is a possible later edge).
LEVELS: tuple[Level, ...] = (
    Level("flags", "coopt.agents.levels:make_compiler_agent", False, "c", "compiler lowering with flags",
          (ROOT, "source", "pgo")),
    Level("pgo", "coopt.agents.levels:make_compiler_agent", False, "c", "compiler lowering with a PGO profile",
          (ROOT, "source", "flags")),
    # Other installed compilers (gcc, clang-N) lower the C code (the journaled source or a rewrite of it); the object
    # is the artifact, so nothing builds on it. Not in the default: asked for by name (--levels flags,pgo,compilers).
    Level("compilers", "coopt.agents.compiler.othercc:make_agent", False, "object", "lowering by another compiler",
          (ROOT, "source"), default=False),
    Level("source", "coopt.agents.rewrite.source:make_agent", True, "c", "LLM rewrite of C source", (ROOT, "source")),
    Level("ir", "coopt.agents.rewrite.ir:make_agent", True, "ir", "LLM rewrite of LLVM IR",
          (ROOT, "source", "flags", "pgo")),
    Level("asm", "coopt.agents.rewrite.asm:make_agent", True, "asm", "LLM rewrite of assembly",
          (ROOT, "source", "flags", "pgo")),
)
BY_NAME: dict[str, Level] = {lv.name: lv for lv in LEVELS}
COMPILER_LEVELS: tuple[str, ...] = tuple(lv.name for lv in LEVELS if not lv.needs_llm)
LLM_LEVELS: tuple[str, ...] = tuple(lv.name for lv in LEVELS if lv.needs_llm)
DEFAULT_LEVELS: tuple[str, ...] = tuple(lv.name for lv in LEVELS if not lv.needs_llm and lv.default)
