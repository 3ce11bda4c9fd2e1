"""The hot code wherever it is: a rewrite of `main` judged by running the whole program, and a function too long
for the model cut to its hot region, with real clang, the real verifier and sandbox, and scripted models over the
real OpenAI protocol (test_llm_client.ProtocolServer).

1. `main` does the program's work (the usual single-file benchmark): the source agent may rewrite it, and the
   judge relinks the program with each side and compares stdout, exit status and files on the project's tests,
   the test-generation agent's program runs and stdin mutations. A correct rewrite is accepted; one that differs
   only on a run the test-generation agent wrote, or only on a stdin the fuzzer made, is rejected with that run.
2. A long function: the prompt holds its hot region (by per-line samples) and the declarations it uses, never the
   whole function; a function whose answer came back cut at max_tokens is not sent whole again.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import require
from coopt.agents.compiler.tools import ToolError
from coopt.agents.levels import AgentContext, AgentSettings, HotTU
from coopt.agents.rewrite.source import SourceLevelAgent, SourceOptions
from coopt.budget import Budget
from coopt.hooks.workload import Workload
from coopt.journal.job import CompileJob
from coopt.journal.relink import LinkRecord
from coopt.llm.client import ChatClient
from coopt.verify.behaviour import JudgeSettings, checker
from coopt.verify.program_level.differential import ProgramContext
from test_llm_client import ProtocolServer, Reply, completion, scripted_client

# Reads numbers from stdin; argv[1] is how many multiples of each to fold in. All of its time is main's loop.
PROG_C = r"""#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    int limit = argc > 1 ? atoi(argv[1]) : 1000;
    long x, total = 0;
    int count = 0;
    while (scanf("%ld", &x) == 1) {
        for (int k = 0; k < limit; k++)
            total += (x * k) % 7;
        count++;
    }
    printf("%d %ld\n", count, total);
    return count == 0 ? 2 : 0;
}
"""
# Right: the residue taken once per number (same sign, same residue, so the same remainder for every k).
GOOD_MAIN = r"""int main(int argc, char **argv)
{
    int limit = argc > 1 ? atoi(argv[1]) : 1000;
    long x, total = 0;
    int count = 0;
    while (scanf("%ld", &x) == 1) {
        long r = x % 7;
        for (int k = 0; k < limit; k++)
            total += (r * k) % 7;
        count++;
    }
    printf("%d %ld\n", count, total);
    return count == 0 ? 2 : 0;
}"""
# Wrong only when argv[1] is 0 or negative: the built-in tests never pass one, the test-generation agent does.
ARGS_BUG = GOOD_MAIN.replace("int count = 0;", "int count = 0;\n    if (limit < 1) limit = 2;")
# Wrong only for negative numbers: the model's runs have none, the stdin fuzzer's boundary values do.
NEGATIVE_BUG = GOOD_MAIN.replace("long r = x % 7;", "long r = (x % 7 + 7) % 7;")
RUNS = {"runs": [{"args": ["3"], "stdin": "1 2 3\n"}, {"args": ["0"], "stdin": "5\n"}, {"args": ["2"]},
                 {"stdin": "10 20\n", "args": ["5"]}]}
POSITIVE_RUNS = {"runs": [{"args": ["3"], "stdin": "1 2 3\n"}, {"args": ["4"], "stdin": "7 8 9 10\n"}]}


@pytest.fixture
def server() -> Iterator[ProtocolServer]:
    with ProtocolServer() as s:
        yield s


def answer(code: str) -> Reply:
    return Reply(completion("Faster:\n```c\n%s\n```\n" % code, usage=(300, 90)))


def runs(data: dict) -> Reply:
    return Reply(completion("```json\n%s\n```" % json.dumps(data), usage=(200, 60)))


def program(where: Path) -> tuple[LinkRecord, HotTU]:
    """prog.c built the way a journaled build does it: compile to prog.o, link prog; the link record for relinks."""
    require("clang", "nm")
    where.mkdir(parents=True, exist_ok=True)
    (where / "prog.c").write_text(PROG_C)
    subprocess.run(["clang", "-O2", "-c", "prog.c", "-o", "prog.o"], cwd=where, check=True)
    subprocess.run(["clang", "prog.o", "-o", "prog"], cwd=where, check=True)
    job = CompileJob(str(where), "clang", [], ["-O2"], "prog.c", "prog.o", [])
    return (LinkRecord(str(where), "clang", ["prog.o", "-o", "prog"], "prog", ["prog.o"]),
            HotTU(job.output_path, job.source_path, 0.99, job, ["main"]))


def main_agent(tmp_path: Path, model: ChatClient, program_level: bool = True) -> tuple[SourceLevelAgent, HotTU]:
    link, tu = program(tmp_path / "proj")
    tests = (Workload("printf '4 5 6\\n' | {program} 9", str(tmp_path / "proj"), "--test"),)
    check = checker(JudgeSettings(300.0), ProgramContext(link, str(tmp_path / "checks"), tests))
    ctx = AgentContext(link, [tu], None, True, str(tmp_path / "agents"),  # type: ignore[arg-type]
                       AgentSettings(300.0, Budget(max_evaluations=5), str(tmp_path / "cache")), check=check,
                       program_level=program_level)
    return SourceLevelAgent(ctx, model, SourceOptions(per_proposal=1, samples=2)), tu


def test_a_correct_rewrite_of_main_is_accepted_by_running_the_program(server: ProtocolServer,
                                                                     tmp_path: Path) -> None:
    server.script = [answer(GOOD_MAIN), runs(RUNS)]
    with scripted_client(server, tmp_path) as model:
        agent, tu = main_agent(tmp_path, model)
        cand = agent.propose(tu, str(tmp_path / "out"))
    ev = cand.behaviour
    assert ev is not None and ev.accepted, ev.verdict if ev else None
    [whole] = [c for c in ev.checks if c.name == "program"]
    # The project's test, the model's four runs, and stdin mutations (main reads stdin through scanf).
    assert "1 project tests, 4 generated inputs" in whole.detail and "0 stdin mutations" not in whole.detail
    assert {c.name for c in ev.checks} >= {"compile", "screen", "interface", "program"}
    [proposer] = [c for c in ev.checks if c.name == "proposer"]
    assert "judged by running the whole program (4 runs" in proposer.detail
    # The prompt said it is main, and the test-generation agent was asked for program runs about it.
    asked = server.requests[0]["json"]["messages"][1]["content"]
    assert "program's main function" in asked and "int main(int argc" in asked
    assert '"runs"' in server.requests[1]["json"]["messages"][0]["content"]
    assert "long r = x % 7;" in Path(cand.built.artifact_path).read_text()


def test_a_rewrite_of_main_wrong_on_a_generated_run_is_rejected_with_it(server: ProtocolServer,
                                                                       tmp_path: Path) -> None:
    server.script = [answer(ARGS_BUG), runs(RUNS), answer(NEGATIVE_BUG)]
    with scripted_client(server, tmp_path) as model:
        agent, tu = main_agent(tmp_path, model)
        with pytest.raises(ToolError) as first:
            agent.propose(tu, str(tmp_path / "out"))
        # The model's runs are asked once per function; the next sample is judged on the same runs, and its bug
        # (negative numbers) is on none of them: the stdin fuzzer's boundary values find it.
        with pytest.raises(ToolError) as second:
            agent.propose(tu, str(tmp_path / "out"))
    assert "REJECTED (program-output)" in str(first.value) and "args ['0']" in str(first.value)
    assert "REJECTED (program-output)" in str(second.value) and "-" in str(second.value).split("stdin", 1)[1]
    assert len(server.requests) == 3


def test_a_fuzz_only_bug_needs_the_fuzzer(server: ProtocolServer, tmp_path: Path) -> None:
    """The negative-number bug passes the model's runs and the project's test alone: without stdin mutations it
    would be accepted, so the rejection above is the fuzzer's."""
    from coopt.verify.evidence import Evidence
    from coopt.verify.program_level.differential import ProgramJudge
    from coopt.verify.program_level.inputs import ProgramInput
    from coopt.verify.verdict import Verdict

    link, tu = program(tmp_path / "proj")
    (tmp_path / "bug.c").write_text(PROG_C[:PROG_C.index("int main")] + NEGATIVE_BUG + "\n")
    subprocess.run(["clang", "-O2", "-c", str(tmp_path / "bug.c"), "-o", str(tmp_path / "bug.o")], check=True)
    inputs = [ProgramInput(("3",), b"1 2 3\n", (), "llm"), ProgramInput(("4",), b"7 8 9 10\n", (), "llm")]
    for fuzz_runs, code in ((0, "accepted"), (24, "rejected")):
        ctx = ProgramContext(link, str(tmp_path / ("c%d" % fuzz_runs)), fuzz_runs=fuzz_runs)
        judge = ProgramJudge(ctx, str(tmp_path / ("j%d" % fuzz_runs)))
        ev = Evidence("prog.c", "bug.c", Verdict.inconclusive("not run"))
        verdict = judge.judge(tu.object, tu.object, str(tmp_path / "bug.o"), inputs, ev)
        assert verdict.code.value == code, verdict
    assert verdict.reproducer is not None and verdict.reproducer.source == "fuzz"


