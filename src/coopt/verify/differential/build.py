"""Building both sides of a candidate and the harness programs that drive them.

Each side (original .c; candidate .c, .ll or .s) compiles to an object with the original's flags. Its symbols
are then renamed apart with `llvm-objcopy`: every defined global symbol gets the side's prefix, and the local
symbols the harness must reach (static functions, static and function-local variables) are made global and
prefixed too. Undefined symbols keep their names, so each side links against libc and the rest of the program
exactly as the real link would. Each side gets a harness program of its own; only the libFuzzer target links
both. Two flavours are built: `plain` (the user's flags, what ships) and `sanitized` (the same
plus ASan and UBSan, every report fatal); `msan` adds MemorySanitizer where it can run, and `fuzz` is the
libFuzzer target of fuzz.py.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from coopt.toolchain import Toolchain

# Names the compiler or a sanitizer generates; never renamed apart into the harness's view.
GENERATED_PREFIXES = (
    ".",
    "asan.",
    "msan.",
    "sancov.",
    "__asan",
    "___asan",
    "__msan",
    "__odr_asan",
    "__unnamed_",
    "__ubsan",
    "__sancov",
    "__llvm",
)
WRITABLE_TYPES = "dDbB"
DATA_TYPES = "dDbBrRvV"
CODE_TYPES = "tTwW"

SANITIZER_FLAGS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer")
# One exit status for every sanitizer report: ASan and UBSan share one runtime and one `exitcode` flag, so the
# report text (not the status) tells them apart.
SANITIZER_EXIT = 86


@dataclass(frozen=True)
class Flavor:
    """A way to build and run the harness."""

    name: str
    cflags: tuple[str, ...] = ()  # both sides
    ldflags: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, hash=False)
    harness_cflags: tuple[str, ...] = ()  # the generated harness


PLAIN = Flavor("plain")
SANITIZED = Flavor(
    "sanitized",
    SANITIZER_FLAGS,
    SANITIZER_FLAGS,
    harness_cflags=SANITIZER_FLAGS,
    env={
        # No symbolizing in bulk runs (it costs ~0.1 s per report, and inputs outside the original's contract
        # report too); diffrun asks for it again when it explains a fault.
        "ASAN_OPTIONS": "exitcode=%d:detect_leaks=0:abort_on_error=0:hard_rss_limit_mb=4096:"
        "allocator_may_return_null=1:handle_segv=1:symbolize=0" % SANITIZER_EXIT,
        "UBSAN_OPTIONS": "exitcode=%d:print_stacktrace=0:halt_on_error=1:symbolize=0" % SANITIZER_EXIT,
    },
)
# MemorySanitizer: every object of the harness must be instrumented (uninstrumented code never marks what it
# writes as initialised), so it is built only when both sides are C and nothing else is linked in; libc is covered
# by the runtime's interceptors. Origins say where an uninitialised value was allocated.
MSAN_FLAGS = (
    "-fsanitize=memory",
    "-fsanitize-memory-track-origins",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
)
MSAN = Flavor(
    "msan",
    MSAN_FLAGS,
    MSAN_FLAGS,
    harness_cflags=MSAN_FLAGS,
    env={"MSAN_OPTIONS": "exitcode=%d:halt_on_error=1:symbolize=0" % SANITIZER_EXIT},
)
# The libFuzzer target (fuzz.py): coverage and comparison tracing on both sides, UBSan as traps (no runtime: the
# target's own signal handler tells whose fault it was). The harness is not instrumented: its decoding and
# comparing would flood the fuzzer's table of recent comparisons, which is how it learns the sides' constants.
FUZZ = Flavor(
    "fuzz",
    ("-fsanitize=fuzzer-no-link", "-fsanitize=undefined", "-fsanitize-trap=undefined"),
    ("-fsanitize=fuzzer", "-fsanitize=undefined", "-fsanitize-trap=undefined"),
    harness_cflags=("-DCZ_FUZZ",),
)


class BuildError(Exception):
    """A compile or link failed; `output` holds the compiler's diagnostics."""

    def __init__(self, what: str, output: str) -> None:
        super().__init__(what)
        self.what = what
        self.output = output


@dataclass(frozen=True)
class Symbol:
    name: str
    type: str  # llvm-nm letter
    size: int

    @property
    def local(self) -> bool:
        return self.type.islower()


def side_language(path: str) -> str:
    """'c', 'ir' or 'asm' by file name."""
    ext = os.path.splitext(path)[1].lower()
    return {".ll": "ir", ".bc": "ir", ".s": "asm", ".S": "asm"}.get(ext, "c") if ext != ".S" else "asm"


@lru_cache(maxsize=16)
def runtime_missing(tc: Toolchain, flavor: Flavor) -> str:
    """Why this toolchain cannot link a program with `flavor`'s runtime ('' when it can): links one program once."""
    with tempfile.TemporaryDirectory(prefix="coopt-probe-") as d:
        src, exe = os.path.join(d, "probe.c"), os.path.join(d, "probe")
        with open(src, "w", encoding="utf-8") as f:
            if "-fsanitize=fuzzer" in flavor.ldflags:  # libFuzzer brings its own main
                f.write("int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return n && *d; }\n")
            else:
                f.write("int main(int argc, char **argv) { return argc > 1 && argv[1][0] == 'x'; }\n")
        proc = subprocess.run([tc.clang, *flavor.ldflags, src, "-o", exe], capture_output=True, text=True, check=False)
    if proc.returncode == 0:
        return ""
    lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
    hint = next((ln for ln in lines if "libclang_rt" in ln or "cannot find" in ln), lines[0] if lines else "")
    pkg = "libclang-rt-%s-dev" % tc.major if tc.major else "clang's compiler-rt"
    return "%s cannot link a %s program (install %s): %s" % (os.path.basename(tc.clang), flavor.name, pkg, hint[:200])


