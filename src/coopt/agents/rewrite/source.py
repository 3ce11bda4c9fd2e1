"""The source-level agent: ask a model for a faster version of one hot C function and splice it back into its TU.

One sample is one conversation with the model:
1. the prompt (prompts.py) holds the function and the declarations and macros it uses (context.py); when
   prompt plus answer do not fit the model's context window, context is dropped, largest first, and a function
   that does not fit even alone is refused with a note (the compiler tools still work on its TU);
2. the answer's ```c block is put in the function's place in a copy of the TU, and clang's AST of that copy says
   what the block defines: the function (kept, under the original's own head: storage class, inline and return
   type stay as they were), new helper functions (kept, made static), anything else (dropped: the model repeating
   a typedef or a prototype would only collide with the original's);
3. the copy is compiled with the job's own flags; a compile error goes back to the model once (`fixes`).
A function whose rewrite cannot fit in one answer (or whose answers came back cut at max_tokens) is cut to its hot
region (region.py: the statement around its hottest lines, from the profile's per-line samples, with the local
declarations it uses); the answer then replaces the region's bytes only. With no per-line samples, or no region that
fits, the function is refused (DoesNotFit) and left to the compiler tools. `main` is asked about like any function
(its prompt says the program's whole output must stay the same): the judge runs the whole program for it.
A garbage, truncated or timed-out answer costs what the client charged and yields no candidate.

`SourceAgent` makes compiled candidates; `SourceLevelAgent` is the optimizer's level: it has each candidate judged
by the verifier (function-level differential harness under ASan+UBSan, with the test-generation agent's inputs
next to the built-in ones) and hands the loop only candidates with accepted evidence, which the loop then checks
on the whole program and times A/B.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from coopt.agents.levels import (
    AgentContext,
    HotTU,
    LevelAgent,
    LevelUnavailable,
)
from coopt.agents.model import answer_tokens, open_level_model
from coopt.agents.rewrite.context import (
    ContextItem,
    ExtractError,
    FunctionSource,
    ast,
    body_of,
    clang_for,
    extract,
    lex,
    name_offset,
    top_level,
)
from coopt.agents.rewrite.prompts import (
    SOURCE_CONTEXT,
    SOURCE_FIX,
    SOURCE_INCLUDES,
    SOURCE_MAIN,
    SOURCE_REGION,
    SOURCE_SYSTEM,
    SOURCE_USER,
    code_blocks,
)
from coopt.agents.rewrite.region import Region, describe, hot_region
from coopt.agents.rewrite.sampling import (
    Refusal,
    SampledLevel,
    SampleLoop,
    error_excerpt,
    estimate_tokens,
)
from coopt.agents.testgen import TestGenAgent
from coopt.agents.tools_offer import tool_mode
from coopt.journal.job import CompileJob
from coopt.llm.client import CHARS_PER_TOKEN
from coopt.llm.types import Answer, Message, Model

PROPOSER = "llm/source"
# Directives a rewrite may bring along (a header for memchr, a helper macro); the rest is dropped.
KEPT_DIRECTIVES = ("include", "define", "undef")


class DoesNotFit(Exception):
    """The function alone, with the answer it needs room for, is larger than the model's context window."""


class AnswerError(Exception):
    """The answer cannot become a candidate (no code block, the function is not in it). One line."""


@dataclass(frozen=True)
class SourceOptions:
    """How much one function may cost. Tokens are estimated at `CHARS_PER_TOKEN` characters each."""

    samples: int = 4  # answers asked per function: the first at temperature 0, the others at `temperature`
    fixes: int = 1  # follow-ups per sample with the compile error fed back
    max_tokens: int = 768  # the most one answer may take
    context_tokens: int = 4096  # the model's window: prompt and answer together
    temperature: float = 0.7
    per_proposal: int = 2  # samples one optimizer evaluation may go through before it gives up


@dataclass
class Prepared:
    """A function ready to be asked about: its source, the opening messages, the answer's token allowance."""

    job: CompileJob
    source: FunctionSource
    messages: tuple[Message, ...]
    max_tokens: int
    dropped: list[str] = field(default_factory=list)  # context left out to fit the window
    region: Region | None = None  # only this part of the function is sent and replaced (a long function)


def pick_block(text: str, function: str) -> str | None:
    """The C block that mentions the function (the first C block when none does)."""
    blocks = [b for lang, b in code_blocks(text) if lang in ("", "c", "c99", "c11", "h", "cpp", "c++")]
    named = [b for b in blocks if function in b]
    chosen = named or blocks
    return chosen[0] if chosen else None


