"""The compiler tools an LLM level agent may call while it writes its answer, and how they are offered and run.

Every LLM level (source, ir, asm) is offered the same instruments, each with a JSON schema:
- `remarks`: compile the TU (optionally with the model's version of the hot function in its place) with extra
  flags and show LLVM's optimization remarks for the function: what was not inlined, unrolled, vectorized and why;
- `show_asm` / `show_ir`: the function's assembly or optimized LLVM IR as the job's flags (plus extra ones) make it;
- `try_opt`: the function's IR after an `opt` pass pipeline over the TU's IR (to see what a pipeline would do; the
  IR level's own `run_opt` is still the call that makes a candidate from a pipeline);
- `micro_benchmark`: the model's version of the function checked and timed against the original on the
  test-generation agent's speed inputs (source level; it runs code, so it goes through the verifier, sandboxed).

They are offered natively (the request's `tools`) to endpoints that take them, and described in the system prompt,
to be written as JSON in the answer's text, to the local llama.cpp model. Each answer may make at most
`AgentSettings.tool_calls` calls; each result is cut to `tool_output_tokens`. Results are kept in a tool cache
beside the transcripts (<cache_dir>/llm/tools), keyed by the call and the TU, so a rerun sends the model exactly
the conversation it saw before and every answer comes from the transcript cache: reruns are free.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from coopt.agents.compiler.tools import PIPELINE, check_target
from coopt.agents.rewrite.context import ExtractError, extract
from coopt.journal.job import CompileJob
from coopt.llm.client import CHARS_PER_TOKEN
from coopt.llm.parse import text_tool_calls
from coopt.llm.types import Answer, Message, Tool, ToolCall

_FLAGS = {"type": "array", "items": {"type": "string"},
          "description": "extra clang flags after the job's own, e.g. [\"-O3\"] (optional)"}
_CODE = {"type": "string", "description": "your C version of the function, replacing it in the file (optional)"}
REMARKS = Tool("remarks", "Compile the file with clang and show the optimization remarks for the hot function: "
               "which loops were not vectorized or unrolled and why, which calls were not inlined.",
               {"type": "object", "properties": {"flags": _FLAGS, "code": _CODE}})
SHOW_ASM = Tool("show_asm", "Show the function's assembly as clang compiles it with the file's flags.",
                {"type": "object", "properties": {"flags": _FLAGS, "code": _CODE}})
SHOW_IR = Tool("show_ir", "Show the function's optimized LLVM IR as clang makes it with the file's flags.",
               {"type": "object", "properties": {"flags": _FLAGS, "code": _CODE}})
TRY_OPT = Tool("try_opt", "Run LLVM opt with a pass pipeline (new pass manager syntax, e.g. "
               "\"function(loop-unroll<O3>,instcombine)\") over the file's IR and show the function afterwards.",
               {"type": "object", "properties": {"pipeline": {"type": "string"}}, "required": ["pipeline"]})
MICRO_BENCHMARK = Tool("micro_benchmark", "Check your C version of the function against the original and time "
                       "both on inputs sized for the hot path; shows the speed-up or the input where they differ.",
                       {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]})
INFO_TOOLS: tuple[Tool, ...] = (REMARKS, SHOW_ASM, SHOW_IR, TRY_OPT)

TEXT_CALLS = """

