"""The IR and assembly agents with real clang/LLVM and the real verifier, asked through the real openai SDK over
loopback. The model is the scripted OpenAI-protocol server of test_llm_client.py: it plays a correct rewrite
written by hand (from clang's own output for the function) and the answers a real model gives now and then
(garbage, a changed signature, an extra global, a cut answer), so each corner is shown every time.
"""

from __future__ import annotations

import json
import platform
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Coopt, require
from coopt.agents.levels import AgentContext, AgentSettings, HotTU, NoCandidate, check_levels
from coopt.agents.rewrite.asm import AsmAgent
from coopt.agents.rewrite.ir import IRAgent, param_type, return_type
from coopt.agents.rewrite.lowlevel import DoesNotFit, LowAgent, LowLevelAgent, LowOptions
from coopt.budget import Budget
from coopt.journal.job import CompileJob
from coopt.verify.behaviour import JudgeSettings, checker
from test_llm_client import ProtocolServer, Reply, completion, scripted_client

HOT_C = """#include <stddef.h>

static size_t len_of(const char *s)
{
    size_t n = 0;
    while (s[n] != '\\0')
        n++;
    return n;
}

int count_upper(const char *s)
{
    int n = 0;
    for (size_t i = 0; i < len_of(s); i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            n++;
    return n;
}

int twice(int x)
{
    return 2 * x;
}
"""

MAIN_C = """#include <stdio.h>
int count_upper(const char *s);
int main(void)
{
    const char *cases[] = { "", "A", "a", "Hello, World", "@AZ[", "ZZZzzz", "no upper here", "ABCDEFGHIJKLMNOP" };
    for (unsigned i = 0; i < sizeof cases / sizeof *cases; i++)
        printf("%d\\n", count_upper(cases[i]));
    return 0;
}
"""

# count_upper as one pointer walk: what clang's IR for the function computes, without measuring the string on
# every iteration. {P} is the pointer type of this LLVM (i8* or ptr).
IR_REWRITE = """define dso_local i32 @count_upper({P} noundef %s) {{
entry:
  br label %loop

loop:
  %p = phi {P} [ %s, %entry ], [ %next, %body ]
  %n = phi i32 [ 0, %entry ], [ %n2, %body ]
  %c = load i8, {P} %p, align 1
  %end = icmp eq i8 %c, 0
  br i1 %end, label %done, label %body

body:
  %off = add i8 %c, -65
  %up = icmp ult i8 %off, 26
  %inc = zext i1 %up to i32
  %n2 = add nsw i32 %n, %inc
  %next = getelementptr inbounds i8, {P} %p, i64 1
  br label %loop

done:
  ret i32 %n
}}"""

# The same walk in x86-64 assembly: cmp sets the carry flag for an unsigned 'A'..'Z' offset below 26.
ASM_REWRITE = """\t.text
\t.globl count_upper
count_upper:
\t.cfi_startproc
\txorl\t%eax, %eax
.LBB0_1:
\tmovzbl\t(%rdi), %ecx
\ttestb\t%cl, %cl
\tje\t.LBB0_3
\taddb\t$-65, %cl
\tcmpb\t$26, %cl
\tadcl\t$0, %eax
\tincq\t%rdi
\tjmp\t.LBB0_1
.LBB0_3:
\tretq
\t.cfi_endproc
\t.size count_upper, .-count_upper"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    require("clang", "llvm-as", "llvm-extract")
    (tmp_path / "hot.c").write_text(HOT_C)
    (tmp_path / "main.c").write_text(MAIN_C)
    return tmp_path


def job_for(project: Path, flags: tuple[str, ...] = ("-O2", "-g")) -> CompileJob:
    return CompileJob(str(project), "clang", [], list(flags), "hot.c", "hot.o", [])


def pointer_type(project: Path) -> str:
    """How this LLVM writes a char pointer in IR."""
    out = subprocess.run(["clang", "-O2", "-S", "-emit-llvm", "-o", "-", "hot.c"], cwd=project, check=True,
                         capture_output=True, text=True).stdout
    return "ptr" if "@count_upper(ptr" in out else "i8*"


def ir_rewrite(project: Path) -> str:
    return IR_REWRITE.format(P=pointer_type(project))


@pytest.fixture
def server() -> Iterator[ProtocolServer]:
    with ProtocolServer() as s:
        yield s



def answer(code: str, lang: str, finish: str = "stop") -> Reply:
    return Reply(completion("Here is a faster version:\n```%s\n%s\n```\n" % (lang, code), finish=finish,
                            usage=(500, 120)))


def outputs(project: Path, obj: str) -> str:
    """What main.c prints with `obj` as count_upper's TU: the object must link and run."""
    exe = project / ("run-%s" % Path(obj).stem)
    subprocess.run(["clang", "-o", str(exe), "main.c", obj], cwd=project, check=True, capture_output=True)
    return subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout


