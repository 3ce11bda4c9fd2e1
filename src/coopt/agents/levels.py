"""Level agents for `coopt optimize`: who proposes the next candidate object for a hot TU at one level.

The compiler-tools levels are here: `flags` walks a table of flag sets, `pgo` trains one profile of each kind
(front-end, IR-level, context-sensitive IR instrumentation) for all hot TUs on the training workload and compiles
each TU with it. Other installed compilers (`compilers`) are agents/compiler/othercc.py. Every level, these and
the LLM levels (`source`, `ir`, `asm`), is a row of agents/registry.py naming its factory
`(level, llm, context) -> LevelAgent`.

Contract for every agent: `propose()` builds one candidate object from the TU's journaled compile and returns it
as a `Candidate`. Agents that change code (source, IR, assembly) must attach the verifier's behaviour evidence
(`coopt.verify.pipeline.verify`, differential harness with sanitizers) for the functions they changed; the loop refuses
such a candidate without accepted evidence. The loop then adds the program-level checks and the A/B timing.
"""

from __future__ import annotations

import importlib
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from coopt.agents.compiler.tools import (
    PGO_KINDS,
    Built,
    PgoProfile,
    ToolError,
    compile_with_flags,
    pgo_compile,
    pgo_train,
)
from coopt.agents.registry import BY_NAME, COMPILER_LEVELS, LLM_LEVELS
from coopt.budget import Budget
from coopt.journal.job import CompileJob
from coopt.journal.relink import LinkRecord
from coopt.verify.behaviour import Check
from coopt.verify.evidence import Evidence
from coopt.verify.program_level.bench import PLACEHOLDER, Workload

# Flag sets the `flags` level tries per TU, in order, each after the TU's own flags (later flags win). Only
# options that keep the semantics of standard C and the target the user chose: no -ffast-math, no -march. Not
# -funroll-loops or -fvectorize: clang enables them from -O2 on, so they only rebuild the same object.
FLAG_SETS: tuple[tuple[str, ...], ...] = (
    ("-O3",),
    ("-O2", "-mllvm", "-inline-threshold=600"),
    ("-O3", "-mllvm", "-unroll-threshold=600", "-mllvm", "-inline-threshold=600"),
    ("-O3", "-mllvm", "-extra-vectorizer-passes"),
)
# Flag sets tried after FLAG_SETS only when [optimize] assume_cpu is true: code for this machine's CPU, which
# every machine sharing the cache must then have.
TARGET_FLAG_SETS: tuple[tuple[str, ...], ...] = (
    ("-O2", "-march=native"),
    ("-O3", "-march=native"),
)
# The `pgo` level's candidates per TU, in order: (kind of PGO_KINDS, extra flags after the profile). Each kind is
# trained once per run, when its first candidate is asked for. Every kind comes once before any -O3 row: the guide
# retires an arm after a few misses in a row, and with clang 14 one kind may lose where another wins.
PGO_VARIANTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("fe", ()),
    ("ir", ()),
    ("cs", ()),
    ("fe", ("-O3",)),
    ("ir", ("-O3",)),
    ("cs", ("-O3",)),
)


class NoCandidate(ToolError):
    """A proposal that yielded no candidate, and the LLM tokens it spent trying (reported with the attempt)."""

    def __init__(self, message: str, tokens: int = 0) -> None:
        super().__init__(message)
        self.tokens = tokens


class LevelUnavailable(Exception):
    """A level the run asked for cannot be used here; the message says why and what to do."""


class LLMSetupError(Exception):
    """The run's LLM is configured wrongly (a missing URL, a bad context size): one line saying what to fix.
    The optimizer reports it as its own bad-input error; agents do not know the optimizer."""


@dataclass
class HotTU:
    """A hot TU the run works on: its journaled compile, its share of the samples, its hottest functions."""

    object: str  # the journaled object file: the TU's identity
    source: str
    share: float
    job: CompileJob
    functions: list[str] = field(default_factory=list)  # hottest first (what the LLM levels work on)
    baseline_object: str = ""  # the TU compiled by the real compiler with the user's flags, in this run

    @property
    def name(self) -> str:
        return os.path.basename(self.source)


@dataclass
class Candidate:
    """One proposed object for a TU, how it was made, and (for code-changing levels) its behaviour evidence."""

    built: Built
    proposer: str
    behaviour: Evidence | None = None
    training: dict[str, Any] | None = None
    tokens: int = 0  # LLM tokens spent on this proposal (already charged to the budget by the agent)


