"""Lineages of variants end to end: real clang, real perf, the real OpenAI-protocol server with scripted answers.

A small program built at -O0 has two independent slacks: `mix` measures its string's length on every iteration
(a source rewrite hoists it), and the TU is not optimized at all (the flags level's -O3 fixes that). So the best
variant is a two-step lineage: the source rewrite, then -O3 on top of it; neither step alone gets there. The
scripted model answers: the hoisted function, the test-generation agent's inputs, the same function with only a
comment added (the same object: a duplicate), a wrong rewrite (rejected against the original code), then nothing
(the server answers 500), so the guide retires the source level and expands the rewrite with flags. Nothing here
asserts a timing: speed-ups enter only through the judge's own verdicts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import Coopt, require
from coopt.cache.store import Store
from test_llm_client import ProtocolServer, Reply, completion

pytestmark = pytest.mark.slow

BENCH = "{program} 1000 10"

ORIGINAL = """/* A string hash written the naive way: the length is measured again on every iteration (O(n^2)). */
#include <stddef.h>

#include "hot.h"

unsigned long mix(const char *s)
{
    unsigned long h = 0;
    for (size_t i = 0;; i++) {
        size_t n = 0;
        while (s[n] != '\\0')
            n++;
        if (i >= n)
            break;
        for (int k = 0; k < 2000; k++)
            h = h * 31 + (unsigned char)s[i] + (unsigned long)k;
    }
    return h;
}
"""
MAIN = """#include <stdio.h>
#include <stdlib.h>

#include "hot.h"

