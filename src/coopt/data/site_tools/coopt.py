"""SCons tool: build an SCons project's C code through coopt-cc.

    env = Environment(CC="clang")
    env.Tool("coopt", toolpath=[COOPT_SITE_TOOLS])  # the directory `coopt scons-tool` prints

Apply it after the tools and variables that choose the compiler: CC becomes coopt-cc, and the compiler CC
named before (or COOPT_COMPILER, or clang) becomes the real compiler, given to coopt-cc as COOPT_COMPILER in
env['ENV'].

SCons runs commands in env['ENV'], not in the user's environment, so this tool also passes on what coopt-cc
needs there: the COOPT_* settings, HOME and XDG_CACHE_HOME (to find the cache), the user's PATH entries (after
SCons' own, so other tools resolve as before), and the locale variables, so that coopt-cc and the compiler
print their messages as they would in the user's shell (the locale is not part of the cache key).

This file is loaded by SCons' own Python, which need not have coopt installed: it imports nothing from coopt.
"""

from __future__ import annotations

import os
from typing import Any

WRAPPER = "coopt-cc"
DEFAULT_COMPILER = "clang"
# Variables passed from the user's environment when the SCons environment does not set them already.
PASSED_VARS = ("HOME", "XDG_CACHE_HOME", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES")
PASSED_PREFIX = "COOPT_"


def _is_wrapper(command: str) -> bool:
    words = command.split()
    return bool(words) and os.path.basename(words[0]) == WRAPPER


def _find_wrapper(env: Any) -> str:
    """coopt-cc's path: COOPT_CC, else the user's PATH, else SCons' PATH; "" when there is none."""
    explicit = env.get("COOPT_CC") or os.environ.get("COOPT_CC")
    if explicit:
        path = str(explicit)
        return path if os.path.isfile(path) and os.access(path, os.X_OK) else ""
    return str(env.WhereIs(WRAPPER, os.environ.get("PATH", "")) or env.WhereIs(WRAPPER) or "")


def _real_compiler(env: Any) -> str:
    """The compiler coopt-cc runs: COOPT_COMPILER, else the CC set before this tool, else clang."""
    configured = env.get("COOPT_COMPILER") or env["ENV"].get("COOPT_COMPILER") or os.environ.get("COOPT_COMPILER")
    if configured:
        return str(configured)
    previous = env.subst("$CC") if env.get("CC") else ""
    if previous and not _is_wrapper(previous):
        return previous
    return DEFAULT_COMPILER


def _merged_path(scons_path: str, user_path: str) -> str:
    parts = [p for p in scons_path.split(os.pathsep) if p]
    parts += [p for p in user_path.split(os.pathsep) if p and p not in parts]
    return os.pathsep.join(parts)


def generate(env: Any) -> None:
    """Make `env` compile C through coopt-cc. Stops the build with one line when coopt-cc is missing."""
    wrapper = _find_wrapper(env)
    if not wrapper:
        from SCons.Errors import UserError

        raise UserError(
            "coopt: coopt-cc not found (COOPT_CC, PATH); install coopt or set COOPT_CC to the coopt-cc to use"
        )
    real = _real_compiler(env)
    passed = env["ENV"]
    for name, value in os.environ.items():
        if (name.startswith(PASSED_PREFIX) or name in PASSED_VARS) and name not in passed:
            passed[name] = value
    passed["PATH"] = _merged_path(str(passed.get("PATH", "")), os.environ.get("PATH", ""))
    passed["COOPT_COMPILER"] = real
    env["COOPT_COMPILER"] = real
    env["CC"] = wrapper


def exists(env: Any) -> bool:
    """True when coopt-cc can be found."""
    return bool(_find_wrapper(env))
