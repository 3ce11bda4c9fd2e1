"""Why a compiler call went straight to the real compiler. Each name doubles as a statistics counter.

A plain class of string constants rather than an Enum: `enum` costs ~3 ms to import, on every compile.
"""

from __future__ import annotations


class Reason:
    LINK = "link"
    PREPROCESS_ONLY = "preprocess_only"
    ASSEMBLY_OUTPUT = "assembly_output"
    DEPENDENCY_ONLY = "dependency_only"
    SYNTAX_ONLY = "syntax_only"
    QUERY = "query"
    NO_INPUT = "no_input"
    MULTIPLE_SOURCES = "multiple_sources"
    MULTIPLE_SOURCES_NOT_C = "multiple_sources_not_c"
    MULTIPLE_SOURCES_DEPFILE = "multiple_sources_depfile"
    MULTIPLE_SOURCES_SAME_OBJECT = "multiple_sources_same_object"
    LINK_SOURCES_NOT_C = "link_sources_not_c"
    LINK_SOURCES_DEPFILE = "link_sources_depfile"
    CONFIGURE_PROBE = "configure_probe"
    STDIN_SOURCE = "stdin_source"
    OUTPUT_TO_STDOUT = "output_to_stdout"
    NOT_C = "not_c"
    ASSEMBLER_SOURCE = "assembler_source"
    PREPROCESSED_SOURCE = "preprocessed_source"
    PRECOMPILED_HEADER = "precompiled_header"
    UNKNOWN_LANGUAGE = "unknown_language"
    LINKER_INPUT = "linker_input_with_c"
    MISSING_ARGUMENT = "option_argument_missing"  # not "missing_...": stats reads miss* as cache misses
    BAD_RESPONSE_FILE = "bad_response_file"
    SAVE_TEMPS = "save_temps"
    PROFILE_GENERATE = "profile_generate"
    PROFILE_USE = "profile_use"
    COVERAGE = "coverage"
    SPLIT_DWARF = "split_dwarf"
    XCLANG = "xclang"
    XPREPROCESSOR = "xpreprocessor"
    BITCODE_OUTPUT = "bitcode_output"
    MULTIPLE_ARCH = "multiple_arch"
    RECORD_COMMAND_LINE = "record_command_line"
    PLUGIN = "plugin"
    UNHASHED_INPUT_FILE = "unhashed_input_file"
    TIME_TRACE = "time_trace"
    EXTRA_OUTPUT = "extra_output"
    ANALYZE = "analyze"
    DRY_RUN = "dry_run"
    MODULES = "modules"
    REMARKS = "optimization_remarks"
    VERBOSE = "verbose"
    WORKING_DIRECTORY = "working_directory"
    SOURCE_UNREADABLE = "source_unreadable"
    DISABLED = "disabled"
    INTERNAL_ERROR = "internal_error"


DESCRIPTIONS: dict[str, str] = {
    Reason.LINK: "a link (no -c); journaled so programs can be relinked",
    Reason.PREPROCESS_ONLY: "-E: preprocessing only",
    Reason.ASSEMBLY_OUTPUT: "-S: assembly output",
    Reason.DEPENDENCY_ONLY: "-M/-MM: dependency listing only",
    Reason.SYNTAX_ONLY: "-fsyntax-only: no object produced",
    Reason.QUERY: "a query (--version, -print-*, -dump*, --help)",
    Reason.NO_INPUT: "-c with no input file",
    Reason.MULTIPLE_SOURCES: "-o with more than one source (the compiler refuses it)",
    Reason.MULTIPLE_SOURCES_NOT_C: "several sources in one -c call, not all of them C (or -x given)",
    Reason.MULTIPLE_SOURCES_DEPFILE: "several sources in one -c call sharing one dependency file (-MF, -Wp,-MD,)",
    Reason.MULTIPLE_SOURCES_SAME_OBJECT: "several sources in one -c call whose objects have the same name",
    Reason.LINK_SOURCES_NOT_C: "compile and link in one call with sources not all C (or -x): journaled as a link",
    Reason.LINK_SOURCES_DEPFILE: "compile and link in one call asking for a dependency file: journaled as a link",
    Reason.CONFIGURE_PROBE: "a configure check (cc -o conftest conftest.c): journaled as a link, replayed in C",
    Reason.STDIN_SOURCE: "source read from stdin (-)",
    Reason.OUTPUT_TO_STDOUT: "-o -: object written to stdout",
    Reason.NOT_C: "not C (C++, Objective-C, CUDA, ...)",
    Reason.ASSEMBLER_SOURCE: "assembler source (.s/.S)",
    Reason.PREPROCESSED_SOURCE: "already preprocessed source (.i)",
    Reason.PRECOMPILED_HEADER: "a header compiled to a precompiled header",
    Reason.UNKNOWN_LANGUAGE: "-x with a language coopt does not know",
    Reason.LINKER_INPUT: "-c with linker inputs beside the source",
    Reason.MISSING_ARGUMENT: "an option that needs an argument came last",
    Reason.BAD_RESPONSE_FILE: "an @file that cannot be read",
    Reason.SAVE_TEMPS: "-save-temps writes intermediate files",
    Reason.PROFILE_GENERATE: "-fprofile-generate/-fprofile-instr-generate: instrumented build",
    Reason.PROFILE_USE: "-fprofile-use and friends: reads a profile coopt does not hash",
    Reason.COVERAGE: "--coverage/-fprofile-arcs/-ftest-coverage: writes .gcno files",
    Reason.SPLIT_DWARF: "-gsplit-dwarf writes a .dwo beside the object",
    Reason.XCLANG: "-Xclang passes options coopt cannot interpret",
    Reason.XPREPROCESSOR: "-Xpreprocessor passes options coopt cannot interpret",
    Reason.BITCODE_OUTPUT: "-flto/-emit-llvm: the output is not a native object",
    Reason.MULTIPLE_ARCH: "more than one -arch",
    Reason.RECORD_COMMAND_LINE: "the command line (output path included) is recorded in the object",
    Reason.PLUGIN: "a compiler plugin is loaded",
    Reason.UNHASHED_INPUT_FILE: "an option reads a file coopt does not hash (ignore lists, profile lists)",
    Reason.TIME_TRACE: "-ftime-trace writes a trace beside the object",
    Reason.EXTRA_OUTPUT: "-MJ, -fstack-usage and similar write a second output coopt would not reproduce",
    Reason.ANALYZE: "--analyze: static analysis, no object",
    Reason.DRY_RUN: "-###: prints commands, compiles nothing",
    Reason.MODULES: "-fmodules and module files: inputs coopt does not hash",
    Reason.REMARKS: "-R remarks come from code generation, which a hit would not print",
    Reason.VERBOSE: "-v prints the compiler's internal commands, which a hit would not reproduce",
    Reason.WORKING_DIRECTORY: "-working-directory resolves paths elsewhere than the call's directory",
    Reason.SOURCE_UNREADABLE: "the source file cannot be read (the real compiler reports it)",
    Reason.DISABLED: "COOPT_DISABLE is set",
    Reason.INTERNAL_ERROR: "coopt-cc failed internally and ran the real compiler",
}