def test_without_a_program_level_judge_main_is_not_asked_about(server: ProtocolServer, tmp_path: Path) -> None:
    with scripted_client(server, tmp_path) as model:
        agent, tu = main_agent(tmp_path, model, program_level=False)
        with pytest.raises(ToolError, match="main: the verifier's harness cannot drive it"):
            agent.propose(tu, str(tmp_path / "out"))
        assert not agent.has_more(tu)
    assert server.requests == []


# ---- 2. a function too long for the model ---------------------------------------------------------------------

COLD = "".join("    if (n == %d)\n        t += %d;\n" % (k * 1000 + 7, k * 31 + 3) for k in range(40))
LONG_C = """#include <stddef.h>

int work(const int *a, int n)
{
    int s = 0;
    int t = 1;
    int unused_here = 5;
%s    for (int i = 0; i < n; i++) {
        s += a[i] %% 5;
    }
    return s + t + unused_here;
}
""" % COLD
HOT_LINE = LONG_C[:LONG_C.index("s += a[i]")].count("\n") + 1
REGION_REWRITE = """for (int i = 0; i < n; i++) {
        int v = a[i];
        s += v % 5;
    }"""


def long_agent(tmp_path: Path, model: ChatClient, text: str = LONG_C, lines: dict[int, int] | None = None,
               **options: object) -> tuple[SourceLevelAgent, HotTU]:
    require("clang")
    where = tmp_path / "long"
    where.mkdir(parents=True, exist_ok=True)
    (where / "long.c").write_text(text)
    job = CompileJob(str(where), "clang", [], ["-O2"], "long.c", "long.o", [])
    # The per-line samples a profile with debug info gives (profile/inline.py): nearly all on the loop's body.
    lines = lines or {HOT_LINE: 950, HOT_LINE - 1: 40, 8: 1}
    tu = HotTU(job.output_path, job.source_path, 0.99, job, ["work"], {"work": lines})
    ctx = AgentContext(None, [tu], None, True, str(tmp_path / "agents"),  # type: ignore[arg-type]
                       AgentSettings(300.0, Budget(max_evaluations=5), str(tmp_path / "cache")),
                       check=checker(JudgeSettings(300.0)))
    return SourceLevelAgent(ctx, model, SourceOptions(**options)), tu  # type: ignore[arg-type]


