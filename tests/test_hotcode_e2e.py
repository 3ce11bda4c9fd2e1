"""`coopt optimize --levels source` on a program whose hot code is `main` itself, end to end: built with coopt-cc,
profiled with the real perf, the model (a scripted OpenAI-protocol server) rewrites `main`, the judge runs the whole
program (the project's test, the model's program runs, stdin mutations), the A/B shows it faster, and the variant
is stored and served by the rebuild.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import Coopt, require
from coopt.cache.store import Store
from test_hotcode_agents import PROG_C, RUNS, answer, runs
from test_llm_client import ProtocolServer

# The inner loop folds a 7-periodic sequence: one period per number, then whole periods and the rest.
FAST_MAIN = r"""int main(int argc, char **argv)
{
    int limit = argc > 1 ? atoi(argv[1]) : 1000;
    long x, total = 0;
    int count = 0;
    while (scanf("%ld", &x) == 1) {
        long r = x % 7;
        if (limit > 0) {
            long cycle = 0, rest = 0;
            int tail = limit % 7;
            for (int k = 0; k < 7; k++) {
                long v = (r * k) % 7;
                cycle += v;
                if (k < tail)
                    rest += v;
            }
            total += (long)(limit / 7) * cycle + rest;
        }
        count++;
    }
    printf("%d %ld\n", count, total);
    return count == 0 ? 2 : 0;
}"""


def test_a_rewrite_of_main_is_verified_by_the_program_kept_and_served(coopt: Coopt, tmp_path: Path) -> None:
    require("clang", "perf", "nm")
    tree = tmp_path / "proj"
    tree.mkdir()
    (tree / "prog.c").write_text(PROG_C)
    (tree / "in.txt").write_text(" ".join(str((i * 37) % 1001 - 500) for i in range(3000)) + "\n")
    (tree / "small.txt").write_text("3 -4 5\n")
    coopt.run([coopt.cc, "-O2", "-g", "-c", "prog.c", "-o", "prog.o"], cwd=tree)
    coopt.run([coopt.cc, "prog.o", "-o", "prog"], cwd=tree)
    coopt.coopt("profile", "-o", "profile.json", "--call-graph", "none", "--", "sh", "-c",
                "./prog 20000 < in.txt", cwd=tree)
    prof = json.loads((tree / "profile.json").read_text())
    assert prof["functions"][0]["name"] == "main" and prof["functions"][0]["inlined_into"] is None
    run_dir = tmp_path / "run"
    with ProtocolServer() as server:
        server.script = [answer(FAST_MAIN), runs(RUNS)]
        env = {**coopt.env, "COOPT_LLM_BASE_URL": server.url, "COOPT_LLM_MODEL": "scripted",
               "COOPT_LLM_API_KEY_ENV": "", "COOPT_LLM_RETRIES": "0"}
        proc = subprocess.run([str(coopt.bin / "coopt"), "optimize", "--levels", "source", "--llm", "openai",
                               "--budget", "1", "--pairs", "5", "--program", "prog", "--run-dir", str(run_dir),
                               "--bench", "./prog 20000 < in.txt", "--test", "./prog 9 < small.txt"],
                              cwd=tree, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "program's main function" in server.requests[0]["json"]["messages"][1]["content"]
    state = json.loads((run_dir / "state.json").read_text())
    [attempt] = state["attempts"]
    assert attempt["level"] == "source" and attempt["verdict"] == "accepted", attempt
    entries = Store(str(coopt.cache_dir)).entries()
    assert len(entries) == 1
    evidence = json.dumps(entries[0].meta)
    assert "program runs compared (1 project tests, 4 generated inputs" in evidence
    # The rebuild serves the variant (a cache hit), and the program built from it gives the original's output.
    expected = subprocess.run(["sh", "-c", "./prog 9 < small.txt"], cwd=tree, capture_output=True, text=True).stdout
    (tree / "prog.o").unlink()
    before = coopt.stats()
    coopt.run([coopt.cc, "-O2", "-g", "-c", "prog.c", "-o", "prog.o"], cwd=tree)
    assert coopt.stats().get("hit", 0) - before.get("hit", 0) == 1
    coopt.run([coopt.cc, "prog.o", "-o", "prog"], cwd=tree)
    out = subprocess.run(["sh", "-c", "./prog 9 < small.txt"], cwd=tree, capture_output=True, text=True).stdout
    assert out == expected and out.startswith("3 ")
