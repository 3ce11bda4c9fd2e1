"""What the LLM levels (source, ir, asm) of `coopt optimize` share: a proposal samples the model until one
rewrite passes the verifier, and every candidate goes through the verifier the same way (the TU's own flags and
compiler, the run's float tolerance, fuzzing and time limit, the test-generation agent's inputs next to the
built-in generators, the rest of the program linked in when the TU calls into it).

A level supplies an agent with `prepare(job, function)` (raising one of its `refusals` when the function cannot
be asked about), `sample(prepared, k)` (a result with `.candidate` or a `.line()` saying why not) and `tokens`.
The agents' `sample` is one loop, `SampleLoop`: ask, turn the answer into the rewritten function, drop it when it
is the original or an earlier sample's, build it, and when the build fails send the tool's errors back to the
model for up to `fixes` more rounds while the conversation still fits the context window. An answer that is the
original code or an earlier sample's gets the same extra rounds (prompts.RETRY): small models often copy the code
back at first, and asking again in the conversation costs less than a fresh sample.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Protocol, TypeVar

from coopt.agents.compiler.tools import Built
from coopt.agents.feedback import Feedback, Kind
from coopt.agents.levels import (
    AgentContext,
    Candidate,
    HotTU,
    JudgedAttempt,
    NoCandidate,
    Node,
    parent_id,
    start_job,
)
from coopt.agents.rewrite.checker import CandidateChecker, undrivable
from coopt.agents.rewrite.context import ExtractError, FunctionSource, clang_for, extract
from coopt.agents.rewrite.prompts import RETRY
from coopt.agents.testgen import TestGenAgent
from coopt.agents.testgen_program import ProgramTestGen
from coopt.agents.tools_offer import INFO_TOOLS, MICRO_BENCHMARK, ToolOffer
from coopt.journal.job import CompileJob
from coopt.llm.client import CHARS_PER_TOKEN
from coopt.llm.local_server import LocalModelError
from coopt.llm.types import Answer, ChatRequest, Message, Model, Sampling
from coopt.verify.evidence import CheckResult, Evidence
from coopt.verify.program_level.inputs import ProgramInput


@dataclass(frozen=True)
class Rewrite:
    """A model's rewrite of one function, built to an object with the job's code generation flags, and how."""

    function: str
    sample: int
    artifact: str  # the rewritten TU (.c) or the whole spliced module (.ll, .s): the recipe's input
    object: str
    recipe: list[list[str]]
    text: str  # the function as spliced in
    model: str
    tokens: int
    answer: str = ""  # the model's answer it came from: the assistant turn the judge's feedback follows


@dataclass(frozen=True)
class SampleResult:
    """What one sample came to. `outcome`: compiled/built, an answer status (garbage, truncated, timeout, ...),
    no-code, not-defined, unchanged, duplicate, does-not-compile, too-long (source); changed-signature,
    defines-other-symbols, bad-label, bad-tool-call, does-not-parse, does-not-assemble, does-not-build (IR, asm)."""

    sample: int
    outcome: str
    detail: str
    tokens: int
    candidate: Rewrite | None = None
    answer: str = ""  # the last answer's text, when there was one (feedback on a refusal follows it)

    def line(self) -> str:
        return "sample %d: %s%s" % (self.sample, self.outcome, " (%s)" % self.detail if self.detail else "")


FIX_ERROR_LINES = 8  # of a tool's errors sent back to the model


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _tokens(messages: Sequence[Message]) -> int:
    """The estimated prompt size of `messages` (as the context-window checks count it)."""
    return estimate_tokens("x" * sum(len(m.content) + 16 for m in messages))


def normalized(text: str) -> str:
    return " ".join(text.split())


def error_excerpt(errors: str, path: str, shown_as: str) -> str:
    """The first errors (with the lines the tool quotes), `path` (a scratch file) written as `shown_as`."""
    lines = errors.replace(path, shown_as).splitlines()
    first = next((i for i, ln in enumerate(lines) if "error" in ln), 0)
    return "\n".join(lines[first:first + FIX_ERROR_LINES])


class Refusal(Exception):
    """An answer that cannot become a candidate: `outcome` names the kind, the message says what is wrong in one
    line. `errors`, when set, is a tool's error excerpt worth sending back to the model for a fix."""

    def __init__(self, outcome: str, detail: str, errors: str = "") -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.errors = errors


