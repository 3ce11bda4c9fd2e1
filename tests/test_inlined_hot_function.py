"""A hot function the build inlines into every caller (popcount_bits' static `bits`) has no code of its own in the
optimized IR or assembly. The IR level shows its IR before the optimizer; the assembly level compiles the TU with
the function kept out of line. Either way the scripted model's first answer is wrong (the whole program's run
catches it), the second is kept, and the rebuild serves it. Real clang, LLVM, make and perf; the model is the
scripted OpenAI-protocol server of test_llm_client.py.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import Coopt, require
from test_llm_client import ProtocolServer, Reply, completion

POPCOUNT_IR = """define internal i32 @bits(i64 %x) {
  %c = call i64 @llvm.ctpop.i64(i64 %x)
  %r = trunc i64 %c to i32
  ret i32 %r
}

declare i64 @llvm.ctpop.i64(i64)"""
# Counts the low 32 bits only: every check that runs the program sees other Hamming distances.
POPCOUNT_IR_WRONG = """define internal i32 @bits(i64 %x) {
  %lo = trunc i64 %x to i32
  %c = call i32 @llvm.ctpop.i32(i32 %lo)
  ret i32 %c
}

declare i32 @llvm.ctpop.i32(i32)"""

# clang's own lowering of __builtin_popcountll without POPCNT (any x86-64 runs it).
SWAR = """bits:
\t.cfi_startproc
\tmovq\t%rdi, %rax
\tshrq\t%rax
\tmovabsq\t$6148914691236517205, %rcx
\tandq\t%rax, %rcx
\tsubq\t%rcx, %rdi
\tmovabsq\t$3689348814741910323, %rax
\tmovq\t%rdi, %rcx
\tandq\t%rax, %rcx
\tshrq\t$2, %rdi
\tandq\t%rdi, %rax
\taddq\t%rcx, %rax
\tmovq\t%rax, %rcx
\tshrq\t$4, %rcx
\taddq\t%rax, %rcx
\tmovabsq\t$1085102592571150095, %rdx
\tandq\t%rcx, %rdx
\tmovabsq\t$72340172838076673, %rax
\timulq\t%rdx, %rax
\tshrq\t$%d, %rax
\tretq
\t.cfi_endproc"""


@dataclass(frozen=True)
class Level:
    name: str
    fence: str
    right: str
    wrong: str
    says: str  # in the system prompt: how the function was obtained
    shows: str  # in the user prompt: the function as shown
    kept: str  # in the stored artifact


LEVELS = [
    Level("ir", "llvm", POPCOUNT_IR, POPCOUNT_IR_WRONG, "before optimizing", "define internal i32 @bits(i64",
          "@llvm.ctpop.i64"),
    # The wrong one shifts the byte sum out by 48, not 56: it adds the upper bytes' partial sums.
    Level("asm", "asm", SWAR.replace("$%d", "$56"), SWAR.replace("$%d", "$48"), "kept out of line", "bits:",
          "$72340172838076673"),
]


@pytest.mark.slow
@pytest.mark.parametrize("level", LEVELS, ids=[lv.name for lv in LEVELS])
def test_a_function_inlined_everywhere_is_rewritten_verified_and_served(coopt: Coopt, tmp_path: Path,
                                                                        level: Level) -> None:
    from coopt.cache.store import Store

    require("clang", "make", "perf", "opt")
    if level.name == "asm" and platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("the scripted assembly is x86-64")
    tree = tmp_path / "programs"
    tree.mkdir()
    src = Path(__file__).resolve().parent.parent / "bench" / "programs"
    for name in ("Makefile", "common.h", "popcount_bits.c"):
        shutil.copy(src / name, tree / name)
    coopt.run(["make", "CC=coopt-cc", "popcount_bits"], cwd=tree)
    assert "bits" not in coopt.run(["nm", "popcount_bits.o"], cwd=tree).stdout  # inlined everywhere
    expected = coopt.run(["./popcount_bits"], cwd=tree).stdout
    coopt.coopt("profile", "--quiet", "-o", "profile.json", "--", "./popcount_bits", "20", cwd=tree)
    # The test-generation agent is asked about bits' C source once, when the first answer is judged.
    script = [Reply(completion("```%s\n%s\n```" % (level.fence, level.wrong), usage=(400, 60))),
              Reply(completion("```json\n%s\n```" % json.dumps({"runs": [{"args": ["3"]}, {"args": ["1"]}]}),
                               usage=(300, 40))),
              Reply(completion("```%s\n%s\n```" % (level.fence, level.right), usage=(400, 60)))]
    with ProtocolServer() as server:
        server.script = script
        env = {"COOPT_LLM_BASE_URL": server.url, "COOPT_LLM_MODEL": "scripted", "COOPT_LLM_API_KEY_ENV": "",
               "COOPT_LLM_RETRIES": "0"}
        run_dir = tmp_path / "run"
        proc = subprocess.run([str(coopt.bin / "coopt"), "optimize", "--levels", level.name, "--pairs", "7",
                               "--run-dir", str(run_dir), "--llm", "openai", "--budget", "1",
                               "--bench", "./popcount_bits 20", "--test", "./popcount_bits"],
                              cwd=tree, env={**coopt.env, **env}, capture_output=True, text=True, timeout=1200)
        requests = [r["json"]["messages"] for r in server.requests]
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    system, user = requests[0][0]["content"], requests[0][1]["content"]
    assert level.says in system and level.shows in user and "llvm.dbg" not in user and ".loc" not in user
    state = json.loads((run_dir / "state.json").read_text())
    [attempt] = [a for a in state["attempts"] if not a.get("swept")]
    assert attempt["verdict"] == "accepted" and attempt["label"] == "bits sample 1", attempt
    [entry] = Store(str(coopt.cache_dir)).entries()
    assert level.kept in Path(entry.artifact_path).read_text()
    ev = entry.meta["evidence"]
    assert ev["verified"] is True and entry.meta["level"] == level.name
    # Judged by running the whole program: the project's test and the test-generation agent's two runs.
    [whole] = [c for c in ev["checks"] if c["name"] == "program"]
    assert "1 project tests, 2 generated inputs" in whole["detail"], whole
    assert '"runs"' in requests[1][0]["content"] and "static int bits(uint64_t x)" in requests[1][-1]["content"]
    coopt.run(["make", "clean"], cwd=tree)
    coopt.run(["make", "CC=coopt-cc", "popcount_bits"], cwd=tree)
    assert (tree / "popcount_bits.o").read_bytes() == Path(entry.object_path).read_bytes()
    assert coopt.run(["./popcount_bits"], cwd=tree).stdout == expected


def test_out_of_line_marks_only_the_function_and_refuses_an_always_inline_one(tmp_path: Path) -> None:
    from coopt.agents.rewrite.context import ExtractError
    from coopt.agents.rewrite.ir import out_of_line

    require("clang", "llvm-as")
    (tmp_path / "t.c").write_text("static inline int sq(int x) { return x * x; }\n"
                                  "__attribute__((always_inline)) static inline int cube(int x) { return x*x*x; }\n"
                                  "int f(int x) { return sq(x) + cube(x); }\n")
    subprocess.run(["clang", "-O2", "-S", "-emit-llvm", "-Xclang", "-disable-llvm-passes", "t.c", "-o", "t.ll"],
                   cwd=tmp_path, check=True)
    module = (tmp_path / "t.ll").read_text()
    kept = out_of_line(module, "sq")
    assert kept.count(" noinline") == module.count(" noinline") + 1
    assert [ln for ln in kept.splitlines() if "noinline" in ln and "define" in ln][0].split("@")[1].startswith("sq(")
    (tmp_path / "k.ll").write_text(kept)
    subprocess.run(["clang", "-O2", "-S", "k.ll", "-o", "k.s"], cwd=tmp_path, check=True)
    asm = (tmp_path / "k.s").read_text()
    assert "sq:" in asm and "cube:" not in asm  # sq kept out of line, cube still inlined
    with pytest.raises(ExtractError, match="always_inline"):
        out_of_line(module, "cube")
    with pytest.raises(ExtractError, match="not defined"):
        out_of_line(module, "nothere")