def original_outputs(project: Path) -> str:
    subprocess.run(["clang", "-O2", "-c", "hot.c", "-o", "orig.o"], cwd=project, check=True)
    return outputs(project, str(project / "orig.o"))


def need_x86() -> None:
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("the scripted assembly is x86-64")


# ---- the IR agent -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("param, expected", [
    ("i8* nocapture noundef readonly %0", "i8*"),
    ("ptr noundef %s", "ptr"),
    ("%struct.pair* byval(%struct.pair) align 8 %p", "%struct.pair*"),
    ("{ i64, i64 } %x", "{ i64, i64 }"),
    ("<4 x i32> %v", "<4 x i32>"),
    ("i32 (i8*)* %f", "i32 (i8*)*"),
    ("[4 x i8]* %a", "[4 x i8]*"),
    ("...", "..."),
])
def test_param_types(param: str, expected: str) -> None:
    assert param_type(param) == expected


def test_return_types() -> None:
    assert return_type("define dso_local noundef i32 ") == "i32"
    assert return_type("define internal fastcc nonnull align 8 dereferenceable(16) %struct.s* ") == "%struct.s*"
    assert return_type("define { i64, i64 } ") == "{i64,i64}"


def test_the_ir_prompt_shows_the_function_without_debug_records(project: Path, tmp_path: Path) -> None:
    agent = IRAgent(None, str(tmp_path / "w"))  # type: ignore[arg-type]
    prep = agent.prepare(job_for(project), "count_upper")
    user = prep.messages[1].content
    assert "define dso_local i32 @count_upper(" in user and "!dbg" not in user and "llvm.dbg" not in user
    assert "```llvm" in user and "LLVM" in prep.messages[0].content
    # The module the answer goes into is the job's own IR, debug information included.
    assert "!llvm.dbg.cu" in prep.region.module and prep.region.module_path.endswith("hot.ll")


def test_a_correct_ir_rewrite_becomes_an_object_that_links_and_agrees(project: Path, server: ProtocolServer,
                                                                     tmp_path: Path) -> None:
    server.script = [answer(ir_rewrite(project), "llvm")]
    budget = Budget(max_tokens=100_000)
    with scripted_client(server, tmp_path, budget) as model:
        agent = IRAgent(model, str(tmp_path / "w"))
        prep = agent.prepare(job_for(project), "count_upper")
        result = agent.sample(prep, 0)
    assert result.outcome == "built", result.line()
    cand = result.candidate
    assert cand is not None and cand.artifact.endswith(".ll")
    module = Path(cand.artifact).read_text()
    # The original's head (attributes, #N group) with the answer's parameter name and body; the rest of the
    # module (twice, the debug information) untouched.
    assert "%p = phi" in module and "@twice(" in module and "!llvm.dbg.cu" in module
    assert module.count("define dso_local i32 @count_upper(") == 1 and "readonly %s)" in module
    assert cand.recipe[0][0] == "clang" and "-O2" in cand.recipe[0] and cand.recipe[0][-1] == cand.object
    assert outputs(project, cand.object) == original_outputs(project)
    assert result.tokens == 620 == budget.tokens


