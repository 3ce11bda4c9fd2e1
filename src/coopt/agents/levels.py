"""Level agents for `coopt optimize`: who proposes the next candidate object for a hot TU at one level.

The compiler-tools levels are here: `flags` walks a table of flag sets, `pgo` trains one profile of each kind
(front-end, IR-level, context-sensitive IR instrumentation) for all hot TUs on the training workload and compiles
each TU with it. Other installed compilers (`compilers`) are agents/compiler/othercc.py. Every level, these and
the LLM levels (`source`, `ir`, `asm`), is a row of agents/registry.py naming its factory
`(level, llm, context) -> LevelAgent`.

Contract for every agent: `propose(tu, out_dir, parent)` builds one candidate object and returns it as a
`Candidate`. `parent` is the lineage node it builds on (optimize/lineage.py): None for the TU's journaled compile,
else a verified variant whose `job` compiles that variant's code (a rewritten source, the original with other flags
or a profile). An agent starts from `parent.job` where it has one and keeps `tu.job` (the original) for everything
that is judged against the original: behaviour evidence always compares with the TU's journaled code, so a wrong
step anywhere in a lineage is rejected even when later steps look fine.

Agents that change code (source, IR, assembly) must attach the verifier's behaviour evidence
(`coopt.verify.pipeline.verify`, differential harness with sanitizers) for the functions they changed; the loop refuses
such a candidate without accepted evidence. The loop then adds the program-level checks and the A/B timing.
"""

from __future__ import annotations

import importlib
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from coopt.agents.compiler.tools import (
    PGO_KINDS,
    Built,
    PgoProfile,
    ToolError,
    compile_with_flags,
    pgo_compile,
    pgo_train,
)
from coopt.agents.feedback import Feedback
from coopt.agents.registry import BY_NAME, COMPILER_LEVELS, LLM_LEVELS
from coopt.budget import Budget
from coopt.hooks.workload import PLACEHOLDER, Workload
from coopt.journal.job import CompileJob
from coopt.journal.relink import LinkRecord
from coopt.journal.shared_libs import ProgramRun
from coopt.verify.behaviour import Check
from coopt.verify.evidence import Evidence, Interval

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
# Options that compile with a profile: the pgo level never instruments such a compile again (clang refuses
# -fprofile-instr-generate with -fprofile-instr-use).
PROFILE_USE = ("-fprofile-instr-use", "-fprofile-use", "-fprofile-sample-use", "-fcs-profile-generate")
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
    """A proposal that yielded no candidate, the LLM tokens it spent trying (reported with the attempt) and how
    many samples it asked for (0: the level refused every function before asking; such a proposal is free)."""

    def __init__(self, message: str, tokens: int = 0, asked: int = 1) -> None:
        super().__init__(message)
        self.tokens = tokens
        self.asked = asked


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
    lines: dict[str, dict[int, int]] = field(default_factory=dict)  # function -> per-line self samples (-g only)
    baseline_object: str = ""  # the TU compiled by the real compiler with the user's flags, in this run

    @property
    def name(self) -> str:
        return os.path.basename(self.source)


@dataclass(frozen=True)
class Training:
    """How a PGO candidate's profile was trained: the workload, where, whether it is the bench workload, the TUs
    instrumented and the merged profile (recorded with the attempt and in the cache entry's provenance)."""

    workload: str
    cwd: str
    origin: str
    same_as_bench: bool
    instrumented: list[str]
    profdata: str
    kind: str = "fe"  # a key of agents.compiler.tools.PGO_KINDS: front-end, IR-level or context-sensitive IR


@dataclass
class Candidate:
    """One proposed object for a TU, how it was made, and (for code-changing levels) its behaviour evidence."""

    built: Built
    proposer: str
    behaviour: Evidence | None = None
    training: Training | None = None
    tokens: int = 0  # LLM tokens spent on this proposal (already charged to the budget by the agent)
    micro: Interval | None = None  # the function's micro-benchmark on the speed inputs (LLM levels), if run


