"""The compiler and LLVM tools the verifier uses, matched to the clang in use (never an assumed version)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache


class ToolError(Exception):
    """A tool the verifier needs is missing. The message says which one and what to install."""


@dataclass(frozen=True)
class Toolchain:
    """Absolute paths of clang and the LLVM binary tools of the same release."""

    clang: str
    objcopy: str
    nm: str
    major: str


def _major_version(clang: str) -> str:
    out = subprocess.run([clang, "--version"], capture_output=True, text=True, check=False).stdout
    for word in out.split():
        head = word.split(".")[0]
        if "." in word and head.isdigit():
            return head
    return ""


def _find_tool(clang: str, major: str, name: str) -> str:
    # The tool next to the real clang binary (/usr/lib/llvm-N/bin), then name-N on PATH, then a plain name whose
    # version matches.
    real_dir = os.path.dirname(os.path.realpath(clang))
    beside = os.path.join(real_dir, name)
    if os.access(beside, os.X_OK):
        return beside
    if major:
        versioned = shutil.which("%s-%s" % (name, major))
        if versioned:
            return versioned
    plain = shutil.which(name)
    if plain and (not major or _major_version_of_tool(plain) in ("", major)):
        return plain
    raise ToolError("%s for clang %s not found; install llvm-%s" % (name, major or "?", major or "N"))


def _major_version_of_tool(tool: str) -> str:
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False).stdout
    for word in out.split():
        head = word.split(".")[0]
        if word.count(".") >= 1 and head.isdigit():
            return head
    return ""


@lru_cache(maxsize=8)
def find(clang: str = "") -> Toolchain:
    """The toolchain for `clang` (default: $COOPT_VERIFY_CC, then `clang` on PATH)."""
    name = clang or os.environ.get("COOPT_VERIFY_CC", "") or "clang"
    path = shutil.which(name)
    if not path:
        raise ToolError("compiler %r not found on PATH; install clang or set COOPT_VERIFY_CC" % name)
    major = _major_version(path)
    return Toolchain(
        clang=path, objcopy=_find_tool(path, major, "llvm-objcopy"), nm=_find_tool(path, major, "llvm-nm"), major=major
    )
