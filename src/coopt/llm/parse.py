"""Reading a chat completion body: the text, the tool calls (native or written as JSON in the text), the usage.

Small models served by llama.cpp often write a tool call into the message text (in a ```json fence, in
`<tool_call>` tags, or bare) instead of the API's `tool_calls`; both become the same `ToolCall`. A JSON object in
the text counts as a call only when it names a tool the request offered, so a JSON example in a code answer is
not mistaken for one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from coopt.llm.types import AnswerStatus, ToolCall, Usage

_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class Parsed:
    """What a body says, before accounting: a status, and the answer's parts."""

    status: AnswerStatus
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage | None = None  # None when the body reports none
    finish_reason: str = ""
    detail: str = ""


def parse_body(body: str, tool_names: frozenset[str]) -> Parsed:
    """Parse a /chat/completions response body. Never raises: anything unreadable is GARBAGE with a reason."""
    try:
        data = json.loads(body)
    except ValueError:
        return Parsed(AnswerStatus.GARBAGE, detail="the body is not JSON (%d bytes: %s)" % (len(body),
                                                                                             _snippet(body)))
    if not isinstance(data, dict):
        return Parsed(AnswerStatus.GARBAGE, detail="the body is JSON but not an object")
    usage = _usage(data.get("usage"))
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return Parsed(AnswerStatus.GARBAGE, usage=usage, detail="the body has no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        return Parsed(AnswerStatus.GARBAGE, usage=usage, detail="the first choice has no message")
    content = message.get("content")
    text = content if isinstance(content, str) else ""
    finish = choice.get("finish_reason")
    finish_reason = finish if isinstance(finish, str) else ""
    calls, dropped = native_tool_calls(message.get("tool_calls"))
    if not calls and tool_names:
        calls = text_tool_calls(text, tool_names)
    notes = ["dropped %d malformed native tool call(s)" % dropped] if dropped else []
    if finish_reason == "length":
        return Parsed(AnswerStatus.TRUNCATED, text, tuple(calls), usage, finish_reason,
                      "the answer was cut at max_tokens")
    if not text.strip() and not calls:
        return Parsed(AnswerStatus.GARBAGE, text, (), usage, finish_reason,
                      "; ".join(notes + ["the answer holds neither text nor a tool call"]))
    return Parsed(AnswerStatus.OK, text, tuple(calls), usage, finish_reason, "; ".join(notes))


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    prompt, completion = raw.get("prompt_tokens"), raw.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int) or prompt < 0 or completion < 0:
        return None
    return Usage(prompt, completion)


def native_tool_calls(raw: Any) -> tuple[list[ToolCall], int]:
    """The API's `tool_calls`, and how many entries were unusable (no name, arguments not a JSON object)."""
    if not isinstance(raw, list):
        return [], 0
    calls: list[ToolCall] = []
    dropped = 0
    for entry in raw:
        fn = entry.get("function") if isinstance(entry, dict) else None
        name = fn.get("name") if isinstance(fn, dict) else None
        args = _arguments(fn.get("arguments") if isinstance(fn, dict) else None)
        if not isinstance(name, str) or not name or args is None:
            dropped += 1
            continue
        call_id = entry.get("id") if isinstance(entry, dict) else ""
        calls.append(ToolCall(name, args, call_id if isinstance(call_id, str) else "", "native"))
    return calls, dropped


def text_tool_calls(text: str, tool_names: frozenset[str]) -> list[ToolCall]:
    """Tool calls written as JSON objects anywhere in `text` ({"name": ..., "arguments": {...}} and the usual
    variants), in order, keeping only those that name an offered tool."""
    calls: list[ToolCall] = []
    pos = text.find("{")
    while pos >= 0:
        try:
            obj, end = _DECODER.raw_decode(text, pos)
        except ValueError:
            pos = text.find("{", pos + 1)
            continue
        call = _as_call(obj, tool_names)
        if call is not None:
            calls.append(call)
            pos = text.find("{", end)
        else:
            # Not a call itself, but one may be nested inside (e.g. {"tool_calls": [{...}]}).
            pos = text.find("{", pos + 1)
    return calls


def _as_call(obj: Any, tool_names: frozenset[str]) -> ToolCall | None:
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("function"), dict):  # {"type": "function", "function": {"name", "arguments"}}
        obj = obj["function"]
    name = obj.get("name", obj.get("tool"))
    raw_args = obj.get("arguments", obj.get("parameters", obj.get("args", {})))
    args = _arguments(raw_args)
    if not isinstance(name, str) or name not in tool_names or args is None:
        return None
    return ToolCall(name, args, "", "text")


def _arguments(raw: Any) -> dict[str, Any] | None:
    """Arguments as an object: the API sends a JSON string; text calls usually inline the object."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return None
    return raw if isinstance(raw, dict) else None


def _snippet(text: str, limit: int = 60) -> str:
    one_line = " ".join(text.split())
    return repr(one_line[:limit] + ("..." if len(one_line) > limit else ""))