@pytest.mark.parametrize("code, outcome, detail", [
    ("define dso_local i32 @count_upper({P} %s) {{\n  this is not IR\n}}", "does-not-parse", "error"),
    ("define dso_local i64 @count_upper({P} %s) {{\nentry:\n  ret i64 0\n}}", "changed-signature", "-> i64"),
    ("define dso_local i32 @count_upper({P} %s, i32 %n) {{\nentry:\n  ret i32 0\n}}", "changed-signature",
     "is not the original"),
    ("@counter = global i32 0\n" + IR_REWRITE, "defines-other-symbols", "@counter"),
    (IR_REWRITE + "\ndefine i32 @helper() {{\n  ret i32 1\n}}", "defines-other-symbols", "@helper"),
    ("define dso_local i32 @twice(i32 %x) {{\n  ret i32 %x\n}}", "not-defined", "@count_upper"),
])
def test_ir_answers_that_give_no_candidate(project: Path, server: ProtocolServer, tmp_path: Path, code: str,
                                           outcome: str, detail: str) -> None:
    p = pointer_type(project)
    server.script = [answer(code.format(P=p), "llvm")]
    budget = Budget(max_tokens=100_000)
    with scripted_client(server, tmp_path, budget) as model:
        # No follow-up with the parser's errors: what one answer comes to.
        agent = IRAgent(model, str(tmp_path / "w"), LowOptions(fixes=0))
        result = agent.sample(agent.prepare(job_for(project), "count_upper"), 0)
    assert result.outcome == outcome and detail in result.detail and result.candidate is None, result.line()
    assert result.tokens == 620 == budget.tokens  # a refused answer costs what the server reported
    assert len(server.requests) == 1


def test_cut_garbage_and_repeated_answers(project: Path, server: ProtocolServer, tmp_path: Path) -> None:
    rewrite = ir_rewrite(project)
    server.script = [
        answer(rewrite[:200], "llvm", finish="length"),
        Reply("this is not a chat completion"),
        Reply(completion("Hoist the length out of the loop.", usage=(500, 9))),
        answer(rewrite, "llvm"),
        answer(rewrite, "llvm"),
    ]
    budget = Budget(max_tokens=100_000)
    with scripted_client(server, tmp_path, budget) as model:
        agent = IRAgent(model, str(tmp_path / "w"), LowOptions(fixes=0))  # one answer per sample
        prep = agent.prepare(job_for(project), "count_upper")
        results = [agent.sample(prep, k) for k in range(5)]
    assert [r.outcome for r in results] == ["truncated", "garbage", "no-code", "built", "duplicate"]
    assert all(r.tokens > 0 for r in results) and budget.tokens == sum(r.tokens for r in results)


def test_a_function_too_large_for_the_context_is_refused(project: Path, tmp_path: Path) -> None:
    agent = IRAgent(None, str(tmp_path / "w"), LowOptions(context_tokens=200))  # type: ignore[arg-type]
    with pytest.raises(DoesNotFit, match="its IR, .* does not fit the model's 200-token context"):
        agent.prepare(job_for(project), "count_upper")


def test_a_function_too_large_for_one_answer_is_refused_before_any_token(project: Path, tmp_path: Path) -> None:
    # The answer repeats the whole function: when its text alone passes max_tokens every sample would be cut.
    agent = IRAgent(None, str(tmp_path / "w"), LowOptions(max_tokens=100))  # type: ignore[arg-type]
    with pytest.raises(DoesNotFit, match="its IR, about \\d+ tokens, does not fit one answer of at most 100 tokens"):
        agent.prepare(job_for(project), "count_upper")
    assert IRAgent(None, str(tmp_path / "w2"), LowOptions()).prepare(  # type: ignore[arg-type]
        job_for(project), "count_upper").max_tokens > 100


# ---- the assembly agent -------------------------------------------------------------------------------------------


def test_the_asm_prompt_leaves_out_debug_lines(project: Path, tmp_path: Path) -> None:
    need_x86()
    agent = AsmAgent(None, str(tmp_path / "w"))  # type: ignore[arg-type]
    prep = agent.prepare(job_for(project), "count_upper")
    shown = prep.region.shown
    assert shown.startswith("count_upper:\n") and ".loc" not in shown and "DEBUG_VALUE" not in shown
    assert ".Lfunc_begin" not in shown and ".cfi_startproc" in shown and "ret" in shown
    assert "x86-64" in prep.messages[0].content and "```asm" in prep.messages[1].content


