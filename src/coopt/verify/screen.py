"""The static screen: before any candidate code runs, refuse what the candidate can reach and the original cannot.

A candidate is unreviewed code, possibly hostile (DESIGN.md, threat model). The sandbox contains what runs; this
screen keeps most of it from running at all, and names what it found. The rule is relative to the original TU:
the candidate may do what the original already does, plus a fixed allowlist of pure library functions.

- **Calls**: every undefined symbol of the candidate's object (llvm-nm of the clang in use) must be one the
  original's object references or defines, or be on `ALLOWED` (memory and string functions, ctype, math, the
  allocator, the compiler's own helpers and libcalls). `getenv`, `fopen`, `socket`, `fork`, `system`, `dlopen`,
  `syscall`, ... are refused by name unless the original calls them itself.
  The allocator is allowed: rewrites that hoist, merge or remove allocations are common and honest, a leak or a
  double free is the sanitizers' to find, and an unbounded allocation runs into the sandbox's memory limit.
- **Instructions and inline assembly**, at every level the candidate may come in: clang's AST for C (`asm`
  statements and file-scope `asm`), the LLVM IR (inline-asm calls, `module asm`), the assembly text for `.s`
  candidates (`syscall`, `sysenter`, `int $0x80`, `svc`, `ecall`), and the object's disassembly (llvm-objdump)
  for every candidate. Each count must not exceed the original's: an original with inline assembly may keep it.
- **Load-time code**: constructors and destructors (`__attribute__((constructor))`, `llvm.global_ctors`,
  `.init_array`/`.fini_array`/`.ctors`/`.dtors`/`.preinit_array` sections) run before any harness compares
  anything; the candidate may not add them.
- **Interposition**: a new global definition that is weak, or that names a symbol the original references, or a
  function libc exports, would redefine code outside the TU (`void *malloc(size_t n)` in the candidate, a weak
  `getenv`); refused.

Constructors and interposition are reported as forbidden calls (they redirect control to code the original never
calls); instructions and inline assembly as forbidden instructions. The screen costs a few tool runs per side
(measured in docs/verify.md); the IR it reads is handed on to the input miners and the fuzzer's dictionary.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from coopt.toolchain import Toolchain, ToolchainError
from coopt.verify.differential import build
from coopt.verify.fuzz import side_ir
from coopt.verify.verdict import Reason

# Pure functions a candidate may call although the original does not: they read and write only memory they are
# given (or return a fresh allocation), touch no file, process, environment or network.
_MEMORY = "memcpy memmove memset memcmp memchr memrchr bcmp bzero mempcpy explicit_bzero"
_STRINGS = (
    "strlen strnlen strcmp strncmp strchr strrchr strchrnul strstr strspn strcspn strpbrk strcpy strncpy stpcpy "
    "stpncpy strcat strncat strcasecmp strncasecmp strtol strtoul strtoll strtoull strtod strtof strtold "
    "wcslen wmemcpy wmemset wmemcmp wmemchr wcscmp atoi atol atoll"
)
_CTYPE = (
    "isalnum isalpha isblank iscntrl isdigit isgraph islower isprint ispunct isspace isupper isxdigit tolower "
    "toupper __ctype_b_loc __ctype_tolower_loc __ctype_toupper_loc"
)
_MATH_BASE = (
    "sqrt cbrt fabs floor ceil trunc round nearbyint rint lrint llrint lround llround fmod remainder remquo fmin "
    "fmax fdim fma copysign nextafter exp exp2 expm1 log log2 log10 log1p pow hypot sin cos tan asin acos atan "
    "atan2 sinh cosh tanh asinh acosh atanh erf erfc tgamma lgamma frexp ldexp scalbn scalbln modf ilogb logb"
)
_MATH = " ".join("%s %sf %sl" % (f, f, f) for f in _MATH_BASE.split()) + " sincos sincosf __finite __isnan __isinf"
_ALLOC = "malloc calloc realloc free aligned_alloc posix_memalign reallocarray"
# Ending the process is no escape: the differential run sees the crash. abs/div are pure. Not errno
# (__errno_location): a candidate that sets it where the original never touches it changes what a caller sees,
# and the harness does not compare it; an original that uses errno lets its candidate keep doing so.
_OTHER = "abort __assert_fail abs labs llabs div ldiv lldiv qsort bsearch"
# What clang itself emits: stack protector, _FORTIFY_SOURCE checks, the GOT of position-independent code.
_COMPILER = (
    "__stack_chk_fail __stack_chk_guard __chk_fail __memcpy_chk __memmove_chk __memset_chk __strcpy_chk "
    "__strncpy_chk __strcat_chk __strncat_chk __stpcpy_chk _GLOBAL_OFFSET_TABLE_ __dso_handle"
)
ALLOWED: frozenset[str] = frozenset(" ".join((_MEMORY, _STRINGS, _CTYPE, _MATH, _ALLOC, _OTHER, _COMPILER)).split())
# compiler-rt's builtins, which clang lowers 128-bit arithmetic, popcount, float conversions, ... to.
_LIBCALL = re.compile(
    r"^__(u?divmod|u?div|u?mod|mulo?|popcount|clz|ctz|ffs|parity|bswap|ashl|ashr|lshr|neg|abs|u?cmp|floatun|"
    r"float|fixuns|fix|extend|trunc|add|sub|pow|unord|eq|ne|ge|gt|le|lt)[a-z]*[0-9]$"
)

# Mnemonics that enter the kernel, per architecture (`int $0x80` is x86's old gate).
SYSCALL_MNEMONICS = ("syscall", "sysenter", "svc", "ecall")
_ASM_INSN = re.compile(r"^\s*(?:[A-Za-z_.$][\w.$]*:\s*)*(syscall|sysenter|svc|ecall|int)\b\s*(\S*)", re.I)
_OBJDUMP_INSN = re.compile(r"^\s*[0-9a-f]+:\s+(\S+)\s*(\S*)")
_CTOR_SECTION = re.compile(r"^\.(init_array|fini_array|preinit_array|ctors|dtors)\b")
_ASM_SECTION = re.compile(r"^\s*\.section\s+\"?(\.(?:init_array|fini_array|preinit_array|ctors|dtors)[\w.]*)")
_IR_ASM = re.compile(r"\basm (?:sideeffect |alignstack |inteldialect |unwind )*\"")
_AST_NODES = ("GCCAsmStmt", "MSAsmStmt", "FileScopeAsmDecl", "ConstructorAttr", "DestructorAttr")


@dataclass(frozen=True)
class Finding:
    """One thing the candidate has and the original lacks, in words."""

    reason: Reason
    detail: str


@dataclass
class SideFacts:
    """What the screen read from one side. `ir` is kept for the input miners and the fuzz dictionary."""

    undefined: set[str] = field(default_factory=set)
    defined: dict[str, str] = field(default_factory=dict)  # global definitions: name -> llvm-nm type letter
    counts: Counter[str] = field(default_factory=Counter)  # "level: thing" -> occurrences
    ir: str = ""


def _tool(tc: Toolchain, name: str) -> str:
    try:
        return tc.tool(name)
    except ToolchainError:
        return ""


def _out(argv: Sequence[str]) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, errors="replace", check=False)
    return proc.stdout if proc.returncode == 0 else ""


def undefined_symbols(tc: Toolchain, obj: str) -> set[str]:
    """Names an object references and does not define (weak references too)."""
    out = subprocess.run([tc.nm, "--undefined-only", "-P", obj], capture_output=True, text=True, check=True)
    return {ln.split()[0] for ln in out.stdout.splitlines() if ln.split()}


def allowed(name: str) -> bool:
    """Whether any candidate may call `name`: a pure library function or one of the compiler's helpers."""
    return name in ALLOWED or bool(_LIBCALL.match(name))


