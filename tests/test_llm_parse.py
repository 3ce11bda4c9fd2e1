"""Reading chat completion bodies: tool calls written every way small models write them, one result type."""

from __future__ import annotations

import json

import pytest

from coopt.llm.parse import parse_body, text_tool_calls
from coopt.llm.types import AnswerStatus, ChatRequest, Message, Sampling, Tool, ToolCall

TOOLS = frozenset({"compile", "run_opt"})
C = ToolCall("compile", {"flags": "-O3"}, "", "text")
OPT = ToolCall("run_opt", {"pipeline": "default<O3>"}, "", "text")

# (what the model wrote, the calls read from it)
TEXT_CALLS = [
    ('```json\n{"name": "compile", "arguments": {"flags": "-O3"}}\n```', [C]),
    ('<tool_call>\n{"name": "compile", "arguments": {"flags": "-O3"}}\n</tool_call>', [C]),
    ('{"name": "compile", "arguments": {"flags": "-O3"}}', [C]),
    ('Let me compile.\n{"name": "compile", "arguments": "{\\"flags\\": \\"-O3\\"}"}', [C]),  # arguments as string
    ('{"name": "compile", "parameters": {"flags": "-O3"}}', [C]),
    ('{"type": "function", "function": {"name": "compile", "arguments": {"flags": "-O3"}}}', [C]),
    ('{"tool_calls": [{"name": "compile", "arguments": {"flags": "-O3"}}]}', [C]),
    ('[{"name": "compile", "arguments": {"flags": "-O3"}}, {"name": "run_opt", "arguments": '
     '{"pipeline": "default<O3>"}}]', [C, OPT]),
    ('first {"name": "run_opt", "arguments": {"pipeline": "default<O3>"}} then '
     '```json\n{"name": "compile", "arguments": {"flags": "-O3"}}\n```', [OPT, C]),
    ('{"name": "compile"}', [ToolCall("compile", {}, "", "text")]),
    # Not calls: unknown tools, JSON that names nothing, arguments that are no object, C code, cut JSON.
    ('{"name": "rm_rf", "arguments": {"path": "/"}}', []),
    ('{"flags": "-O3"}', []),
    ('{"name": "compile", "arguments": ["-O3"]}', []),
    ('{"name": "compile", "arguments": "-O3"}', []),
    ("int f(int x) { if (x) { return 1; } return 0; }", []),
    ('{"name": "compile", "arguments": {"flags": "-O3"', []),
]


@pytest.mark.parametrize("text, calls", TEXT_CALLS)
def test_tool_calls_in_text(text: str, calls: list[ToolCall]) -> None:
    assert text_tool_calls(text, TOOLS) == calls


def body(message: dict, finish: str = "stop", usage: dict | None = None) -> str:
    return json.dumps({"choices": [{"index": 0, "message": message, "finish_reason": finish}],
                       **({"usage": usage} if usage else {})})


def test_text_calls_need_offered_tools() -> None:
    text = '{"name": "compile", "arguments": {"flags": "-O3"}}'
    assert parse_body(body({"content": text}), frozenset()).tool_calls == ()
    assert parse_body(body({"content": text}), TOOLS).tool_calls == (C,)


def test_native_calls_win_over_text_and_keep_their_ids() -> None:
    native = [{"id": "a", "type": "function", "function": {"name": "run_opt",
                                                          "arguments": '{"pipeline": "default<O3>"}'}}]
    p = parse_body(body({"content": '{"name": "compile", "arguments": {}}', "tool_calls": native}), TOOLS)
    assert p.status is AnswerStatus.OK
    assert p.tool_calls == (ToolCall("run_opt", {"pipeline": "default<O3>"}, "a", "native"),)


@pytest.mark.parametrize(
    "usage, expected",
    [({"prompt_tokens": 3, "completion_tokens": 4}, (3, 4)), ({"prompt_tokens": 3}, None),
     ({"prompt_tokens": -1, "completion_tokens": 4}, None), ({"prompt_tokens": "3", "completion_tokens": 4}, None)],
)
def test_usage_is_taken_only_when_complete(usage: dict, expected: tuple[int, int] | None) -> None:
    p = parse_body(body({"content": "x"}, usage=usage), TOOLS)
    got = None if p.usage is None else (p.usage.prompt_tokens, p.usage.completion_tokens)
    assert got == expected


def test_request_payload_is_canonical_and_never_sends_null_content() -> None:
    call = ToolCall("compile", {"flags": "-O3"}, "c1")
    req = ChatRequest(
        (Message("user", "go"), Message("assistant", "", (call,)), Message("tool", "ok", tool_call_id="c1")),
        (Tool("compile", "compile it"),), Sampling(max_tokens=9, seed=None, stop=("```\n",)))
    p = req.payload("m")
    assert p["messages"][1] == {"role": "assistant", "content": "", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "compile", "arguments": '{"flags": "-O3"}'}}]}
    assert p["messages"][2]["tool_call_id"] == "c1"
    assert "seed" not in p and p["stop"] == ["```\n"] and p["max_tokens"] == 9
    assert json.loads(json.dumps(p)) == p