@pytest.mark.parametrize("flags", [("-O2", "-g"), ("-O1",)])
def test_a_correct_asm_rewrite_becomes_an_object_that_links_and_agrees(project: Path, server: ProtocolServer,
                                                                      tmp_path: Path, flags: tuple[str, ...]) -> None:
    need_x86()
    server.script = [answer(ASM_REWRITE, "asm")]
    with scripted_client(server, tmp_path) as model:
        agent = AsmAgent(model, str(tmp_path / "w"))
        result = agent.sample(agent.prepare(job_for(project, flags), "count_upper"), 0)
    assert result.outcome == "built", result.line()
    cand = result.candidate
    assert cand is not None and cand.artifact.endswith(".s")
    text = Path(cand.artifact).read_text()
    # The answer's labels are renamed apart; its .globl/.size lines gave way to the original's.
    assert ".Lcoopt_count_upper_LBB0_1:" in text and text.count(".globl\tcount_upper") == 1
    assert outputs(project, cand.object) == original_outputs(project)


@pytest.mark.parametrize("code, outcome, detail", [
    ("count_upper:\n\tthis is not an instruction\n\tretq", "does-not-assemble", "error"),
    ("count_upper:\n\tcall helper\n\tretq\nhelper:\n\txorl %eax, %eax\n\tretq", "defines-other-symbols", "helper"),
    ("count_upper:\n\t.globl sneaky\n\txorl %eax, %eax\n\tretq", "defines-other-symbols", ".globl sneaky"),
    ("count_upper:\n\t.data\n\t.long 1\n\tretq", "defines-other-symbols", ".data"),
    ("count_upper:\n\tjmp .LBB9_9\n\tretq", "bad-label", ".LBB9_9, which nothing defines"),
    ("count_upper:\n\tjmp .Lfunc_end1\n\tretq", "bad-label", "a label of code outside count_upper"),
    ("twice:\n\tleal (%rdi,%rdi), %eax\n\tretq", "not-defined", "no count_upper: label"),
])
def test_asm_answers_that_give_no_candidate(project: Path, server: ProtocolServer, tmp_path: Path, code: str,
                                            outcome: str, detail: str) -> None:
    need_x86()
    (project / "hot.c").write_text(HOT_C + "int loop_more(int n) { int s = 0; for (int i = 0; i < n; i++) "
                                   "s += i * i; return s; }\n")
    server.script = [answer(code, "asm")]
    budget = Budget(max_tokens=100_000)
    with scripted_client(server, tmp_path, budget) as model:
        agent = AsmAgent(model, str(tmp_path / "w"), LowOptions(fixes=0))
        result = agent.sample(agent.prepare(job_for(project, ("-O1",)), "count_upper"), 0)
    assert result.outcome == outcome and detail in result.detail and result.candidate is None, result.line()
    assert result.tokens == 620 == budget.tokens and len(server.requests) == 1


def test_a_cut_asm_answer_costs_and_gives_nothing(project: Path, server: ProtocolServer, tmp_path: Path) -> None:
    need_x86()
    server.script = [answer(ASM_REWRITE[:90], "asm", finish="length")]
    budget = Budget(max_tokens=100_000)
    with scripted_client(server, tmp_path, budget) as model:
        agent = AsmAgent(model, str(tmp_path / "w"))
        result = agent.sample(agent.prepare(job_for(project), "count_upper"), 0)
    assert result.outcome == "truncated" and result.candidate is None and budget.tokens == result.tokens > 0


# ---- the repair loop: a parser's or assembler's errors go back to the model ----------------------------------------


