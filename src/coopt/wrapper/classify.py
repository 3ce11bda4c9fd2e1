"""Classify a compiler command line: a cacheable compile, a link, or a pass-through with a named reason.

Only a single-source `-c` compile of C with a known output is a candidate. Everything else goes to the real
compiler untouched; links are additionally journaled so the optimizer can relink a program.
"""

from __future__ import annotations

import os

from coopt.wrapper import options as opt
from coopt.wrapper.reasons import Reason

C_EXTENSIONS = frozenset({".c"})
NOT_C_EXTENSIONS = frozenset(
    {".cc", ".cpp", ".cxx", ".c++", ".C", ".cp", ".CPP", ".ii", ".m", ".mi", ".mm", ".mii", ".M", ".cu",
     ".hip", ".cppm", ".ixx", ".hh", ".hpp", ".hxx", ".H"}
)
ASSEMBLER_EXTENSIONS = frozenset({".s", ".S", ".sx", ".asm"})
PREPROCESSED_EXTENSIONS = frozenset({".i"})
HEADER_EXTENSIONS = frozenset({".h"})

# -x LANGUAGE -> what coopt does with a source in that language.
X_LANGUAGES = {
    "c": "c",
    "c-header": Reason.PRECOMPILED_HEADER,
    "cpp-output": Reason.PREPROCESSED_SOURCE,
    "assembler": Reason.ASSEMBLER_SOURCE,
    "assembler-with-cpp": Reason.ASSEMBLER_SOURCE,
    "c++": Reason.NOT_C,
    "c++-header": Reason.NOT_C,
    "c++-cpp-output": Reason.NOT_C,
    "objective-c": Reason.NOT_C,
    "objective-c++": Reason.NOT_C,
    "objective-c-header": Reason.NOT_C,
    "cuda": Reason.NOT_C,
    "hip": Reason.NOT_C,
    "cl": Reason.NOT_C,
    "ir": Reason.NOT_C,
}


class Classified:
    """The outcome: kind is "compile", "link" or "pass" (`reason` says why), "multi" (several C sources in one
    `-c` call: wrapper/multi.py) or "compile_link" (C sources compiled and linked in one call:
    wrapper/compile_link.py); `sources` lists a "multi" or "compile_link" call's sources in order."""

    __slots__ = ("kind", "reason", "source", "output", "key_args", "dep_args", "debug", "native", "inputs",
                 "sources")

    def __init__(self, kind: str, reason: str = "") -> None:
        self.kind = kind
        self.reason = reason
        self.source = ""
        self.output = ""
        self.key_args: list[str] = []
        self.dep_args: list[str] = []
        self.debug = False
        self.native = False
        self.inputs: list[str] = []
        self.sources: list[str] = []


def passthrough(reason: str) -> Classified:
    return Classified("pass", reason)


class ResponseFileError(Exception):
    pass


def _split_response(text: str) -> list[str]:
    """GCC-style response-file splitting: whitespace separates, quotes group, backslash escapes."""
    out: list[str] = []
    cur: list[str] = []
    in_word = False
    quote = ""
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            cur.append(text[i + 1])
            in_word = True
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
            else:
                cur.append(ch)
        elif ch in "\"'":
            quote = ch
            in_word = True
        elif ch.isspace():
            if in_word and cur:  # as LLVM's GNU tokenizer: an empty quoted word ("") is no argument
                out.append("".join(cur))
            cur = []
            in_word = False
        else:
            cur.append(ch)
            in_word = True
        i += 1
    if in_word and cur:
        out.append("".join(cur))
    return out


def expand_response_files(args: list[str], cwd: str, depth: int = 0, including_dir: str = "") -> list[str]:
    """Replace each `@file` by the arguments it holds, recursively.

    Raises ResponseFileError when a file cannot be read or could mean two files.
    """
    if not any(a.startswith("@") for a in args):
        return args
    if depth > 16:
        raise ResponseFileError("response files nest too deeply")
    out: list[str] = []
    for a in args:
        if a.startswith("@") and len(a) > 1:
            name = a[1:]
            path = name if os.path.isabs(name) else os.path.join(cwd, name)
            if including_dir and not os.path.isabs(name):
                # Clang versions differ on whether a nested relative @file is found from the working directory
                # or from the including file; when both exist, coopt cannot know which one the compiler reads.
                beside = os.path.join(including_dir, name)
                if os.path.realpath(beside) != os.path.realpath(path) and os.path.exists(beside):
                    raise ResponseFileError(f"nested @{name} is ambiguous (from {cwd} or from {including_dir})")
            try:
                with open(path, encoding="utf-8", errors="surrogateescape") as f:
                    text = f.read()
            except OSError as exc:
                raise ResponseFileError(str(exc)) from exc
            out.extend(expand_response_files(_split_response(text), cwd, depth + 1, os.path.dirname(path)))
        else:
            out.append(a)
    return out


