"""`coopt compdb`: a compile_commands.json a tool can use, from the journal."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import Coopt, require


def test_compdb_has_the_newest_compile_of_each_existing_source(coopt: Coopt, tmp_path: Path) -> None:
    require("clang")
    for name in ("a", "b", "probe"):
        (tmp_path / (name + ".c")).write_text("int %s(void) { return 1; }\n" % name)
    coopt.run([coopt.cc, "-O1", "-c", "a.c", "-o", "a.o"], cwd=tmp_path)
    coopt.run([coopt.cc, "-O2", "-c", "a.c", "-o", "a.o"], cwd=tmp_path)
    coopt.run([coopt.cc, "-O2", "-c", "b.c"], cwd=tmp_path)
    coopt.run([coopt.cc, "-c", "probe.c", "-o", "probe.o"], cwd=tmp_path)
    (tmp_path / "probe.c").unlink()  # like a configure probe
    coopt.coopt("compdb", "-o", "cc.json", cwd=tmp_path)
    db = json.loads((tmp_path / "cc.json").read_text())
    assert [Path(e["file"]).name for e in db] == ["a.c", "b.c"]
    a = db[0]
    assert a["arguments"][1:] == ["-O2", "-c", "a.c", "-o", "a.o"] and a["directory"] == str(tmp_path)
    # Each entry rebuilds the object it names.
    (tmp_path / "b.o").rename(tmp_path / "b.old.o")
    subprocess.run(db[1]["arguments"], cwd=db[1]["directory"], check=True)
    assert (tmp_path / "b.o").read_bytes() == (tmp_path / "b.old.o").read_bytes()
    # Compiles elsewhere are left out unless asked for.
    other = tmp_path / "elsewhere"
    other.mkdir()
    coopt.coopt("compdb", "-o", str(other / "cc.json"), cwd=other)
    assert json.loads((other / "cc.json").read_text()) == []
    coopt.coopt("compdb", "--all", "-o", str(other / "all.json"), cwd=other)
    assert len(json.loads((other / "all.json").read_text())) == 2
