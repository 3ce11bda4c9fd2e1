"""The source-level agent with real clang and the real verifier, asked through the real openai SDK over loopback.

The model is the scripted OpenAI-protocol server of test_llm_client.py: it plays the answers a real model gives
only now and then (garbage, a cut answer, a timeout, code that does not compile, a rewrite that changes
behaviour), so each corner is shown every time. test_source_agent_e2e.py runs the real local model.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import require
from coopt.agents.compiler.tools import ToolError
from coopt.agents.levels import AgentContext, AgentSettings, HotTU, LLMSetupError, check_levels
from coopt.agents.rewrite.checker import undrivable
from coopt.agents.rewrite.context import ExtractError, absolute_flags, extract, identifiers
from coopt.agents.rewrite.prompts import code_blocks
from coopt.agents.rewrite.source import (
    DoesNotFit,
    SourceAgent,
    SourceLevelAgent,
    SourceOptions,
    make_agent,
    pick_block,
)
from coopt.budget import Budget
from coopt.journal.job import CompileJob
from coopt.llm.client import ChatClient
from coopt.verify.behaviour import JudgeSettings, checker
from test_llm_client import ProtocolServer, Reply, completion, scripted_client

DEFS_H = """#ifndef DEFS_H
#define DEFS_H
#define WIDTH 4
typedef struct pair { int a; int b; } pair_t;
enum mode { MODE_PLAIN, MODE_SCALED = 3 };
static inline int in_header(int x) { return x + 1; }
#endif
"""

WEIGHTS = ", ".join(str(i) for i in range(1, 65))

HOT_C = """#include <string.h>
#include "defs.h"

#define SCALE(x) ((x) * WIDTH)
#define UNUSED_MACRO 99

static const int weights[64] = { %s };
int unused_global;
int total;

static size_t len_of(const char *s)
{
    size_t n = 0;
    while (s[n] != '\\0')
        n++;
    return n;
}

int sum_pairs(const pair_t *p, int n)
{
    int s = 0;
    for (int i = 0; i < n; i++)
        s += SCALE(p[i].a) + weights[i & 63] * MODE_SCALED + BIAS;
    total += s;
    return s;
}