def ast_counts(tc: Toolchain, source: str, cflags: Sequence[str]) -> Counter[str]:
    """Inline assembly and constructor attributes in clang's AST of a C side (headers included: both sides
    include the same ones, so only what the candidate adds shows in the comparison)."""
    text = _out(
        [
            tc.clang,
            *build.parse_flags(cflags),
            "-w",
            "-fsyntax-only",
            "-Xclang",
            "-ast-dump",
            "-fno-color-diagnostics",
            source,
        ]
    )
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        for node in _AST_NODES:
            if node in line:
                counts["C source: %s" % node] += 1
    return counts


def ir_counts(ir: str) -> Counter[str]:
    """Inline-asm calls, `module asm` and constructor/destructor tables in LLVM IR."""
    counts: Counter[str] = Counter()
    for line in ir.splitlines():
        if line.startswith("module asm "):
            counts["IR: module asm"] += 1
        elif line.startswith(("@llvm.global_ctors", "@llvm.global_dtors")):
            counts["IR: %s" % line.split()[0][1:]] += 1
        elif _IR_ASM.search(line) and not line.lstrip().startswith(";"):
            counts["IR: inline asm"] += 1
    return counts


def _syscall_name(mnemonic: str, operand: str) -> str:
    m = mnemonic.lower()
    if m in SYSCALL_MNEMONICS:
        return m
    if m == "int" and operand.lower().lstrip("$") in ("0x80", "128"):
        return "int $0x80"
    return ""