@pytest.mark.parametrize("level, error, prompt", [
    ("ir", "use of undefined value '%upp'", "```llvm"),
    ("asm", "invalid instruction mnemonic 'incqq'", "does not assemble"),
])
def test_a_module_the_tool_refuses_goes_back_with_its_error(project: Path, server: ProtocolServer, tmp_path: Path,
                                                           level: str, error: str, prompt: str) -> None:
    if level == "asm":
        need_x86()
    good = ir_rewrite(project) if level == "ir" else ASM_REWRITE
    broken = (good.replace("%inc = zext i1 %up to i32", "%inc = zext i1 %upp to i32") if level == "ir"
              else good.replace("\tincq\t%rdi", "\tincqq\t%rdi"))
    fence = "llvm" if level == "ir" else "asm"
    server.script = [answer(broken, fence), answer(good, fence)]
    budget = Budget(max_tokens=100_000)
    with scripted_client(server, tmp_path, budget) as model:
        agent = (IRAgent if level == "ir" else AsmAgent)(model, str(tmp_path / "w"))
        result = agent.sample(agent.prepare(job_for(project), "count_upper"), 0)
    assert result.outcome == "built" and result.candidate is not None, result.line()
    assert outputs(project, result.candidate.object) == original_outputs(project)
    assert len(server.requests) == 2 and result.tokens == 1240 == budget.tokens  # both answers charged
    follow_up = server.requests[1]["json"]["messages"]
    assert [m["role"] for m in follow_up] == ["system", "user", "assistant", "user"]
    assert ("%upp" if level == "ir" else "incqq") in follow_up[2]["content"]
    # llvm-as's or the assembler's own words, about the candidate's file name only, not its scratch directory.
    fix = follow_up[3]["content"]
    assert error in fix and "error:" in fix and prompt in fix and "```%s" % fence in fix
    assert str(tmp_path / "w") not in fix


@pytest.mark.parametrize("level", ["ir", "asm"])
def test_without_fixes_a_broken_answer_is_asked_once(project: Path, server: ProtocolServer, tmp_path: Path,
                                                     level: str) -> None:
    if level == "asm":
        need_x86()
    code = (ir_rewrite(project).replace("%up to i32", "%upp to i32") if level == "ir"
            else ASM_REWRITE.replace("\tincq\t", "\tincqq\t"))
    server.script = [answer(code, "llvm" if level == "ir" else "asm"), answer("unused", "llvm")]
    with scripted_client(server, tmp_path) as model:
        cls = IRAgent if level == "ir" else AsmAgent
        agent = cls(model, str(tmp_path / "w"), LowOptions(fixes=0))
        result = agent.sample(agent.prepare(job_for(project), "count_upper"), 0)
    assert result.candidate is None and result.outcome == ("does-not-parse" if level == "ir"
                                                           else "does-not-assemble"), result.line()
    assert len(server.requests) == 1 and result.tokens == 620


def test_no_fix_is_asked_when_it_would_not_fit_the_context(project: Path, server: ProtocolServer,
                                                           tmp_path: Path) -> None:
    broken = ir_rewrite(project).replace("%up to i32", "%upp to i32")
    server.script = [answer(broken, "llvm")]
    with scripted_client(server, tmp_path) as model:
        agent = IRAgent(model, str(tmp_path / "w"), LowOptions(context_tokens=1400))
        prep = agent.prepare(job_for(project), "count_upper")
        result = agent.sample(prep, 0)
    assert result.outcome == "does-not-parse" and "no room in the context to ask for a fix" in result.detail
    assert len(server.requests) == 1


# ---- the optimizer's levels ---------------------------------------------------------------------------------------


def level_agent(project: Path, tmp_path: Path, agent: LowAgent) -> tuple[LowLevelAgent, HotTU]:
    job = job_for(project)
    tu = HotTU(job.output_path, job.source_path, 0.9, job, ["count_upper"])
    ctx = AgentContext(None, [tu], None, True, str(tmp_path / "agents"),  # type: ignore[arg-type]
                       AgentSettings(300.0, Budget(max_evaluations=5), str(tmp_path / "cache")),
                       check=checker(JudgeSettings(300.0)))
    return LowLevelAgent(ctx, agent.model, agent, testgen=False), tu


