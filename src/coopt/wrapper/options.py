"""The compiler option table: one sorted row per option, with flag bits, as ccache's compopt does.

A row names an option exactly or, with JOINED, as a prefix (`-I/usr/include`, `-fprofile-use=x`). TAKES_ARG means
the bare option consumes the next argument (`-I dir`, `-o out`). A row with a reason makes the whole call a
pass-through. NOT_IN_KEY marks options that do not change the object (outputs, dependency files, colours).
tests/test_options.py checks that the table is sorted, unique, and free of contradictory flags.
"""

from __future__ import annotations

from coopt.wrapper.reasons import Reason

TAKES_ARG = 1  # the bare form takes the next argument
JOINED = 2  # the name is a prefix; the value follows without a space (or after '=')
NOT_IN_KEY = 4  # does not affect the object
DEP = 8  # dependency-file generation: kept for the .d, left out of the key
OUTPUT = 16  # -o
LANGUAGE = 32  # -x
COMPILE_ONLY = 64  # -c
NATIVE = 128  # resolves against the build machine's CPU
DEBUG = 256  # turns on debug info (records the cwd)

# (name, flags, pass-through reason or None). Sorted by name; tests/test_options.py checks.
OPTIONS: tuple[tuple[str, int, str | None], ...] = (
    ("-###", 0, Reason.DRY_RUN),
    ("--analyze", 0, Reason.ANALYZE),
    ("--config", TAKES_ARG | JOINED, Reason.UNHASHED_INPUT_FILE),
    ("--coverage", 0, Reason.COVERAGE),
    ("--help", 0, Reason.QUERY),
    ("--param", TAKES_ARG, None),
    ("--save-temps", 0, Reason.SAVE_TEMPS),
    ("--serialize-diagnostics", TAKES_ARG, Reason.UNHASHED_INPUT_FILE),
    ("--sysroot", TAKES_ARG | JOINED, None),
    ("--target", JOINED, None),
    ("--version", 0, Reason.QUERY),
    ("-B", TAKES_ARG | JOINED, None),
    ("-D", TAKES_ARG | JOINED, None),
    ("-E", 0, Reason.PREPROCESS_ONLY),
    ("-F", TAKES_ARG | JOINED, None),
    ("-I", TAKES_ARG | JOINED, None),
    ("-L", TAKES_ARG | JOINED, None),
    ("-M", 0, Reason.DEPENDENCY_ONLY),
    ("-MD", DEP | NOT_IN_KEY, None),
    ("-MF", TAKES_ARG | JOINED | DEP | NOT_IN_KEY, None),
    ("-MG", DEP | NOT_IN_KEY, None),
    ("-MJ", TAKES_ARG | JOINED, Reason.EXTRA_OUTPUT),
    ("-MM", 0, Reason.DEPENDENCY_ONLY),
    ("-MMD", DEP | NOT_IN_KEY, None),
    ("-MP", DEP | NOT_IN_KEY, None),
    ("-MQ", TAKES_ARG | JOINED | DEP | NOT_IN_KEY, None),
    ("-MT", TAKES_ARG | JOINED | DEP | NOT_IN_KEY, None),
    ("-MV", DEP | NOT_IN_KEY, None),
    ("-Qunused-arguments", NOT_IN_KEY, None),
    ("-R", JOINED, Reason.REMARKS),
    ("-S", 0, Reason.ASSEMBLY_OUTPUT),
    ("-T", TAKES_ARG | JOINED, None),
    ("-U", TAKES_ARG | JOINED, None),
    ("-Wp,", JOINED, None),
    ("-Xassembler", TAKES_ARG, None),
    ("-Xclang", TAKES_ARG, Reason.XCLANG),
    ("-Xlinker", TAKES_ARG, None),
    ("-Xpreprocessor", TAKES_ARG, Reason.XPREPROCESSOR),
    ("-arch", TAKES_ARG, None),
    ("-c", COMPILE_ONLY | NOT_IN_KEY, None),
    ("-dumpmachine", 0, Reason.QUERY),
    ("-dumpversion", 0, Reason.QUERY),
    ("-emit-llvm", 0, Reason.BITCODE_OUTPUT),
    ("-fauto-profile", JOINED, Reason.PROFILE_USE),
    ("-fcolor-diagnostics", NOT_IN_KEY, None),
    ("-fcs-profile-generate", JOINED, Reason.PROFILE_GENERATE),
    ("-fdiagnostics-color", JOINED | NOT_IN_KEY, None),
    ("-fembed-bitcode", JOINED, Reason.BITCODE_OUTPUT),
    ("-flto", JOINED, Reason.BITCODE_OUTPUT),
    ("-fmodule-file", JOINED, Reason.MODULES),
    ("-fmodule-map-file=", JOINED, Reason.MODULES),
    ("-fmodules", JOINED, Reason.MODULES),
    ("-fno-color-diagnostics", NOT_IN_KEY, None),
    ("-fno-diagnostics-color", NOT_IN_KEY, None),
    ("-foptimization-record-file=", JOINED, Reason.EXTRA_OUTPUT),
    ("-fpass-plugin=", JOINED, Reason.PLUGIN),
    ("-fplugin=", JOINED, Reason.PLUGIN),
    ("-fprofile-arcs", 0, Reason.COVERAGE),
    ("-fprofile-generate", JOINED, Reason.PROFILE_GENERATE),
    ("-fprofile-instr-generate", JOINED, Reason.PROFILE_GENERATE),
    ("-fprofile-instr-use", JOINED, Reason.PROFILE_USE),
    ("-fprofile-list=", JOINED, Reason.UNHASHED_INPUT_FILE),
    ("-fprofile-remapping-file=", JOINED, Reason.UNHASHED_INPUT_FILE),
    ("-fprofile-sample-use", JOINED, Reason.PROFILE_USE),
    ("-fprofile-use", JOINED, Reason.PROFILE_USE),
    ("-frecord-command-line", 0, Reason.RECORD_COMMAND_LINE),
    ("-frecord-gcc-switches", 0, Reason.RECORD_COMMAND_LINE),
    ("-fsanitize-blacklist=", JOINED, Reason.UNHASHED_INPUT_FILE),
    ("-fsanitize-coverage-allowlist=", JOINED, Reason.UNHASHED_INPUT_FILE),
    ("-fsanitize-coverage-ignorelist=", JOINED, Reason.UNHASHED_INPUT_FILE),
    ("-fsanitize-ignorelist=", JOINED, Reason.UNHASHED_INPUT_FILE),
    ("-fsave-optimization-record", JOINED, Reason.EXTRA_OUTPUT),
    ("-fstack-usage", 0, Reason.EXTRA_OUTPUT),
    ("-fsyntax-only", 0, Reason.SYNTAX_ONLY),
    ("-ftest-coverage", 0, Reason.COVERAGE),
    ("-ftime-trace", JOINED, Reason.TIME_TRACE),
    ("-fxray-always-instrument=", JOINED, Reason.UNHASHED_INPUT_FILE),
    ("-fxray-attr-list=", JOINED, Reason.UNHASHED_INPUT_FILE),
    ("-fxray-never-instrument=", JOINED, Reason.UNHASHED_INPUT_FILE),
    ("-g", JOINED | DEBUG, None),
    ("-grecord-command-line", 0, Reason.RECORD_COMMAND_LINE),
    ("-grecord-gcc-switches", 0, Reason.RECORD_COMMAND_LINE),
    ("-gsplit-dwarf", JOINED, Reason.SPLIT_DWARF),
    ("-idirafter", TAKES_ARG | JOINED, None),
    ("-iframework", TAKES_ARG | JOINED, None),
    ("-imacros", TAKES_ARG | JOINED, None),
    ("-imultilib", TAKES_ARG, None),
    ("-include", TAKES_ARG | JOINED, None),
    ("-include-pch", TAKES_ARG, Reason.UNHASHED_INPUT_FILE),
    ("-iprefix", TAKES_ARG | JOINED, None),
    ("-iquote", TAKES_ARG | JOINED, None),
    ("-isysroot", TAKES_ARG | JOINED, None),
    ("-isystem", TAKES_ARG | JOINED, None),
    ("-isystem-after", TAKES_ARG, None),
    ("-ivfsoverlay", TAKES_ARG | JOINED, Reason.UNHASHED_INPUT_FILE),
    ("-iwithprefix", TAKES_ARG | JOINED, None),
    ("-iwithprefixbefore", TAKES_ARG | JOINED, None),
    ("-iwithsysroot", TAKES_ARG | JOINED, None),
    ("-l", TAKES_ARG | JOINED, None),
    ("-march=native", NATIVE, None),
    ("-mcpu=native", NATIVE, None),
    ("-mllvm", TAKES_ARG, None),
    ("-mtune=native", NATIVE, None),
    ("-o", TAKES_ARG | JOINED | OUTPUT | NOT_IN_KEY, None),
    ("-pipe", NOT_IN_KEY, None),
    ("-print-", JOINED, Reason.QUERY),
    ("-save-stats", JOINED, Reason.EXTRA_OUTPUT),
    ("-save-temps", JOINED, Reason.SAVE_TEMPS),
    ("-target", TAKES_ARG, None),
    ("-u", TAKES_ARG | JOINED, None),
    ("-v", 0, Reason.VERBOSE),
    ("-working-directory", TAKES_ARG | JOINED, Reason.WORKING_DIRECTORY),
    ("-x", TAKES_ARG | JOINED | LANGUAGE, None),
    ("-z", TAKES_ARG, None),
)

# Exact names, and joined prefixes longest first so `-fprofile-instr-use` wins over a shorter prefix.
EXACT: dict[str, tuple[str, int, str | None]] = {row[0]: row for row in OPTIONS}
PREFIXES: tuple[tuple[str, int, str | None], ...] = tuple(
    sorted((row for row in OPTIONS if row[1] & JOINED), key=lambda r: -len(r[0]))
)


def lookup(arg: str) -> tuple[tuple[str, int, str | None] | None, str | None]:
    """The row for `arg` and the joined value (None when `arg` is the bare option or unknown)."""
    row = EXACT.get(arg)
    if row is not None:
        return row, None
    for row in PREFIXES:
        name = row[0]
        if arg.startswith(name):
            value = arg[len(name) :]
            if value.startswith("=") and not name.endswith("="):
                value = value[1:]
            return row, value
    return None, None