def asm_counts(text: str) -> Counter[str]:
    """Kernel-entry instructions and constructor sections in assembly text (a `.s` candidate)."""
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        code = line.split("#", 1)[0].split("//", 1)[0]
        m = _ASM_INSN.match(code)
        if m:
            name = _syscall_name(m.group(1), m.group(2))
            if name:
                counts["assembly: %s instruction" % name] += 1
        m = _ASM_SECTION.match(code)
        if m:
            counts["assembly: %s section" % m.group(1).split(".")[1]] += 1
        if re.match(r"^\s*\.(init|fini)\b", code):
            counts["assembly: %s section" % code.split()[0][1:]] += 1
    return counts


def object_counts(tc: Toolchain, obj: str) -> Counter[str]:
    """Kernel-entry instructions in an object's disassembly and its constructor sections (llvm-objdump)."""
    counts: Counter[str] = Counter()
    objdump = _tool(tc, "llvm-objdump")
    if not objdump:
        return counts
    for line in _out([objdump, "-d", "--no-show-raw-insn", obj]).splitlines():
        m = _OBJDUMP_INSN.match(line)
        if m:
            name = _syscall_name(m.group(1), m.group(2))
            if name:
                counts["object: %s instruction" % name] += 1
    for line in _out([objdump, "-h", obj]).splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].isdigit() and _CTOR_SECTION.match(parts[1]) and int(parts[2], 16) > 0:
            counts["object: %s section" % parts[1]] += 1
    return counts


@functools.lru_cache(maxsize=4)
def libc_exports(tc: Toolchain) -> frozenset[str]:
    """Functions and data the C library exports (a new definition of one interposes on it)."""
    path = _out([tc.clang, "-print-file-name=libc.so.6"]).strip()
    if not path or not os.path.isabs(path) or not os.path.exists(path):
        return frozenset()
    out = _out([tc.nm, "-D", "--defined-only", "-P", path])
    return frozenset(ln.split()[0].split("@")[0] for ln in out.splitlines() if ln.split())


def facts(tc: Toolchain, source: str, obj: str, cflags: Sequence[str], ir: str) -> SideFacts:
    """Everything the screen compares, for one side: `source` (C, IR or assembly), its plain object, its IR."""
    f = SideFacts(ir=ir)
    f.undefined = undefined_symbols(tc, obj)
    f.defined = {n: s.type for n, s in build.symbols(tc, obj).items() if not s.local}
    lang = build.side_language(source)
    if lang == "c":
        f.counts += ast_counts(tc, source, cflags)
    f.counts += ir_counts(ir)
    if lang == "asm":
        with open(source, encoding="utf-8", errors="replace") as fh:
            f.counts += asm_counts(fh.read())
    f.counts += object_counts(tc, obj)
    return f


