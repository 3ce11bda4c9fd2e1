"""The LLM levels talk with the judge: feedback (a rejection's reproducer, a measured speed-up) continues the
function's conversation, compiler tools (remarks, assembly, IR, opt, the micro-benchmark) are run when the model
asks for them, natively or as JSON in its text, and the test-generation agent's speed inputs time the function.

The model is the scripted OpenAI-protocol server over loopback (the requests it received are what is asserted);
clang, opt and the verifier are real.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Coopt, require
from coopt.agents.feedback import Feedback, Kind
from coopt.agents.levels import AgentContext, AgentSettings, HotTU
from coopt.agents.rewrite.source import SourceLevelAgent, SourceOptions
from coopt.budget import Budget
from coopt.llm.client import ChatClient
from coopt.optimize.search.attempt import feedback
from coopt.optimize.state import AttemptRecord, Outcome
from coopt.verify.behaviour import JudgeSettings, checker
from coopt.verify.evidence import Evidence, Interval
from coopt.verify.verdict import Reason, Reproducer, Verdict
from test_llm_client import ProtocolServer, Reply, completion, scripted_client
from test_source_agent import DEFS_H, HOT_C, OFF_BY_ONE, REWRITE, answer, inputs_reply, job_for


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """test_source_agent.py's project: hot.c with count_upper, a header in inc/."""
    require("clang")
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "defs.h").write_text(DEFS_H)
    (tmp_path / "hot.c").write_text(HOT_C)
    return tmp_path


@pytest.fixture
def server() -> Iterator[ProtocolServer]:
    with ProtocolServer() as s:
        yield s


def level_agent(project: Path, tmp_path: Path, model: ChatClient, tools: str = "native", tool_calls: int = 3,
                log_dir: str = "", testgen: bool = True, **options: object) -> tuple[SourceLevelAgent, HotTU]:
    job = job_for(project)
    tu = HotTU(job.output_path, job.source_path, 0.9, job, ["count_upper"])
    settings = AgentSettings(300.0, Budget(max_evaluations=5), str(tmp_path / "cache"), log_dir=log_dir,
                             tool_calls=tool_calls)
    ctx = AgentContext(None, [tu], None, True, str(tmp_path / "agents"), settings,  # type: ignore[arg-type]
                       check=checker(JudgeSettings(300.0)))
    agent = SourceLevelAgent(ctx, model, SourceOptions(**options), testgen=testgen,  # type: ignore[arg-type]
                             tools=tools)
    return agent, tu


