"""The assembly-level agent: ask a model for a faster version of one hot function's assembly and splice it back.

1. The TU is compiled to assembly with the job's own flags (`-S`). The function's region runs from its label
   (`NAME:`) to its `.size NAME` line; what stands before the label (.globl, .type, alignment) and the `.size`
   line stay the original's. The model sees the region without `.loc` lines, comments and the labels only the
   debug information refers to.
2. The answer's ```asm block must hold the function's label; what follows it, up to a `.size` line or the end,
   replaces the region. It may define only local labels (`.L...`, numeric): those are renamed apart so they
   cannot collide with the rest of the file. It may not define or export another symbol (`.globl`, `.set`, a
   label without `.L`) or switch sections. A `.L` label it uses must be its own or a data label of the file
   (a constant pool, a string); a jump to a label inside another function is refused. Labels of the original
   region that the rest of the file refers to (`.Lfunc_begin0`, `.Lfunc_end0`, the debug information's
   `.Ltmp` ranges) are put back when the answer lacks them: the start label at the start, the others at the
   end, so the debug line table of the rewritten function says less but the file assembles.
3. The spliced file is assembled the way the cache builds an assembly variant (`clang -c x.s` with the job's
   target flags); one that does not assemble is refused.
"""

from __future__ import annotations

import os
import re

from coopt.agents.compiler.tools import ToolError, emit_ir
from coopt.agents.levels import AgentContext, LevelAgent, LevelUnavailable
from coopt.agents.rewrite.context import ExtractError
from coopt.agents.rewrite.ir import out_of_line
from coopt.agents.rewrite.lowlevel import AnswerError, LowAgent, LowOptions, Region, make_level_agent, run_tool
from coopt.agents.rewrite.prompts import ASM_COMPILED, ASM_FIX, ASM_OUT_OF_LINE, ASM_SYSTEM, ASM_USER
from coopt.cache.publish import codegen_args
from coopt.journal.job import CompileJob
from coopt.llm.types import Model
from coopt.toolchain import ToolchainError, find_toolchain

_LABEL = re.compile(r"^\s*([.\w$]+):")
_LOCAL_REF = re.compile(r"(?<![\w.$])(\.L[\w.$]+)")
# Directives that define, export or place a symbol, or change the section: not inside one function's region.
FORBIDDEN = (".globl", ".global", ".weak", ".local", ".comm", ".lcomm", ".set", ".equ", ".equiv", ".section",
             ".data", ".bss", ".text", ".pushsection", ".popsection", ".previous", ".symver", ".type")
# Labels of code: a reference from the answer to one outside the region jumps into another function.
CODE_LABELS = (".LBB", ".Ltmp", ".Lfunc_", ".Lcfi", ".Lexception")


def comment_marker(module: str) -> str:
    """The assembler's comment character: '#' on x86 (AT&T syntax), '//' elsewhere (AArch64)."""
    return "#" if re.search(r"%(?:[re]?[sb]p|r\d+|[re]?[abcd]x|[re]ip)\b", module) else "//"


def strip_line(line: str, marker: str) -> str:
    """`line` without its comment and trailing blanks ('' for a comment or `.loc` line)."""
    at = line.find(marker)
    if at >= 0 and '"' not in line[:at]:
        line = line[:at]
    line = line.rstrip()
    return "" if line.strip().startswith((".loc", ".file")) else line


def labels_defined(lines: list[str]) -> list[str]:
    return [m.group(1) for m in (_LABEL.match(ln) for ln in lines) if m]


def references(lines: list[str]) -> set[str]:
    """The `.L` labels the lines use (a label's own definition does not count)."""
    out: set[str] = set()
    for ln in lines:
        m = _LABEL.match(ln)
        text = ln[m.end():] if m else ln
        out.update(_LOCAL_REF.findall(text))
    return out