You may call these compiler tools before you answer; to call one, reply with only a JSON object
{{"name": "<tool>", "arguments": {{...}}}} and nothing else; you get its result, then answer.
{tools}"""
REMARK_FLAGS = ("-Rpass-missed=.*", "-Rpass-analysis=loop-vectorize|inline|loop-unroll")
TOOL_TIMEOUT_S = 120


def tool_mode(llm: str) -> str:
    """How a level offers its tools with `--llm`: native tool calls for an OpenAI-compatible endpoint; JSON in
    the text for the local llama.cpp model (its server takes `tools` through the chat template, but the small
    model is shown one call format that coopt writes and reads itself)."""
    return "text" if llm == "local" else "native"


class ToolFailed(Exception):
    """A tool call that cannot be run as asked; the message goes back to the model."""


@dataclass
class ToolOffer:
    """The tools one level offers, how (`native` or `text`), and the bounds on their use."""

    tools: tuple[Tool, ...]
    mode: str  # "native": the request's `tools`; "text": described in the system prompt, JSON in the answer
    per_answer: int = 3
    output_tokens: int = 600
    cache_dir: str = ""  # results kept here (the transcript cache's tools/), "" for no cache
    workdir: str = ""
    # (job, function, the TU with the model's version spliced in) -> report: the level's micro-benchmark
    bench: Callable[[CompileJob, str, str], str] | None = None

    @property
    def names(self) -> frozenset[str]:
        return frozenset(t.name for t in self.tools)

    def native(self) -> tuple[Tool, ...]:
        """The tools to put into the request's `tools`."""
        return self.tools if self.mode == "native" else ()

    def tokens(self) -> int:
        """What offering the tools adds to a prompt, in estimated tokens (schemas, or the system prompt's text)."""
        size = len(self.system_text()) if self.mode == "text" else len(json.dumps([t.to_openai() for t in self.tools]))
        return size // CHARS_PER_TOKEN + 1

    def system_text(self) -> str:
        """What to add to the system prompt when the tools are written as JSON in the text."""
        if self.mode != "text" or not self.tools:
            return ""
        lines = ["- %s(%s): %s" % (t.name, ", ".join(t.parameters.get("properties", {})), t.description)
                 for t in self.tools]
        return TEXT_CALLS.format(tools="\n".join(lines))

    def calls(self, answer: Answer) -> list[ToolCall]:
        """The calls of offered tools in `answer`: native ones, else JSON written in its text."""
        native = [c for c in answer.tool_calls if c.name in self.names]
        if native:
            return native
        return text_tool_calls(answer.text, self.names) if "{" in answer.text else []

    def follow_up(self, job: CompileJob, function: str, answer: Answer, calls: list[ToolCall], used: int,
                  log: Callable[[dict[str, object]], None] | None = None) -> list[Message]:
        """The messages that answer `calls`: the assistant's turn, then each result (a `tool` message for native
        calls, a user message for calls written in text). Calls past `per_answer` are answered, not run."""
        native = calls[0].source == "native"
        shown = tuple(ToolCall(c.name, c.arguments, c.id or "call_%d" % i, c.source) for i, c in enumerate(calls))
        out = [Message("assistant", answer.text, shown if native else ())]
        for i, call in enumerate(shown):
            if used + i >= self.per_answer:
                result = "not run: at most %d tool calls per answer; write your answer now" % self.per_answer
            else:
                result = self.run(job, function, call)
            if log is not None:
                log({"event": "tool", "function": function, "tool": call.name, "arguments": call.arguments,
                     "result": result})
            if native:
                out.append(Message("tool", result, tool_call_id=call.id))
            else:
                out.append(Message("user", "Result of %s:\n```\n%s\n```\nNow write your answer, or call another "
                                   "tool." % (call.name, result)))
        return out

    # ---- running one call --------------------------------------------------------------------------------------

    def run(self, job: CompileJob, function: str, call: ToolCall) -> str:
        """The result of `call` as the model sees it (an error in one line when it cannot be run), trimmed."""
        key = self._key(job, function, call)
        cached = self._cached(key)
        if cached is not None:
            return cached
        try:
            text = self._run(job, function, call)
        except ToolFailed as exc:
            text = "error: %s" % exc
        limit = self.output_tokens * CHARS_PER_TOKEN
        if len(text) > limit:
            text = text[:limit] + "\n... (cut: %d more characters)" % (len(text) - limit)
        self._store(key, call, text)
        return text

    def _run(self, job: CompileJob, function: str, call: ToolCall) -> str:
        args = call.arguments
        flags = args.get("flags") or []
        if not isinstance(flags, list) or not all(isinstance(f, str) and f.startswith("-") for f in flags):
            raise ToolFailed("flags must be a list of options such as [\"-O3\"]")
        if any(f.startswith(("-o", "-E", "-M", "-fplugin", "-Xclang", "-load", "@")) for f in flags):
            raise ToolFailed("those flags are not allowed here")
        try:
            check_target(flags, False)
        except Exception as exc:  # noqa: BLE001 - ToolError: a target CPU the run may not assume
            raise ToolFailed(str(exc)) from exc
        code = args.get("code")
        if code is not None and not isinstance(code, str):
            raise ToolFailed("code must be a string of C")
        with tempfile.TemporaryDirectory(prefix="coopt-tool-", dir=self.workdir or None) as d:
            source = self._source(job, function, code, d) if code else job.source_path
            if call.name == "remarks":
                return remarks(job, source, function, flags, d)
            if call.name in ("show_asm", "show_ir"):
                return show(job, source, function, flags, d, ir=call.name == "show_ir")
            if call.name == "try_opt":
                return try_opt(job, function, args.get("pipeline"), d)
            if call.name == "micro_benchmark" and self.bench is not None:
                if not code:
                    raise ToolFailed("give your version of the function as `code`")
                return self.bench(job, function, source)
        raise ToolFailed("%s is not a tool offered here" % call.name)

    def _source(self, job: CompileJob, function: str, code: str, d: str) -> str:
        """A copy of the TU, in its own directory's name space, with `code` in the function's place."""
        try:
            fs = extract(job, function)
        except ExtractError as exc:
            raise ToolFailed("the function cannot be replaced: %s" % exc) from exc
        with open(fs.path, "rb") as f:
            data = f.read()
        path = os.path.join(d, os.path.basename(fs.path))
        with open(path, "wb") as f:
            f.write(data[:fs.start] + code.encode("utf-8") + data[fs.end:])
        return path

    # ---- the results cache -------------------------------------------------------------------------------------

    def _key(self, job: CompileJob, function: str, call: ToolCall) -> str:
        with open(job.source_path, "rb") as f:
            source = hashlib.sha256(f.read()).hexdigest()
        text = json.dumps([job.compiler, job.key_args, source, function, call.name, call.arguments],
                          sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def _cached(self, key: str) -> str | None:
        if not self.cache_dir:
            return None
        try:
            with open(os.path.join(self.cache_dir, key[:2], key + ".json"), encoding="utf-8") as f:
                record = json.load(f)
        except (OSError, ValueError):
            return None
        result = record.get("result") if isinstance(record, dict) else None
        return result if isinstance(result, str) else None

    def _store(self, key: str, call: ToolCall, text: str) -> None:
        if not self.cache_dir:
            return
        path = os.path.join(self.cache_dir, key[:2], key + ".json")
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"tool": call.name, "arguments": call.arguments, "result": text}, f, sort_keys=True)
            os.replace(tmp, path)
        except OSError:
            pass  # a result not kept costs a rerun of the tool, nothing else