@pytest.mark.parametrize("level", ["ir", "asm"])
def test_the_level_hands_over_only_verified_candidates(project: Path, server: ProtocolServer, tmp_path: Path,
                                                       level: str) -> None:
    if level == "asm":
        need_x86()
    good = answer(ir_rewrite(project), "llvm") if level == "ir" else answer(ASM_REWRITE, "asm")
    # Sample 0 counts lower-case letters too: the verifier's inputs reject it. Sample 1 is right.
    wrong = (ir_rewrite(project).replace("%off = add i8 %c, -65", "%off = add i8 %c, -97")
             if level == "ir" else ASM_REWRITE.replace("$-65", "$-97"))
    with scripted_client(server, tmp_path) as model:
        cls = IRAgent if level == "ir" else AsmAgent
        agent, tu = level_agent(project, tmp_path, cls(model, str(tmp_path / "w"), LowOptions(per_proposal=2)))
        server.script = [answer(wrong, "llvm" if level == "ir" else "asm"), good]
        cand = agent.propose(tu, str(tmp_path / "out"))
        assert agent.has_more(tu)
        # Two garbage answers: no candidate, and the proposal says what it spent.
        server.script = [Reply("garbage"), Reply("more garbage")]
        with pytest.raises(NoCandidate) as info:
            agent.propose(tu, str(tmp_path / "out"))
    ev = cand.behaviour
    assert ev is not None and ev.accepted and ev.functions == ["count_upper"]
    assert cand.built.level == level and cand.built.label == "count_upper sample 1"
    assert cand.proposer == "llm/%s (scripted)" % level and cand.tokens == 1240
    assert info.value.tokens > 0 and "sample 2: garbage" in str(info.value)


def test_level_wiring() -> None:
    check_levels(["ir", "asm", "source"], "local")  # every LLM level has an agent module that imports


# ---- end to end: `coopt optimize --levels ir|asm` on examples/naive-strlen ---------------------------------------

# upcase with the string measured once: the hoisting clang cannot do (the stores through dst may alias src).
UPCASE_IR = """define dso_local void @upcase({P} %dst, {P} %src) {{
entry:
  br label %len

len:
  %n = phi i64 [ 0, %entry ], [ %n1, %len ]
  %pc = getelementptr inbounds i8, {P} %src, i64 %n
  %c0 = load i8, {P} %pc, align 1
  %n1 = add i64 %n, 1
  %z = icmp eq i8 %c0, 0
  br i1 %z, label %loop, label %len

loop:
  %i = phi i64 [ 0, %len ], [ %i1, %body ]
  %more = icmp ult i64 %i, %n
  br i1 %more, label %body, label %done

body:
  %ps = getelementptr inbounds i8, {P} %src, i64 %i
  %c = load i8, {P} %ps, align 1
  %off = add i8 %c, -97
  %lower = icmp ult i8 %off, 26
  %up = add i8 %c, -32
  %r = select i1 %lower, i8 %up, i8 %c
  %pd = getelementptr inbounds i8, {P} %dst, i64 %i
  store i8 %r, {P} %pd, align 1
  %i1 = add nuw i64 %i, 1
  br label %loop

done:
  ret void
}}"""

UPCASE_ASM = """upcase:
\t.cfi_startproc
\txorl\t%ecx, %ecx
.Llen:
\tcmpb\t$0, (%rsi,%rcx)
\tje\t.Lgo
\tincq\t%rcx
\tjmp\t.Llen
.Lgo:
\txorl\t%eax, %eax
.Lloop:
\tcmpq\t%rcx, %rax
\tjae\t.Ldone
\tmovzbl\t(%rsi,%rax), %edx
\tleal\t-97(%rdx), %r8d
\tcmpb\t$26, %r8b
\tjae\t.Lstore
\taddb\t$-32, %dl
.Lstore:
\tmovb\t%dl, (%rdi,%rax)
\tincq\t%rax
\tjmp\t.Lloop
.Ldone:
\tretq
\t.cfi_endproc"""


