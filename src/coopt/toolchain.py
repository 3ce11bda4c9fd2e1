"""Finding the LLVM tools that match the clang in use (opt, llc, llvm-profdata, llvm-objcopy, ...).

A profile written by one LLVM version is unreadable by another, and IR from clang 19 does not load in opt 14, so
tools are taken from the clang binary's own directory first (Debian: /usr/lib/llvm-N/bin), then as `NAME-N` on
PATH, and each is checked to report the same major version. The optimizer's compiler tools (`find_toolchain`)
and the verifier (`find`, which also needs llvm-objcopy and llvm-nm) share this one lookup.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

TOOLS = ("opt", "llc", "llvm-profdata", "llvm-objcopy", "llvm-nm", "llvm-ar", "llvm-dis", "llvm-link", "llvm-as",
         "llvm-extract", "llvm-objdump")
# How each tool reports its version, where `--version` alone is not it.
VERSION_ARGS = {"llvm-profdata": ["merge", "--version"]}


class ToolchainError(Exception):
    """A needed tool is missing or of another version; the message says which and how to install it."""


@dataclass(frozen=True)
class Toolchain:
    clang: str
    version: str
    major: int
    tools: dict[str, str]

    def __hash__(self) -> int:
        # The verifier caches per toolchain (functools.lru_cache); the tools dict is not hashable itself.
        return hash((self.clang, self.version, tuple(sorted(self.tools.items()))))

    @property
    def objcopy(self) -> str:
        """llvm-objcopy of this release (the verifier renames symbols apart with it)."""
        return self.tool("llvm-objcopy")

    @property
    def nm(self) -> str:
        """llvm-nm of this release (the verifier lists an object's symbols with it)."""
        return self.tool("llvm-nm")

    def tool(self, name: str) -> str:
        """Path of LLVM tool `name` matching this clang; ToolchainError when there is none."""
        path = self.tools.get(name)
        if not path:
            raise ToolchainError(
                "%s matching clang %s not found; install it with: apt-get install llvm-%d"
                % (name, self.version, self.major)
            )
        return path


_VERSION_RE = re.compile(r"version (\d+)\.(\d+)\.(\d+)")


def _tool_name(path: str) -> str:
    """`opt` for .../opt and for .../opt-14."""
    name = os.path.basename(path)
    head, _, tail = name.rpartition("-")
    return head if head and tail.isdigit() else name


def _version_of(path: str) -> str:
    args = VERSION_ARGS.get(_tool_name(path), ["--version"])
    try:
        out = subprocess.run([path, *args], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    m = _VERSION_RE.search(out)
    return ".".join(m.groups()) if m else ""


_cache: dict[str, Toolchain] = {}


def find_toolchain(clang: str = "clang") -> Toolchain:
    """The toolchain around `clang` (a name on PATH or a path). Cached per process."""
    path = shutil.which(clang) if "/" not in clang else clang
    if not path or not os.path.exists(path):
        raise ToolchainError("compiler %r not found; install clang (apt-get install clang)" % clang)
    real = os.path.realpath(path)
    if real in _cache:
        return _cache[real]
    version = _version_of(real)
    if not version:
        raise ToolchainError("%s does not report a clang version" % path)
    major = int(version.split(".")[0])
    tools: dict[str, str] = {}
    bindir = os.path.dirname(real)
    for name in TOOLS:
        for cand in (os.path.join(bindir, name), shutil.which("%s-%d" % (name, major)) or "", shutil.which(name) or ""):
            if cand and os.path.exists(cand) and _version_of(cand).split(".")[0] == str(major):
                tools[name] = cand
                break
    tc = Toolchain(clang=path, version=version, major=major, tools=tools)
    _cache[real] = tc
    return tc


def find(clang: str = "") -> Toolchain:
    """The verifier's toolchain: `clang` (default $COOPT_VERIFY_CC, else `clang` on PATH) with llvm-objcopy and
    llvm-nm of the same release. ToolchainError, saying what to install or set, when one is missing."""
    name = clang or os.environ.get("COOPT_VERIFY_CC", "") or "clang"
    if "/" not in name and not shutil.which(name):
        raise ToolchainError("compiler %r not found on PATH; install clang or set COOPT_VERIFY_CC" % name)
    tc = find_toolchain(name)
    for tool in ("llvm-objcopy", "llvm-nm"):
        tc.tool(tool)
    return tc