class LoopOptions(Protocol):
    """What the sample loop reads of an agent's options."""

    @property
    def fixes(self) -> int: ...

    @property
    def temperature(self) -> float: ...

    @property
    def context_tokens(self) -> int: ...

    @property
    def samples(self) -> int: ...


class LoopPrepared(Protocol):
    """What the sample loop reads of an agent's prepared function."""

    @property
    def messages(self) -> tuple[Message, ...]: ...

    @property
    def max_tokens(self) -> int: ...

    @property
    def job(self) -> CompileJob: ...


P = TypeVar("P", bound=LoopPrepared)


class SampleLoop(Generic[P]):
    """One sample of an LLM agent, whatever the level: the steps that differ are the methods below."""

    options: LoopOptions
    built = "built"  # the outcome of a sample that became a candidate

    def __init__(self, model: Model, workdir: str) -> None:
        self.model = model
        self.workdir = workdir
        self.tokens = 0  # charged over the agent's life
        self._seen: dict[tuple[str, str], set[str]] = {}  # (file, function) -> digests of the rewrites so far
        self.offer: ToolOffer | None = None  # compiler tools the model may call (tools_offer.py); None: none
        self.log: Callable[[dict[str, object]], None] | None = None  # the conversation log (the run directory)

    # ---- the level's steps -------------------------------------------------------------------------------------

    def prepare(self, job: CompileJob, function: str) -> P:
        """The prompt for `function` of `job`. The level's refusals (ExtractError, DoesNotFit) when there is none."""
        raise NotImplementedError

    def request(self, messages: tuple[Message, ...], sampling: Sampling) -> ChatRequest:
        """The request for `messages` (a level may offer tools next to them)."""
        return ChatRequest(messages, sampling=sampling)

    def identity(self, prep: P) -> tuple[str, str, str]:
        """(file, function name, the original function's text as the model was shown it)."""
        raise NotImplementedError

    def stem(self, prep: P, k: int, fix: int) -> str:
        """The file name stem of sample `k`'s artifacts after `fix` repair rounds."""
        raise NotImplementedError

    def rewrite(self, prep: P, answer: Answer, stem: str) -> tuple[Any, str]:
        """What the answer makes (the level's artifact text) and the function as spliced. Refusal when nothing."""
        raise NotImplementedError

    def make_object(self, prep: P, made: Any, stem: str) -> tuple[str, str, list[list[str]]]:
        """Write and build `made`: (artifact, object, recipe). Refusal, with the tool's `errors`, when it fails."""
        raise NotImplementedError

    def fix_prompt(self, errors: str) -> str:
        """The follow-up that sends `errors` back and asks for the corrected function."""
        raise NotImplementedError

    # ---- the loop ----------------------------------------------------------------------------------------------

    def fit(self, prep: P, history: Sequence[Message]) -> list[Message]:
        """The opening messages and as much of `history` (earlier answers and the judge's feedback, in pairs) as
        fits the context window with room for the answer: the oldest exchanges go first."""
        extra = list(history)
        while extra and _tokens(list(prep.messages) + extra) + prep.max_tokens > self.options.context_tokens:
            extra = extra[2:]
        return list(prep.messages) + extra

    def _ask(self, messages: list[Message], sampling: Sampling, tools_left: bool) -> Answer:
        request = self.request(tuple(messages), sampling)
        offer = self.offer
        # The tools are offered only while they fit the context window next to the conversation and the answer.
        if offer is not None and tools_left and \
                _tokens(messages) + sampling.max_tokens + offer.tokens() <= self.options.context_tokens:
            if offer.native():
                request = replace(request, tools=request.tools + offer.native())
            elif offer.system_text() and request.messages and request.messages[0].role == "system":
                head = request.messages[0]
                request = replace(request, messages=(Message("system", head.content + offer.system_text()),
                                                     *request.messages[1:]))
        answer = self.model.query(request)
        if self.log is not None:
            self.log({"event": "answer", "messages": len(request.messages), "last": request.messages[-1].content,
                      "status": answer.status.value, "text": answer.text, "tokens": answer.tokens_charged,
                      "tool_calls": [{"name": c.name, "arguments": c.arguments} for c in answer.tool_calls]})
        return answer

    def sample(self, prep: P, k: int, history: Sequence[Message] = ()) -> SampleResult:
        """Ask for sample `k` (temperature 0 for the first, then seeded samples) and make it a candidate. The
        conversation opens with `history` (earlier answers and what the judge said of them) as far as it fits;
        compiler-tool calls are run and answered (at most `offer.per_answer` per answer) before the code."""
        opts = self.options
        path, name, original = self.identity(prep)
        sampling = Sampling(max_tokens=prep.max_tokens, temperature=0.0 if k == 0 else opts.temperature, seed=k)
        messages = self.fit(prep, history)
        tokens = 0
        fix = 0
        tool_calls = 0
        while True:
            offer = self.offer
            answer = self._ask(messages, sampling, offer is not None and tool_calls < offer.per_answer)
            tokens += answer.tokens_charged
            self.tokens += answer.tokens_charged
            if not answer.ok:
                return SampleResult(k, answer.status.value, answer.detail, tokens)
            calls = offer.calls(answer) if offer is not None and tool_calls < offer.per_answer else []
            if offer is not None and calls:
                follow = offer.follow_up(prep.job, name, answer, calls, tool_calls, self.log)
                tool_calls += len(calls)
                if _tokens(messages + follow) + prep.max_tokens > opts.context_tokens:
                    return SampleResult(k, "too-long", "the tool results no longer fit the model's context", tokens,
                                        answer=answer.text)
                messages += follow
                continue
            stem = self.stem(prep, k, fix)
            try:
                made, function = self.rewrite(prep, answer, stem)
                if normalized(function) == normalized(original):
                    raise Refusal("unchanged", "the answer is the original function")
                digest = hashlib.sha256(normalized(function).encode()).hexdigest()
                seen = self._seen.setdefault((path, name), set())
                if digest in seen:
                    raise Refusal("duplicate", "the same rewrite as an earlier sample")
                seen.add(digest)
                artifact, obj, recipe = self.make_object(prep, made, stem)
            except Refusal as exc:
                last = SampleResult(k, exc.outcome, str(exc), tokens, answer=answer.text)
                # A tool's errors go back for a fix; the original or an already judged rewrite, back for another try.
                again = self.fix_prompt(exc.errors) if exc.errors else RETRY.get(exc.outcome, "")
                # A tool call has no text to correct: only written code goes back.
                if not again or answer.tool_calls or fix >= opts.fixes:
                    return last
                follow = [Message("assistant", answer.text), Message("user", again)]
                if _tokens(messages + follow) + prep.max_tokens > opts.context_tokens:
                    return replace(last, detail=last.detail + "; no room in the context to ask for a fix")
                messages += follow
                fix += 1
                continue
            cand = Rewrite(name, k, artifact, obj, recipe, function, self.model.name, tokens, answer.text)
            return SampleResult(k, self.built, "", tokens, cand, answer.text)

    def candidates(self, job: CompileJob, function: str, n: int | None = None) -> tuple[list[Rewrite],
                                                                                      list[SampleResult]]:
        """Up to `n` samples (default `options.samples`) for `function`: the built candidates and every sample's
        outcome. The level's refusals (ExtractError, DoesNotFit) when the function cannot be asked about at all."""
        prep = self.prepare(job, function)
        results = [self.sample(prep, k) for k in range(n if n is not None else self.options.samples)]
        return [r.candidate for r in results if r.candidate is not None], results