@dataclass(frozen=True)
class AgentSettings:
    """The run's settings every agent reads, built once by the optimizer (not copied field by field)."""

    timeout_s: float = 900.0  # the longest one tool run (a PGO training run) may take
    budget: Budget | None = None  # LLM agents charge tokens here before each call (Budget.charge(tokens=...))
    cache_dir: str = ""  # the variant cache; LLM agents keep their transcripts in <cache_dir>/llm
    assume_cpu: bool = False  # [optimize] assume_cpu: tools may target this machine's CPU (-march=native)
    environ: dict[str, str] | None = None  # the LLM settings as COOPT_* variables (None: this process's)
    log_dir: str = ""  # where the LLM agents write their conversations (the run directory's); "" for nowhere
    tool_calls: int = 3  # compiler-tool calls a model may make per answer before it must write code
    tool_output_tokens: int = 600  # the most one tool result may put into the conversation


@dataclass
class AgentContext:
    """What agents may use: the program's link, every hot TU, the training workload, a scratch directory, the
    run's settings, and the behaviour check."""

    link: LinkRecord
    hot: list[HotTU]
    train: Workload
    same_workload: bool
    workdir: str
    settings: AgentSettings = field(default_factory=AgentSettings)
    # Behaviour evidence for the LLM levels (verify.behaviour.checker): the judge's settings are built into it once.
    check: Check | None = None
    runner: ProgramRun | None = None  # how the program runs, when through a launcher (journal/shared_libs.py)
    # `check` can judge `main` and functions the harness cannot call by running the whole program (checker(...,
    # program=ProgramContext)): the LLM levels may then rewrite them.
    program_level: bool = False


@dataclass(frozen=True)
class Node:
    """A verified variant an agent may build on: one node of a TU's lineage as the agents see it.

    `job` compiles the node's code: for a source rewrite, the rewritten TU with the original's flags (quote
    includes still resolve against the original's directory); for a flags or PGO node, the code of its own parent
    with the node's extra flags after the TU's. `job` is None for nodes nothing can build on (IR and assembly
    rewrites: their code is no longer C)."""

    id: int  # the attempt number that made it (0: the root, the TU's journaled compile)
    level: str
    label: str
    job: CompileJob | None
    artifact: str = ""  # what the node's step produced (.c, .ll, .s, .profdata), "" for the root


def child_job(job: CompileJob, source: str = "", flags: list[str] | tuple[str, ...] = ()) -> CompileJob:
    """`job` compiling `source` (a rewritten TU; default: the job's own source) with `flags` after its own. The
    object's name, the working directory and the environment stay the original's, so a relink replaces the
    original's object and the training of a profile instruments the right TU."""
    extra: list[str] = []
    if source:
        extra = ["-iquote", os.path.dirname(job.source_path)]
    return CompileJob(job.cwd, job.compiler, list(job.args), [*job.key_args, *extra, *flags],
                      os.path.abspath(source) if source else job.source, job.output, list(job.dep_args),
                      job.language, job.debug, job.native, dict(job.env))


def start_job(tu: HotTU, parent: Node | None) -> CompileJob:
    """The compile an agent starts from: the parent node's, or the TU's journaled one for the root."""
    if parent is None or parent.id == 0:
        return tu.job
    if parent.job is None:
        raise ToolError("the %s node %d (%s) cannot be built on" % (parent.level, parent.id, parent.label))
    return parent.job


def parent_id(parent: Node | None) -> int:
    return 0 if parent is None else parent.id


class JudgedAttempt(Protocol):
    """What an agent learns of an earlier run's attempt when a run resumes (optimize.state.AttemptRecord)."""

    label: str
    flags: list[str]
    parent: int  # the attempt number of the node it built on (0: the TU's journaled compile)


class LevelAgent(Protocol):
    """Proposes candidates for hot TUs at one level. The whole protocol: the loop calls these and nothing else."""

    level: str
    proposer: str  # who proposed, as recorded with each attempt and in the cache entry

    def unavailable(self) -> str:
        """Why this level cannot run here (said once, no budget spent), or "" when it can."""
        ...

    def has_more(self, tu: HotTU, parent: Node | None = None) -> bool:
        """Whether this agent has another candidate to offer for `tu` built on `parent` (None: the TU's journaled
        compile); no budget is spent asking."""
        ...

    def skip(self, tu: HotTU, attempt: JudgedAttempt) -> None:
        """A resumed run: `attempt` of an earlier run was judged already; move past it if it was the next one."""
        ...

    def propose(self, tu: HotTU, out_dir: str, parent: Node | None = None) -> Candidate:
        """Build the next candidate for `tu` on `parent` (None: the journaled compile) in `out_dir`; ToolError
        when building it fails."""
        ...

    def learn(self, tu: HotTU, feedback: Feedback) -> None:
        """What the judge said of the last proposal for `tu` (agents/feedback.py); an LLM level continues that
        function's conversation with it, the compiler levels have nothing to learn."""
        ...