@pytest.mark.slow
@pytest.mark.parametrize("level, garbage", [("ir", False), ("asm", False), ("ir", True)])
def test_optimize_stores_a_verified_variant_that_the_rebuild_uses(coopt: Coopt, tmp_path: Path, level: str,
                                                                  garbage: bool) -> None:
    import json
    import shutil

    from coopt.cache.store import Store

    require("clang", "make", "perf")
    if level == "asm":
        need_x86()
    tree = tmp_path / "naive-strlen"
    shutil.copytree(Path(__file__).resolve().parent.parent / "examples" / "naive-strlen", tree)
    coopt.run(["make", "CC=coopt-cc"], cwd=tree)
    expected = coopt.run(["./upcase"], cwd=tree).stdout
    coopt.coopt("profile", "--quiet", "-o", "profile.json", "--", "./upcase", cwd=tree)
    ptr = "ptr" if "(ptr" in subprocess.run(["clang", "-O2", "-S", "-emit-llvm", "-o", "-", "text.c"], cwd=tree,
                                            check=True, capture_output=True, text=True).stdout else "i8*"
    code = UPCASE_IR.format(P=ptr) if level == "ir" else UPCASE_ASM
    inputs = {"inputs": [{"args": ["Hello, World", "abc xyz"], "why": "mixed case"}]}
    script = [
        Reply(completion("```%s\n%s\n```" % ("llvm" if level == "ir" else "asm", code), usage=(400, 80))),
        Reply(completion("```json\n%s\n```" % json.dumps(inputs), usage=(500, 120))),
    ]
    if garbage:  # the first proposal's two samples come to nothing; the second proposal's first one is right
        script = [Reply(completion("Hoist the length.", usage=(400, 10))), Reply("not a completion"), *script]
    with ProtocolServer() as server:
        server.script = script
        env = {"COOPT_LLM_BASE_URL": server.url, "COOPT_LLM_MODEL": "scripted", "COOPT_LLM_API_KEY_ENV": "",
               "COOPT_LLM_RETRIES": "0"}
        run_dir = tmp_path / "run"
        proc = subprocess.run([str(coopt.bin / "coopt"), "optimize", "--levels", level, "--pairs", "10",
                               "--run-dir", str(run_dir), "--llm", "openai", "--budget", "2" if garbage else "1",
                               *(["--guide", "llm"] if garbage else [])],
                              cwd=tree, env={**coopt.env, **env}, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    state = json.loads((run_dir / "state.json").read_text())
    attempts = state["attempts"]
    if garbage:
        # With --guide llm and a single live arm there is nothing to choose: the model is never asked for it.
        assert "LLM guide: asked 0 time(s), followed 0" in state["notes"]
        # The proposal that came to nothing still reports what it spent: 410 for the prose answer, the garbage
        # answer's whole reservation.
        failed = attempts.pop(0)
        assert failed["verdict"] == "failed" and "sample 1: garbage" in failed["detail"] and failed["tokens"] > 410
    [attempt] = attempts
    assert attempt["verdict"] == "accepted" and attempt["tokens"] == 1100
    assert attempt["label"] == "upcase sample %d" % (2 if garbage else 0)
    [entry] = Store(str(coopt.cache_dir)).entries()
    assert entry.meta["level"] == level and entry.artifact_path.endswith(".ll" if level == "ir" else ".s")
    ev = entry.meta["evidence"]
    assert ev["verified"] is True and ev["verdict"]["code"] == "accepted" and ev["functions"] == ["upcase"]
    assert ev["proposer"]["agent"] == "llm/%s (scripted)" % level and ev["sanitizers"].startswith("asan+ubsan")
    assert all(c["ok"] for c in ev["checks"]) and {"differential", "proposer", "test", "bench"} <= {
        c["name"] for c in ev["checks"]}
    # A clean rebuild takes text.o from the cache, and the program still prints what it printed.
    before = coopt.stats().get("hit", 0)
    coopt.run(["make", "clean"], cwd=tree)
    coopt.run(["make", "CC=coopt-cc"], cwd=tree)
    assert coopt.stats().get("hit", 0) == before + 1
    assert (tree / "text.o").read_bytes() == Path(entry.object_path).read_bytes()
    assert coopt.run(["./upcase"], cwd=tree).stdout == expected
    coopt.run(["make", "check"], cwd=tree)


# ---- compiler passes as tools: the IR agent's run_opt --------------------------------------------------------------


def opt_call(pipeline: object) -> Reply:
    call = {"id": "c1", "type": "function",
            "function": {"name": "run_opt", "arguments": json.dumps({"pipeline": pipeline})}}
    return Reply(completion(None, tool_calls=[call], usage=(500, 20)))


def test_a_run_opt_call_becomes_a_candidate_built_from_opts_module(project: Path, server: ProtocolServer,
                                                                  tmp_path: Path) -> None:
    # reg2mem certainly changes the function's text (every value through an alloca): what matters here is that
    # the module opt wrote is the candidate, builds, and behaves as the original.
    server.script = [opt_call("function(reg2mem)")]
    with scripted_client(server, tmp_path, Budget(max_tokens=100_000)) as model:
        agent = IRAgent(model, str(tmp_path / "w"))
        prep = agent.prepare(job_for(project), "count_upper")
        result = agent.sample(prep, 0)
    assert result.outcome == "built", result.line()
    cand = result.candidate
    assert cand is not None and ".reg2mem" in cand.text and cand.artifact.endswith(".ll")
    assert outputs(project, cand.object) == original_outputs(project)
    request = server.requests[0]["json"]
    assert [t["function"]["name"] for t in request["tools"]] == ["run_opt"]
    assert "run_opt" in request["messages"][0]["content"]


@pytest.mark.parametrize("pipeline, detail", [
    ("default<O3> ; rm -rf /", "needs a pipeline"),
    (["default<O3>"], "needs a pipeline"),
    ("function(no-such-pass)", "failed"),
])
def test_bad_run_opt_calls_give_no_candidate(project: Path, server: ProtocolServer, tmp_path: Path,
                                             pipeline: object, detail: str) -> None:
    budget = Budget(max_tokens=100_000)
    server.script = [opt_call(pipeline)]
    with scripted_client(server, tmp_path, budget) as model:
        agent = IRAgent(model, str(tmp_path / "w"))
        result = agent.sample(agent.prepare(job_for(project), "count_upper"), 0)
    assert result.candidate is None and result.outcome == "bad-tool-call" and detail in result.detail, result.line()
    assert budget.tokens > 0


def test_without_tools_the_request_offers_none(project: Path, server: ProtocolServer, tmp_path: Path) -> None:
    server.script = [answer(ir_rewrite(project), "llvm")]
    with scripted_client(server, tmp_path) as model:
        agent = IRAgent(model, str(tmp_path / "w"), LowOptions(offer_tools=False))
        assert agent.sample(agent.prepare(job_for(project), "count_upper"), 0).outcome == "built"
    request = server.requests[0]["json"]
    assert "tools" not in request and "run_opt" not in request["messages"][0]["content"]


def test_a_token_budget_is_never_overspent(coopt: Coopt, tmp_path: Path) -> None:
    """--budget-tokens: an IR proposal reserves its prompt and answer allowance before it asks, so with 300 tokens
    no request is ever sent and the run ends as budget spent, nothing stored."""
    import shutil

    from coopt.cache.store import Store

    require("clang", "make", "perf")
    tree = tmp_path / "naive-strlen"
    shutil.copytree(Path(__file__).resolve().parent.parent / "examples" / "naive-strlen", tree)
    coopt.run(["make", "CC=coopt-cc"], cwd=tree)
    coopt.coopt("profile", "--quiet", "-o", "profile.json", "--", "./upcase", cwd=tree)
    with ProtocolServer() as server:
        server.script = [opt_call("default<O3>")] * 4
        env = {"COOPT_LLM_BASE_URL": server.url, "COOPT_LLM_MODEL": "scripted", "COOPT_LLM_API_KEY_ENV": "",
               "COOPT_LLM_RETRIES": "0"}
        run_dir = tmp_path / "run"
        proc = subprocess.run([str(coopt.bin / "coopt"), "optimize", "--levels", "ir", "--pairs", "5", "--budget",
                               "4", "--budget-tokens", "300", "--run-dir", str(run_dir), "--llm", "openai"],
                              cwd=tree, env={**coopt.env, **env}, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
        assert server.requests == []
    state = json.loads((run_dir / "state.json").read_text())
    assert state["status"] == "budget-spent" and state["budget"]["tokens"] == 300
    assert sum(a["tokens"] for a in state["attempts"]) <= 300
    assert Store(str(coopt.cache_dir)).entries() == []