class AsmAgent(LowAgent):
    """Faster assembly for one function at a time (see the module's docstring)."""

    level = "asm"
    extension = ".s"
    fences = ("asm", "s", "assembly", "gas", "x86asm", "nasm", "")
    user = ASM_USER
    fix = ASM_FIX
    build_failure = "does-not-assemble"

    def region(self, job: CompileJob, function: str) -> Region:
        try:
            tc = find_toolchain(job.compiler)
        except ToolchainError as exc:
            raise ExtractError(str(exc)) from exc
        stem = os.path.splitext(os.path.basename(job.source))[0]
        path = os.path.join(self.workdir, stem + ".s")
        cmd = [job.compiler, *job.key_args, "-S", job.source, "-o", path]
        error = run_tool(cmd, job.cwd, job.subprocess_env())
        if error:
            raise ExtractError("%s: the TU does not compile to assembly: %s" % (function, error))
        how = ASM_COMPILED
        module = _read(path)
        head, end = _span(module, function)
        if head is None:
            # Inlined into every caller: the TU's assembly with the function kept out of line, which the
            # candidate's rewrite then replaces (its callers call it).
            how = ASM_OUT_OF_LINE
            module = _out_of_line_assembly(job, function, path)
            head, end = _span(module, function)
        if head is None or end is None:
            raise ExtractError("%s is not defined in the TU's assembly (inlined everywhere, or named differently)"
                               % function)
        start = module.index("\n", head.end()) + 1
        stop = end.start()
        body = module[start:stop].splitlines()
        marker = comment_marker(module)
        self.system = ASM_SYSTEM.format(arch=_arch(module), how=how.format(version=tc.version))
        inside = references(body)
        shown = [function + ":"]
        for ln in body:
            m = _LABEL.match(ln)
            if m and m.group(1) not in inside:
                continue  # a label only the debug information refers to
            s = strip_line(ln, marker)
            if s.strip():
                shown.append(s)
        return Region(function, path, module, start, stop, "\n".join(shown) + "\n")

    def splice(self, region: Region, block: str) -> tuple[str, str]:
        name, module = region.name, region.module
        lines = block.splitlines()
        at = next((i for i, ln in enumerate(lines) if re.match(r"^\s*%s:" % re.escape(name), ln)), None)
        if at is None:
            raise AnswerError("not-defined", "the answer has no %s: label" % name)
        marker = comment_marker(module)
        before = [strip_line(ln, marker) for ln in lines[:at]]
        if labels_defined(before):
            raise AnswerError("defines-other-symbols", "the answer defines %s before %s"
                              % (", ".join(labels_defined(before)), name))
        body: list[str] = []
        for ln in lines[at + 1:]:
            if re.match(r"^\s*\.size\s+%s\b" % re.escape(name), ln):
                break
            s = strip_line(ln, marker)
            if s.strip():
                body.append(s)
        function = "\n".join([name + ":", *body]) + "\n"
        for ln in body:
            word = ln.split()[0] if ln.split() else ""
            if word in FORBIDDEN:
                raise AnswerError("defines-other-symbols", "the answer's `%s` would define, export or move code "
                                  "outside %s" % (ln.strip(), name))
        own = labels_defined(body)
        strangers = [lb for lb in own if not lb.startswith(".L") and not lb.isdigit()]
        if strangers:
            raise AnswerError("defines-other-symbols", "the answer defines %s besides %s"
                              % (", ".join(strangers), name))
        if len(set(own)) != len(own):
            raise AnswerError("bad-label", "the answer defines a label twice")
        original = module[region.start:region.end].splitlines()
        outside_text = module[:region.start] + module[region.end:]
        outside_lines = outside_text.splitlines()
        outside_defined = set(labels_defined(outside_lines))
        exported = [lb for lb in labels_defined(original) if lb in references(outside_lines)]
        for ref in sorted(references(body) - set(own)):
            if ref not in outside_defined:
                raise AnswerError("bad-label", "the answer uses %s, which nothing defines" % ref)
            if ref.startswith(CODE_LABELS) and ref not in exported:
                raise AnswerError("bad-label", "the answer uses %s, a label of code outside %s" % (ref, name))
        # Every label of the answer gets a name no other part of the file has; labels the rest of the file
        # refers to keep theirs.
        renames = {lb: ".Lcoopt_%s_%s" % (name, lb.lstrip(".")) for lb in own
                   if lb.startswith(".L") and lb not in exported}

        def rename(m: re.Match[str]) -> str:
            return renames.get(m.group(1), m.group(1))

        new = [_LOCAL_REF.sub(rename, ln) for ln in body]
        missing = [lb for lb in exported if lb not in own]
        first = [lb + ":" for lb in missing if lb.startswith(".Lfunc_begin")]
        last = [lb + ":" for lb in missing if not lb.startswith(".Lfunc_begin")]
        if not any(ln.strip() == ".cfi_startproc" for ln in new) and any(
                ln.strip() == ".cfi_startproc" for ln in original):
            first.append("\t.cfi_startproc")
            new.append("\t.cfi_endproc")
        # With -g clang closes the frame after `.size`, outside the region: the answer's own close goes.
        after = module[region.end:]
        nxt = after.find(".cfi_startproc")
        if ".cfi_endproc" in (after if nxt < 0 else after[:nxt]):
            new = [ln for ln in new if ln.strip() != ".cfi_endproc"]
        text = "\n".join(first + new + last) + "\n"
        return module[:region.start] + text + module[region.end:], function


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def _span(module: str, function: str) -> tuple[re.Match[str] | None, re.Match[str] | None]:
    """The function's label and its `.size` line in an assembly module (None where missing)."""
    head = re.compile(r"^%s:" % re.escape(function), re.M).search(module)
    size = re.compile(r"^\s*\.size\s+%s\s*," % re.escape(function), re.M)
    return head, size.search(module, head.end()) if head else None


def _out_of_line_assembly(job: CompileJob, function: str, path: str) -> str:
    """The TU's assembly with `function` marked noinline before the optimizer runs, written to `path`: the job's
    flags otherwise, so the rest of the TU is optimized as the build does it."""
    front = path + ".front.ll"
    try:
        emit_ir(job, front, ["-Xclang", "-disable-llvm-passes"])
        kept = path + ".noinline.ll"
        with open(kept, "w", encoding="utf-8") as f:
            f.write(out_of_line(_read(front), function))
    except (ToolError, OSError) as exc:
        raise ExtractError("%s: the TU does not compile to IR: %s" % (function, exc)) from exc
    error = run_tool([job.compiler, *codegen_args(job.key_args), "-S", kept, "-o", path], job.cwd,
                     job.subprocess_env())
    if error:
        raise ExtractError("%s: the TU with it kept out of line does not compile: %s" % (function, error))
    return _read(path)


def _arch(module: str) -> str:
    return "x86-64" if comment_marker(module) == "#" else "AArch64"


def make_agent(level: str, llm: str, ctx: AgentContext) -> LevelAgent:
    """The optimizer's factory for the `asm` level."""
    if level != "asm":
        raise LevelUnavailable("level %s has no agent here" % level)

    def build(model: Model, workdir: str, options: LowOptions) -> LowAgent:
        return AsmAgent(model, workdir, options)

    return make_level_agent(level, llm, ctx, build)