def _file_stem(tu: HotTU) -> str:
    return os.path.splitext(tu.name)[0]


class FlagsAgent:
    """The TU recompiled with each flag set of FLAG_SETS not already among its own flags."""

    level = "flags"
    proposer = "compiler-tools/flags"

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.tried: dict[tuple[str, int], set[tuple[str, ...]]] = {}  # (TU object, parent node) -> flag sets

    def flag_sets(self) -> tuple[tuple[str, ...], ...]:
        """The sets this run may try: FLAG_SETS, plus TARGET_FLAG_SETS when a target CPU may be assumed."""
        return FLAG_SETS + TARGET_FLAG_SETS if self.ctx.settings.assume_cpu else FLAG_SETS

    def _pending(self, tu: HotTU, parent: Node | None) -> list[tuple[str, ...]]:
        own = set(start_job(tu, parent).key_args)
        done = self.tried.get((tu.object, parent_id(parent)), set())
        return [fs for fs in self.flag_sets() if not set(fs) <= own and fs not in done]

    def unavailable(self) -> str:
        return ""

    def has_more(self, tu: HotTU, parent: Node | None = None) -> bool:
        return (parent is None or parent.job is not None) and bool(self._pending(tu, parent))

    def skip(self, tu: HotTU, attempt: JudgedAttempt) -> None:
        """A resumed run: `attempt` (an AttemptRecord of the earlier run) was judged; do not propose it again."""
        self.tried.setdefault((tu.object, attempt.parent), set()).add(tuple(attempt.flags))

    def learn(self, tu: HotTU, feedback: Feedback) -> None:
        """The flag sets are a fixed table: nothing to learn."""

    def propose(self, tu: HotTU, out_dir: str, parent: Node | None = None) -> Candidate:
        job = start_job(tu, parent)
        flags = list(self._pending(tu, parent)[0])
        done = self.tried.setdefault((tu.object, parent_id(parent)), set())
        done.add(tuple(flags))
        out = os.path.join(out_dir, "%s-n%d-flags%d.o" % (_file_stem(tu), parent_id(parent), len(done)))
        built = compile_with_flags(job, flags, out, assume_cpu=self.ctx.settings.assume_cpu)
        return Candidate(Built("flags", built.label, built.object_path, built.recipe, job.source_path, flags),
                         self.proposer)