def test_a_long_function_is_sent_as_its_hot_region_and_the_answer_replaces_only_that(server: ProtocolServer,
                                                                                      tmp_path: Path) -> None:
    server.script = [answer(REGION_REWRITE), runs({"inputs": []})]
    with scripted_client(server, tmp_path) as model:
        # 300 tokens of answer cannot hold the rewritten function (about 400 tokens): only its hot loop is sent.
        agent, tu = long_agent(tmp_path, model, max_tokens=300, per_proposal=1, samples=1)
        cand = agent.propose(tu, str(tmp_path / "out"))
    sent = server.requests[0]["json"]["messages"][1]["content"]
    assert "REGION START" in sent and "s += a[i] % 5;" in sent
    assert "int work(const int *a, int n)" in sent and "int s = 0;" in sent  # the head and the declarations used
    assert "t += 3;" not in sent and "unused_here = 5" not in sent  # neither the cold code nor unused locals
    assert server.requests[0]["json"]["max_tokens"] <= 300
    ev = cand.behaviour
    assert ev is not None and ev.accepted and ev.functions == ["work"]
    artifact = Path(cand.built.artifact_path).read_text()
    assert "int v = a[i];" in artifact and artifact.count("t += ") == 40  # the region replaced, the rest intact
    [proposer] = [c for c in ev.checks if c.name == "proposer"]
    assert "the rest of work" in proposer.detail and "lines %d-%d" % (HOT_LINE - 1, HOT_LINE + 1) in proposer.detail