@dataclass
class AgentContext:
    """What agents may use: the program's link, every hot TU, the training workload, a scratch directory."""

    link: LinkRecord
    hot: list[HotTU]
    train: Workload
    same_workload: bool
    workdir: str
    timeout_s: float = 900.0
    budget: Budget | None = None  # LLM agents charge tokens here before each call (Budget.charge(tokens=...))
    cache_dir: str = ""  # the variant cache; LLM agents keep their transcripts in <cache_dir>/llm
    assume_cpu: bool = False  # [optimize] assume_cpu: tools may target this machine's CPU (-march=native)
    # Behaviour evidence for the LLM levels (verify.behaviour.checker): the judge's settings are built into it once.
    check: Check | None = None
    environ: dict[str, str] | None = None  # the LLM settings as COOPT_* variables (None: this process's)


class JudgedAttempt(Protocol):
    """What an agent learns of an earlier run's attempt when a run resumes (optimize.state.AttemptRecord)."""

    label: str
    flags: list[str]


class LevelAgent(Protocol):
    """Proposes candidates for hot TUs at one level. The whole protocol: the loop calls these and nothing else."""

    level: str
    proposer: str  # who proposed, as recorded with each attempt and in the cache entry

    def unavailable(self) -> str:
        """Why this level cannot run here (said once, no budget spent), or "" when it can."""
        ...

    def has_more(self, tu: HotTU) -> bool:
        """Whether this agent has another candidate to offer for `tu` (no budget is spent asking)."""
        ...

    def skip(self, tu: HotTU, attempt: JudgedAttempt) -> None:
        """A resumed run: `attempt` of an earlier run was judged already; move past it if it was the next one."""
        ...

    def propose(self, tu: HotTU, out_dir: str) -> Candidate:
        """Build the next candidate for `tu` in `out_dir`; ToolError when building it fails."""
        ...


def _file_stem(tu: HotTU) -> str:
    return os.path.splitext(tu.name)[0]


class FlagsAgent:
    """The TU recompiled with each flag set of FLAG_SETS not already among its own flags."""

    level = "flags"
    proposer = "compiler-tools/flags"

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.tried: dict[str, set[tuple[str, ...]]] = {}

    def flag_sets(self) -> tuple[tuple[str, ...], ...]:
        """The sets this run may try: FLAG_SETS, plus TARGET_FLAG_SETS when a target CPU may be assumed."""
        return FLAG_SETS + TARGET_FLAG_SETS if self.ctx.assume_cpu else FLAG_SETS

    def _pending(self, tu: HotTU) -> list[tuple[str, ...]]:
        own = set(tu.job.key_args)
        done = self.tried.get(tu.object, set())
        return [fs for fs in self.flag_sets() if not set(fs) <= own and fs not in done]

    def unavailable(self) -> str:
        return ""

    def has_more(self, tu: HotTU) -> bool:
        return bool(self._pending(tu))

    def skip(self, tu: HotTU, attempt: JudgedAttempt) -> None:
        """A resumed run: `attempt` (an AttemptRecord of the earlier run) was judged; do not propose it again."""
        self.tried.setdefault(tu.object, set()).add(tuple(attempt.flags))

    def propose(self, tu: HotTU, out_dir: str) -> Candidate:
        flags = list(self._pending(tu)[0])
        done = self.tried.setdefault(tu.object, set())
        done.add(tuple(flags))
        out = os.path.join(out_dir, "%s-flags%d.o" % (_file_stem(tu), len(done)))
        built = compile_with_flags(tu.job, flags, out, assume_cpu=self.ctx.assume_cpu)
        return Candidate(Built("flags", built.label, built.object_path, built.recipe, tu.job.source_path, flags),
                         self.proposer)


