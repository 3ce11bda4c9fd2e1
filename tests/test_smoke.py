"""The smallest end-to-end check: a miss compiles exactly like clang, a stored variant is served next time."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import Coopt, require


def test_miss_is_identical_and_put_variant_is_served(coopt: Coopt, tmp_path: Path) -> None:
    require("clang")
    (tmp_path / "f.h").write_text("#define K 3\n")
    (tmp_path / "f.c").write_text('#include "f.h"\nint f(int x) { return x * K; }\n')
    subprocess.run(["clang", "-O2", "-c", "f.c", "-o", "plain.o"], cwd=tmp_path, check=True)
    coopt.run([coopt.cc, "-O2", "-c", "f.c", "-o", "f.o"], cwd=tmp_path)
    assert (tmp_path / "f.o").read_bytes() == (tmp_path / "plain.o").read_bytes()
    assert coopt.stats().get("miss") == 1

    (tmp_path / "v.c").write_text('#include "f.h"\nint f(int x) { return x * K + 1; }\n')
    coopt.coopt("cache", "put", "--artifact", "v.c", "--for-object", "f.o", "--unverified", cwd=tmp_path)
    (tmp_path / "f.o").unlink()
    coopt.run([coopt.cc, "-O2", "-c", "f.c", "-o", "f.o"], cwd=tmp_path)
    assert coopt.stats().get("hit") == 1
    assert (tmp_path / "f.o").read_bytes() != (tmp_path / "plain.o").read_bytes()

    # Another flag is another key: the variant is not served.
    coopt.run([coopt.cc, "-O1", "-c", "f.c", "-o", "f1.o"], cwd=tmp_path)
    assert coopt.stats().get("hit") == 1