def compare(tc: Toolchain, orig: SideFacts, cand: SideFacts, lang: str) -> list[Finding]:
    """Everything the candidate reaches that the original does not, most telling first; empty when clean."""
    out: list[Finding] = []
    for key in sorted(cand.counts, key=_level_order):
        have = cand.counts[key]
        ref = orig.counts.get(key, 0)
        if key.startswith("assembly: "):
            ref = max(ref, _object_equivalent(orig.counts, key))
        if have <= ref:
            continue
        what = key.split(": ", 1)[1]
        if (
            "section" in what
            or "ctors" in what
            or "dtors" in what
            or "ConstructorAttr" in what
            or ("DestructorAttr" in what)
        ):
            out.append(
                Finding(
                    Reason.FORBIDDEN_CALL,
                    "the candidate adds a constructor or destructor (%s: %d, the original %d): code the loader "
                    "runs before any comparison" % (key, have, ref),
                )
            )
        else:
            out.append(
                Finding(
                    Reason.FORBIDDEN_INSTRUCTION,
                    "the candidate has %s (%s: %d, the original %d)" % (_words(what), key.split(":")[0], have, ref),
                )
            )
    reach = orig.undefined | set(orig.defined)
    new = sorted(n for n in cand.undefined if n not in reach and not allowed(n))
    if new:
        out.append(
            Finding(
                Reason.FORBIDDEN_CALL,
                "the candidate calls %s, which the original TU never references and which %s not on the allowlist"
                % (", ".join(new), "is" if len(new) == 1 else "are"),
            )
        )
    added = {n: t for n, t in cand.defined.items() if n not in orig.defined}
    weak = sorted(n for n, t in added.items() if t in "wWvV")
    if weak:
        out.append(
            Finding(
                Reason.FORBIDDEN_CALL,
                "the candidate adds weak definitions of %s, which the original lacks" % ", ".join(weak),
            )
        )
    libc = libc_exports(tc) if added else frozenset()
    shadow = sorted(n for n in added if n not in weak and (n in orig.undefined or n in libc or n in ALLOWED))
    if shadow:
        out.append(
            Finding(
                Reason.FORBIDDEN_CALL,
                "the candidate defines %s, which would replace the library's or the program's own for the whole "
                "program" % ", ".join(shadow),
            )
        )
    return out


def _object_equivalent(counts: Counter[str], key: str) -> int:
    what = key.split(": ", 1)[1]
    return counts.get("object: " + what, 0) + counts.get("object: ." + what, 0)


_LEVELS = ("C source", "IR", "assembly", "object")


def _level_order(key: str) -> tuple[int, str]:
    head = key.split(":")[0]
    return (_LEVELS.index(head) if head in _LEVELS else len(_LEVELS), key)


def _words(what: str) -> str:
    return {
        "GCCAsmStmt": "an inline asm statement (GCCAsmStmt)",
        "MSAsmStmt": "an inline asm statement (MSAsmStmt)",
        "FileScopeAsmDecl": "file-scope asm (FileScopeAsmDecl)",
        "inline asm": "inline assembly (an asm call)",
        "module asm": "module-level assembly (module asm)",
    }.get(what, "a %s" % what if what.endswith("instruction") else what)


@dataclass
class Screened:
    """The screen's outcome: what it found (empty: clean), each side's IR ('' where none), and its cost."""

    findings: list[Finding]
    ir: dict[str, str]
    summary: str


def screen(
    tc: Toolchain, original: str, candidate: str, objects: dict[str, str], cflags: Sequence[str], work: str
) -> Screened:
    """Screen `candidate` against `original`; `objects` maps "o" and "c" to their plain objects."""
    sides: dict[str, SideFacts] = {}
    for side, src in (("o", original), ("c", candidate)):
        # Unoptimised: every literal stays in the comparison the source wrote (-O2 turns `c >= 'A' && c <= 'F'`
        # into `c - 65 < 6`), for the input miners; inline asm, module asm and constructors are there at any level.
        ir = side_ir(tc, src, [*cflags, "-O0"], os.path.join(work, "%s-screen.ll" % side))
        sides[side] = facts(tc, src, objects[side], cflags, ir)
    found = compare(tc, sides["o"], sides["c"], build.side_language(candidate))
    o = sides["o"]
    summary = "; ".join(f.detail for f in found) or (
        "calls only what the original reaches (%d symbols) or the allowlist; no new inline asm, system calls or "
        "constructors" % len(o.undefined)
    )
    if not _tool(tc, "llvm-objdump"):
        summary += " (objects not disassembled: no llvm-objdump matching clang %s)" % tc.version
    return Screened(found, {k: v.ir for k, v in sides.items()}, summary)