class PgoAgent:
    """PGO on the hot TUs, of each kind in PGO_KINDS: one training run of the training workload per kind, then
    per-TU compiles. A kind whose training fails is dropped; the level is out when every kind is."""

    level = "pgo"
    proposer = "compiler-tools/pgo"

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        # (TU object, parent node) -> variants proposed; (kind, TU object, parent node) -> its training
        self.cursor: dict[tuple[str, int], int] = {}
        self.profiles: dict[tuple[str, str, int], PgoProfile] = {}
        self.failed: dict[str, str] = {}  # kind -> why its training failed
        self.error = ""

    def _variants(self, tu: HotTU, parent: Node | None) -> list[tuple[str, tuple[str, ...]]]:
        own = set(start_job(tu, parent).key_args)
        return [(k, v) for k, v in PGO_VARIANTS if not v or not set(v) <= own]  # -O3 on a TU built at -O3: same code

    def _pending(self, tu: HotTU, parent: Node | None) -> list[tuple[str, tuple[str, ...]]]:
        variants = self._variants(tu, parent)[self.cursor.get((tu.object, parent_id(parent)), 0):]
        return [(k, v) for k, v in variants if not self._blocked(k)]

    def _blocked(self, kind: str) -> str:
        """Why `kind` cannot train (its own or its base's training failed), or ""."""
        return self.failed.get(kind) or self.failed.get(PGO_KINDS[kind].base, "")

    def has_more(self, tu: HotTU, parent: Node | None = None) -> bool:
        if parent is not None and (parent.job is None or parent.level == "pgo"):
            return False  # a profile on top of a profile trains the same code again
        if any(a.startswith(PROFILE_USE) for a in start_job(tu, parent).key_args):
            return False  # built with a profile already (an earlier PGO step of the lineage, or the user's own)
        return not self.error and bool(self._pending(tu, parent))

    def unavailable(self) -> str:
        """Why PGO cannot run here at all (checked once, before any budget is spent); "" when it can."""
        from coopt.agents.compiler.tools import profile_runtime_missing

        if not self.error and self.ctx.hot:
            self.error = profile_runtime_missing(self.ctx.hot[0].job.compiler)
        return self.error

    def training(self, kind: str, profile: PgoProfile) -> Training:
        t = self.ctx.train
        return Training(t.line, t.cwd, t.origin, self.ctx.same_workload, [h.source for h in self.ctx.hot],
                        profile.profdata, kind)

    def _train(self, kind: str, tu: HotTU, parent: Node | None) -> PgoProfile:
        """One training per kind and code: the hot TUs instrumented, `tu` as `parent` has it (a profile is tied
        to the code it was trained on, so a rewritten TU needs its own training)."""
        key = (kind, tu.object, parent_id(parent)) if parent_id(parent) else (kind, "", 0)
        if key in self.profiles:
            return self.profiles[key]
        base = self._train(PGO_KINDS[kind].base, tu, parent) if PGO_KINDS[kind].base else None
        t = self.ctx.train
        # pgo_train substitutes the instrumented program for {program}; the quotes survive the substitution.
        line = t.line.replace(PLACEHOLDER, shlex.quote(PLACEHOLDER))
        cmd = ["/bin/sh", "-c", "cd %s && %s" % (shlex.quote(t.cwd), line)]
        jobs = [start_job(h, parent) if h.object == tu.object else h.job for h in self.ctx.hot]
        where = "pgo-train" + ("" if kind == "fe" else "-" + kind) + ("" if not key[2] else "-n%d" % key[2])
        try:
            self.profiles[key] = pgo_train(jobs, self.ctx.link, [cmd], os.path.join(self.ctx.workdir, where),
                                           timeout=self.ctx.settings.timeout_s, runner=self.ctx.runner, cwd=t.cwd,
                                           kind=kind, base=base)
        except ToolError as exc:
            self.failed[kind] = str(exc)
            raise
        except Exception as exc:  # RelinkError, OSError, a training run past its timeout
            self.failed[kind] = str(exc) or type(exc).__name__
            raise ToolError("PGO training (%s) failed: %s" % (kind, self.failed[kind])) from exc
        return self.profiles[key]

    def skip(self, tu: HotTU, attempt: JudgedAttempt) -> None:
        """A resumed run: the variant `attempt` (an AttemptRecord of the earlier run) was judged; move past it."""
        key = (tu.object, attempt.parent)
        variants = [(k, v) for k, v in PGO_VARIANTS if not v or not set(v) <= set(tu.job.key_args)]
        labels = [" ".join([PGO_KINDS[k].label, *v]) for k, v in variants[self.cursor.get(key, 0):]]
        if labels and labels[0] == attempt.label:
            self.cursor[key] = self.cursor.get(key, 0) + 1

    def learn(self, tu: HotTU, feedback: Feedback) -> None:
        """The PGO variants are a fixed table: nothing to learn."""

    def _advance(self, tu: HotTU, parent: Node | None) -> tuple[str, tuple[str, ...]]:
        """The next variant for `tu` on `parent`, moving the cursor past it (and past kinds that cannot train)."""
        variants = self._variants(tu, parent)
        key = (tu.object, parent_id(parent))
        n = self.cursor.get(key, 0)
        while self._blocked(variants[n][0]):
            n += 1
        self.cursor[key] = n + 1
        return variants[n]

    def propose(self, tu: HotTU, out_dir: str, parent: Node | None = None) -> Candidate:
        kind, extra = self._advance(tu, parent)
        profile = self._train(kind, tu, parent)
        out = os.path.join(out_dir, "%s-n%d-pgo%d.o" % (_file_stem(tu), parent_id(parent),
                                                       self.cursor[(tu.object, parent_id(parent))]))
        return Candidate(pgo_compile(start_job(tu, parent), profile, out, list(extra)), self.proposer,
                         training=self.training(kind, profile))


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
