"""The `coopt` command. Subcommands live in their own modules and are imported only when run."""

from __future__ import annotations

import sys

# name -> (module, one-line help). A lazy registry: `coopt --help` imports nothing else.
COMMANDS: dict[str, tuple[str, str]] = {
    "cache": ("coopt.cli.cache_cmd", "inspect and manage the variant cache (stats, ls, show, rm, clear, evict, put)"),
    "compdb": ("coopt.cli.compdb_cmd", "write compile_commands.json from the journal"),
    "journal": ("coopt.cli.journal_cmd", "show or clear the journal of compiles and links"),
    "profile": ("coopt.cli.profile_cmd", "profile a workload with perf: hot TUs and functions (also show, merge)"),
    "shims": ("coopt.cli.shims_cmd", "write compiler-named symlinks to coopt-cc into a directory"),
    "cmake-toolchain": ("coopt.cli.integration_cmd", "print the path of the CMake toolchain file"),
    "scons-tool": ("coopt.cli.integration_cmd", "print the SCons site_tools directory to add to toolpath"),
    "verify": ("coopt.cli.verify_cmd", "check a candidate TU behaves like the original (and is faster)"),
    "make-include": ("coopt.cli.integration_cmd", "print the path of coopt.mk, a Makefile include"),
    "optimize": ("coopt.cli.optimize_cmd", "spend a budget on the hot TUs; verified faster variants go to the cache"),
    "report": ("coopt.cli.report_cmd", "what an optimize run tried, kept and gained (md, json or html)"),
    "model": ("coopt.cli.model_cmd", "the local LLM: fetch a pinned, sha256-checked model; show what is here"),
    "config": ("coopt.cli.config_cmd", "show the effective configuration and where each value came from"),
    "doctor": ("coopt.cli.doctor_cmd", "check clang and LLVM tools, perf, the cache, the LLM and the config"),
    "nightly": ("coopt.cli.nightly_cmd", "build, profile, optimize, rebuild, test, report from coopt.toml hooks"),
}

USAGE = """usage: coopt COMMAND [ARGS...]

coopt makes C programs faster by serving verified variants of their hot translation units from a cache.
Build with CC=coopt-cc; see the README for the whole workflow.

commands:
%s

Run `coopt COMMAND --help` for a command's options. `coopt --version` prints coopt's version; `coopt-cc --version`
prints the real compiler's (coopt-cc stays transparent), `coopt-cc --coopt-version` coopt's."""


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    return USAGE % "\n".join("  %-*s  %s" % (width, name, help_) for name, (_, help_) in COMMANDS.items())


def main(argv: list[str] | None = None) -> int:
    """Entry point of `coopt`."""
    import importlib

    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if args[0] in ("-V", "--version"):
        from coopt import __version__

        print("coopt %s" % __version__)
        return 0
    name = args[0]
    if name not in COMMANDS:
        sys.stderr.write("coopt: error: unknown command %r; run `coopt --help` for the list\n" % name)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.run(name, args[1:]) or 0)
    except UsageError as exc:
        sys.stderr.write("coopt %s: error: %s\n" % (name, exc))
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("coopt: interrupted\n")
        return 130
