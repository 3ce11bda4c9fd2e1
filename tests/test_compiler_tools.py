"""The compiler tools on a real program: flags, opt/llc, and per-TU PGO trained on a workload."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import Coopt, require
from coopt.agents.compiler.tools import (
    ToolError,
    compile_with_flags,
    emit_ir,
    pgo_compile,
    pgo_train,
    run_llc,
    run_opt,
    toolchain_for,
)
from coopt.journal.job import CompileJob
from coopt.journal.relink import find_link, relink

pytestmark = pytest.mark.slow

WORKLOAD = """
local t = {}
for i = 1, 30000 do t[i] = (i * 7919) % 10007 end
table.sort(t)
local s = 0
for i = 1, #t do s = s + t[i] end
print(s)
"""


def _job(coopt: Coopt, source: str) -> CompileJob:
    rec = [r for r in coopt.journal() if r["type"] == "compile" and r["source"] == source][-1]
    return CompileJob.from_record(rec)


def test_flags_ir_and_pgo_candidates_for_lua(coopt: Coopt, debian_source, tmp_path: Path) -> None:
    require("clang", "make")
    src = debian_source("lua5.4", pristine=True) / "src"
    coopt.run(["make", "-j2", "linux-noreadline", "CC=coopt-cc"], cwd=src)
    script = tmp_path / "w.lua"
    script.write_text(WORKLOAD)
    expected = subprocess.run([str(src / "lua"), str(script)], capture_output=True, text=True, check=True).stdout
    lvm = _job(coopt, "lvm.c")
    link = find_link(str(coopt.cache_dir / "journal.jsonl"), str(src / "lua"))

    # Replaying the journaled compile gives the very object the build made.
    same = compile_with_flags(lvm, [], str(tmp_path / "replay.o"))
    assert Path(same.object_path).read_bytes() == (src / "lvm.o").read_bytes()

    o3 = compile_with_flags(lvm, ["-O3"], str(tmp_path / "o3.o"))
    assert Path(o3.object_path).read_bytes() != (src / "lvm.o").read_bytes()

    tc = toolchain_for(lvm)
    ll = tmp_path / "lvm.ll"
    emit_ir(lvm, str(ll))
    run_opt(tc, str(ll), "default<O3>", str(tmp_path / "lvm.o3.ll"))
    run_llc(tc, str(tmp_path / "lvm.o3.ll"), ["-O3"], str(tmp_path / "lvm-ir.o"))
    with pytest.raises(ToolError):
        run_opt(tc, str(ll), "no-such-pass", str(tmp_path / "bad.ll"))

    profile = pgo_train([lvm, _job(coopt, "ltable.c")], link, [["{program}", str(script)]], str(tmp_path / "pgo"))
    pgo = pgo_compile(lvm, profile, str(tmp_path / "lvm-pgo.o"))
    assert Path(pgo.object_path).read_bytes() != (src / "lvm.o").read_bytes()

    for name, obj in (("o3", o3.object_path), ("ir", str(tmp_path / "lvm-ir.o")), ("pgo", pgo.object_path)):
        prog = tmp_path / ("lua-" + name)
        relink(link, {str(src / "lvm.o"): obj}, str(prog), workdir=str(tmp_path))
        out = subprocess.run([str(prog), str(script)], capture_output=True, text=True, check=True).stdout
        assert out == expected, name