int count_upper(const char *s)
{
    int n = 0;
    size_t len = len_of(s);
    for (size_t i = 0; i < len; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            n++;
    return n;
}

#define MAKE_GETTER(name, value) int name(void) { return value; }
MAKE_GETTER(get_seven, 7)

#define local static
local int twice(int x)
{
    return 2 * x;
}

int call_twice(int x) { return twice(x); }
""" % WEIGHTS

# A rewrite: a pointer walk instead of measuring first (the verifier's cost stays linear in the input size).
REWRITE = """int count_upper(const char *s)
{
    int n = 0;
    for (const char *p = s; *p != '\\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            n++;
    return n;
}"""

ORIGINAL = HOT_C[HOT_C.index("int count_upper"):HOT_C.index("#define MAKE")].strip()
# Wrong only for '@', the character just below 'A': no string the built-in generator makes holds one.
AT_SIGN_BUG = REWRITE.replace("*p >= 'A'", "*p >= '@'")
# Wrong on many inputs: it skips the first character.
OFF_BY_ONE = REWRITE.replace("const char *p = s;", "const char *p = *s ? s + 1 : s;")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    require("clang")
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "defs.h").write_text(DEFS_H)
    (tmp_path / "hot.c").write_text(HOT_C)
    (tmp_path / "ptr.c").write_text("int apply(int (*f)(int), int x)\n{\n    return f(x) + f(x);\n}\n")
    return tmp_path


def job_for(project: Path, source: str = "hot.c") -> CompileJob:
    # Relative include path and a command-line macro: the agent must work from the job's own directory.
    return CompileJob(str(project), "clang", [], ["-O2", "-Iinc", "-DBIAS=2"], source, source[:-2] + ".o", [])


@pytest.fixture
def server() -> Iterator[ProtocolServer]:
    with ProtocolServer() as s:
        yield s



def answer(code: str, prose: str = "Here is a faster version:") -> Reply:
    return Reply(completion("%s\n```c\n%s\n```\n" % (prose, code), usage=(300, 90)))


# ---- extraction ---------------------------------------------------------------------------------------------------


def test_extract_takes_what_the_function_uses_and_nothing_else(project: Path) -> None:
    fs = extract(job_for(project), "sum_pairs")
    assert fs.text.startswith("int sum_pairs(const pair_t *p, int n)") and fs.text.rstrip().endswith("}")
    assert fs.head == "int " and not fs.static
    assert HOT_C.encode()[fs.start:fs.end].decode() == fs.text
    ctx = fs.context_text()
    # Macros through macros (SCALE uses WIDTH from the header), the -D macro, the typedef with its struct, the
    # enum through one of its constants, the global without its long initializer, the written global.
    for wanted in ("#define SCALE(x) ((x) * WIDTH)", "#define WIDTH 4", "#define BIAS 2",
                   "typedef struct pair { int a; int b; } pair_t;", "enum mode { MODE_PLAIN, MODE_SCALED = 3 };",
                   "static const int weights[64] = { ... };", "int total;"):
        assert wanted in ctx, (wanted, ctx)
    for unwanted in ("UNUSED_MACRO", "unused_global", "len_of", "in_header", "memcpy", "DEFS_H", WEIGHTS[:20]):
        assert unwanted not in ctx, (unwanted, ctx)
    assert fs.includes == ["#include <string.h>", '#include "defs.h"']
    assert {"SCALE", "weights", "MODE_SCALED", "BIAS", "pair_t", "total"} <= set(fs.uses)


def test_a_macro_leading_the_definition_is_kept_with_it(project: Path) -> None:
    # zlib writes `local` (a macro for static) before its functions: the definition is still in the file.
    fs = extract(job_for(project), "twice")
    assert fs.text.startswith("local int twice(int x)") and fs.text.rstrip().endswith("}") and fs.head == "local int "
    assert HOT_C.encode()[fs.start:fs.end].decode() == fs.text
    assert "#define local static" in fs.context_text()


def test_extract_shows_small_callees_whole(project: Path) -> None:
    fs = extract(job_for(project), "count_upper")
    [callee] = [i for i in fs.context if "len_of" in i.names]
    assert callee.kind == "callee" and "while (s[n] != '\\0')" in callee.text
    assert {"len_of"} == set(fs.uses)


@pytest.mark.parametrize("name, message", [
    ("no_such_function", "is not defined in"),
    ("in_header", "not in the TU's own file"),
    ("get_seven", "defined through a macro"),
])
def test_extract_refuses_with_one_line(project: Path, name: str, message: str) -> None:
    with pytest.raises(ExtractError, match=message) as info:
        extract(job_for(project), name)
    assert "\n" not in str(info.value)


def test_identifiers_come_from_clangs_lexer() -> None:
    require("clang")
    # A comment and a string are not code: only the lexer knows.
    assert identifiers('int f(int x) { /* ghost */ return g("phantom") + x; }') == {"int", "f", "x", "return", "g"}


def test_absolute_flags(project: Path) -> None:
    flags = absolute_flags(job_for(project))
    assert flags[:2] == ["-iquote", str(project)] and "-I%s" % (project / "inc") in flags and "-DBIAS=2" in flags


def test_a_function_too_large_for_the_context_is_refused(project: Path, tmp_path: Path) -> None:
    agent = SourceAgent(model=None, workdir=str(tmp_path / "w"),  # type: ignore[arg-type]
                        options=SourceOptions(context_tokens=300))
    with pytest.raises(DoesNotFit, match="do not fit the model's 300-token context"):
        agent.prepare(job_for(project), "sum_pairs")
    # With a little more room the function fits once the context is left out, largest first.
    roomy = SourceAgent(None, str(tmp_path / "w"), SourceOptions(context_tokens=720))  # type: ignore[arg-type]
    prep = roomy.prepare(job_for(project), "sum_pairs")
    assert prep.dropped and "sum_pairs" in prep.messages[1].content


@pytest.mark.parametrize("text, expected", [
    ("no code at all", []),
    ("```c\nint f(void);\n```", [("c", "int f(void);\n")]),
    ("a\n```C\nx\n```\nb\n```json\n{}\n```", [("c", "x\n"), ("json", "{}\n")]),
    ("```\nplain\n```", [("", "plain\n")]),
    ("```c\nint f(void) {\n  return 1;", []),  # cut off before the closing fence
])
def test_code_blocks(text: str, expected: list[tuple[str, str]]) -> None:
    assert code_blocks(text) == expected


def test_pick_block_prefers_the_one_naming_the_function() -> None:
    text = "```c\n#include <string.h>\n```\n```c\nint count_upper(const char *s) { return 0; }\n```"
    assert pick_block(text, "count_upper") == "int count_upper(const char *s) { return 0; }\n"
    assert pick_block("```python\nprint(1)\n```", "f") is None


# ---- samples through the real SDK ---------------------------------------------------------------------------------


def test_a_good_answer_is_spliced_under_the_original_head_and_compiles(project: Path, server: ProtocolServer,
                                                                       tmp_path: Path) -> None:
    # The model adds `static inline` (a change of the TU's interface), repeats a
    # typedef, brings a helper and a header: the function keeps its own head, the typedef goes, the helper stays
    # (made static), the #include stays.
    code = ("#include <stdint.h>\ntypedef struct pair { int a; int b; } pair_t;\n"
            "int is_upper(char c) { return c >= 'A' && c <= 'Z'; }\n"
            + REWRITE.replace("int count_upper", "static inline int count_upper").replace(
                "if (*p >= 'A' && *p <= 'Z')", "if (is_upper(*p))"))
    server.script = [answer(code)]
    budget = Budget(max_tokens=100_000)
    with scripted_client(server, tmp_path, budget) as model:
        agent = SourceAgent(model, str(tmp_path / "w"))
        prep = agent.prepare(job_for(project), "count_upper")
        result = agent.sample(prep, 0)
    assert result.outcome == "compiled", result.line()
    cand = result.candidate
    assert cand is not None and Path(cand.object).stat().st_size > 0
    assert cand.text.startswith("int count_upper(const char *s)") and "if (is_upper(*p))" in cand.text
    tu = Path(cand.artifact).read_text()
    assert "static int is_upper(char c)" in tu and "#include <stdint.h>" in tu
    assert tu.count("typedef struct pair") == 0  # it lives in defs.h; the answer's copy was dropped
    assert tu.count("int count_upper(") == 1 and "int sum_pairs(const pair_t *p, int n)" in tu
    assert cand.recipe[0][0] == "clang" and cand.recipe[0][-1] == cand.object
    assert result.tokens == 390 == budget.tokens == agent.tokens  # what the server reported
    [req] = server.requests
    sent = req["json"]
    assert sent["temperature"] == 0.0 and sent["seed"] == 0 and sent["max_tokens"] == prep.max_tokens
    user = sent["messages"][1]["content"]
    assert "len_of" in user and "```c\nint count_upper" in user and '#include "defs.h"' in user
    assert "alias" in sent["messages"][0]["content"] and "NaN" in sent["messages"][0]["content"]


def test_answers_that_give_no_candidate(project: Path, server: ProtocolServer, tmp_path: Path) -> None:
    server.script = [
        Reply("this is not a chat completion"),
        Reply(completion("```c\nint count_upper(const char *s)\n{\n    int n", finish="length", usage=(300, 40))),
        Reply(completion("Just hoist the call out of the loop.", usage=(300, 9))),
        answer("int something_else(void) { return 0; }"),
        answer(ORIGINAL),
        answer(REWRITE),
        answer(REWRITE),  # the same rewrite again, as a later sample
    ]
    budget = Budget(max_tokens=100_000)
    with scripted_client(server, tmp_path, budget) as model:
        agent = SourceAgent(model, str(tmp_path / "w"), SourceOptions(fixes=0))  # one answer per sample
        prep = agent.prepare(job_for(project), "count_upper")
        results = [agent.sample(prep, k) for k in range(7)]
    outcomes = [r.outcome for r in results]
    assert outcomes == ["garbage", "truncated", "no-code", "not-defined", "unchanged", "compiled", "duplicate"]
    assert all(r.candidate is None for i, r in enumerate(results) if i != 5)
    # Every answer cost something: the garbage one its whole reservation, the others what the server reported.
    assert results[0].tokens > prep.max_tokens and [r.tokens for r in results[1:]] == [340, 309, 390, 390, 390, 390]
    assert budget.tokens == sum(r.tokens for r in results)
    # Samples after the first are seeded samples at a temperature: different requests, different transcripts.
    sent = [r["json"] for r in server.requests]
    assert [s["seed"] for s in sent] == list(range(7)) and {s["temperature"] for s in sent[1:]} == {0.7}


def test_a_timeout_costs_the_reservation_and_gives_nothing(project: Path, server: ProtocolServer,
                                                           tmp_path: Path) -> None:
    server.script = [Reply(completion("late"), delay=30)]
    budget = Budget(max_tokens=100_000)
    with scripted_client(server, tmp_path, budget, timeout=0.5) as model:
        agent = SourceAgent(model, str(tmp_path / "w"))
        prep = agent.prepare(job_for(project), "count_upper")
        result = agent.sample(prep, 0)
    assert result.outcome == "timeout" and result.candidate is None
    assert result.tokens == budget.tokens > prep.max_tokens


def test_a_compile_error_goes_back_to_the_model_once(project: Path, server: ProtocolServer, tmp_path: Path) -> None:
    broken = REWRITE.replace("int n = 0;", "int n = length_of(s) +;")
    other = broken.replace("+;", "*;")
    server.script = [answer(broken), answer(REWRITE), answer(other), answer(other.replace("*;", "/;"))]
    with scripted_client(server, tmp_path) as model:
        agent = SourceAgent(model, str(tmp_path / "w"), SourceOptions(fixes=1))
        prep = agent.prepare(job_for(project), "count_upper")
        fixed = agent.sample(prep, 0)
        still_broken = agent.sample(prep, 1)
    assert fixed.outcome == "compiled" and fixed.candidate is not None
    assert still_broken.outcome == "does-not-compile" and "error" in still_broken.detail
    follow_up = server.requests[1]["json"]["messages"]
    assert [m["role"] for m in follow_up] == ["system", "user", "assistant", "user"]
    assert "n = length_of(s) +;" in follow_up[2]["content"]
    # The error as the compiler said it, about the original file's name, not the candidate's scratch path.
    assert "does not compile" in follow_up[3]["content"] and "error:" in follow_up[3]["content"]
    assert "hot.c" in follow_up[3]["content"] and str(tmp_path / "w") not in follow_up[3]["content"]
    assert len(server.requests) == 4


def test_an_unchanged_or_repeated_answer_is_asked_again_once(project: Path, server: ProtocolServer,
                                                             tmp_path: Path) -> None:
    server.script = [answer(ORIGINAL), answer(REWRITE), answer(REWRITE), answer(REWRITE)]
    with scripted_client(server, tmp_path) as model:
        agent = SourceAgent(model, str(tmp_path / "w"), SourceOptions(fixes=1))
        prep = agent.prepare(job_for(project), "count_upper")
        first = agent.sample(prep, 0)  # the original, then (asked again) a rewrite
        second = agent.sample(prep, 1)  # that rewrite again, twice
    assert first.outcome == "compiled" and first.candidate is not None
    assert second.outcome == "duplicate" and second.candidate is None
    assert len(server.requests) == 4
    for request, says in ((server.requests[1], "unchanged"), (server.requests[3], "same code as an earlier")):
        messages = request["json"]["messages"]
        assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
        assert says in messages[3]["content"]
    assert "int count_upper" in server.requests[1]["json"]["messages"][2]["content"]  # the answer it is about


def test_candidates_gives_several_samples(project: Path, server: ProtocolServer, tmp_path: Path) -> None:
    server.script = [answer(REWRITE), answer(AT_SIGN_BUG), Reply("garbage")]
    with scripted_client(server, tmp_path) as model:
        cands, results = SourceAgent(model, str(tmp_path / "w")).candidates(job_for(project), "count_upper", 3)
    assert [c.sample for c in cands] == [0, 1] and [r.outcome for r in results] == ["compiled", "compiled", "garbage"]
    assert len({Path(c.artifact).read_text() for c in cands}) == 2


# ---- the optimizer's level: candidates only with the verifier's accepted evidence --------------------------------


def level_agent(project: Path, tmp_path: Path, model: ChatClient, functions: tuple[str, ...] = ("count_upper",),
                source: str = "hot.c", fuzz_seconds: float = 0.0,
                **options: object) -> tuple[SourceLevelAgent, HotTU]:
    job = job_for(project, source)
    tu = HotTU(job.output_path, job.source_path, 0.9, job, list(functions))
    ctx = AgentContext(None, [tu], None, True, str(tmp_path / "agents"),  # type: ignore[arg-type]
                       AgentSettings(300.0, Budget(max_evaluations=5), str(tmp_path / "cache")),
                       check=checker(JudgeSettings(300.0, fuzz_seconds=fuzz_seconds)))
    return SourceLevelAgent(ctx, model, SourceOptions(**options)), tu  # type: ignore[arg-type]


def inputs_reply(*args: list) -> Reply:
    body = json.dumps({"inputs": [{"args": a, "why": "edge"} for a in args]})
    return Reply(completion("```json\n%s\n```" % body, usage=(200, 60)))


def test_level_agent_hands_over_only_verified_candidates(project: Path, server: ProtocolServer,
                                                         tmp_path: Path) -> None:
    # Sample 0 skips the last character: the verifier's own inputs reject it. Sample 1 is right.
    server.script = [answer(OFF_BY_ONE), inputs_reply(["Hello"], ["AZ@["]), answer(REWRITE)]
    with scripted_client(server, tmp_path) as model:
        agent, tu = level_agent(project, tmp_path, model, per_proposal=2, samples=4)
        cand = agent.propose(tu, str(tmp_path / "out"))
        assert agent.has_more(tu)
    ev = cand.behaviour
    assert ev is not None and ev.accepted and ev.functions == ["count_upper"]
    assert cand.built.level == "source" and cand.built.label == "count_upper sample 1"
    assert Path(cand.built.object_path).is_file() and cand.built.artifact_path.endswith(".c")
    assert cand.proposer == "llm/source (scripted)" and cand.tokens > 0
    assert ev.sanitizers.startswith("asan+ubsan")
    sources = {k for fi in ev.inputs for k in fi.sources}
    assert sources == {"edge", "llm"}
    [proposer] = [c for c in ev.checks if c.name == "proposer"]
    assert "scripted" in proposer.detail and "2 inputs from the test-generation agent" in proposer.detail
    # The test-generation agent was asked once, about the original, with the parameter's role spelled out.
    tg = server.requests[1]["json"]["messages"]
    assert "JSON" in tg[0]["content"] and "1. s (const char *): a C string" in tg[1]["content"]


def test_fuzz_seconds_fuzz_an_accepted_rewrite(project: Path, server: ProtocolServer, tmp_path: Path) -> None:
    """[optimize] fuzz_seconds reaches the verifier: the accepted candidate's evidence has a libFuzzer run."""
    server.script = [answer(REWRITE), inputs_reply(["Hello"])]
    with scripted_client(server, tmp_path) as model:
        agent, tu = level_agent(project, tmp_path, model, fuzz_seconds=2.0, per_proposal=1, samples=1)
        cand = agent.propose(tu, str(tmp_path / "out"))
    ev = cand.behaviour
    assert ev is not None and ev.accepted
    [fuzz] = [c for c in ev.checks if c.name == "fuzz"]
    assert "UNSUPPORTED" not in fuzz.detail and ev.fuzz, fuzz.detail


def test_a_rewrite_that_changes_behaviour_never_becomes_a_candidate(project: Path, server: ProtocolServer,
                                                                      tmp_path: Path) -> None:
    server.script = [answer(OFF_BY_ONE), Reply("garbage"), Reply("more garbage")]
    with scripted_client(server, tmp_path) as model:
        agent, tu = level_agent(project, tmp_path, model, per_proposal=2, samples=2)
        with pytest.raises(ToolError) as info:
            agent.propose(tu, str(tmp_path / "out"))
        assert not agent.has_more(tu)
    message = str(info.value)
    assert "sample 0: REJECTED (return-value)" in message and "sample 1: garbage" in message


def test_a_bug_on_a_literal_is_caught_with_or_without_the_testgen_agent(project: Path,
                                                                                 server: ProtocolServer,
                                                                                 tmp_path: Path) -> None:
    # The '@' bug used to pass the built-in generator (no '@' in its strings); since issue 12 the constants mined
    # from the candidate's own code put '@' into the built-in strings, so it is caught without the model...
    server.script = [answer(AT_SIGN_BUG)]
    with scripted_client(server, tmp_path) as model:
        agent, tu = level_agent(project, tmp_path / "a", model, per_proposal=1)
        agent.testgen = None
        with pytest.raises(ToolError, match=r"REJECTED \(return-value\): count_upper: .*'@'"):
            agent.propose(tu, str(tmp_path / "out"))
    # ...and with the model's inputs too (which input shows it first depends on the order of the sources).
    # TODO: a bug only the test-generation agent's inputs reach, now that literals are mined (see the notes).
    server.script = [answer(AT_SIGN_BUG), inputs_reply(["x@y"], [{"repeat": "Az", "count": 50}], ["bad", 1])]
    with scripted_client(server, tmp_path / "b") as model:
        agent, tu = level_agent(project, tmp_path / "b", model, per_proposal=1)
        with pytest.raises(ToolError, match=r"REJECTED \(return-value\): count_upper: .*@"):
            agent.propose(tu, str(tmp_path / "out"))


def test_a_function_the_verifier_cannot_drive_is_not_asked_about(project: Path, server: ProtocolServer,
                                                                   tmp_path: Path) -> None:
    with scripted_client(server, tmp_path) as model:
        agent, tu = level_agent(project, tmp_path, model, ("apply", "no_such_function"), "ptr.c")
        with pytest.raises(ToolError) as info:
            agent.propose(tu, str(tmp_path / "out"))
        assert not agent.has_more(tu)
    assert "apply: the verifier's harness cannot drive it (parameter 1 (f): function pointer)" in str(info.value)
    assert "no_such_function is not defined in" in str(info.value) and server.requests == []


def test_a_static_function_inlined_into_every_caller_is_judged_by_the_program(tmp_path: Path) -> None:
    # bench strlen_loop: `static void upper_copy` is inlined into main at -O2, so neither the original's object nor
    # any rewrite's has the symbol the harness would call; every rewrite was rejected "does not define upper_copy".
    require("clang")
    (tmp_path / "t.c").write_text(
        "static int twice(int x) { return 2 * x; }\n"
        "static int fact(int n) { return n < 2 ? 1 : n * fact(n - 1); }\n"
        "int sum(int n) { int s = 0; for (int i = 0; i < n; i++) s += twice(i); return s; }\n"
        "int (*pick(void))(int) { return fact; }\n")
    job = CompileJob(str(tmp_path), "clang", [], ["-O2"], "t.c", "t.o", [])
    assert "inlined into every caller" in undrivable(job, "twice")
    assert undrivable(job, "fact") == ""  # its address is taken: the object defines it
    assert undrivable(job, "sum") == ""
    at_o0 = CompileJob(str(tmp_path), "clang", [], ["-O0"], "t.c", "t.o", [])
    assert undrivable(at_o0, "twice") == ""  # not inlined at -O0


def test_level_wiring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_levels(["source", "flags"], "local")  # the factory imports
    ctx = AgentContext(None, [], None, True, str(tmp_path),  # type: ignore[arg-type]
                       AgentSettings(60.0, Budget(max_evaluations=1), str(tmp_path / "cache")))
    monkeypatch.delenv("COOPT_LLM_BASE_URL", raising=False)
    with pytest.raises(LLMSetupError, match="COOPT_LLM_BASE_URL"):
        make_agent("source", "openai", ctx)
    monkeypatch.setenv("COOPT_LLM_CONTEXT", "many")
    with pytest.raises(LLMSetupError, match="COOPT_LLM_CONTEXT='many' is not a whole number"):
        make_agent("source", "openai", ctx)


def test_the_example_builds_and_passes_its_check(tmp_path: Path) -> None:
    require("clang", "make")
    tree = tmp_path / "naive-strlen"
    shutil.copytree(Path(__file__).resolve().parent.parent / "examples" / "naive-strlen", tree)
    subprocess.run(["make", "CC=clang", "check"], cwd=tree, check=True, capture_output=True)
