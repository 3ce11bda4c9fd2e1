"""The LLM guide through the real client and a real OpenAI-protocol server on loopback (scripted answers): the
model's choice among the live arms is followed, native and text tool calls alike; anything else (garbage, an arm
not in the table, a timeout, a spent budget) takes the deterministic pick, and the notes say so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from coopt.budget import Budget
from coopt.optimize.search.guide import Guide
from coopt.optimize.search.llm_guide import LLMGuide
from test_llm_client import ProtocolServer, Reply, completion, scripted_client

SHARES = {"/b/lvm.o": 0.6, "/b/ltable.o": 0.2, "/b/lgc.o": 0.1}


@pytest.fixture
def server() -> Iterator[ProtocolServer]:
    with ProtocolServer() as s:
        yield s


def chooser(server: ProtocolServer, tmp_path: Path, budget: Budget | None = None) -> LLMGuide:
    return LLMGuide(Guide(SHARES, levels=("flags", "pgo")), scripted_client(server, tmp_path, budget, timeout=2.0))


def native(arm: object) -> Reply:
    call = {"id": "c1", "type": "function", "function": {"name": "choose", "arguments": json.dumps({"arm": arm})}}
    return Reply(completion(None, tool_calls=[call], usage=(200, 12)))


def test_the_models_choice_among_the_live_arms_is_followed(server: ProtocolServer, tmp_path: Path) -> None:
    g = chooser(server, tmp_path)
    live = [a for a in g.arms if not a.retired]
    server.script = [native(6), Reply(completion('{"name": "choose", "arguments": {"arm": 2, "why": "hot"}}'))]
    first = g.next_arm()
    assert first is live[5] and first is not g.guide.next_arm()  # not what the policy would have picked
    # The policy keeps the statistics: a result recorded through the LLM guide moves its arm's mean (and the
    # next question shows it, so it is a new request, not the transcript cache's answer to the first).
    g.record(first, 1.10)
    assert first.pulls == 1 and g.guide.mean(first) > g.guide.prior(first) / 2
    assert g.next_arm() is live[1]  # the same tool call written as JSON in the text
    assert g.asked == 2 and g.followed == 2 and not g.fallbacks
    prompt = server.requests[0]["json"]
    table = prompt["messages"][1]["content"]
    assert "| 1 | lvm.o | original | flags | 60.0% |" in table and "| 2 | lvm.o | original | pgo | 60.0% |" in table
    assert "(deterministic pick)" in table
    assert prompt["tools"][0]["function"]["name"] == "choose"
    assert "| 1 of 1 |" in server.requests[1]["json"]["messages"][1]["content"]


@pytest.mark.parametrize("reply,why", [
    (native(99), "arm 99 is not in the table"),
    (native("first"), "arm 'first' is not in the table"),
    (Reply(completion("I would go with the hottest one.")), "called no `choose`"),
    (Reply("<html>oops</html>"), "garbage"),
    (Reply(completion("x"), delay=4.0), "timeout"),
])
def test_anything_else_takes_the_deterministic_pick(server: ProtocolServer, tmp_path: Path, reply: Reply,
                                                    why: str) -> None:
    g = chooser(server, tmp_path)
    server.script = [reply]
    assert g.next_arm() is g.guide.next_arm()
    assert g.followed == 0 and len(g.fallbacks) == 1 and why in g.fallbacks[0], g.fallbacks
    assert "deterministic pick taken 1 time(s)" in g.summary()


def test_a_spent_token_budget_asks_no_more(server: ProtocolServer, tmp_path: Path) -> None:
    g = chooser(server, tmp_path, Budget(max_tokens=10))
    assert g.next_arm() is g.guide.next_arm()
    assert server.requests == [] and "budget" in g.fallbacks[0]


def test_retired_arms_are_not_offered(server: ProtocolServer, tmp_path: Path) -> None:
    g = chooser(server, tmp_path)
    for a in g.arms:
        if a.tu != "/b/lgc.o":
            a.retired = True
    server.script = [native(1)]
    arm = g.next_arm()
    assert arm is not None and arm.tu == "/b/lgc.o"
    table = server.requests[0]["json"]["messages"][1]["content"]
    assert "lvm.o" not in table and "ltable.o" not in table


@pytest.mark.parametrize("sweep", [False, True])
def test_the_model_is_told_when_the_compiler_levels_are_swept(server: ProtocolServer, tmp_path: Path,
                                                              sweep: bool) -> None:
    g = LLMGuide(Guide(SHARES, levels=("flags", "pgo"), sweep=sweep), scripted_client(server, tmp_path, None,
                                                                                      timeout=2.0))
    server.script = [native(1)]
    g.next_arm()
    system = server.requests[0]["json"]["messages"][0]["content"]
    assert ("sweeps all three on its node in one evaluation" in system) is sweep
