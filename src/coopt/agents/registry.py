"""The one table of optimization levels: who proposes at each level, whether it needs an LLM, what it hands over.

Config (the allowed values of `[optimize] levels`), the CLI (`--levels`), the optimizer (which agent to make) and
the cache's publish step (how to compile the artifact) all read this table. It imports nothing: the agents'
modules load only when a run asks for their level (a dict from name to import path, not a registry filled by
importing every file).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Level:
    """One level: its name, the factory `(level, llm, context) -> LevelAgent` as "module:function", whether it needs
    an LLM, the kind of artifact its candidates are (cache.publish's ARTIFACT_KINDS: c, ir, asm, object), and
    whether the offline default (`[optimize] levels` unset) runs it."""

    name: str
    factory: str
    needs_llm: bool
    artifact: str
    default: bool = True


# Compiler levels first: they are the offline default and the order `--levels` help shows.
LEVELS: tuple[Level, ...] = (
    Level("flags", "coopt.agents.levels:make_compiler_agent", False, "c"),
    Level("pgo", "coopt.agents.levels:make_compiler_agent", False, "c"),
    # Other installed compilers (gcc, clang-N) lower the unchanged source; the object is the artifact. Not in the
    # default: a variant from another compiler is asked for by name (--levels flags,pgo,compilers).
    Level("compilers", "coopt.agents.compiler.othercc:make_agent", False, "object", default=False),
    Level("source", "coopt.agents.rewrite.source:make_agent", True, "c"),
    Level("ir", "coopt.agents.rewrite.ir:make_agent", True, "ir"),
    Level("asm", "coopt.agents.rewrite.asm:make_agent", True, "asm"),
)
BY_NAME: dict[str, Level] = {lv.name: lv for lv in LEVELS}
COMPILER_LEVELS: tuple[str, ...] = tuple(lv.name for lv in LEVELS if not lv.needs_llm)
LLM_LEVELS: tuple[str, ...] = tuple(lv.name for lv in LEVELS if lv.needs_llm)
DEFAULT_LEVELS: tuple[str, ...] = tuple(lv.name for lv in LEVELS if not lv.needs_llm and lv.default)
