"""`coopt shims DIR`: compiler-named symlinks to coopt-cc, for builds that hard-code `cc` or `gcc`."""

from __future__ import annotations

import argparse
import os
import shutil

from coopt.cli import UsageError

DEFAULT_NAMES = ("cc", "c89", "c99", "gcc", "clang")


def run(_name: str, argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="coopt shims",
        description="Write symlinks named like compilers (cc, gcc, clang, ...) that point at coopt-cc. Put DIR "
        "first on PATH: each shim runs the next real compiler of its name on PATH through coopt-cc.",
    )
    p.add_argument("dir")
    p.add_argument("names", nargs="*", help="compiler names (default: %s)" % " ".join(DEFAULT_NAMES))
    a = p.parse_args(argv)
    target = shutil.which("coopt-cc")
    if not target:
        raise UsageError("coopt-cc is not on PATH; install coopt first")
    target = os.path.realpath(target)
    os.makedirs(a.dir, exist_ok=True)
    for name in a.names or DEFAULT_NAMES:
        if "/" in name or name == "coopt-cc":
            raise UsageError("bad shim name %r" % name)
        link = os.path.join(a.dir, name)
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(target, link)
    print("wrote %d shims in %s; use them with PATH=%s:$PATH" % (len(a.names or DEFAULT_NAMES), a.dir,
                                                                 os.path.abspath(a.dir)))
    return 0