# ---- the tools themselves -----------------------------------------------------------------------------------------


def _compile(job: CompileJob, source: str, extra: Sequence[str], d: str, out: str) -> subprocess.CompletedProcess[str]:
    include = ["-iquote", os.path.dirname(job.source_path)]  # a spliced copy still finds the TU's own headers
    cmd = [job.compiler, *job.key_args, *include, *extra, "-c", source, "-o", out]
    try:
        return subprocess.run(cmd, cwd=job.cwd, env=job.subprocess_env(), capture_output=True, text=True,
                              timeout=TOOL_TIMEOUT_S, errors="replace")
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolFailed("the compiler did not run: %s" % exc) from exc


def _errors(proc: subprocess.CompletedProcess[str], source: str) -> str:
    lines = [ln.replace(os.path.dirname(source) + "/", "") for ln in proc.stderr.splitlines() if "error" in ln]
    return "; ".join(lines[:4]) or "exit status %d" % proc.returncode


def remarks(job: CompileJob, source: str, function: str, flags: Sequence[str], d: str) -> str:
    """clang's optimization remarks (missed and analysis) on the function's lines, file-relative, deduplicated."""
    proc = _compile(job, source, [*flags, *REMARK_FLAGS], d, os.path.join(d, "remarks.o"))
    if proc.returncode != 0:
        raise ToolFailed("does not compile: %s" % _errors(proc, source))
    span = _lines_of(job, source, function)
    out: list[str] = []
    for ln in proc.stderr.splitlines():
        m = re.match(r"^(.*?):(\d+):(\d+): remark: (.*)$", ln)
        if not m or os.path.basename(m.group(1)) != os.path.basename(source):
            continue  # a remark about a header's inline function, not this file's
        if span and not span[0] <= int(m.group(2)) <= span[1]:
            continue
        text = "line %s: %s" % (m.group(2), m.group(4))
        if text not in out:
            out.append(text)
    return "\n".join(out) or "no missed-optimization remarks for %s with these flags" % function


