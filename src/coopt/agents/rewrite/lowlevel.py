"""What the IR and assembly agents share: one sample is one question to the model about one hot function's
IR or assembly, and the answer spliced back into the TU's whole module becomes a candidate object.

The level-specific parts (how the module is made, what the function's region is, how an answer is checked and
spliced) live in ir.py and asm.py as subclasses of `LowAgent`. `LowLevelAgent` is the optimizer's
level for either: it has each candidate judged by the verifier (the same function-level differential harness as
the source level, with the candidate as .ll or .s) and hands the loop only candidates with accepted evidence.

An answer whose module does not parse, assemble or build gets the tool's errors sent back for up to `fixes` more
rounds (sampling.SampleLoop, the loop the source agent uses too); one that changes the function's signature,
defines other symbols or is cut short, or a run_opt call whose pipeline opt refuses, costs what the client charged
and yields no candidate. Nothing here raises for a bad answer.
"""

from __future__ import annotations

import os
import subprocess
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from coopt.agents.levels import AgentContext, LevelAgent
from coopt.agents.model import answer_tokens, open_level_model
from coopt.agents.registry import BY_NAME
from coopt.agents.rewrite.context import ExtractError
from coopt.agents.rewrite.prompts import code_blocks
from coopt.agents.rewrite.sampling import Refusal, SampledLevel, SampleLoop, estimate_tokens
from coopt.agents.testgen import TestGenAgent
from coopt.agents.tools_offer import tool_mode
from coopt.journal.job import CompileJob
from coopt.llm.types import Answer, ChatRequest, Message, Model, Sampling, Tool, ToolCall


class DoesNotFit(Exception):
    """The function's IR or assembly, with room for an answer, is larger than the model's context window."""


class AnswerError(Refusal):
    """An answer that cannot become a candidate: `outcome` names the kind, the message says what is wrong, and
    `errors` (from `check` and the build) is what goes back to the model for a fix."""


ANSWER_SLACK = 64  # tokens an answer needs beyond the function's own text (the fence, a line of explanation)


@dataclass(frozen=True)
class LowOptions:
    """How much one function may cost. Tokens are estimated at CHARS_PER_TOKEN characters each."""

    samples: int = 4  # answers asked per function: the first at temperature 0, the others at `temperature`
    fixes: int = 1  # follow-ups per sample with the parser's, assembler's or compiler's errors fed back
    max_tokens: int = 1536  # the most one answer may take (IR and assembly are wordier than C)
    context_tokens: int = 4096  # the model's window: prompt and answer together
    temperature: float = 0.7
    per_proposal: int = 2  # samples one optimizer evaluation may go through before it gives up
    offer_tools: bool = True  # offer the level's compiler tools (native tool calls) next to written code


@dataclass
class Region:
    """The hot function inside the TU's whole module (.ll or .s text)."""

    name: str
    module_path: str
    module: str  # the whole module's text
    start: int  # character offsets of the function's region in `module`
    end: int
    shown: str  # the function as the model sees it (debug-only lines left out)
    context: list[str] = field(default_factory=list)  # declarations shown next to it, one item each


@dataclass
class Prepared:
    """A function ready to be asked about: its region, the opening messages, the answer's token allowance."""

    job: CompileJob
    region: Region
    messages: tuple[Message, ...]
    max_tokens: int
    dropped: list[str] = field(default_factory=list)  # context left out to fit the window


def tool_errors(cmd: list[str], cwd: str, env: dict[str, str] | None = None) -> str:
    """Run `cmd`; '' when it succeeds, else all it said."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, errors="replace")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "%s did not run: %s" % (os.path.basename(cmd[0]), exc)
    if proc.returncode == 0:
        return ""
    return (proc.stderr or proc.stdout).strip() or "exit status %d" % proc.returncode


def one_line(errors: str) -> str:
    """A tool's errors as one short line: its first two lines."""
    lines = [ln.strip() for ln in errors.splitlines() if ln.strip()]
    return "; ".join(lines[:2])[:300]