int main(int argc, char **argv)
{
    size_t len = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 1000;
    int rounds = argc > 2 ? atoi(argv[2]) : 10;
    char *text = malloc(len + 1);
    if (!text)
        return 1;
    unsigned long sum = 0;
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < len; i++)
            text[i] = "the quick brown fox jumps over the lazy dog "[(i + (size_t)r) % 44];
        text[len] = '\\0';
        sum ^= mix(text);
    }
    printf("%zu %d %lu\\n", len, rounds, sum);
    free(text);
    return 0;
}
"""
MAKEFILE = """CC ?= cc
CFLAGS ?= -O0
prog: main.o hot.o
\t$(CC) $(CFLAGS) -o $@ main.o hot.o
main.o: main.c hot.h
hot.o: hot.c hot.h
check: prog
\ttest "$$(./prog 100 3)" = "$$(cat expected)"
clean:
\trm -f prog *.o
"""
HOISTED = """unsigned long mix(const char *s)
{
    unsigned long h = 0;
    size_t n = 0;
    while (s[n] != '\\0')
        n++;
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < 2000; k++)
            h = h * 31 + (unsigned char)s[i] + (unsigned long)k;
    }
    return h;
}"""
# The same code as HOISTED with a comment: another text, the same object.
COMMENTED = HOISTED.replace("size_t n = 0;", "size_t n = 0; /* measured once */")
# Wrong: the last character is left out.
WRONG = HOISTED.replace("i < n;", "i + 1 < n;")
INPUTS = {"inputs": [{"args": ["Hello, World"], "why": "mixed case"}, {"args": [""], "why": "empty"}]}


def build(coopt: Coopt, tmp_path: Path) -> Path:
    require("clang", "make", "perf")
    tree = tmp_path / "naive"
    tree.mkdir()
    for name, text in (("hot.c", ORIGINAL), ("main.c", MAIN), ("Makefile", MAKEFILE),
                       ("hot.h", "unsigned long mix(const char *s);\n")):
        (tree / name).write_text(text)
    coopt.run(["make", "CC=coopt-cc"], cwd=tree)
    (tree / "expected").write_text(coopt.run(["./prog", "100", "3"], cwd=tree).stdout)
    coopt.coopt("profile", "--quiet", "-o", "profile.json", "--", "./prog", "1000", "20", cwd=tree)
    return tree


def optimize(coopt: Coopt, tree: Path, run_dir: Path, url: str, *args: str) -> tuple[dict, str]:
    env = {**coopt.env, "COOPT_LLM_BASE_URL": url, "COOPT_LLM_MODEL": "scripted", "COOPT_LLM_API_KEY_ENV": "",
           "COOPT_LLM_RETRIES": "0"}
    # --no-sweep: the script's order assumes one flag set per evaluation (tests/test_sweep.py has the sweep).
    proc = subprocess.run([str(coopt.bin / "coopt"), "optimize", "--levels", "source,flags", "--no-sweep", "--llm",
                           "openai", "--pairs", "8", "--bench", BENCH, "--run-dir", str(run_dir), *args],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=1500)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return json.loads((run_dir / "state.json").read_text()), proc.stdout


def script() -> list[Reply]:
    return [Reply(completion("```c\n%s\n```" % HOISTED, usage=(400, 80))),
            Reply(completion("```json\n%s\n```" % json.dumps(INPUTS), usage=(300, 60))),
            Reply(completion("```c\n%s\n```" % COMMENTED, usage=(400, 80))),
            Reply(completion("```c\n%s\n```" % WRONG, usage=(400, 80)))]


def spent_evaluations(state: dict) -> int:
    return sum(1 + (a["remeasured"] is not None) for a in state["attempts"]
               if a["verdict"] != "duplicate" and not a["free"])


def test_a_source_rewrite_then_flags_on_top_is_stored_with_its_lineage_and_served(coopt: Coopt,
                                                                                   tmp_path: Path) -> None:
    tree = build(coopt, tmp_path)
    expected = coopt.run(["./prog", "1000", "10"], cwd=tree).stdout
    with ProtocolServer() as server:
        server.script = script()
        state, out = optimize(coopt, tree, tmp_path / "run", server.url, "--budget", "7")
    attempts = {a["number"]: a for a in state["attempts"]}
    # Budget: never overspent, and exactly what the judged attempts cost (a duplicate costs nothing).
    assert state["spent"]["evaluations"] == spent_evaluations(state) <= 7
    first = attempts[1]
    assert first["level"] == "source" and first["verdict"] == "accepted" and first["parent"] == 0
    # The comment-only rewrite built the same object as attempt 1: reported as such, not judged again.
    [dup] = [a for a in state["attempts"] if a["verdict"] == "duplicate" and a["level"] == "source"]
    assert dup["level"] == "source" and dup["duplicate_of"] == 1 and "no evaluation spent" in dup["detail"]
    assert "duplicate" in out
    # The wrong rewrite, asked on top of the first rewrite (the middle of a would-be lineage), was judged against
    # the original code and rejected with its reproducer; nothing was built on it.
    [wrong] = [a for a in state["attempts"] if "REJECTED (return-value)" in a["detail"]]
    assert wrong["level"] == "source" and wrong["parent"] == 1 and wrong["verdict"] == "failed"
    assert wrong["no_candidate"] and not any(a["parent"] == wrong["number"] for a in state["attempts"])
    # The source level returned nothing three times in a row: retired, said so.
    assert any(n.startswith("level source asked no more") for n in state["notes"])
    # Flags on top of the rewrite: a two-step lineage, verified at each step, and the best of the run.
    [kept] = [k for k in state["kept"].values() if not k["withdrawn"]]
    leaf = attempts[kept["attempt"]]
    assert leaf["level"] == "flags" and leaf["parent"] == 1 and leaf["kept"] and leaf["verdict"] == "accepted"
    assert Path(leaf["artifact"]).parent == tmp_path / "run" / "nodes"  # the rewritten TU it compiles
    # The final measurement of the program with the kept variant: faster than plain clang at its flags (-O0 there).
    assert state["final"]["interval"]["low"] > 1.0, state["final"]
    # The cache entry: the judged object, the lineage as typed evidence (each step's digest, verdict, interval).
    [entry] = Store(str(coopt.cache_dir)).entries()
    assert entry.key == kept["key"]
    ev = entry.meta["evidence"]
    assert ev["verdict"]["code"] == "accepted" and ev["proposer"]["level"] == "flags"
    assert [s["level"] for s in ev["lineage"]] == ["source", "flags"]
    assert [s["node"] for s in ev["lineage"]] == [1, leaf["number"]]
    assert all(s["verdict"] == "accepted" and s["interval"]["low"] >= state["min_gain"] for s in ev["lineage"])
    assert ev["lineage"][0]["artifact_digest"] and ev["lineage"][1]["object_digest"] == leaf["object_digest"]
    assert any(line.startswith("+    for (size_t i = 0; i < n; i++) {") for line in ev["lineage"][0]["diff"])
    # The source step's behaviour evidence covers the code the leaf compiles.
    assert ev["functions"] == ["mix"] and ev["sanitizers"].startswith("asan+ubsan")
    # A rebuild serves exactly the judged object, and the program still works.
    coopt.run(["make", "clean"], cwd=tree)
    coopt.run(["make", "CC=coopt-cc"], cwd=tree)
    assert (tree / "hot.o").read_bytes() == Path(entry.object_path).read_bytes()
    assert coopt.run(["./prog", "1000", "10"], cwd=tree).stdout == expected
    coopt.run(["make", "check"], cwd=tree)
    # The report shows the chain, with the diff at the LLM step.
    md = coopt.coopt("report", "--run", str(tmp_path / "run")).stdout
    changes = md.split("## What the kept variants changed", 1)[1]
    assert "original -> #1 source (mix sample 0) -> #%d flags (-O3)" % leaf["number"] in changes
    assert "\n+    for (size_t i = 0; i < n; i++) {\n" in changes


def test_a_resumed_run_builds_on_the_tree_it_left(coopt: Coopt, tmp_path: Path) -> None:
    tree = build(coopt, tmp_path)
    run_dir = tmp_path / "run"
    with ProtocolServer() as server:
        server.script = script()[:2]
        first, _ = optimize(coopt, tree, run_dir, server.url, "--budget", "1", "--no-final")
        assert [a["verdict"] for a in first["attempts"]] == ["accepted"]
        shutil.rmtree(run_dir / "work", ignore_errors=True)  # the node's artifact must not live there
        second, out = optimize(coopt, tree, run_dir, server.url, "--budget", "6", "--resume", "--no-final")
    assert second["resumed"] == 1 and "1 judged attempt(s)" in out
    assert second["attempts"][0]["number"] == 1 and second["attempts"][0]["verdict"] == "accepted"
    assert second["spent"]["evaluations"] == spent_evaluations(second) <= 6
    numbers = [a["number"] for a in second["attempts"]]
    assert len(numbers) == len(set(numbers))
    on_top = [a for a in second["attempts"] if a["parent"] == 1]
    assert any(a["level"] == "flags" and a["verdict"] == "accepted" for a in on_top)


# Two TUs sharing the work about evenly: neither can speed the program up by more than ~2x (Amdahl), whatever is
# done to it. (A TU holding nearly all the samples has no such bound, so the program above cannot show this.)
HALVES = {
    "left.c": "unsigned long left(unsigned long n)\n{\n    unsigned long h = 1;\n"
              "    for (unsigned long i = 0; i < n; i++)\n        h = h * 33 + i;\n    return h;\n}\n",
    "right.c": "unsigned long right(unsigned long n)\n{\n    unsigned long h = 7;\n"
               "    for (unsigned long i = 0; i < n; i++)\n        h = h * 31 + (i ^ h);\n    return h;\n}\n",
    "main.c": "#include <stdio.h>\n#include <stdlib.h>\nunsigned long left(unsigned long);\n"
              "unsigned long right(unsigned long);\nint main(int argc, char **argv)\n{\n"
              "    unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;\n"
              "    printf(\"%lu\\n\", left(n) ^ right(n));\n    return 0;\n}\n",
    "Makefile": "CC ?= cc\nCFLAGS ?= -O0\nprog: main.o left.o right.o\n\t$(CC) $(CFLAGS) -o $@ $^\n",
}


def test_a_tu_whose_share_cannot_reach_min_gain_gets_no_evaluation(coopt: Coopt, tmp_path: Path) -> None:
    require("clang", "make", "perf")
    tree = tmp_path / "halves"
    tree.mkdir()
    for name, text in HALVES.items():
        (tree / name).write_text(text)
    coopt.run(["make", "CC=coopt-cc"], cwd=tree)
    coopt.coopt("profile", "--quiet", "-o", "profile.json", "--", "./prog", "200000000", cwd=tree)
    proc = coopt.coopt("optimize", "--levels", "flags", "--budget", "3", "--pairs", "4", "--bench",
                       "{program} 20000000", "--min-gain", "5", "--run-dir", str(tmp_path / "run"), cwd=tree)
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["attempts"] == [] and state["spent"]["evaluations"] == 0
    for tu in ("left.c", "right.c"):
        assert "%s: no evaluation:" % tu in proc.stdout and "under min_gain 5.00" in proc.stdout
        assert any(t["source"].endswith(tu) and t["note"].startswith("no evaluation") for t in state["tus"])
