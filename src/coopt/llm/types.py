"""The LLM's data types: what is asked (ChatRequest), what comes back (Answer), and the Model protocol.

Agents depend on these and on `Model` only, so any model fits: the OpenAI-protocol client in `client.py`, the local
llama.cpp server behind it, or a scripted model in a test. A model never raises for a bad answer: garbage, a
truncated answer, a timeout or a refused request come back as an `Answer` whose status says so (`ok` is False).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

# Bump when the transcript record or the request's canonical form changes: older transcripts then miss.
TRANSCRIPT_FORMAT = 1


class AnswerStatus(str, enum.Enum):
    """Closed set of outcomes of one query. Only OK carries an answer an agent may use."""

    OK = "ok"
    TRUNCATED = "truncated"  # the model stopped at max_tokens (finish_reason "length")
    GARBAGE = "garbage"  # the body is no chat completion, or it holds neither text nor a usable tool call
    TIMEOUT = "timeout"  # no answer within the configured timeout
    RATE_LIMITED = "rate_limited"  # still 429 after every retry
    UNAVAILABLE = "unavailable"  # no connection, or 5xx, after every retry
    REJECTED = "rejected"  # any other 4xx: bad request, authentication, unknown model
    NOT_RECORDED = "not_recorded"  # replay mode and the transcript cache has no answer for this request


@dataclass(frozen=True)
class ToolCall:
    """One call of a tool the request offered, whichever way the model chose to write it."""

    name: str
    arguments: dict[str, Any]
    id: str = ""
    source: str = "native"  # "native" (the API's tool_calls) or "text" (JSON in the message text)

    def to_openai(self, index: int) -> dict[str, Any]:
        return {
            "id": self.id or "call_%d" % index,
            "type": "function",
            "function": {"name": self.name, "arguments": json.dumps(self.arguments, sort_keys=True)},
        }


@dataclass(frozen=True)
class Tool:
    """A function the model may call: its name, what it does, and a JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})

    def to_openai(self) -> dict[str, Any]:
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


@dataclass(frozen=True)
class Message:
    """One chat message. An assistant message may carry tool calls; a "tool" message answers one by its id."""

    role: str  # system, user, assistant, tool
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""

    def to_openai(self) -> dict[str, Any]:
        # content is always a string, never null: some servers reject an assistant message with null content.
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [c.to_openai(i) for i, c in enumerate(self.tool_calls)]
        if self.tool_call_id:
            out["tool_call_id"] = self.tool_call_id
        return out


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters. The defaults are deterministic as far as a server allows (temperature 0, a seed)."""

    max_tokens: int = 1024
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = 0
    stop: tuple[str, ...] = ()

    def to_openai(self) -> dict[str, Any]:
        out: dict[str, Any] = {"max_tokens": self.max_tokens, "temperature": self.temperature, "top_p": self.top_p}
        if self.seed is not None:
            out["seed"] = self.seed
        if self.stop:
            out["stop"] = list(self.stop)
        return out


@dataclass(frozen=True)
class ChatRequest:
    """Everything that decides an answer, apart from the model: messages, offered tools, sampling."""

    messages: tuple[Message, ...]
    tools: tuple[Tool, ...] = ()
    sampling: Sampling = field(default_factory=Sampling)

    @classmethod
    def of(cls, *messages: tuple[str, str], tools: tuple[Tool, ...] = (), **sampling: Any) -> ChatRequest:
        """Shorthand: `ChatRequest.of(("system", "..."), ("user", "..."), max_tokens=64)`."""
        return cls(tuple(Message(role, content) for role, content in messages), tools, Sampling(**sampling))

    def payload(self, model: str) -> dict[str, Any]:
        """The body of POST /chat/completions, and the canonical form the transcript cache is keyed by."""
        out: dict[str, Any] = {"model": model, "messages": [m.to_openai() for m in self.messages]}
        if self.tools:
            out["tools"] = [t.to_openai() for t in self.tools]
        out.update(self.sampling.to_openai())
        return out

    def text_size(self) -> int:
        """Characters of prompt the model has to read (messages and tool schemas)."""
        size = sum(len(m.content) + 16 for m in self.messages)
        return size + sum(len(json.dumps(t.to_openai())) for t in self.tools)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Answer:
    """The outcome of one query. `ok` only when the model answered in full; otherwise `status` and `detail` say
    why, and `text` keeps whatever came back for the transcript."""

    status: AnswerStatus
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    tokens_charged: int = 0  # what the budget was charged for this query (0 on a transcript cache hit)
    cached: bool = False
    finish_reason: str = ""
    detail: str = ""  # one line: why there is no answer, or what was dropped from it
    seconds: float = 0.0
    attempts: int = 0  # HTTP requests sent (0 on a cache hit)
    model: str = ""

    @property
    def ok(self) -> bool:
        return self.status is AnswerStatus.OK


class Model(Protocol):
    """Anything that answers chat requests. Implementations never raise for a bad answer (see Answer); they may
    raise `BudgetExhausted` when the query does not fit in the budget."""

    @property
    def name(self) -> str: ...

    def query(self, request: ChatRequest) -> Answer: ...
