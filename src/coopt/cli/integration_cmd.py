"""`coopt cmake-toolchain` and `coopt scons-tool`: where the build-system integration files are installed."""

from __future__ import annotations

import os

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def data_path(*parts: str) -> str:
    return os.path.join(HERE, "data", *parts)


def run(name: str, argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print("usage: coopt %s\n\nPrints the path of the file to use in your build." % name)
        return 0
    if name == "cmake-toolchain":
        print(data_path("coopt-toolchain.cmake"))
    else:
        print(data_path("site_tools"))
    return 0
