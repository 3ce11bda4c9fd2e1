"""The IR-level agent: ask a model for a faster version of one hot function's LLVM IR and splice it back.

1. The TU is compiled to LLVM IR with the job's own flags (`-S -emit-llvm`), so the IR is what the job's object
   is made from. The function's `define` is cut out of the module; `llvm-extract -func=NAME` says which types,
   globals and declarations it uses, and those go with it as context (dropped largest first to fit the model's
   window; a function that does not fit alone is refused with a note and left to the compiler tools). Debug
   records (`!dbg`, `llvm.dbg.*` calls) and comments are left out of what the model sees.
2. The answer's ```llvm block must define the function, under the same name with the same parameter and return
   types, and nothing else: another `define` or a global is refused; `declare` lines for what the module does not
   declare yet (intrinsics) are kept. The function goes back under the original's own head: linkage, parameter
   attributes, function attributes stay as they were; the answer's parameter names and body are used.
3. The spliced module must pass `llvm-as` (parse and IR verifier); then it is built the way the cache builds an
   IR variant (`clang <the job's code generation flags> -c x.ll`).
"""

from __future__ import annotations

import os
import re

from coopt.agents.compiler.tools import OPT_TOOL, ToolError, emit_ir, run_opt, valid_pipeline
from coopt.agents.levels import AgentContext, LevelAgent, LevelUnavailable
from coopt.agents.rewrite.context import ExtractError
from coopt.agents.rewrite.lowlevel import (
    AnswerError,
    LowAgent,
    LowOptions,
    Prepared,
    Region,
    make_level_agent,
    one_line,
    run_tool,
    tool_errors,
)
from coopt.agents.rewrite.prompts import (
    IR_BEFORE_INLINING,
    IR_CONTEXT,
    IR_FIX,
    IR_OPTIMIZED,
    IR_SYSTEM,
    IR_TOOLS,
    IR_USER,
)
from coopt.agents.rewrite.sampling import error_excerpt
from coopt.journal.job import CompileJob
from coopt.llm.types import Model, ToolCall
from coopt.toolchain import ToolchainError, find_toolchain

# The front end's IR in SSA form, small enough to show (no allocas), and nothing inlined or unrolled yet.
CLEANUP = "function(sroa,early-cse,instcombine,simplifycfg)"
# Words before the return type in a `define` head that are not part of the type.
HEAD_WORDS = frozenset((
    "private", "internal", "available_externally", "linkonce", "weak", "common", "appending", "extern_weak",
    "linkonce_odr", "weak_odr", "external", "default", "hidden", "protected", "dllimport", "dllexport",
    "dso_local", "dso_preemptable", "ccc", "fastcc", "coldcc", "tailcc", "swiftcc", "cc", "noundef", "zeroext",
    "signext", "inreg", "noalias", "nonnull", "local_unnamed_addr", "unnamed_addr",
))
_HEAD_ATTR = re.compile(r"\b(?:align \d+|dereferenceable(?:_or_null)?\(\d+\)|addrspace\(\d+\))")
_DBG = re.compile(r",? !dbg !\d+")
_DBG_CALL = re.compile(r"^\s*(?:tail )?call void @llvm\.dbg\.\w+\(.*$\n?", re.M)
_COMMENT = re.compile(r"[ \t]*;[^\n\"]*$", re.M)
_DEFINE = re.compile(r"^[ \t]*define\b[^\n]*?@(\"[^\"]+\"|[-\w.$]+)\s*\(", re.M)
_GLOBAL = re.compile(r"^[ \t]*@(\"[^\"]+\"|[-\w.$]+)\s*=", re.M)
_DECLARE = re.compile(r"^[ \t]*declare\b[^\n]*?@(\"[^\"]+\"|[-\w.$]+)\s*\(.*$", re.M)
_NAME = re.compile(r"\s+%(\"[^\"]*\"|[-\w.$]+)$")