def _run(argv: Sequence[str], what: str) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(what, proc.stderr.strip() or proc.stdout.strip())
    return proc.stderr


def compile_object(
    tc: Toolchain, source: str, obj: str, cflags: Sequence[str], flavor: Flavor, extra: Sequence[str] = ()
) -> str:
    """Compile one side to an object; returns the compiler's diagnostics (warnings)."""
    lang = side_language(source)
    flags = list(cflags) + list(flavor.cflags)
    if lang == "asm":
        flags = [f for f in flags if f.startswith(("-m", "-g"))]
    argv = [tc.clang, *flags, *extra, "-c", source, "-o", obj]
    if lang != "c":
        argv.insert(1, "-Wno-unused-command-line-argument")
    return _run(argv, "compile %s" % os.path.basename(source))


def symbols(tc: Toolchain, obj: str) -> dict[str, Symbol]:
    """Defined symbols of an object (the first definition of a duplicated local name wins)."""
    out = subprocess.run([tc.nm, "--defined-only", "-P", "-S", obj], capture_output=True, text=True, check=True)
    syms: dict[str, Symbol] = {}
    dup: set[str] = set()
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        name, typ = parts[0], parts[1]
        size = int(parts[3], 16) if len(parts) > 3 else 0
        if name in syms:
            dup.add(name)
            continue
        syms[name] = Symbol(name, typ, size)
    for name in dup:
        syms.pop(name, None)  # two locals of one name cannot both be made global
    return syms


def reachable(sym: Symbol) -> bool:
    """Whether the harness may reach this symbol by name (not compiler- or sanitizer-generated)."""
    return not sym.name.startswith(GENERATED_PREFIXES) and (sym.type in DATA_TYPES + CODE_TYPES)


def rename_apart(tc: Toolchain, obj: str, out: str, prefix: str) -> dict[str, Symbol]:
    """Copy `obj` to `out` with its defined symbols prefixed (locals the harness needs made global first)."""
    syms = symbols(tc, obj)
    argv = [tc.objcopy]
    for s in syms.values():
        if s.name.startswith("."):
            continue
        if s.local:
            if not reachable(s):
                continue
            argv.append("--globalize-symbol=%s" % s.name)
        argv.append("--redefine-sym=%s=%s%s" % (s.name, prefix, s.name))
    argv += [obj, out]
    _run(argv, "rename symbols of %s" % os.path.basename(obj))
    return syms


def program_rest(tc: Toolchain, link_with: Sequence[str], work: str) -> list[str]:
    """`link_with` (objects, archives and link options of the rest of the program) made fit for the harness's
    link: each object is copied with `main` made local, since the harness brings its own main."""
    out: list[str] = []
    for i, a in enumerate(link_with):
        if a.endswith(".o") and os.path.isfile(a):
            copy = os.path.join(work, "rest-%d-%s" % (i, os.path.basename(a)))
            if not os.path.exists(copy):
                _run([tc.objcopy, "--localize-symbol=main", a, copy], "copy %s" % os.path.basename(a))
            out.append(copy)
        else:
            out.append(a)
    return out


def back_references(tc: Toolchain, rest: Sequence[str], tu_symbols: Mapping[str, Symbol], prefix: str) -> list[str]:
    """Linker options that point the rest of the program's references to the TU's functions and globals at the
    side with `prefix` (the original: both sides then call back into the same code), since renaming the two
    sides apart leaves those names undefined."""
    files = [a for a in rest if not a.startswith("-") and os.path.isfile(a)]
    if not files:
        return []
    out = subprocess.run([tc.nm, "-P", "-A", *files], capture_output=True, text=True)
    undefined: set[str] = set()
    defined: set[str] = set()
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        name, typ = parts[1], parts[2]
        if typ in ("U", "w", "v"):
            undefined.add(name)
        elif typ.isupper():  # a local of another object resolves nothing
            defined.add(name)
    return [
        "-Wl,--defsym=%s=%s%s" % (name, prefix, name)
        for name, sym in sorted(tu_symbols.items())
        if name in undefined and name not in defined and name != "main" and not sym.local and reachable(sym)
    ]


def compile_harness(
    tc: Toolchain, source: str, obj: str, parse_flags: Sequence[str], include_dir: str, flavor: Flavor, c_dir: str
) -> None:
    """Compile a generated harness: the TU's directory for its own includes, `c_dir` for the harness runtime."""
    argv = [tc.clang, *parse_flags, "-iquote", include_dir, "-I", c_dir, "-w", "-O1", "-g", *flavor.harness_cflags]
    argv += ["-c", source]
    argv += ["-o", obj]
    _run(argv, "compile the harness")


def link(tc: Toolchain, objects: Sequence[str], exe: str, flavor: Flavor, ldflags: Sequence[str] = ()) -> None:
    _run([tc.clang, *flavor.ldflags, *objects, *ldflags, "-lm", "-o", exe], "link the harness")


def parse_flags(cflags: Sequence[str]) -> list[str]:
    """The flags that affect how the TU is read: includes, macros, language standard, target."""
    out: list[str] = []
    take_next = False
    for a in cflags:
        if take_next:
            out.append(a)
            take_next = False
        elif a in ("-I", "-D", "-U", "-include", "-isystem", "-iquote", "-idirafter", "-target"):
            out.append(a)
            take_next = True
        elif a.startswith(("-I", "-D", "-U", "-std=", "-isystem", "-iquote", "-m", "-f", "--target", "-include")) and (
            not a.startswith(("-fsanitize", "-fprofile", "-fcoverage"))
        ):
            out.append(a)
    return out
