"""The static screen (verify/screen.py) with real clang and LLVM tools: each kind of escape a hostile candidate may
try is refused with the symbol or instruction named, before any harness is built or any input runs; what the
original itself does stays allowed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SRC, require

sys.path.insert(0, str(SRC))

from coopt.toolchain import find  # noqa: E402
from coopt.verify import screen  # noqa: E402
from coopt.verify.evidence import Evidence  # noqa: E402
from coopt.verify.pipeline import VerifyOptions, verify  # noqa: E402
from coopt.verify.verdict import Code, Reason  # noqa: E402

ORIGINAL = Path(__file__).parent / "verify_corpus" / "originals" / "upper.c"
LOOP = """
    for (size_t i = 0; s[i]; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            k++;
    return k;
}
"""


def _candidate(headers: str, before: str, prologue: str) -> str:
    """count_upper as the original has it, with `prologue` run first: the escape hides in a correct function."""
    return "#include <stddef.h>\n%s\n%s\nsize_t count_upper(const char *s) {\n    size_t k = 0;\n%s%s" % (
        headers,
        before,
        prologue,
        LOOP,
    )


SYSCALL_ASM = (
    '    long r;\n    __asm__ volatile("syscall" : "=a"(r) : "a"(39L) : "rcx", "r11", "memory");\n    k += r < 0;\n'
)

# name -> (headers, file-scope code, prologue, reason, words the rejection must contain)
C_CASES = {
    "getenv": ("#include <stdlib.h>", "", '    if (getenv("HOME")) k = 0;\n', "forbidden-call", "calls getenv,"),
    "fopen": (
        "#include <stdio.h>",
        "",
        '    FILE *f = fopen("/etc/passwd", "r");\n    if (f) fclose(f);\n',
        "forbidden-call",
        "fopen",
    ),
    "socket": ("#include <sys/socket.h>", "", "    k += socket(2, 1, 0) < -1;\n", "forbidden-call", "calls socket,"),
    "fork": ("#include <unistd.h>", "", "    if (fork() == 0) _exit(0);\n", "forbidden-call", "fork"),
    "kill": (
        "#include <signal.h>\n#include <unistd.h>",
        "",
        "    kill(getppid(), SIGKILL);\n",
        "forbidden-call",
        "kill",
    ),
    "system": ("#include <stdlib.h>", "", '    k += system("true") != 0;\n', "forbidden-call", "calls system,"),
    "dlopen": (
        "#include <dlfcn.h>",
        "",
        '    k += dlopen("libc.so.6", RTLD_NOW) == NULL;\n',
        "forbidden-call",
        "dlopen",
    ),
    "syscall_function": (
        "#include <unistd.h>\n#include <sys/syscall.h>",
        "",
        "    k += syscall(SYS_getpid) < 0;\n",
        "forbidden-call",
        "calls syscall,",
    ),
    "asm_statement": ("", "", SYSCALL_ASM, "forbidden-instruction", "GCCAsmStmt"),
    "file_scope_asm": (
        "",
        '__asm__(".globl coopt_x\\ncoopt_x: syscall");',
        "",
        "forbidden-instruction",
        "FileScopeAsmDecl",
    ),
    "constructor": (
        "#include <stdlib.h>",
        "__attribute__((constructor)) static void early(void) { abort(); }",
        "",
        "forbidden-call",
        "constructor",
    ),
    "destructor": ("", "__attribute__((destructor)) static void late(void) { }", "", "forbidden-call", "destructor"),
    "interposed_malloc": (
        "",
        "void *malloc(size_t n) { (void)n; return 0; }",
        "",
        "forbidden-call",
        "defines malloc",
    ),
    "weak_definition": ("", "__attribute__((weak)) int coopt_hook(void) { return 1; }", "", "forbidden-call", "weak"),
}


def _refused_before_running(ev: Evidence, reason: str, words: str) -> None:
    v = ev.verdict
    assert v.code is Code.REJECTED and v.reason is Reason(reason), v.line()
    assert words in v.detail, v.line()
    assert not ev.inputs and not any(k.startswith("build_") for k in ev.timings), ev.timings  # no harness built
    assert [c.name for c in ev.checks if not c.ok] == ["screen"], ev.checks


@pytest.mark.parametrize("name", sorted(C_CASES))
def test_c_candidate_refused_by_the_screen(name: str, tmp_path: Path) -> None:
    require("clang", "llvm-objcopy", "llvm-nm", "llvm-objdump")
    headers, before, prologue, reason, words = C_CASES[name]
    cand = tmp_path / ("%s.c" % name)
    cand.write_text(_candidate(headers, before, prologue))
    ev = verify(str(ORIGINAL), str(cand), options=VerifyOptions(max_inputs=20), workdir=str(tmp_path / "w"))
    _refused_before_running(ev, reason, words)


def test_inline_asm_syscall_in_ir_and_assembly(tmp_path: Path) -> None:
    """The same syscall as an IR candidate (an `asm sideeffect` call) and an assembly candidate (the instruction
    in the .s), both made by clang from C, are refused at their own level."""
    require("clang", "llvm-objcopy", "llvm-nm", "llvm-objdump")
    src = tmp_path / "asm.c"
    src.write_text(_candidate("", "", SYSCALL_ASM))
    for ext, flag, words in (
        (".ll", "-emit-llvm", "(IR: 1, the original 0)"),
        (".s", "", "(assembly: 1, the original 0)"),
    ):
        out = tmp_path / ("asm" + ext)
        subprocess.run(["clang", "-O2", "-S", *([flag] if flag else []), str(src), "-o", str(out)], check=True)
        ev = verify(str(ORIGINAL), str(out), options=VerifyOptions(max_inputs=20), workdir=str(tmp_path / ext[1:]))
        _refused_before_running(ev, "forbidden-instruction", words)
        assert ("inline assembly" if ext == ".ll" else "syscall instruction") in ev.verdict.detail


def test_module_asm_and_int80_in_assembly(tmp_path: Path) -> None:
    """`module asm` in an IR candidate, and `int $0x80` written into an assembly candidate by hand."""
    require("clang", "llvm-objcopy", "llvm-nm", "llvm-objdump")
    ll = tmp_path / "plain.ll"
    subprocess.run(["clang", "-O2", "-S", "-emit-llvm", str(ORIGINAL), "-o", str(ll)], check=True)
    text = ll.read_text()
    mod = tmp_path / "module.ll"
    lines = text.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith("target triple"))
    mod.write_text("\n".join(lines[: at + 1] + ['module asm "coopt_gate: syscall"'] + lines[at + 1 :]) + "\n")
    ev = verify(str(ORIGINAL), str(mod), options=VerifyOptions(max_inputs=20), workdir=str(tmp_path / "m"))
    _refused_before_running(ev, "forbidden-instruction", "module asm")
    s = tmp_path / "plain.s"
    subprocess.run(["clang", "-O2", "-S", str(ORIGINAL), "-o", str(s)], check=True)
    lines = s.read_text().splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith("count_upper:"))
    lines.insert(at + 1, "\tint\t$0x80")
    gate = tmp_path / "gate.s"
    gate.write_text("\n".join(lines) + "\n")
    ev = verify(str(ORIGINAL), str(gate), options=VerifyOptions(max_inputs=20), workdir=str(tmp_path / "g"))
    _refused_before_running(ev, "forbidden-instruction", "int $0x80")


def test_what_the_original_does_stays_allowed(tmp_path: Path) -> None:
    """The rule is relative: an original that reads the environment may have a candidate that does too, and a
    candidate may add allowlisted calls (strlen, malloc) the original lacks."""
    require("clang", "llvm-objcopy", "llvm-nm", "llvm-objdump")
    orig = tmp_path / "orig.c"
    orig.write_text(_candidate("#include <stdlib.h>", "", '    if (getenv("COOPT_NOPE")) k = 7;\n'))
    cand = tmp_path / "cand.c"
    cand.write_text(
        _candidate(
            "#include <stdlib.h>\n#include <string.h>",
            "",
            '    if (getenv("COOPT_NOPE")) k = 7;\n    char *t = malloc(strlen(s) + 1);\n    free(t);\n',
        )
    )
    ev = verify(
        str(orig), str(cand), options=VerifyOptions(max_inputs=30, sanitizers=False), workdir=str(tmp_path / "w")
    )
    assert ev.verdict.code is Code.ACCEPTED, ev.verdict.line()
    assert [c.ok for c in ev.checks if c.name == "screen"] == [True]


def test_allowlist_and_text_scanners() -> None:
    """The allowlist names pure functions and compiler helpers, not the escapes; the scanners read each level."""
    for name in ("memcpy", "strlen", "sqrtf", "malloc", "free", "__stack_chk_fail", "__udivti3", "__popcountdi2"):
        assert screen.allowed(name), name
    for name in ("getenv", "fopen", "socket", "fork", "kill", "system", "dlopen", "syscall", "mmap", "write"):
        assert not screen.allowed(name), name
    asm = 'f:\n\tmovl $39, %eax\n\tsyscall # gate\n\tint $0x80\n\tsvc #0\n\t.section .init_array,"aw"\n'
    assert screen.asm_counts(asm) == {
        "assembly: syscall instruction": 1,
        "assembly: int $0x80 instruction": 1,
        "assembly: svc instruction": 1,
        "assembly: init_array section": 1,
    }
    ir = 'module asm "x"\n@llvm.global_ctors = appending global\n  %1 = call i64 asm sideeffect "syscall", "={ax}"()\n'
    assert screen.ir_counts(ir) == {"IR: module asm": 1, "IR: llvm.global_ctors": 1, "IR: inline asm": 1}


def test_libc_exports_are_known() -> None:
    require("clang", "llvm-nm")
    libc = screen.libc_exports(find())
    assert {"getenv", "malloc", "fopen"} <= libc