def strip_debug(text: str) -> str:
    """`text` without debug records and comments: what the model is shown and what it is expected to answer."""
    text = _DBG_CALL.sub("", text)
    text = _DBG.sub("", text)
    return _COMMENT.sub("", text)


def _close(text: str, i: int) -> int:
    """The index just past the bracket that closes the one at `text[i]`; -1 when it is not closed."""
    pairs = {"(": ")", "[": "]", "{": "}", "<": ">"}
    stack = []
    for j in range(i, len(text)):
        c = text[j]
        if c in pairs:
            stack.append(pairs[c])
        elif stack and c == stack[-1]:
            stack.pop()
            if not stack:
                return j + 1
    return -1


def split_top(text: str) -> list[str]:
    """`text` split at the commas outside brackets."""
    parts, depth, cur = [], 0, ""
    for c in text:
        if c in "([{<":
            depth += 1
        elif c in ")]}>":
            depth -= 1
        if c == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += c
    if cur.strip():
        parts.append(cur.strip())
    return parts


def param_type(param: str) -> str:
    """The type at the start of a parameter (`i8*`, `%struct.s*`, `{ i32, i32 }`, `i32 (i8*)*`, `...`)."""
    s = param.strip()
    if s.startswith("..."):
        return "..."
    if s[:1] in "[{<":
        end = _close(s, 0)
        if end < 0:
            return s
        base = s[:end]
    else:
        m = re.match(r"%?(\"[^\"]*\"|[-\w.$]+)", s)
        if not m:
            return s
        base = m.group(0)
        end = m.end()
    rest = s[end:]
    while True:
        m = re.match(r"\s*(\*|addrspace\(\d+\)\s*\*)", rest)
        if m:
            base += m.group(1)
            rest = rest[m.end():]
            continue
        m = re.match(r"\s*\(", rest)
        if m:  # a function type, only as the pointee of a pointer
            close = _close(rest, m.end() - 1)
            after = rest[close:] if close > 0 else ""
            star = re.match(r"\s*\*", after)
            if close > 0 and star:
                base += rest[:close] + "*"
                rest = after[star.end():]
                continue
        break
    return " ".join(base.split())


def return_type(prefix: str) -> str:
    """The return type in the part of a `define` head between `define` and the function's name."""
    text = _HEAD_ATTR.sub(" ", prefix)
    words = [w for w in text.split() if w not in HEAD_WORDS and w != "define" and not re.fullmatch(r"cc\d+", w)]
    return "".join(words)


class Head:
    """A `define` line taken apart: the part before the name, the parameters, the part after them up to `{`."""

    def __init__(self, text: str, name: str) -> None:
        m = re.search(r"@%s\s*\(" % re.escape(name), text)
        if not m:
            raise AnswerError("not-defined", "the answer does not define @%s" % name)
        self.prefix = text[:m.start()]
        close = _close(text, m.end() - 1)
        if close < 0:
            raise AnswerError("does-not-parse", "the parameter list of @%s is not closed" % name)
        self.params = split_top(text[m.end():close - 1])
        brace = text.find("{", close)
        if brace < 0:
            raise AnswerError("does-not-parse", "@%s has no body" % name)
        self.suffix = text[close:brace]
        self.body = text[brace + 1:]

    def types(self) -> tuple[str, list[str]]:
        return return_type(self.prefix), [param_type(p) for p in self.params]


def function_span(module: str, name: str) -> tuple[int, int] | None:
    """Character offsets of `define ... @name(...) { ... }` in a module (the `}` line included)."""
    for m in _DEFINE.finditer(module):
        if m.group(1).strip('"') != name:
            continue
        start = module.rfind("\n", 0, m.start()) + 1
        end = re.compile(r"^}[ \t]*$", re.M).search(module, m.end())
        if end is None:
            return None
        return start, end.end()
    return None


