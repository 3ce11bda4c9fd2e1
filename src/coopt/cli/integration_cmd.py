"""`coopt cmake-toolchain`, `coopt scons-tool`, `coopt make-include`: where the build-system integration files
are installed, for `-DCMAKE_TOOLCHAIN_FILE=$(coopt cmake-toolchain)`, `toolpath=[...]` and
`include $(shell coopt make-include)`.

Each file lives once, as package data under coopt/data/; integration/ in a checkout links to it.
"""

from __future__ import annotations

import os
import sys

DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")

# command -> (path under coopt/data, how to use it)
FILES: dict[str, tuple[str, str]] = {
    "cmake-toolchain": ("coopt-toolchain.cmake", 'cmake -DCMAKE_TOOLCHAIN_FILE="$(coopt cmake-toolchain)"'),
    "scons-tool": ("site_tools", "env.Tool('coopt', toolpath=[<this directory>]) in your SConstruct"),
    "make-include": ("coopt.mk", "include $(shell coopt make-include) at the end of your Makefile"),
}


def data_path(*parts: str) -> str:
    """Path of a file installed with coopt under coopt/data/."""
    return os.path.join(DATA_DIR, *parts)


def run(name: str, argv: list[str]) -> int:
    """Print the path of the integration file for `name`."""
    rel, usage = FILES[name]
    if argv and argv[0] in ("-h", "--help"):
        print(f"usage: coopt {name}\n\nPrints the path of the file to use in your build:\n  {usage}")
        return 0
    if argv:
        sys.stderr.write(f"coopt {name}: error: takes no arguments (got {' '.join(argv)})\n")
        return 2
    path = data_path(rel)
    if not os.path.exists(path):
        sys.stderr.write(f"coopt {name}: error: {path} is missing; reinstall coopt\n")
        return 1
    print(path)
    return 0