def run_tool(cmd: list[str], cwd: str, env: dict[str, str] | None = None) -> str:
    """Run `cmd`; '' when it succeeds, else its first error lines (one line when short)."""
    return one_line(tool_errors(cmd, cwd, env))


class LowAgent(SampleLoop[Prepared]):
    """Asks `model` for faster IR or assembly of functions; subclasses say how to cut out and splice back."""

    level = ""
    extension = ""  # of the module and candidate files: .ll or .s
    fences: tuple[str, ...] = ()  # code block languages an answer may use
    system = ""
    user = ""  # a format string with {context} and {function}
    context_head = ""  # a format string with {text}
    fix = ""  # a format string with {errors}: the follow-up after a failed check or build
    build_failure = "does-not-build"  # the outcome of a spliced module the compiler refuses
    tools: tuple[Tool, ...] = ()  # compiler tools the model may call instead of writing code (agents/compiler/tools.py)

    def __init__(self, model: Model, workdir: str, options: LowOptions | None = None) -> None:
        super().__init__(model, workdir)
        self.options: LowOptions = options or LowOptions()

    # ---- what subclasses provide -------------------------------------------------------------------------------

    def region(self, job: CompileJob, function: str) -> Region:
        """The TU's module, written in `workdir`, and `function`'s region in it. ExtractError when there is none."""
        raise NotImplementedError

    def splice(self, region: Region, block: str) -> tuple[str, str]:
        """The module with `block`'s version of the function in its place, and the function as spliced.
        AnswerError when the answer cannot be spliced."""
        raise NotImplementedError

    def check(self, job: CompileJob, artifact: str) -> None:
        """AnswerError when the spliced module is not valid (does not parse or assemble)."""

    def from_tool(self, prep: Prepared, call: ToolCall) -> tuple[str, str]:
        """The module a compiler-tool call makes, and the function in it. AnswerError when it makes none."""
        raise AnswerError("bad-tool-call", "%s is not a tool of the %s level" % (call.name, self.level))

    # ---- the prompt --------------------------------------------------------------------------------------------

    def prepare(self, job: CompileJob, function: str) -> Prepared:
        """Cut out `function` and build the prompt. ExtractError, or DoesNotFit when it is too large."""
        os.makedirs(self.workdir, exist_ok=True)
        region = self.region(job, function)
        opts = self.options
        answer = min(opts.max_tokens, 2 * estimate_tokens(region.shown) + 256)
        if estimate_tokens(region.shown) + ANSWER_SLACK > opts.max_tokens:
            # The answer holds the whole function again: every sample would be cut at max_tokens (a benchmark's
            # `main` with the hot loops inlined into it cost 4096 tokens for nothing, twice).
            raise DoesNotFit("%s: its %s, about %d tokens, does not fit one answer of at most %d tokens; left to "
                             "the compiler tools" % (function, "IR" if self.level == "ir" else "assembly",
                                                     estimate_tokens(region.shown), opts.max_tokens))
        context = list(region.context)
        dropped: list[str] = []
        while True:
            messages = self._messages(region, context)
            size = sum(len(m.content) + 16 for m in messages)
            if estimate_tokens("x" * size) + answer <= opts.context_tokens:
                break
            if not context:
                raise DoesNotFit("%s: its %s, about %d tokens of prompt and %d of answer, does not fit the model's "
                                 "%d-token context; left to the compiler tools"
                                 % (function, "IR" if self.level == "ir" else "assembly",
                                    estimate_tokens("x" * size), answer, opts.context_tokens))
            largest = max(context, key=len)
            context.remove(largest)
            dropped.append(largest.split("\n", 1)[0][:60])
        return Prepared(job, region, messages, answer, dropped)

    def _messages(self, region: Region, context: list[str]) -> tuple[Message, ...]:
        ctx = self.context_head.format(text="\n".join(context)) if context else ""
        user = self.user.format(context=ctx, function=region.shown.strip())
        return (Message("system", self.system), Message("user", user))

    def pick_block(self, text: str, function: str) -> str | None:
        """The answer's code block that mentions the function (the first fitting block when none does)."""
        blocks = [b for lang, b in code_blocks(text) if lang in self.fences]
        named = [b for b in blocks if function in b]
        chosen = named or blocks
        return chosen[0] if chosen else None

    # ---- one sample: the steps of the shared loop (sampling.SampleLoop) -------------------------------------

    def request(self, messages: tuple[Message, ...], sampling: Sampling) -> ChatRequest:
        return ChatRequest(messages, self.tools if self.options.offer_tools else (), sampling)

    def identity(self, prep: Prepared) -> tuple[str, str, str]:
        return prep.region.module_path, prep.region.name, prep.region.shown

    def stem(self, prep: Prepared, k: int, fix: int) -> str:
        return "%s-%s-s%d%s" % (os.path.splitext(os.path.basename(prep.job.source))[0], prep.region.name, k,
                                "-fix%d" % fix if fix else "")

    def rewrite(self, prep: Prepared, answer: Answer, stem: str) -> tuple[str, str]:
        offered = {t.name for t in self.tools} if self.options.offer_tools else set()
        calls = [c for c in answer.tool_calls if c.name in offered]
        if calls:
            return self.from_tool(prep, calls[0])
        block = self.pick_block(answer.text, prep.region.name)
        if block is None:
            raise AnswerError("no-code", "the answer holds no ```%s block" % self.fences[0])
        return self.splice(prep.region, block)

    def make_object(self, prep: Prepared, made: str, stem: str) -> tuple[str, str, list[list[str]]]:
        artifact = os.path.join(self.workdir, stem + self.extension)
        with open(artifact, "w", encoding="utf-8") as f:
            f.write(made)
        self.check(prep.job, artifact)
        obj = os.path.join(self.workdir, stem + ".o")
        from coopt.cache.publish import PutError, build_object

        try:
            cmd = build_object(prep.job, artifact, BY_NAME[self.level].artifact, obj)
        except (PutError, OSError, subprocess.SubprocessError) as exc:
            # The compiler's first error line, about the answer's own lines, is what the model can act on.
            shown = str(exc).replace(artifact, os.path.basename(artifact))
            raise AnswerError(self.build_failure, str(exc), shown if isinstance(exc, PutError) else "") from exc
        return artifact, obj, [cmd]

    def fix_prompt(self, errors: str) -> str:
        return self.fix.format(errors=errors)