def _lines_of(job: CompileJob, source: str, function: str) -> tuple[int, int] | None:
    """The function's first and last line in `source` (None when it cannot be found)."""
    with open(source, encoding="utf-8", errors="replace") as f:
        text = f.read()
    m = re.search(r"\b%s\s*\([^;{]*\)\s*\{" % re.escape(function), text)
    if not m:
        return None
    depth, pos = 0, m.end() - 1
    for pos in range(m.end() - 1, len(text)):
        if text[pos] == "{":
            depth += 1
        elif text[pos] == "}":
            depth -= 1
            if depth == 0:
                break
    return text.count("\n", 0, m.start()) + 1, text.count("\n", 0, pos) + 1


def show(job: CompileJob, source: str, function: str, flags: Sequence[str], d: str, ir: bool) -> str:
    """The function's assembly (`.s`) or LLVM IR (`.ll`, debug records left out) as clang makes it."""
    out = os.path.join(d, "out.ll" if ir else "out.s")
    proc = _compile(job, source, [*flags, "-S", "-g0", *(["-emit-llvm"] if ir else [])], d, out)
    if proc.returncode != 0:
        raise ToolFailed("does not compile: %s" % _errors(proc, source))
    with open(out, encoding="utf-8", errors="replace") as f:
        text = f.read()
    found = ir_function(text, function) if ir else asm_function(text, function)
    if not found:
        raise ToolFailed("%s is not in the output (inlined everywhere, or not defined)" % function)
    return found


def ir_function(module: str, function: str) -> str:
    """The `define` of `function` in an IR module, without metadata attachments; "" when absent."""
    m = re.search(r"^define [^\n]*@%s\(" % re.escape(function), module, re.M)
    if not m:
        return ""
    end = module.find("\n}\n", m.start())
    body = module[m.start():end + 2 if end >= 0 else len(module)]
    return "\n".join(re.sub(r",?\s*!(dbg|tbaa|llvm\.loop|prof) ![0-9]+", "", ln) for ln in body.splitlines()) + "\n"


def asm_function(text: str, function: str) -> str:
    """`function`'s lines in an assembly file, from its label to `.size` (or the next function); "" when absent."""
    lines = text.splitlines()
    at = next((i for i, ln in enumerate(lines) if ln.startswith(function + ":")), None)
    if at is None:
        return ""
    out: list[str] = []
    for ln in lines[at:]:
        if re.match(r"^\s*\.size\s+%s\b" % re.escape(function), ln) or (out and re.match(r"^\S+:\s*$", ln)
                                                                           and ln.split(":")[0] != function
                                                                           and not ln.startswith(".L")):
            break
        if ln.strip().startswith((".loc", ".file", ".cfi_", "#")):
            continue
        out.append(ln)
    return "\n".join(out) + "\n"


def try_opt(job: CompileJob, function: str, pipeline: object, d: str) -> str:
    """The function's IR after `opt -passes=PIPELINE` over the TU's IR."""
    if not isinstance(pipeline, str) or not PIPELINE.fullmatch(pipeline):
        raise ToolFailed("pipeline must be one opt -passes= value, e.g. \"function(instcombine)\"")
    from coopt.toolchain import ToolchainError, find_toolchain

    ll = os.path.join(d, "in.ll")
    proc = _compile(job, job.source_path, ["-S", "-g0", "-emit-llvm"], d, ll)
    if proc.returncode != 0:
        raise ToolFailed("the file does not compile to IR: %s" % _errors(proc, job.source_path))
    try:
        opt = find_toolchain(job.compiler).tool("opt")
    except ToolchainError as exc:
        raise ToolFailed(str(exc)) from exc
    out = os.path.join(d, "out.ll")
    try:
        res = subprocess.run([opt, "-passes=" + pipeline, "-S", ll, "-o", out], capture_output=True, text=True,
                             timeout=TOOL_TIMEOUT_S, errors="replace")
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolFailed("opt did not run: %s" % exc) from exc
    if res.returncode != 0:
        first = next((ln for ln in res.stderr.splitlines() if ln.strip()), "exit %d" % res.returncode)
        raise ToolFailed("opt refused the pipeline: %s" % first.replace(d + "/", ""))
    with open(out, encoding="utf-8", errors="replace") as f:
        found = ir_function(f.read(), function)
    return found or "%s is gone after this pipeline (inlined or removed)" % function