def native_call(name: str, arguments: dict, call_id: str = "call_1") -> Reply:
    calls = [{"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}]
    return Reply(completion(None, tool_calls=calls, finish="tool_calls", usage=(300, 20)))


def messages(server: ProtocolServer, n: int) -> list[dict]:
    return server.requests[n]["json"]["messages"]


# ---- feedback --------------------------------------------------------------------------------------------------


def test_the_second_answer_sees_the_first_rejections_reproducer(project: Path, server: ProtocolServer,
                                                                 tmp_path: Path) -> None:
    server.script = [answer(OFF_BY_ONE), inputs_reply(["Hello"]), answer(REWRITE)]
    with scripted_client(server, tmp_path) as model:
        agent, tu = level_agent(project, tmp_path, model, per_proposal=2, samples=4)
        cand = agent.propose(tu, str(tmp_path / "out"))
    assert cand.built.label == "count_upper sample 1"
    first, second = messages(server, 0), messages(server, 2)
    assert len(first) == 2
    # The second question continues the first: its answer, then the verifier's reproducer.
    assert second[:2] == first and second[2]["role"] == "assistant" and "*s ? s + 1 : s" in second[2]["content"]
    told = second[3]["content"]
    assert second[3]["role"] == "user" and "count_upper sample 0" in told
    assert "the harness rejected it" in told and "REJECTED (return-value)" in told
    assert "The input that shows it (found by edge): count_upper(s=" in told, told


def test_a_speed_up_reaches_the_model_in_the_next_proposal(project: Path, server: ProtocolServer,
                                                          tmp_path: Path) -> None:
    server.script = [answer(REWRITE), answer(REWRITE.replace("int n = 0;", "int n = 0; /* v2 */"))]
    with scripted_client(server, tmp_path) as model:
        agent, tu = level_agent(project, tmp_path, model, testgen=False, per_proposal=1, samples=4)
        cand = agent.propose(tu, str(tmp_path / "out"))
        # What the optimizer builds from its judged attempt (optimize/search/attempt.py), then hands to the agent.
        rec = AttemptRecord(1, tu.object, tu.source, "source", cand.built.label, cand.proposer, Outcome.ACCEPTED,
                            "speed-up", Interval(1.314, 1.25, 1.38, "cpu"))
        told = feedback(rec, 1.02)
        assert told.kind is Kind.TIMED
        agent.learn(tu, told)
        agent.propose(tu, str(tmp_path / "out"))
    follow = messages(server, 1)
    assert follow[2]["role"] == "assistant" and follow[3]["role"] == "user"
    assert "ran 1.314x as fast as the original (95% interval 1.250 to 1.380" in follow[3]["content"]
    assert "count_upper sample 0" in follow[3]["content"]


def test_feedback_of_each_judgment() -> None:
    rec = AttemptRecord(1, "a.o", "a.c", "source", "f sample 0", "llm/source", Outcome.REJECTED,
                        "test: output differs on line 3")
    told = feedback(rec, 1.02)
    assert told.kind is Kind.REJECTED and told.check == "project test" and "line 3" in told.text()
    rec.verdict, rec.detail = Outcome.FAILED, "no verified source candidate"
    assert feedback(rec, 1.02).kind is Kind.NO_CANDIDATE
    rec.verdict = Outcome.DUPLICATE
    assert "same object" in feedback(rec, 1.02).text()
    # Which check caught it, from the verifier's verdict and the source of the reproducer's input.
    def judged(verdict: Verdict) -> Feedback:
        return Feedback.from_evidence(Evidence("a.c", "b.c", verdict), "f sample 2")

    fuzzed = judged(Verdict.rejected(Reason.RETURN_VALUE, "f: 3 vs 4", Reproducer("f", "f(x=7)", source="libfuzzer")))
    assert fuzzed.check == "fuzzer" and "(found by libfuzzer): f(x=7)" in fuzzed.text()
    assert judged(Verdict.rejected(Reason.SANITIZER, "asan", Reproducer("f", "f(x=0)", source="edge"))).check \
        == "sanitizer"
    assert judged(Verdict.rejected(Reason.FORBIDDEN_CALL, "calls system")).check == "screen"
    assert "could not be shown to behave like the original" in judged(Verdict.timeout("past 900 s")).text()
    long = Feedback(Kind.REJECTED, "x", "harness", "d", inputs="A" * 5000)
    assert len(long.text()) < 1000 and "more characters" in long.text()


# ---- compiler tools --------------------------------------------------------------------------------------------


def test_native_tool_calls_are_run_and_their_results_reach_the_model(project: Path, server: ProtocolServer,
                                                                      tmp_path: Path) -> None:
    server.script = [native_call("remarks", {"flags": ["-O2"]}), native_call("show_asm", {}, "c2"),
                     native_call("show_ir", {}, "c3"), answer(REWRITE)]
    with scripted_client(server, tmp_path) as model:
        agent, tu = level_agent(project, tmp_path, model, testgen=False, per_proposal=1, tool_calls=4)
        agent.propose(tu, str(tmp_path / "out"))
    offered = {t["function"]["name"] for t in server.requests[0]["json"]["tools"]}
    assert offered == {"remarks", "show_asm", "show_ir", "try_opt"}
    last = messages(server, 3)
    tool_msgs = [m for m in last if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_msgs] == ["call_1", "c2", "c3"]
    remarks, asm, ir = (m["content"] for m in tool_msgs)
    assert remarks.startswith("line ") and ("not vectorized" in remarks or "loop" in remarks), remarks
    assert asm.startswith("count_upper:") and "ret" in asm and ".loc" not in asm
    assert ir.startswith("define") and "@count_upper(" in ir and "!dbg" not in ir
    # The assistant turns that asked are in the conversation with their calls.
    asked = [m for m in last if m["role"] == "assistant"]
    assert [m["tool_calls"][0]["function"]["name"] for m in asked] == ["remarks", "show_asm", "show_ir"]


def test_json_in_text_tool_calls_for_models_without_tool_calling(project: Path, server: ProtocolServer,
                                                                  tmp_path: Path) -> None:
    call = '{"name": "try_opt", "arguments": {"pipeline": "function(loop-unroll<O3>,instcombine)"}}'
    server.script = [Reply(completion(call)), Reply(completion('{"name": "try_opt", "arguments": '
                                                              '{"pipeline": "no-such-pass"}}')), answer(REWRITE)]
    with scripted_client(server, tmp_path) as model:
        agent, tu = level_agent(project, tmp_path, model, tools="text", testgen=False, per_proposal=1)
        cand = agent.propose(tu, str(tmp_path / "out"))
    assert cand.behaviour is not None and cand.behaviour.accepted
    first = server.requests[0]["json"]
    assert "tools" not in first and "try_opt(pipeline)" in first["messages"][0]["content"]
    last = messages(server, 2)
    results = [m["content"] for m in last if m["role"] == "user" and m["content"].startswith("Result of try_opt")]
    assert len(results) == 2
    assert "define" in results[0] and "@count_upper(" in results[0]
    assert "error: opt refused the pipeline" in results[1]


def test_tool_calls_per_answer_are_bounded(project: Path, server: ProtocolServer, tmp_path: Path) -> None:
    three = [{"id": "c%d" % i, "type": "function", "function": {"name": "show_ir", "arguments": "{}"}}
             for i in range(3)]
    server.script = [Reply(completion(None, tool_calls=three, finish="tool_calls")), answer(REWRITE)]
    with scripted_client(server, tmp_path) as model:
        agent, tu = level_agent(project, tmp_path, model, testgen=False, per_proposal=1, tool_calls=2)
        agent.propose(tu, str(tmp_path / "out"))
    assert len(server.requests) == 2
    tool_msgs = [m["content"] for m in messages(server, 1) if m["role"] == "tool"]
    assert tool_msgs[0].startswith("define") and tool_msgs[1].startswith("define")
    assert tool_msgs[2].startswith("not run: at most 2 tool calls per answer")
    # Once the bound is reached the request offers no tools: the model must write its answer.
    assert "tools" in server.requests[0]["json"] and "tools" not in server.requests[1]["json"]


def test_a_rerun_of_the_conversation_is_free_and_logged(project: Path, server: ProtocolServer,
                                                        tmp_path: Path) -> None:
    server.script = [native_call("remarks", {}), answer(OFF_BY_ONE), answer(REWRITE)]
    logs = tmp_path / "run" / "conversations"
    for round_ in ("first", "again"):
        with scripted_client(server, tmp_path) as model:
            agent, tu = level_agent(project, tmp_path / round_, model, testgen=False, per_proposal=2,
                                    log_dir=str(logs))
            agent.agent.offer.cache_dir = str(tmp_path / "llm" / "tools")  # type: ignore[union-attr]
            cand = agent.propose(tu, str(tmp_path / round_ / "out"))
        assert cand.built.label == "count_upper sample 1"
        if round_ == "first":
            assert len(server.requests) == 3
    assert len(server.requests) == 3  # the rerun was answered from the transcript and tool caches
    events = [json.loads(ln) for ln in (logs / "source.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds.count("tool") == 2 and kinds.count("feedback") == 2 and kinds.count("answer") == 6
    assert any("REJECTED (return-value)" in e.get("text", "") for e in events if e["event"] == "feedback")


# ---- speed inputs and the micro-benchmark ---------------------------------------------------------------------


def test_speed_inputs_time_the_function_and_the_micro_benchmark_tool_reports_it(project: Path,
                                                                                 server: ProtocolServer,
                                                                                 tmp_path: Path) -> None:
    body = {"inputs": [{"args": ["Hello"]}], "speed": [{"args": [{"repeat": "Hello World ", "count": 4000}],
                                                         "why": "a long text"}]}
    tests = Reply(completion("```json\n%s\n```" % json.dumps(body)))
    server.script = [native_call("micro_benchmark", {"code": REWRITE}), tests, answer(REWRITE)]
    with scripted_client(server, tmp_path) as model:
        agent, tu = level_agent(project, tmp_path, model, per_proposal=1)
        cand = agent.propose(tu, str(tmp_path / "out"))
    offered = {t["function"]["name"] for t in server.requests[0]["json"]["tools"]}
    assert "micro_benchmark" in offered
    # The test-generation agent was asked for speed inputs, and they timed both sides.
    assert '"speed"' in messages(server, 1)[1]["content"]
    [result] = [m["content"] for m in messages(server, 2) if m["role"] == "tool"]
    assert result.startswith("behaves like the original; on the speed inputs it ran"), result
    if shutil.which("perf"):  # the candidate's hottest instructions, from perf in the sandbox
        assert "hottest instructions" in result and re.search(r"\d+\.\d%  [0-9a-f]+:  \w+", result), result
    ev = cand.behaviour
    assert ev is not None and ev.accepted and ev.micro is not None and ev.micro.method == "wall"
    assert cand.micro is ev.micro and ev.micro.low <= ev.micro.ratio <= ev.micro.high
    assert any(k == "llm-speed" for fi in ev.inputs for k in fi.sources)
    # What the optimizer records with the attempt and says to the model after the whole-program A/B.
    rec = AttemptRecord(1, tu.object, tu.source, "source", cand.built.label, cand.proposer, Outcome.ACCEPTED,
                        "", Interval(1.1, 1.05, 1.15, "cpu"), micro=cand.micro)
    assert "On the speed inputs alone, the function itself ran" in feedback(rec, 1.02).text()


@pytest.mark.parametrize("level", ["ir", "asm"])
def test_the_low_levels_are_offered_the_tools_too(project: Path, server: ProtocolServer, tmp_path: Path,
                                                  level: str) -> None:
    from coopt.agents.rewrite.asm import AsmAgent
    from coopt.agents.rewrite.ir import IRAgent
    from coopt.agents.rewrite.lowlevel import LowLevelAgent

    server.script = [native_call("remarks", {"flags": ["-O3"]}), Reply("garbage")]
    job = job_for(project)
    tu = HotTU(job.output_path, job.source_path, 0.9, job, ["count_upper"])
    ctx = AgentContext(None, [tu], None, True, str(tmp_path / "agents"),  # type: ignore[arg-type]
                       AgentSettings(300.0, Budget(max_evaluations=5), str(tmp_path / "cache")),
                       check=checker(JudgeSettings(300.0)))
    with scripted_client(server, tmp_path) as model:
        make = IRAgent if level == "ir" else AsmAgent
        agent = LowLevelAgent(ctx, model, make(model, str(tmp_path / level)), testgen=False)
        with pytest.raises(Exception, match="garbage"):
            agent.propose(tu, str(tmp_path / "out"))
    offered = {t["function"]["name"] for t in server.requests[0]["json"]["tools"]}
    assert {"remarks", "show_asm", "show_ir", "try_opt"} <= offered
    [result] = [m["content"] for m in messages(server, 1) if m["role"] == "tool"]
    assert result.startswith("line ") or result.startswith("no missed-optimization remarks"), result


# ---- through the optimizer -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_optimizer_tells_the_agent_its_speed_up_and_records_the_micro_benchmark(coopt: Coopt,
                                                                                    tmp_path: Path) -> None:
    """coopt optimize on examples/naive-strlen: the first proposal is judged on the whole program, the agent's next
    question carries the measured speed-up; the attempt records the micro-benchmark on the speed inputs."""
    from test_source_agent_e2e import HOISTED, build_example, optimize

    tree, _ = build_example(coopt, tmp_path)
    body = {"inputs": [{"args": ["Hello, World", "abc"]}],
            "speed": [{"args": [{"repeat": "x", "count": 3000}, {"repeat": "hello world ", "count": 250}],
                       "why": "a long text, as main.c upper-cases"}]}
    with ProtocolServer() as server:
        server.script = [Reply(completion("```c\n%s\n```" % HOISTED, usage=(400, 80))),
                         Reply(completion("```json\n%s\n```" % json.dumps(body), usage=(500, 120))),
                         Reply("garbage"), Reply("garbage")]
        env = {"COOPT_LLM_BASE_URL": server.url, "COOPT_LLM_MODEL": "scripted", "COOPT_LLM_API_KEY_ENV": "",
               "COOPT_LLM_RETRIES": "0"}
        state = optimize(coopt, tree, tmp_path / "run", env, "--llm", "openai", "--budget", "2")
    first = state["attempts"][0]
    assert first["verdict"] == "accepted" and first["micro"] is not None, first
    assert first["micro"]["method"] == "wall" and first["micro"]["low"] <= first["micro"]["ratio"]
    follow = server.requests[2]["json"]["messages"]
    told = follow[3]["content"]
    assert follow[2]["role"] == "assistant" and "size_t n = text_length(src);" in follow[2]["content"]
    assert "ran %.3fx as fast as the original" % first["interval"]["ratio"] in told, told
    assert "On the speed inputs alone, the function itself ran %.3fx" % first["micro"]["ratio"] in told
    # Where the candidate spends its time: perf's samples of its side program on the speed inputs.
    assert "Where it now spends its time" in told and "hottest instructions" in told, told
    log = [json.loads(ln) for ln in (tmp_path / "run" / "conversations" / "source.jsonl").read_text().splitlines()]
    assert any(e["event"] == "feedback" and e["kind"] == "timed" for e in log)
    md = coopt.coopt("report", "--run", str(tmp_path / "run")).stdout
    assert "(function alone: %.3fx [" % first["micro"]["ratio"] in md


@pytest.mark.slow
def test_the_local_model_is_offered_the_tools_as_json_in_text(project: Path, tmp_path: Path) -> None:
    """The real local 1.5B model through the embedded llama.cpp server, tools described in the system prompt:
    whatever it does (call a tool, write code), every call it writes is run and its result is the next message,
    and the whole conversation is in the run directory's log."""
    pytest.importorskip("xllamacpp", reason="the local provider needs xllamacpp (make test installs it)")
    from coopt.agents.levels import NoCandidate
    from coopt.llm import fetch as llm_fetch
    from coopt.llm.providers import open_model

    try:
        path = llm_fetch.fetch(llm_fetch.PINNED["1.5b"])
    except llm_fetch.FetchError as exc:
        pytest.fail("cannot fetch the 1.5B model: %s" % exc)
    logs = tmp_path / "run" / "conversations"
    env = {"COOPT_MODEL_PATH": path, "HOME": str(Path.home())}
    with open_model("local", Budget(max_tokens=40_000), str(tmp_path / "llm"), env) as model:
        assert model is not None
        agent, tu = level_agent(project, tmp_path, model, tools="text", testgen=False, log_dir=str(logs),
                                per_proposal=2, samples=2, context_tokens=4096)
        try:
            cand = agent.propose(tu, str(tmp_path / "out"))
            assert cand.behaviour is not None and cand.behaviour.accepted
        except NoCandidate as exc:
            print("no candidate: %s" % exc)
    events = [json.loads(ln) for ln in (logs / "source.jsonl").read_text().splitlines()]
    answers = [e for e in events if e["event"] == "answer"]
    assert answers
    requests = [json.loads(f.read_text())["request"] for f in (tmp_path / "llm").rglob("*.json")]
    asked = [r for r in requests if "remarks(flags, code)" in r["messages"][0]["content"]]
    assert asked and all("tools" not in r for r in asked)  # described in the text, not sent as `tools`
    for i, e in enumerate(events):
        if e["event"] == "tool":  # a call the model wrote was run, and its result opened the next question
            later = next(a for a in events[i:] if a["event"] == "answer")
            assert later["last"].startswith("Result of %s" % e["tool"]) or e["result"].startswith("not run")
    print("local 1.5B with tools in text: %d answers, %d tool runs: %s" % (
        len(answers), sum(e["event"] == "tool" for e in events),
        [e["tool"] for e in events if e["event"] == "tool"]))