# The loop is too long for one answer and its hot statements are straight-line code: the hottest line is a small
# `if` that fits, but the run of statements that hold the samples holds more of them.
LONG_LOOP_C = """int work(const int *a, int n)
{
    int s = 0;
    int t = 1;
    for (int i = 0; i < n; i++) {
%s        s += a[i] * 3;
        if (s > 99999) s -= 77;
        s += a[i] %% 5;
%s    }
    return s + t;
}
""" % (COLD.replace("    ", "        "), COLD.replace("    ", "        ").replace("t +=", "t -="))
LOOP_HOT = LONG_LOOP_C[:LONG_LOOP_C.index("s += a[i] * 3")].count("\n") + 1
RUN_REWRITE = """int v = a[i];
        s += v * 3;
        if (s > 99999) s -= 77;
        s += v % 5;"""


def test_straight_line_hot_code_is_sent_as_the_run_of_statements_that_hold_the_samples(server: ProtocolServer,
                                                                                        tmp_path: Path) -> None:
    server.script = [answer(RUN_REWRITE), runs({"inputs": []})]
    with scripted_client(server, tmp_path) as model:
        agent, tu = long_agent(tmp_path, model, LONG_LOOP_C, {LOOP_HOT: 300, LOOP_HOT + 1: 500, LOOP_HOT + 2: 200,
                                                             4: 1}, max_tokens=300, per_proposal=1, samples=1)
        cand = agent.propose(tu, str(tmp_path / "out"))
    sent = server.requests[0]["json"]["messages"][1]["content"]
    region = sent[sent.index("REGION START"):sent.index("REGION END")]
    assert "s += a[i] * 3;" in region and "s += a[i] % 5;" in region  # the three hot statements, with the ';'
    assert "t +=" not in region and "t -=" not in region and "for (" not in region  # no cold neighbour, no loop
    assert "int s = 0;" in sent  # a declaration the run uses
    ev = cand.behaviour
    assert ev is not None and ev.accepted and ev.functions == ["work"]
    artifact = Path(cand.built.artifact_path).read_text()
    assert "int v = a[i];" in artifact and artifact.count("t += ") == 40 and artifact.count("t -= ") == 40
    assert "s += v % 5;\n        if (n ==" in artifact  # the run's bytes replaced, its ';' included: none left over


def test_a_function_whose_answer_was_cut_is_never_sent_whole_again(server: ProtocolServer, tmp_path: Path) -> None:
    cut = Reply(completion("```c\nint work(const int *a, int n)\n{\n    int s", finish="length", usage=(900, 700)))
    server.script = [cut, cut]
    with scripted_client(server, tmp_path) as model:
        # Room enough for the whole function: the first evaluation sends it, and the answer is cut anyway.
        agent, tu = long_agent(tmp_path, model, max_tokens=1400, context_tokens=8192, per_proposal=1, samples=4)
        with pytest.raises(ToolError) as first:
            agent.propose(tu, str(tmp_path / "out"))
        assert "sample 0: truncated" in str(first.value) and agent.has_more(tu)
        # The second evaluation sends the hot region, not the function; its answer is cut too: the function is
        # left to the compiler tools and no third request is made.
        with pytest.raises(ToolError) as second:
            agent.propose(tu, str(tmp_path / "out"))
        assert not agent.has_more(tu)
    whole, region = (r["json"]["messages"][1]["content"] for r in server.requests)
    assert "t += 3;" in whole and "REGION START" not in whole
    assert "REGION START" in region and "t += 3;" not in region
    assert "cut at max_tokens even for its hot region; not asked again" in str(second.value)
    assert len(server.requests) == 2