@dataclass
class FunctionState:
    """Where the level is with one hot function: its prepared prompt, the next sample, the test inputs."""

    prepared: Any = None  # the level agent's Prepared (messages, token allowance, context left out)
    next_sample: int = 0
    done: bool = False
    note: str = ""
    inputs: object | None = None  # the test-generation agent's input source, asked once per function
    asked_inputs: bool = False
    program: bool = False  # judged by running the whole program (main, or a function the harness cannot call)
    program_inputs: list[ProgramInput] = field(default_factory=list)  # the test-generation agent's program runs
    region_tried: bool = False  # asked about its hot region only (a long function, or answers cut at max_tokens)
    job: CompileJob | None = None  # the code the prompts show: the lineage node's compile
    # The conversation so far, after the opening messages: each answer the judge spoke about, then what it said
    # (Feedback.text()). The next sample continues it, as far as it fits the model's context.
    history: list[Message] = field(default_factory=list)


class SampledLevel:
    """An LLM level of `coopt optimize`: one proposal tries samples of the hottest functions until one passes
    the verifier; a proposal that yields none raises NoCandidate with the tokens it spent."""

    level = ""
    proposer = ""
    refusals: tuple[type[Exception], ...] = (ExtractError,)  # prepare() errors: the function is not asked about

    def __init__(self, ctx: AgentContext, agent: Any, per_proposal: int, samples: int,
                 testgen: TestGenAgent | None, max_functions: int = 3,
                 close: Callable[[], None] | None = None, tools: str = "native") -> None:
        """`tools`: how the compiler tools are offered to the model: "native", "text" (JSON in the answer, for
        models without tool calling) or "none"."""
        self.ctx = ctx
        self.agent = agent
        self.per_proposal, self.samples = per_proposal, samples
        self.max_functions = max_functions
        self.testgen = testgen
        self.program_testgen = ProgramTestGen(testgen.model, context_tokens=testgen.context_tokens) \
            if testgen is not None else None
        self.state: dict[tuple[str, int, str], FunctionState] = {}  # (TU object, parent node, function)
        self.notes: list[str] = []
        self.checker = CandidateChecker(ctx, self.notes)
        self._close = close
        # TU object -> (the function's state on its lineage node, answer, its hot spots on the speed inputs) of the
        # candidate handed over last
        self.handed: dict[str, tuple[FunctionState, str, str, str]] = {}
        # (TU object, function) -> the conversation whose last answer was timed: a node built on that answer
        # continues it, so the model knows what its rewrite paid
        self.timed: dict[tuple[str, str], FunctionState] = {}
        settings = ctx.settings
        self.log_path = os.path.join(settings.log_dir, "%s.jsonl" % self.level) if settings.log_dir else ""
        agent.log = self._log
        if getattr(agent, "offer", None) is None and tools != "none":
            cache = os.path.join(settings.cache_dir, "llm", "tools") if settings.cache_dir else ""
            bench = self.level == "source" and testgen is not None and ctx.check is not None
            agent.offer = ToolOffer(INFO_TOOLS + ((MICRO_BENCHMARK,) if bench else ()), tools, settings.tool_calls,
                                    settings.tool_output_tokens, cache, agent.workdir,
                                    self._bench if bench else None)

    def _bench(self, job: CompileJob, function: str, path: str) -> str:
        """The micro_benchmark tool: the model's version (spliced into the TU at `path`) checked against the
        original, and timed on the test-generation agent's speed inputs, through the run's sandboxed verifier."""
        tu = next((t for t in self.ctx.hot if t.job.source_path == job.source_path), None)
        if tu is None:
            return "error: %s is not a hot file of this run" % os.path.basename(job.source_path)
        ev = self.checker.verify(tu, function, path, self._inputs(tu, self._state(tu, function), function))
        if not ev.accepted:
            return Feedback.from_evidence(ev, "this version").text().rsplit("\n", 1)[0]
        if ev.micro is None:
            return "behaves like the original; there were no speed inputs to time it on"
        text = "behaves like the original; on the speed inputs it ran %.3fx as fast as the original (%.3f to %.3f)" \
            % (ev.micro.ratio, ev.micro.low, ev.micro.high)
        return text + ("\n" + ev.hot_spots if ev.hot_spots else "")

    def _log(self, event: dict[str, object]) -> None:
        """One event of the conversation (an answer, a tool run, the judge's feedback) into the run directory."""
        if not self.log_path:
            return
        try:
            os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps({"time": round(time.time(), 3), "level": self.level, **event}, sort_keys=True,
                                   default=str) + "\n")
        except OSError:
            pass  # the log is a record for people; a full disk must not stop the run

    def learn(self, tu: HotTU, feedback: Feedback) -> None:
        """The judge's word on the candidate handed over last for `tu`: it joins that function's conversation, so
        the next sample for it is written knowing it."""
        handed = self.handed.pop(tu.object, None)
        if handed is None or feedback.kind is Kind.NO_CANDIDATE:
            self._log({"event": "feedback", "tu": tu.name, "kind": feedback.kind.value, "text": feedback.text()})
            return  # nothing was handed over: the samples' own feedback is already in the conversations
        st, function, answer, hot = handed
        if feedback.kind is Kind.TIMED and not feedback.profile:
            feedback = replace(feedback, profile=hot)  # what the verifier's perf run saw, on the speed inputs
        self._log({"event": "feedback", "tu": tu.name, "kind": feedback.kind.value, "text": feedback.text()})
        st.history += [Message("assistant", answer), Message("user", feedback.text())]
        if feedback.kind is Kind.TIMED:
            self.timed[(tu.object, function)] = st

    def _told(self, st: FunctionState, answer: str, feedback: Feedback) -> None:
        if answer:
            st.history += [Message("assistant", answer), Message("user", feedback.text())]
            self._log({"event": "feedback", "kind": feedback.kind.value, "text": feedback.text()})

    def close(self) -> None:
        """Stop the model (a local server) when this agent opened it."""
        if self._close is not None:
            self._close()
            self._close = None

    def _spent(self) -> int:
        return int(self.agent.tokens) + (self.testgen.tokens if self.testgen else 0) + (
            self.program_testgen.tokens if self.program_testgen else 0)

    def _functions(self, tu: HotTU) -> list[str]:
        return tu.functions[:self.max_functions]

    def prepare(self, tu: HotTU, job: CompileJob, function: str, region: bool = False) -> Any:
        """The agent's prepared prompt for `function` as `job` compiles it (the lineage node's code); a level whose
        agent can cut a hot region passes `region` and the profile's per-line samples on, a level that cannot
        refuses, so nothing is sent whole again."""
        if region:
            raise ExtractError("the %s level cannot cut a hot region out of it; left to the compiler tools"
                               % self.level)
        return self.agent.prepare(job, function)

    def _state(self, tu: HotTU, function: str, parent: Node | None = None) -> FunctionState:
        key = (tu.object, parent_id(parent), function)
        st = self.state.get(key)
        if st is None:
            st = self.state[key] = FunctionState()
            root = self.state.get((tu.object, 0, function))
            if root is not None:  # the test inputs probe the original function: asked once, whatever the node
                st.inputs, st.asked_inputs = root.inputs, root.asked_inputs
            before = self.timed.get((tu.object, function)) if parent_id(parent) else None
            if before is not None:  # built on a timed answer: the conversation goes on from what it paid
                st.history = list(before.history)
            try:
                st.job = job = start_job(tu, parent)  # the parent's code is what the model rewrites
                why = undrivable(job, function)
                if why and not self.ctx.program_level:
                    raise ExtractError("%s: the verifier's harness cannot drive it (%s); not asked" % (function, why))
                st.program = bool(why)
                st.prepared = self.prepare(tu, job, function)
                st.region_tried = getattr(st.prepared, "region", None) is not None
            except self.refusals as exc:
                st.done, st.note = True, str(exc)
                self.notes.append(st.note)
        return st

    def _truncated(self, tu: HotTU, function: str, st: FunctionState) -> None:
        """An answer came back cut at max_tokens: the function is never sent whole again. Its hot region is asked
        about instead, once; when that is cut too, or there is none, the function is left to the compiler tools."""
        if st.region_tried:
            st.done, st.note = True, "%s: answers cut at max_tokens even for its hot region; not asked again" % function
        else:
            st.region_tried = True
            try:
                st.prepared = self.prepare(tu, st.job or tu.job, function, region=True)
                st.next_sample, st.done = 0, False
                return
            except self.refusals as exc:
                st.done, st.note = True, "%s: answers cut at max_tokens; %s" % (function, exc)
        self.notes.append(st.note)

    def unavailable(self) -> str:
        return ""  # a missing or broken LLM is refused before the run starts (check_levels, make_agent)

    def skip(self, tu: HotTU, attempt: JudgedAttempt) -> None:
        """Nothing to move past: each proposal samples afresh, so a resumed run simply asks again."""

    def has_more(self, tu: HotTU, parent: Node | None = None) -> bool:
        """Whether a hot function of `tu` (as `parent` has it) still has samples to try."""
        if parent is not None and parent.job is None:
            return False
        for fn in self._functions(tu):
            st = self.state.get((tu.object, parent_id(parent), fn))
            if st is None or not st.done:
                return True
        return False

    def propose(self, tu: HotTU, out_dir: str, parent: Node | None = None) -> Candidate:
        """The next verified candidate of `tu` built on `parent` (None: the journaled compile), or NoCandidate
        with what was tried and the tokens it cost. The verifier compares it with the TU's original code."""
        start = self._spent()
        tried = 0
        story: list[str] = []
        for fn in self._functions(tu):
            st = self._state(tu, fn, parent)
            if st.done:
                if st.note:
                    story.append(st.note)
                continue
            while not st.done and tried < self.per_proposal:
                k = st.next_sample
                st.next_sample += 1
                st.done = st.next_sample >= self.samples
                tried += 1
                try:
                    result = self.agent.sample(st.prepared, k, st.history)
                except (LocalModelError, OSError) as exc:  # the local server did not start, a full disk
                    raise NoCandidate("%s: the model could not be asked: %s" % (fn, exc),
                                      self._spent() - start, tried) from exc
                if result.candidate is None:
                    story.append("%s %s" % (fn, result.line()))
                    if result.outcome == "truncated":  # a cut answer is not worth its tokens in the history
                        self._truncated(tu, fn, st)
                        if st.note:
                            story.append(st.note)
                    else:
                        self._told(st, result.answer, Feedback(Kind.NO_CANDIDATE, detail=result.line()))
                    continue
                cand = result.candidate
                ev = self.checker.verify(tu, cand.function, cand.artifact, self._inputs(tu, st, fn),
                                         self._program_inputs(tu, st, fn))
                if ev.accepted:
                    return self._candidate(tu, cand, ev, self._spent() - start, st)
                story.append("%s sample %d: %s" % (fn, k, ev.verdict.line()))
                self._told(st, cand.answer, Feedback.from_evidence(ev, "%s sample %d" % (fn, k)))
            if tried >= self.per_proposal:
                break
        spent = self._spent() - start
        raise NoCandidate("no verified %s candidate (%d LLM tokens): %s" % (
            self.level, spent, "; ".join(story)[:600] or "nothing to ask"), spent, tried)

    def _program_inputs(self, tu: HotTU, st: FunctionState, function: str) -> list[ProgramInput]:
        """The test-generation agent's runs of the whole program, asked once about the function's C source, for
        a function only the program can judge (at the IR and assembly levels too)."""
        if not st.program or self.program_testgen is None or st.asked_inputs:
            return st.program_inputs
        st.asked_inputs = True
        source = self._c_source(tu, st, function)
        if source is None:
            return st.program_inputs  # the project's tests and the stdin mutations still judge it
        st.program_inputs = self.program_testgen.runs_for(source)
        self.notes.extend(self.program_testgen.notes)
        self.program_testgen.notes.clear()
        return st.program_inputs

    def _inputs(self, tu: HotTU, st: FunctionState, function: str) -> list[object]:
        """The test-generation agent's inputs for `function`, asked once, about its C source."""
        if self.testgen is None or st.program:
            return []
        if not st.asked_inputs:
            st.asked_inputs = True
            source = self._c_source(tu, st, function)
            # A function the source extractor cannot show: the built-in inputs only.
            st.inputs = self.testgen.source_for(tu.job, source) if source is not None else None
        return [st.inputs] if st.inputs is not None else []

    @staticmethod
    def _c_source(tu: HotTU, st: FunctionState, function: str) -> FunctionSource | None:
        """The function's C source the test-generation agent is asked about (the IR and assembly levels show the
        model none of their own); None when it cannot be extracted."""
        source: FunctionSource | None = getattr(st.prepared, "source", None)
        if source is not None:
            return source
        try:
            return extract(tu.job, function, clang_for(tu.job))
        except ExtractError:
            return None

    def _candidate(self, tu: HotTU, cand: Any, ev: Evidence, tokens: int, st: FunctionState) -> Candidate:
        label = "%s sample %d" % (cand.function, cand.sample)
        self.handed[tu.object] = (st, cand.function, cand.answer, ev.hot_spots)
        detail = "model %s, %s, %d tokens for this proposal" % (cand.model, label, tokens)
        dropped = getattr(st.prepared, "dropped", None)
        if dropped:
            detail += "; context left out to fit: %s" % ", ".join(dropped)
        count = getattr(st.inputs, "count", None)
        if count is not None:
            detail += "; %d inputs from the test-generation agent" % count
        if st.program:
            detail += "; judged by running the whole program (%d runs from the test-generation agent)" % len(
                st.program_inputs)
        ev.checks.append(CheckResult("proposer", True, detail))
        built = Built(self.level, label, cand.object, cand.recipe, cand.artifact, [])
        return Candidate(built, "%s (%s)" % (self.proposer, cand.model), behaviour=ev, tokens=tokens,
                         micro=ev.micro)