class PgoAgent:
    """PGO on the hot TUs, of each kind in PGO_KINDS: one training run of the training workload per kind, then
    per-TU compiles. A kind whose training fails is dropped; the level is out when every kind is."""

    level = "pgo"
    proposer = "compiler-tools/pgo"

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.cursor: dict[str, int] = {}
        self.profiles: dict[str, PgoProfile] = {}
        self.failed: dict[str, str] = {}  # kind -> why its training failed
        self.error = ""

    def _pending(self, tu: HotTU) -> list[tuple[str, tuple[str, ...]]]:
        own = set(tu.job.key_args)
        # -O3 on a TU built at -O3: same code
        variants = [(k, v) for k, v in PGO_VARIANTS if not v or not set(v) <= own]
        return [(k, v) for k, v in variants[self.cursor.get(tu.object, 0):] if not self._blocked(k)]

    def _blocked(self, kind: str) -> str:
        """Why `kind` cannot train (its own or its base's training failed), or ""."""
        return self.failed.get(kind) or self.failed.get(PGO_KINDS[kind].base, "")

    def has_more(self, tu: HotTU) -> bool:
        return not self.error and bool(self._pending(tu))

    def unavailable(self) -> str:
        """Why PGO cannot run here at all (checked once, before any budget is spent); "" when it can."""
        from coopt.agents.compiler.tools import profile_runtime_missing

        if not self.error and self.ctx.hot:
            self.error = profile_runtime_missing(self.ctx.hot[0].job.compiler)
        return self.error

    def training(self, kind: str = "fe") -> dict[str, Any]:
        t = self.ctx.train
        profile = self.profiles.get(kind)
        return {
            "workload": t.line,
            "cwd": t.cwd,
            "origin": t.origin,
            "same_as_bench": self.ctx.same_workload,
            "instrumented": [h.source for h in self.ctx.hot],
            "kind": kind,
            "profdata": profile.profdata if profile else "",
        }

    def _train(self, kind: str) -> PgoProfile:
        if kind in self.profiles:
            return self.profiles[kind]
        base = self._train(PGO_KINDS[kind].base) if PGO_KINDS[kind].base else None
        t = self.ctx.train
        # pgo_train substitutes the instrumented program for {program}; the quotes survive the substitution.
        line = t.line.replace(PLACEHOLDER, shlex.quote(PLACEHOLDER))
        cmd = ["/bin/sh", "-c", "cd %s && %s" % (shlex.quote(t.cwd), line)]
        try:
            self.profiles[kind] = pgo_train([h.job for h in self.ctx.hot], self.ctx.link, [cmd],
                                            os.path.join(self.ctx.workdir, "pgo-train" + ("" if kind == "fe"
                                                                                          else "-" + kind)),
                                            timeout=self.ctx.timeout_s, kind=kind, base=base)
        except ToolError as exc:
            self.failed[kind] = str(exc)
            raise
        except Exception as exc:  # RelinkError, OSError, a training run past its timeout
            self.failed[kind] = str(exc) or type(exc).__name__
            raise ToolError("PGO training (%s) failed: %s" % (kind, self.failed[kind])) from exc
        return self.profiles[kind]

    def skip(self, tu: HotTU, attempt: JudgedAttempt) -> None:
        """A resumed run: the variant `attempt` (an AttemptRecord of the earlier run) was judged; move past it."""
        labels = [" ".join([PGO_KINDS[k].label, *v]) for k, v in self._pending(tu)]
        if labels and labels[0] == attempt.label:
            self._advance(tu)

    def _advance(self, tu: HotTU) -> tuple[str, tuple[str, ...]]:
        """The next variant for `tu`, moving the cursor past it (and past variants of kinds that cannot train)."""
        own = set(tu.job.key_args)
        variants = [(k, v) for k, v in PGO_VARIANTS if not v or not set(v) <= own]
        n = self.cursor.get(tu.object, 0)
        while self._blocked(variants[n][0]):
            n += 1
        self.cursor[tu.object] = n + 1
        return variants[n]

    def propose(self, tu: HotTU, out_dir: str) -> Candidate:
        kind, extra = self._advance(tu)
        profile = self._train(kind)
        out = os.path.join(out_dir, "%s-pgo%d.o" % (_file_stem(tu), self.cursor[tu.object]))
        return Candidate(pgo_compile(tu.job, profile, out, list(extra)), self.proposer, training=self.training(kind))


AgentFactory = Callable[[str, str, AgentContext], LevelAgent]


def make_compiler_agent(level: str, llm: str, ctx: AgentContext) -> LevelAgent:
    """The factory of the compiler-tools levels (flags, pgo): no LLM, nothing to open."""
    return FlagsAgent(ctx) if level == "flags" else PgoAgent(ctx)


def _factory(level: str) -> AgentFactory:
    spec = BY_NAME[level].factory
    module, _, name = spec.partition(":")
    try:
        factory: AgentFactory = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise LevelUnavailable("the %s level's agent is not part of this coopt yet (%s); use --levels flags,pgo"
                               % (level, spec)) from exc
    return factory


def check_levels(levels: list[str], llm: str) -> None:
    """Refuse levels that cannot run with this LLM setting, before any work is done."""
    known = COMPILER_LEVELS + LLM_LEVELS
    unknown = [lv for lv in levels if lv not in known]
    if unknown:
        raise LevelUnavailable("unknown level %s (levels: %s)" % (", ".join(unknown), ",".join(known)))
    wanted = [lv for lv in levels if lv in LLM_LEVELS]
    if wanted and llm == "none":
        raise LevelUnavailable("level %s needs an LLM (--llm local or --llm openai); with --llm none use "
                               "--levels flags,pgo" % ",".join(wanted))
    for level in wanted:
        _factory(level)


def make_agents(levels: list[str], llm: str, ctx: AgentContext) -> dict[str, LevelAgent]:
    """One agent per level."""
    check_levels(levels, llm)
    agents: dict[str, LevelAgent] = {}
    for level in levels:
        agents[level] = _factory(level)(level, llm, ctx)
    return agents