# ---- the optimizer's level ----------------------------------------------------------------------------------------


class LowLevelAgent(SampledLevel):
    """The `ir` or `asm` level of `coopt optimize`: one proposal tries samples until one passes the verifier."""

    refusals = (ExtractError, DoesNotFit)

    def __init__(self, ctx: AgentContext, model: Model, agent: LowAgent, testgen: bool = True,
                 max_functions: int = 3, close: Callable[[], None] | None = None, tools: str = "native") -> None:
        self.model = model
        self.level = agent.level
        self.proposer = "llm/" + agent.level
        self.options = agent.options
        tg = TestGenAgent(model, context_tokens=self.options.context_tokens) if testgen else None
        super().__init__(ctx, agent, self.options.per_proposal, self.options.samples, tg, max_functions, close,
                         tools)


def make_level_agent(level: str, llm: str, ctx: AgentContext,
                     build: Callable[[Model, str, LowOptions], LowAgent]) -> LevelAgent:
    """The optimizer's factory for the `ir` and `asm` levels: opens the model for the run's lifetime."""
    stack, model, context = open_level_model(level, llm, ctx)
    # The embedded llama.cpp server is not known to accept the `tools` field: the local model writes code only.
    options = LowOptions(context_tokens=context, max_tokens=answer_tokens(context, LowOptions.max_tokens),
                         offer_tools=llm != "local")
    agent = LowLevelAgent(ctx, model, build(model, os.path.join(ctx.workdir, level), options), close=stack.close,
                          tools=tool_mode(llm))
    # The loop does not close agents; the model (a local server) stops when the agent goes or the run ends.
    weakref.finalize(agent, stack.close)
    return agent