class SourceAgent(SampleLoop[Prepared]):
    """Asks `model` for faster versions of functions and turns answers into compiled candidate TUs in `workdir`."""

    built = "compiled"

    def __init__(self, model: Model, workdir: str, options: SourceOptions | None = None, clang: str = "") -> None:
        super().__init__(model, workdir)
        self.options: SourceOptions = options or SourceOptions()
        self.clang = clang

    # ---- the prompt --------------------------------------------------------------------------------------------

    def prepare(self, job: CompileJob, function: str, lines: dict[int, int] | None = None,
                region: bool = False) -> Prepared:
        """Extract `function` and build the prompt: the whole function, or with `region` (or when its rewrite
        cannot fit in one answer) its hot region by the per-line samples `lines`. ExtractError, or DoesNotFit when
        neither fits."""
        clang = self.clang or clang_for(job)
        fs = extract(job, function, clang)
        opts = self.options
        if region or estimate_tokens(fs.text) + 64 > opts.max_tokens:
            why = "answers for it were cut at max_tokens" if region else "its rewrite (about %d tokens) cannot " \
                "fit in one %d-token answer" % (estimate_tokens(fs.text), opts.max_tokens)
            return self._prepare_region(job, fs, lines or {}, why, clang)
        answer = min(opts.max_tokens, 2 * estimate_tokens(fs.text) + 256)
        try:
            messages, dropped = self._fit(fs, lambda ctx: self._messages(fs, ctx), answer)
        except DoesNotFit as exc:
            return self._prepare_region(job, fs, lines or {}, str(exc), clang)
        return Prepared(job, fs, messages, answer, dropped)

    def _fit(self, fs: FunctionSource, build: Callable[[list[ContextItem]], tuple[Message, ...]],
             answer: int) -> tuple[tuple[Message, ...], list[str]]:
        """The messages with as much context as fits the window (largest items dropped first)."""
        context = list(fs.context)
        dropped: list[str] = []
        while True:
            messages = build(context)
            size = sum(len(m.content) + 16 for m in messages)
            if estimate_tokens("x" * size) + answer <= self.options.context_tokens:
                return messages, dropped
            if not context:
                raise DoesNotFit("%s: about %d tokens of prompt and %d of answer do not fit the model's %d-token "
                                 "context" % (fs.name, estimate_tokens("x" * size), answer,
                                              self.options.context_tokens))
            largest = max(context, key=lambda i: len(i.text))
            context.remove(largest)
            dropped.append("/".join(largest.names) or largest.kind)

    def _prepare_region(self, job: CompileJob, fs: FunctionSource, lines: dict[int, int], why: str,
                        clang: str) -> Prepared:
        opts = self.options
        if not lines:
            raise DoesNotFit("%s: %s, and the profile has no per-line samples to cut its hot region by (build with "
                             "-g); left to the compiler tools" % (fs.name, why))
        # The rewritten region must fit one answer, with room for the model to write a little more than it got.
        budget = max(0, (opts.max_tokens - 96) * 2 // 3) * CHARS_PER_TOKEN
        found = hot_region(job, fs, lines, budget, clang)
        if found is None:
            raise DoesNotFit("%s: %s, and no statement around its hottest line fits one answer; left to the "
                             "compiler tools" % (fs.name, why))
        answer = min(opts.max_tokens, 2 * estimate_tokens(found.text) + 256)
        try:
            messages, dropped = self._fit(fs, lambda ctx: self._region_messages(fs, found, ctx), answer)
        except DoesNotFit as exc:
            raise DoesNotFit("%s; its hot region does not fit either: left to the compiler tools" % exc) from exc
        return Prepared(job, fs, messages, answer, ["the rest of %s (%s; sent: %s)" % (
            fs.name, why, describe(found, fs.path))] + dropped, found)

    @staticmethod
    def _region_messages(fs: FunctionSource, region: Region, context: list[ContextItem]) -> tuple[Message, ...]:
        includes = SOURCE_INCLUDES.format(file=os.path.basename(fs.path), lines="\n".join(fs.includes)) \
            if fs.includes else ""
        ctx = FunctionSource(fs.name, fs.path, fs.start, fs.end, fs.text, fs.head, fs.static, context)
        text = ctx.context_text()
        user = SOURCE_REGION.format(includes=includes, context=SOURCE_CONTEXT.format(text=text) if text else "",
                                    name=fs.name, where=describe(region, fs.path), head=region.head,
                                    locals="".join("    %s\n" % d for d in region.locals), region=region.text)
        return (Message("system", SOURCE_SYSTEM), Message("user", user))

    @staticmethod
    def _messages(fs: FunctionSource, context: list[ContextItem]) -> tuple[Message, ...]:
        includes = SOURCE_INCLUDES.format(file=os.path.basename(fs.path), lines="\n".join(fs.includes)) \
            if fs.includes else ""
        ctx = FunctionSource(fs.name, fs.path, fs.start, fs.end, fs.text, fs.head, fs.static, context)
        text = ctx.context_text()
        user = SOURCE_USER.format(includes=includes, context=SOURCE_CONTEXT.format(text=text) if text else "",
                                  function=fs.text.strip())
        if fs.name == "main":
            user = SOURCE_MAIN + user
        return (Message("system", SOURCE_SYSTEM), Message("user", user))

    # ---- one sample: the steps of the shared loop (sampling.SampleLoop) -------------------------------------

    def identity(self, prep: Prepared) -> tuple[str, str, str]:
        return prep.source.path, prep.source.name, prep.source.text

    def stem(self, prep: Prepared, k: int, fix: int) -> str:
        fs = prep.source
        return "%s-%s-s%d%s" % (os.path.splitext(os.path.basename(fs.path))[0], fs.name, k,
                                "-fix%d" % fix if fix else "")

    def rewrite(self, prep: Prepared, answer: Answer, stem: str) -> tuple[bytes, str]:
        block = pick_block(answer.text, prep.source.name)
        if block is None:
            raise Refusal("no-code", "the answer holds no ```c block")
        if prep.region is not None:
            return self.splice_region(prep, block)
        try:
            return self.assemble(prep, block, stem)
        except AnswerError as exc:
            raise Refusal("not-defined", str(exc)) from exc

    def make_object(self, prep: Prepared, made: bytes, stem: str) -> tuple[str, str, list[list[str]]]:
        fs = prep.source
        artifact = os.path.join(self.workdir, stem + ".c")
        with open(artifact, "wb") as f:
            f.write(made)
        obj = os.path.join(self.workdir, stem + ".o")
        cmd = prep.job.replay_command(artifact, obj, ["-iquote", os.path.dirname(fs.path)])
        errors = _compile(cmd, prep.job)
        if errors is not None:
            shown = error_excerpt(errors, artifact, os.path.basename(fs.path))
            raise Refusal("does-not-compile", shown.splitlines()[0] if shown else "", shown)
        return artifact, obj, [cmd]

    def fix_prompt(self, errors: str) -> str:
        return SOURCE_FIX.format(errors=errors)

    # ---- splicing ----------------------------------------------------------------------------------------------

    @staticmethod
    def splice_region(prep: Prepared, block: str) -> tuple[bytes, str]:
        """The TU with `block` in the region's place; #include lines of the block go before the function."""
        fs, r = prep.source, prep.region
        assert r is not None
        with open(fs.path, "rb") as f:
            original = f.read()
        kept = [ln for ln in block.splitlines() if not ln.lstrip().startswith("#include")]
        includes = "".join(ln.strip() + "\n" for ln in block.splitlines() if ln.lstrip().startswith("#include"))
        body = "\n".join(kept).strip("\n").encode("utf-8")
        if body.lstrip().startswith((fs.head + fs.name).strip().encode()) or body.lstrip().startswith(
                r.head.strip().encode()):
            raise Refusal("not-defined", "the answer rewrote the whole function, not the region")
        tu = original[:fs.start] + includes.encode() + original[fs.start:r.begin] + body + original[r.end:]
        function = (original[fs.start:r.begin] + body + original[r.end:fs.end]).decode("utf-8", "replace")
        return tu, function


    def assemble(self, prep: Prepared, block: str, stem: str) -> tuple[bytes, str]:
        """The TU with `block`'s version of the function (and its new helpers) in the function's place.
        Returns (TU text, the function as spliced)."""
        fs, job = prep.source, prep.job
        with open(fs.path, "rb") as f:
            original = f.read()
        raw = block.encode("utf-8")
        probe_path = os.path.join(self.workdir, stem + "-probe.c")
        os.makedirs(self.workdir, exist_ok=True)
        probe = original[:fs.start] + raw + original[fs.end:]
        with open(probe_path, "wb") as f:
            f.write(probe)
        clang = self.clang or clang_for(job)
        try:
            # The answer may well not compile; clang still dumps what it could parse (exit status 1).
            root = ast(job, probe_path, clang, ["-iquote", os.path.dirname(fs.path), "-ferror-limit=0"], (0, 1))
        except ExtractError as exc:
            raise AnswerError("clang cannot read the answer: %s" % exc) from exc
        lo, hi = fs.start, fs.start + len(raw)
        target = None
        helpers: list[bytes] = []
        defined_elsewhere = set()
        for d in top_level(root):
            node = d.node
            if node.get("kind") != "FunctionDecl" or body_of(node) is None:
                continue
            inside = job.abspath(d.file) == probe_path and lo <= d.begin < hi
            if not inside:
                defined_elsewhere.add(node.get("name"))
                continue
            if node.get("name") == fs.name:
                if target is None:
                    target = d
                continue
            if node.get("name") in ("main",):
                continue
            text = probe[d.begin:d.end]
            if node.get("storageClass") != "static":
                text = b"static " + text  # a new helper must not become a symbol other TUs could collide with
            helpers.append(node.get("name", "").encode() + b"\0" + text)
        if target is None:
            raise AnswerError("the answer does not define %s" % fs.name)
        at = name_offset(target.node)
        if at is None or not target.begin <= at < target.end:
            raise AnswerError("clang gives no location for %s in the answer" % fs.name)
        # The original's head (storage class, inline, attributes, return type) with the answer's parameters and
        # body: a rewrite that drops `static` or adds `inline` would change the TU's interface or fail to link.
        function = fs.head + probe[at:target.end].decode("utf-8", "replace")
        kept = [h.split(b"\0", 1)[1].decode("utf-8", "replace") for h in helpers
                if h.split(b"\0", 1)[0].decode() not in defined_elsewhere]
        directives = self._directives(block, clang)
        new = "".join(line + "\n" for line in directives) + "".join(h + "\n\n" for h in kept) + function
        tu = original[:fs.start] + new.encode("utf-8") + original[fs.end:]
        with contextlib.suppress(OSError):
            os.remove(probe_path)
        return tu, function

    @staticmethod
    def _directives(block: str, clang: str) -> list[str]:
        """The block's file-scope preprocessor lines worth keeping (#include, #define, #undef), in order."""
        lines = block.splitlines()
        toks = lex(block, clang)
        depth = 0
        out = []
        by_line: dict[int, int] = {}
        for t in toks:
            if t.kind == "l_brace":
                depth += 1
            elif t.kind == "r_brace":
                depth -= 1
            by_line.setdefault(t.line, depth)
        for a, b in zip(toks, toks[1:], strict=False):
            if a.kind == "hash" and a.start_of_line and b.kind == "raw_identifier" and b.text in KEPT_DIRECTIVES \
                    and by_line.get(a.line, 0) == 0:
                out.append(lines[a.line - 1].strip())
        return out


def _compile(cmd: list[str], job: CompileJob) -> str | None:
    """None when `cmd` compiles, else the compiler's messages."""
    try:
        proc = subprocess.run(cmd, cwd=job.cwd, env=job.subprocess_env(), capture_output=True, text=True,
                              timeout=600, errors="replace")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "the compiler did not run: %s" % exc
    return None if proc.returncode == 0 else (proc.stderr or "exit status %d" % proc.returncode)


# ---- the optimizer's level ----------------------------------------------------------------------------------------


class SourceLevelAgent(SampledLevel):
    """The `source` level of `coopt optimize`: one proposal tries samples until one passes the verifier."""

    level = "source"
    proposer = PROPOSER
    refusals = (ExtractError, DoesNotFit)

    def __init__(self, ctx: AgentContext, model: Model, options: SourceOptions | None = None,
                 testgen: bool = True, max_functions: int = 3, close: Callable[[], None] | None = None,
                 tools: str = "native") -> None:
        self.model = model
        self.options = options or SourceOptions()
        agent = SourceAgent(model, os.path.join(ctx.workdir, "source"), self.options)
        os.makedirs(agent.workdir, exist_ok=True)
        tg = TestGenAgent(model, context_tokens=self.options.context_tokens) if testgen else None
        super().__init__(ctx, agent, self.options.per_proposal, self.options.samples, tg, max_functions, close,
                         tools)

    def prepare(self, tu: HotTU, job: CompileJob, function: str, region: bool = False) -> Prepared:
        """The source agent's prompt, cut to the hot region by the profile's per-line samples when needed (the
        samples' line numbers are the journaled source's: a rewritten node's code gets none)."""
        agent: SourceAgent = self.agent
        return agent.prepare(job, function, tu.lines.get(function) if job is tu.job else None, region)


def make_agent(level: str, llm: str, ctx: AgentContext) -> LevelAgent:
    """The optimizer's factory for the `source` level: opens the model for the run's lifetime."""
    if level != "source":
        raise LevelUnavailable("level %s has no agent here" % level)
    stack, model, context = open_level_model(level, llm, ctx)
    options = SourceOptions(context_tokens=context, max_tokens=answer_tokens(context, SourceOptions.max_tokens))
    agent = SourceLevelAgent(ctx, model, options, close=stack.close, tools=tool_mode(llm))
    # The loop does not close agents; the model (a local server) stops when the agent goes or the run ends.
    weakref.finalize(agent, stack.close)
    return agent