def _language_of(path: str, forced: str) -> str:
    """"c" or a pass-through reason for a source file, given the `-x` in force ("" for none)."""
    if forced:
        return X_LANGUAGES.get(forced, Reason.UNKNOWN_LANGUAGE)
    ext = os.path.splitext(path)[1]
    if ext in C_EXTENSIONS:
        return "c"
    if ext in NOT_C_EXTENSIONS:
        return Reason.NOT_C
    if ext in ASSEMBLER_EXTENSIONS:
        return Reason.ASSEMBLER_SOURCE
    if ext in PREPROCESSED_EXTENSIONS:
        return Reason.PREPROCESSED_SOURCE
    if ext in HEADER_EXTENSIONS:
        return Reason.PRECOMPILED_HEADER
    return ""  # not a source: a linker input


def _wp_dep(value: str) -> bool:
    """True for exactly `-Wp,-MD,path` or `-Wp,-MMD,path`, the forms the Linux kernel and autotools use.

    Only those two words: `-Wp,-MD,x.d,-DX=1` also hands `-DX=1` to the preprocessor, changing the object.
    """
    return value.startswith(("-MD,", "-MMD,")) and value.count(",") == 1


def classify(args: list[str]) -> Classified:
    """Classify an expanded argument list (without the compiler itself)."""
    compile_only = False
    output = ""
    have_output = False
    forced_lang = ""
    lang_after_source = False
    sources: list[tuple[str, str]] = []
    linker_inputs: list[str] = []
    key_args: list[str] = []
    dep_args: list[str] = []
    debug = False
    native = False
    arch_count = 0

    i = 0
    n = len(args)
    while i < n:
        arg = args[i]
        i += 1
        if arg == "-":
            return passthrough(Reason.STDIN_SOURCE)
        if not arg.startswith("-"):
            lang = _language_of(arg, forced_lang)
            if lang:
                sources.append((arg, lang))
            else:
                linker_inputs.append(arg)
            continue

        row, value = opt.lookup(arg)
        if row is None:
            key_args.append(arg)  # unknown options are kept in the key and assumed to take no argument
            continue
        name, flags, reason = row
        consumed: list[str] = [arg]
        if value is None and flags & opt.TAKES_ARG:
            if i >= n:
                return passthrough(Reason.MISSING_ARGUMENT)
            value = args[i]
            consumed.append(value)
            i += 1
        if reason is not None:
            return passthrough(reason)

        if flags & opt.COMPILE_ONLY:
            compile_only = True
        elif flags & opt.OUTPUT:
            output = value or ""
            have_output = True
        elif flags & opt.LANGUAGE:
            forced_lang = "" if value == "none" else (value or "")
            if sources:
                lang_after_source = True
            key_args.extend(consumed)
        elif flags & opt.DEP:
            dep_args.extend(consumed)
        elif name == "-Wp,":
            if value is not None and _wp_dep(value):
                dep_args.append(arg)
            elif value is not None and value.startswith("-M"):
                return passthrough(Reason.XPREPROCESSOR)
            else:
                key_args.append(arg)
        elif name == "-arch":
            arch_count += 1
            key_args.extend(consumed)
        elif name == "-l":
            linker_inputs.append("-l" + (value or ""))
            key_args.extend(consumed)
        elif flags & opt.NOT_IN_KEY:
            pass
        else:
            if flags & opt.NATIVE:
                native = True
            if flags & opt.DEBUG and arg != "-g0":
                debug = True
            key_args.extend(consumed)

    if arch_count > 1:
        return passthrough(Reason.MULTIPLE_ARCH)
    if not compile_only:
        if not sources and not linker_inputs:
            return passthrough(Reason.NO_INPUT)
        link = Classified("link", Reason.LINK)
        link.output = output if have_output else "a.out"
        link.inputs = [s for s, _ in sources] + linker_inputs
        if sources:  # compiled and linked in one call: each C source becomes a TU (wrapper/compile_link.py)
            from coopt.wrapper.several import refusal

            link.reason = refusal(sources, bool(forced_lang) or lang_after_source, dep_args, True) or Reason.LINK
            if link.reason == Reason.LINK:
                link.kind = "compile_link"
                link.sources = [s for s, _ in sources]
        return link
    if not sources:
        return passthrough(Reason.LINKER_INPUT if linker_inputs else Reason.NO_INPUT)
    if len(sources) > 1:
        if have_output:
            return passthrough(Reason.MULTIPLE_SOURCES)  # the compiler refuses -o with several outputs
        if linker_inputs:
            return passthrough(Reason.LINKER_INPUT)
        from coopt.wrapper.several import refusal

        refused = refusal(sources, bool(forced_lang) or lang_after_source, dep_args, False)
        if refused:
            return passthrough(refused)
        multi = Classified("multi")  # several sources in one -c call: one TU each (wrapper/multi.py)
        multi.sources = [s for s, _ in sources]
        return multi
    if linker_inputs:
        return passthrough(Reason.LINKER_INPUT)
    source, lang = sources[0]
    if lang != "c":
        return passthrough(lang)
    if lang_after_source:
        return passthrough(Reason.UNKNOWN_LANGUAGE)
    if have_output and output == "-":
        return passthrough(Reason.OUTPUT_TO_STDOUT)
    if not have_output or not output:
        output = os.path.splitext(os.path.basename(source))[0] + ".o"

    result = Classified("compile")
    result.source = source
    result.output = output
    result.key_args = key_args
    result.dep_args = dep_args
    result.debug = debug
    result.native = native
    return result