def out_of_line(module: str, name: str) -> str:
    """`module` with `noinline` on @name's define, so that the optimizer keeps it a function of its own (the
    assembly level's view of a function the build inlines everywhere). ExtractError when @name is not defined
    or must be inlined (`alwaysinline`)."""
    span = function_span(module, name)
    m = re.compile(r"@%s\s*\(" % re.escape(name)).search(module, span[0]) if span else None
    close = _close(module, m.end() - 1) if m else -1
    brace = module.find("{", close) if close > 0 else -1
    if span is None or close < 0 or brace < 0:
        raise ExtractError("%s is not defined in this TU (named differently, or defined in another)" % name)
    for group in re.findall(r"#(\d+)", module[close:brace]):
        attrs = re.search(r"^attributes #%s = \{([^}]*)\}" % group, module, re.M)
        if attrs and "alwaysinline" in attrs.group(1).split():
            raise ExtractError("%s is always_inline: it has no code of its own to rewrite" % name)
    return module[:close] + " noinline" + module[close:]


class IRAgent(LowAgent):
    """Faster LLVM IR for one function at a time (see the module's docstring)."""

    level = "ir"
    extension = ".ll"
    fences = ("llvm", "ll", "llvm-ir", "ir", "")
    user = IR_USER
    context_head = IR_CONTEXT
    fix = IR_FIX
    tools = (OPT_TOOL,)

    def region(self, job: CompileJob, function: str) -> Region:
        try:
            tc = find_toolchain(job.compiler)
            extract_tool = tc.tool("llvm-extract")
        except ToolchainError as exc:
            raise ExtractError(str(exc)) from exc
        tools = IR_TOOLS.format(major=tc.major) if self.options.offer_tools else ""
        how = IR_OPTIMIZED
        stem = os.path.splitext(os.path.basename(job.source))[0]
        path = os.path.join(self.workdir, stem + ".ll")
        try:
            emit_ir(job, path)
            with open(path, encoding="utf-8", errors="replace") as f:
                module = f.read()
            span = function_span(module, function)
            if span is None:
                # Inlined into every caller (a benchmark's hot static function): its IR before the optimizer ran.
                # The candidate module is built with the job's flags, so the optimizer inlines the rewrite again.
                how = IR_BEFORE_INLINING
                emit_ir(job, path + ".front", ["-Xclang", "-disable-llvm-passes"])
                run_opt(tc, path + ".front", CLEANUP, path)
                with open(path, encoding="utf-8", errors="replace") as f:
                    module = f.read()
                span = function_span(module, function)
        except (ToolError, ToolchainError, OSError) as exc:  # ToolchainError: no `opt` for the inlined case
            raise ExtractError("%s: the TU does not compile to IR: %s" % (function, exc)) from exc
        if span is None:
            raise ExtractError("%s is not defined in the TU's IR (named differently, or not in this TU)" % function)
        self.system = IR_SYSTEM.format(how=how.format(version=tc.version), major=tc.major, tools=tools)
        piece = os.path.join(self.workdir, "%s-%s-extract.ll" % (stem, function))
        error = run_tool([extract_tool, "-func=" + function, "-S", path, "-o", piece], self.workdir)
        context: list[str] = []
        if not error:
            with open(piece, encoding="utf-8", errors="replace") as f:
                context = _declarations(f.read(), function)
        text = module[span[0]:span[1]]
        return Region(function, path, module, span[0], span[1], strip_debug(text).strip() + "\n", context)

    def splice(self, region: Region, block: str) -> tuple[str, str]:
        name = region.name
        defines = [m.group(1).strip('"') for m in _DEFINE.finditer(block)]
        if name not in defines:
            raise AnswerError("not-defined", "the answer does not define @%s" % name)
        others = sorted({d for d in defines if d != name} | {m.group(1).strip('"') for m in _GLOBAL.finditer(block)})
        if others:
            raise AnswerError("defines-other-symbols", "the answer defines @%s besides @%s"
                              % (", @".join(others), name))
        span = function_span(block, name)
        if span is None:
            raise AnswerError("does-not-parse", "the define of @%s has no closing `}` line" % name)
        new = Head(strip_debug(block[span[0]:span[1]]), name)
        old = Head(strip_debug(region.module[region.start:region.end]), name)
        (new_ret, new_params), (old_ret, old_params) = new.types(), old.types()
        if new_ret != old_ret or new_params != old_params:
            raise AnswerError("changed-signature", "@%s(%s) -> %s is not the original @%s(%s) -> %s" % (
                name, ", ".join(new_params), new_ret, name, ", ".join(old_params), old_ret))
        # The original's attributes with the answer's names: an attribute the model adds (noalias, readnone)
        # is a promise about every caller that nothing here checks.
        params = []
        for orig, ans in zip(old.params, new.params, strict=True):
            m = _NAME.search(ans)
            params.append(_NAME.sub("", orig) + (" %" + m.group(1) if m else ""))
        function = "%s@%s(%s)%s{%s" % (old.prefix, name, ", ".join(params), old.suffix, new.body)
        function = function.strip() + "\n"
        declared = {m.group(1).strip('"') for m in _DECLARE.finditer(region.module)} | {
            m.group(1).strip('"') for m in _DEFINE.finditer(region.module)}
        extra = [m.group(0).strip() for m in _DECLARE.finditer(block) if m.group(1).strip('"') not in declared]
        tail = "".join("\n" + d + "\n" for d in extra)
        module = region.module[:region.start] + function + region.module[region.end:].rstrip("\n") + "\n" + tail
        return module, function

    def from_tool(self, prep: Prepared, call: ToolCall) -> tuple[str, str]:
        """run_opt: the TU's module through opt with the model's pipeline (the whole module: the verifier then
        compares every function, not only the hot one)."""
        pipeline = valid_pipeline(call.arguments.get("pipeline"))
        if not pipeline:
            raise AnswerError("bad-tool-call", "run_opt needs a pipeline such as \"default<O3>\", not %r"
                              % (call.arguments.get("pipeline"),))
        region = prep.region
        out = os.path.join(self.workdir, "%s-opt-%d.ll" % (region.name, len(os.listdir(self.workdir))))
        try:
            run_opt(find_toolchain(prep.job.compiler), region.module_path, pipeline, out)
        except (ToolError, ToolchainError, OSError) as exc:
            raise AnswerError("bad-tool-call", "opt -passes=%s failed: %s" % (pipeline, str(exc)[:300])) from exc
        with open(out, encoding="utf-8", errors="replace") as f:
            module = f.read()
        span = function_span(module, region.name)
        if span is None:
            raise AnswerError("not-defined", "after opt -passes=%s the module no longer defines @%s"
                              % (pipeline, region.name))
        return module, strip_debug(module[span[0]:span[1]]).strip() + "\n"

    def check(self, job: CompileJob, artifact: str) -> None:
        try:
            llvm_as = find_toolchain(job.compiler).tool("llvm-as")
        except ToolchainError as exc:
            raise AnswerError("does-not-parse", str(exc)) from exc
        errors = tool_errors([llvm_as, artifact, "-o", os.devnull], os.path.dirname(artifact))
        if errors:
            name = os.path.basename(artifact)
            raise AnswerError("does-not-parse", one_line(errors).replace(artifact, name),
                              error_excerpt(errors, artifact, name))


def _declarations(extracted: str, function: str) -> list[str]:
    """What llvm-extract kept next to the function: type definitions (one item), globals and declarations."""
    types, items = [], []
    for line in extracted.splitlines():
        s = _COMMENT.sub("", _DBG.sub("", line)).strip()
        if re.match(r"%[-\w.$\"]+ = type ", s):
            types.append(s)
        elif s.startswith("@") or (s.startswith("declare ") and "@llvm.dbg." not in s):
            items.append(s)
    return (["\n".join(types)] if types else []) + items


def make_agent(level: str, llm: str, ctx: AgentContext) -> LevelAgent:
    """The optimizer's factory for the `ir` level."""
    if level != "ir":
        raise LevelUnavailable("level %s has no agent here" % level)

    def build(model: Model, workdir: str, options: LowOptions) -> LowAgent:
        return IRAgent(model, workdir, options)

    return make_level_agent(level, llm, ctx, build)