@pytest.mark.parametrize("window,whole", [(4096, False), (16384, True)])
def test_the_answer_limit_grows_with_the_models_window(server: ProtocolServer, tmp_path: Path, window: int,
                                                        whole: bool) -> None:
    """A function of about 1600 tokens is cut to its hot region for a 4096-token window (the local model's,
    768-token answers), and sent whole to an endpoint whose COOPT_LLM_CONTEXT has room for its rewrite."""
    from coopt.agents.rewrite.source import make_agent

    require("clang")
    where = tmp_path / "long"
    where.mkdir()
    cold = "".join("    if (n == %d)\n        t += %d;\n" % (k * 1000 + 7, k * 31 + 3) for k in range(120))
    text = LONG_C.replace(COLD, cold)
    (where / "long.c").write_text(text)
    hot = text[:text.index("s += a[i]")].count("\n") + 1
    job = CompileJob(str(where), "clang", [], ["-O2"], "long.c", "long.o", [])
    tu = HotTU(job.output_path, job.source_path, 0.99, job, ["work"], {"work": {hot: 950, hot - 1: 40}})
    env = {"COOPT_LLM_BASE_URL": server.url, "COOPT_LLM_MODEL": "scripted", "COOPT_LLM_API_KEY_ENV": "",
           "COOPT_LLM_CONTEXT": str(window)}
    ctx = AgentContext(None, [tu], None, True, str(tmp_path / "agents"),  # type: ignore[arg-type]
                       AgentSettings(300.0, Budget(max_evaluations=5), str(tmp_path / "cache"), environ=env),
                       check=checker(JudgeSettings(300.0)))
    agent = make_agent("source", "openai", ctx)
    assert isinstance(agent, SourceLevelAgent)
    prep = agent.prepare(tu, job, "work")
    sent = prep.messages[-1].content
    if whole:
        assert prep.region is None and sent.count("t += ") == 120 and prep.max_tokens > 1600
    else:
        assert prep.region is not None and "t += " not in sent and prep.max_tokens <= 768
    assert not server.requests  # preparing asks nothing


FILES_C = r"""#include <stdio.h>
int main(int argc, char **argv)
{
    FILE *in = fopen(argc > 1 ? argv[1] : "in.txt", "r"), *out = fopen("out.txt", "w");
    int c, n = 0;
    if (!in || !out)
        return 1;
    while ((c = fgetc(in)) != EOF)
        fputc(c >= 'a' && c <= 'z' ? c - 32 : c, out), n++;
    printf("%d\n", n);
    return 0;
}
"""


def test_the_files_a_program_writes_are_compared(tmp_path: Path) -> None:
    """A run's input files are written into its directory first; what the program leaves there is output: a
    candidate that prints the same but writes another out.txt is rejected."""
    from coopt.verify.evidence import Evidence
    from coopt.verify.program_level.differential import ProgramJudge
    from coopt.verify.program_level.inputs import ProgramInput
    from coopt.verify.verdict import Verdict

    require("clang", "nm")
    d = tmp_path / "files"
    d.mkdir()
    (d / "prog.c").write_text(FILES_C)
    (d / "same.c").write_text(FILES_C.replace("c - 32", "c ^ 32"))  # the same for lower-case letters
    (d / "bad.c").write_text(FILES_C.replace("c >= 'a'", "c > 'a'"))  # leaves 'a' alone in the file
    for name in ("prog", "same", "bad"):
        subprocess.run(["clang", "-O2", "-c", "%s.c" % name, "-o", "%s.o" % name], cwd=d, check=True)
    subprocess.run(["clang", "prog.o", "-o", "prog"], cwd=d, check=True)
    link = LinkRecord(str(d), "clang", ["prog.o", "-o", "prog"], "prog", ["prog.o"])
    runs = [ProgramInput(("data.txt",), b"", (("data.txt", b"a banana, a cab\n"),), "llm")]
    verdicts = {}
    for name in ("same", "bad"):
        judge = ProgramJudge(ProgramContext(link, str(tmp_path / "c")), str(tmp_path / ("j-" + name)))
        ev = Evidence("prog.c", name + ".c", Verdict.inconclusive("not run"))
        verdicts[name] = judge.judge(str(d / "prog.o"), str(d / "prog.o"), str(d / ("%s.o" % name)), runs, ev)
    assert verdicts["same"].code.value == "accepted", verdicts["same"]
    assert verdicts["bad"].code.value == "rejected" and "file out.txt differs" in verdicts["bad"].detail
