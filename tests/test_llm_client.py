"""The LLM client's corners against a real HTTP server on loopback speaking the OpenAI protocol, through the real
openai SDK: timeouts, 429 then success, 5xx, garbage and truncated bodies, tool calls native and as text, the
budget, the transcript cache and the API key. The server is a scripted protocol double (it plays the corners a
real model cannot produce on demand); test_llm_local.py asks a real model."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from coopt.budget import Budget, BudgetExhausted
from coopt.llm.client import ChatClient, LLMConfig, LLMConfigError, retry_after
from coopt.llm.types import AnswerStatus, ChatRequest, Tool, ToolCall

KEY = "sk-test-0123456789abcdefSECRET"
COMPILE = Tool("compile", "compile the TU with extra flags",
               {"type": "object", "properties": {"flags": {"type": "string"}}, "required": ["flags"]})


@dataclass
class Reply:
    """One scripted answer: status, headers, body, and how to misbehave."""

    body: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    drop: bool = False  # announce the whole body, send half, close the connection


def completion(content: str | None = "done", tool_calls: list | None = None, finish: str = "stop",
               usage: tuple[int, int] | None = (40, 7)) -> str:
    message: dict = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    body: dict = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
                  "choices": [{"index": 0, "message": message, "finish_reason": finish}]}
    if usage is not None:
        body["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
    return json.dumps(body)


class ProtocolServer:
    """POST /v1/chat/completions answered from a script, on 127.0.0.1, in a thread; records every request."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[dict] = []
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.requests.append({"path": self.path, "headers": headers, "json": json.loads(raw)})
                reply = outer.script.pop(0) if outer.script else Reply(json.dumps({"error": "unscripted"}), 500)
                if reply.delay:
                    outer.release.wait(reply.delay)
                data = reply.body.encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    if reply.drop:
                        self.wfile.write(data[: len(data) // 2])
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d/v1" % self.httpd.server_address[1]

    def __enter__(self) -> ProtocolServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[ProtocolServer]:
    with ProtocolServer() as s:
        yield s


class Sleeps:
    """Records the waits the client asks for instead of sleeping (the waits themselves are the behaviour)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def make_client(server: ProtocolServer, tmp_path: Path, budget: Budget | None = None, sleeps: Sleeps | None = None,
                **config: object) -> ChatClient:
    settings: dict = dict(base_url=server.url, model="test-model", api_key_env="COOPT_TEST_KEY", timeout=5.0,
                          max_retries=2, backoff_initial=0.5, backoff_max=8.0, cache_dir=str(tmp_path / "llm"))
    settings.update(config)
    return ChatClient(LLMConfig(**settings), budget, sleep=sleeps or Sleeps(), environ={"COOPT_TEST_KEY": KEY})


def scripted_client(server: ProtocolServer, tmp_path: Path, budget: Budget | None = None,
                    timeout: float = 5.0) -> ChatClient:
    """The client the agents' tests use: model "scripted", no key, no retries, transcripts under tmp_path/llm."""
    config = LLMConfig(base_url=server.url, model="scripted", api_key_env="", timeout=timeout, max_retries=0,
                       cache_dir=str(tmp_path / "llm"))
    return ChatClient(config, budget, environ={})


def ask(max_tokens: int = 64, tools: tuple[Tool, ...] = ()) -> ChatRequest:
    return ChatRequest.of(("system", "You optimize C."), ("user", "Hoist strlen out of the loop."),
                          tools=tools, max_tokens=max_tokens)


def transcripts(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "llm").rglob("*.json")) if (tmp_path / "llm").exists() else []


def test_answer_usage_budget_and_what_is_sent(server: ProtocolServer, tmp_path: Path) -> None:
    server.script = [Reply(completion("int f(void);", usage=(40, 7)))]
    budget = Budget(max_tokens=10_000)
    with make_client(server, tmp_path, budget) as client:
        answer = client.query(ask(max_tokens=64))
    assert answer.ok and answer.text == "int f(void);" and not answer.cached
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (40, 7)
    # Reserved before (estimate + 64), corrected after to what the server reported.
    assert answer.tokens_charged == 47 and budget.tokens == 47
    assert answer.attempts == 1 and client.stats.requests == 1
    [req] = server.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["authorization"] == "Bearer " + KEY
    sent = req["json"]
    assert sent["model"] == "test-model" and sent["max_tokens"] == 64 and sent["temperature"] == 0.0
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    [record] = transcripts(tmp_path)
    text = record.read_text()
    assert KEY not in text and "Authorization" not in text
    assert json.loads(text)["request"] == sent


def test_transcript_cache_hit_sends_nothing_and_costs_nothing(server: ProtocolServer, tmp_path: Path) -> None:
    server.script = [Reply(completion("first")), Reply(completion("other max_tokens"))]
    budget = Budget(max_tokens=10_000)
    with make_client(server, tmp_path, budget) as client:
        first = client.query(ask())
        spent = budget.tokens
        again = client.query(ask())
        assert again.cached and again.ok and again.text == "first" and again.tokens_charged == 0
        assert again.attempts == 0 and budget.tokens == spent and len(server.requests) == 1
        # Any sampling parameter is part of the key.
        other = client.query(ask(max_tokens=65))
        assert not other.cached and other.text == "other max_tokens" and len(server.requests) == 2
    assert first.usage == again.usage
    # A new client on the same cache (a rerun) with no server at all still answers.
    dead = LLMConfig(base_url="http://127.0.0.1:9/v1", model="test-model", cache_dir=str(tmp_path / "llm"),
                     cache_mode="replay")
    with ChatClient(dead, environ={}) as rerun:
        assert rerun.query(ask()).text == "first"
        missing = rerun.query(ask(max_tokens=3))
    assert missing.status is AnswerStatus.NOT_RECORDED and missing.attempts == 0
    assert len(server.requests) == 2


def test_cache_off_writes_nothing(server: ProtocolServer, tmp_path: Path) -> None:
    server.script = [Reply(completion()), Reply(completion())]
    with make_client(server, tmp_path, cache_mode="off") as client:
        assert client.query(ask()).ok and not client.query(ask()).cached
    assert transcripts(tmp_path) == [] and len(server.requests) == 2


def test_timeout_is_no_answer_not_retried_and_costs_the_reservation(server: ProtocolServer, tmp_path: Path) -> None:
    server.script = [Reply(completion(), delay=30)]
    budget = Budget(max_tokens=10_000)
    sleeps = Sleeps()
    with make_client(server, tmp_path, budget, sleeps, timeout=0.5) as client:
        request = ask()
        answer = client.query(request)
        reserved = client.reservation(request)
    assert answer.status is AnswerStatus.TIMEOUT and not answer.ok
    assert "0.5 s" in answer.detail
    assert answer.attempts == 1 and sleeps.waits == []
    assert answer.tokens_charged == reserved == budget.tokens and reserved > 64
    assert transcripts(tmp_path) == []


def test_429_waits_as_told_then_succeeds(server: ProtocolServer, tmp_path: Path) -> None:
    limited = json.dumps({"error": {"message": "Rate limit reached", "type": "rate_limit"}})
    server.script = [Reply(limited, 429, {"Retry-After": "3"}), Reply(limited, 429, {"retry-after-ms": "250"}),
                     Reply(completion("after the wait"))]
    budget = Budget(max_tokens=10_000)
    sleeps = Sleeps()
    with make_client(server, tmp_path, budget, sleeps) as client:
        answer = client.query(ask())
    assert answer.ok and answer.text == "after the wait"
    assert sleeps.waits == [3.0, 0.25]
    assert answer.attempts == 3 and len(server.requests) == 3
    assert budget.tokens == 47  # refusals cost nothing; the answer its usage


def test_429_forever_backs_off_exponentially_then_gives_up(server: ProtocolServer, tmp_path: Path) -> None:
    limited = json.dumps({"error": {"message": "slow down"}})
    server.script = [Reply(limited, 429) for _ in range(4)]
    budget = Budget(max_tokens=10_000)
    sleeps = Sleeps()
    with make_client(server, tmp_path, budget, sleeps, max_retries=3, backoff_initial=1.0) as client:
        answer = client.query(ask())
    assert answer.status is AnswerStatus.RATE_LIMITED and "after 4 tries" in answer.detail
    assert "slow down" in answer.detail
    # Jitter: each wait lies in [1/2, 1] of 1, 2, 4 s.
    assert len(sleeps.waits) == 3
    for wait, base in zip(sleeps.waits, (1.0, 2.0, 4.0), strict=True):
        assert base / 2 <= wait <= base
    assert budget.tokens == 0 and len(server.requests) == 4


def test_5xx_then_success_and_a_dropped_connection(server: ProtocolServer, tmp_path: Path) -> None:
    server.script = [Reply("upstream down", 503), Reply(completion(), drop=True), Reply(completion("third time"))]
    sleeps = Sleeps()
    with make_client(server, tmp_path, sleeps=sleeps) as client:
        answer = client.query(ask())
    assert answer.ok and answer.text == "third time" and answer.attempts == 3 and len(sleeps.waits) == 2


def test_unreachable_server_is_unavailable(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = LLMConfig(base_url="http://127.0.0.1:%d/v1" % port, model="m", max_retries=1, backoff_initial=0.1)
    sleeps = Sleeps()
    with ChatClient(config, Budget(max_tokens=1000), sleep=sleeps, environ={}) as client:
        answer = client.query(ask())
    assert answer.status is AnswerStatus.UNAVAILABLE and "cannot reach" in answer.detail
    assert answer.attempts == 2 and len(sleeps.waits) == 1


@pytest.mark.parametrize(
    "body, why, usage_reported",
    [
        ("<html>502 Bad Gateway</html>", "not JSON", False),
        (completion("cut")[:37], "not JSON", False),  # a body cut in the middle of the JSON
        (json.dumps({"choices": []}), "no choices", False),
        (json.dumps(["not", "an", "object"]), "not an object", False),
        (json.dumps({"choices": [{"finish_reason": "stop"}]}), "no message", False),
        (completion(content=None), "neither text nor a tool call", True),
        (completion(content="  \n"), "neither text nor a tool call", True),
    ],
)
def test_garbage_is_no_answer_and_costs_budget(server: ProtocolServer, tmp_path: Path, body: str, why: str,
                                               usage_reported: bool) -> None:
    server.script = [Reply(body)]
    budget = Budget(max_tokens=10_000)
    with make_client(server, tmp_path, budget) as client:
        request = ask()
        answer = client.query(request)
        reserved = client.reservation(request)
    assert answer.status is AnswerStatus.GARBAGE and not answer.ok
    assert why in answer.detail and "\n" not in answer.detail
    # Without reported usage, the reservation is what was spent.
    expected = 47 if usage_reported else reserved
    assert budget.tokens == answer.tokens_charged == expected
    assert transcripts(tmp_path) == []


def test_truncated_answer_is_no_answer(server: ProtocolServer, tmp_path: Path) -> None:
    server.script = [Reply(completion("int f(void) {\n  for (", finish="length", usage=(40, 64)))]
    budget = Budget(max_tokens=10_000)
    with make_client(server, tmp_path, budget) as client:
        answer = client.query(ask())
    assert answer.status is AnswerStatus.TRUNCATED and not answer.ok
    assert answer.text.startswith("int f(void)") and answer.finish_reason == "length"
    assert budget.tokens == 104
    # Deterministic for this request, so kept: a rerun gets the same truncated answer without asking.
    assert len(transcripts(tmp_path)) == 1


def test_tool_call_native_and_as_text_give_the_same_result(server: ProtocolServer, tmp_path: Path) -> None:
    native = [{"id": "call_7", "type": "function",
               "function": {"name": "compile", "arguments": json.dumps({"flags": "-O3"})}}]
    as_text = 'I will compile it.\n```json\n{"name": "compile", "arguments": {"flags": "-O3"}}\n```'
    server.script = [Reply(completion(None, native, finish="tool_calls")), Reply(completion(as_text))]
    with make_client(server, tmp_path, cache_mode="off") as client:
        a = client.query(ask(tools=(COMPILE,)))
        b = client.query(ask(tools=(COMPILE,)))
    assert a.ok and b.ok
    assert a.tool_calls == (ToolCall("compile", {"flags": "-O3"}, "call_7", "native"),)
    assert b.tool_calls == (ToolCall("compile", {"flags": "-O3"}, "", "text"),)
    assert server.requests[0]["json"]["tools"][0]["function"]["name"] == "compile"


def test_malformed_native_tool_call_is_dropped_and_said(server: ProtocolServer, tmp_path: Path) -> None:
    bad = [{"id": "c1", "type": "function", "function": {"name": "compile", "arguments": "{not json"}}]
    server.script = [Reply(completion(None, bad, finish="tool_calls"))]
    with make_client(server, tmp_path) as client:
        answer = client.query(ask(tools=(COMPILE,)))
    assert answer.status is AnswerStatus.GARBAGE and "dropped 1 malformed native tool call" in answer.detail


def test_rejected_request_never_shows_the_key(server: ProtocolServer, tmp_path: Path) -> None:
    echo = json.dumps({"error": {"message": "Incorrect API key provided: %s." % KEY, "type": "invalid_api_key"}})
    server.script = [Reply(echo, 401)]
    budget = Budget(max_tokens=10_000)
    sleeps = Sleeps()
    with make_client(server, tmp_path, budget, sleeps) as client:
        answer = client.query(ask())
    assert answer.status is AnswerStatus.REJECTED and "HTTP 401" in answer.detail
    assert KEY not in answer.detail and "$COOPT_TEST_KEY" in answer.detail
    assert KEY not in repr(client.config) and KEY not in repr(answer)
    assert sleeps.waits == [] and budget.tokens == 0 and transcripts(tmp_path) == []


def test_budget_that_cannot_hold_the_reservation_stops_before_sending(server: ProtocolServer,
                                                                       tmp_path: Path) -> None:
    budget = Budget(max_tokens=50)
    with make_client(server, tmp_path, budget) as client, pytest.raises(BudgetExhausted):
        client.query(ask(max_tokens=64))
    assert server.requests == [] and budget.tokens == 0


def test_no_time_left_to_wait_for_a_retry(server: ProtocolServer, tmp_path: Path) -> None:
    server.script = [Reply("{}", 429, {"Retry-After": "30"})]
    budget = Budget(max_tokens=10_000, max_seconds=5)
    sleeps = Sleeps()
    with make_client(server, tmp_path, budget, sleeps) as client:
        answer = client.query(ask())
    assert answer.status is AnswerStatus.RATE_LIMITED and "no time left" in answer.detail and sleeps.waits == []


def test_config_from_env_and_its_errors() -> None:
    c = LLMConfig.from_env({"COOPT_LLM_BASE_URL": "http://127.0.0.1:8080/v1", "COOPT_LLM_MODEL": "qwen",
                            "COOPT_LLM_TIMEOUT": "30", "COOPT_LLM_RETRIES": "2", "COOPT_LLM_API_KEY_ENV": "MY_KEY"})
    assert (c.base_url, c.model, c.timeout, c.max_retries, c.api_key_env) == (
        "http://127.0.0.1:8080/v1", "qwen", 30.0, 2, "MY_KEY")
    bad = [
        ({"COOPT_LLM_MODEL": "m"}, "COOPT_LLM_BASE_URL"),
        ({"COOPT_LLM_BASE_URL": "127.0.0.1:8080"}, "COOPT_LLM_BASE_URL"),
        ({"COOPT_LLM_BASE_URL": "http://x/v1"}, "COOPT_LLM_MODEL"),
        ({"COOPT_LLM_BASE_URL": "http://x/v1", "COOPT_LLM_MODEL": "m", "COOPT_LLM_TIMEOUT": "soon"}, "soon"),
        ({"COOPT_LLM_BASE_URL": "http://x/v1", "COOPT_LLM_MODEL": "m", "COOPT_LLM_RETRIES": "1.5"}, "whole"),
        ({"COOPT_LLM_BASE_URL": "http://x/v1", "COOPT_LLM_MODEL": "m", "COOPT_LLM_CACHE": "sometimes"}, "cache"),
        ({"COOPT_LLM_BASE_URL": "http://x/v1", "COOPT_LLM_MODEL": "m", "COOPT_LLM_CACHE": "replay"}, "replay"),
    ]
    for env, said in bad:
        with pytest.raises(LLMConfigError, match=said):
            LLMConfig.from_env(env)


def test_retry_after_forms() -> None:
    assert retry_after({"retry-after": "7"}) == 7.0
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past: no wait
    assert retry_after({"retry-after": "whenever"}) is None and retry_after({}) is None


def test_key_is_read_from_the_named_variable_only(server: ProtocolServer, tmp_path: Path) -> None:
    server.script = [Reply(completion())]
    config = LLMConfig(base_url=server.url, model="m", api_key_env="COOPT_OTHER_KEY", cache_dir="")
    with ChatClient(config, environ={"COOPT_TEST_KEY": KEY, "OPENAI_API_KEY": KEY}) as client:
        assert client.query(ask()).ok
    assert KEY not in server.requests[0]["headers"]["authorization"]
    assert os.environ.get("COOPT_OTHER_KEY") is None


def test_max_tokens_caps_what_is_sent_and_reserved(server: ProtocolServer, tmp_path: Path) -> None:
    # [llm] max_tokens = 16 reaches the client as COOPT_LLM_MAX_TOKENS, like every [llm] key.
    from coopt.config import environment, load

    (tmp_path / "coopt.toml").write_text('[llm]\nprovider = "openai"\nmax_tokens = 16\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOPT_")}
    config_env = environment(load(str(tmp_path), environ=env))
    cap = LLMConfig.from_env({**config_env, "COOPT_LLM_BASE_URL": server.url, "COOPT_LLM_MODEL": "m"}).max_tokens
    assert cap == 16
    server.script = [Reply(completion("short", usage=None)), Reply(completion("small", usage=None))]
    budget = Budget(max_tokens=10_000)
    with make_client(server, tmp_path, budget, max_tokens=cap) as client:
        request = ask(max_tokens=64)
        answer = client.query(request)
        prompt = client.reservation(request) - 64
        # A body without usage keeps the whole reservation: the prompt's estimate plus the capped 16, not 64.
        assert answer.ok and answer.tokens_charged == budget.tokens == prompt + 16
        small = client.query(ask(max_tokens=8))  # a request under the cap keeps its own limit
        assert small.tokens_charged == prompt + 8
    assert [r["json"]["max_tokens"] for r in server.requests] == [16, 8]
    [first] = [r for r in (json.loads(p.read_text()) for p in transcripts(tmp_path)) if "short" in r["response"]]
    assert first["request"]["max_tokens"] == 16  # the transcript is keyed by what was sent
    with pytest.raises(LLMConfigError, match="COOPT_LLM_MAX_TOKENS"):
        LLMConfig.from_env({"COOPT_LLM_BASE_URL": server.url, "COOPT_LLM_MODEL": "m", "COOPT_LLM_MAX_TOKENS": "-1"})


def test_openai_sdk_variables_are_honoured_when_coopts_are_not_set(server: ProtocolServer, tmp_path: Path) -> None:
    """Users of OpenAI-compatible servers set OPENAI_BASE_URL / OPENAI_MODEL / OPENAI_API_KEY: those reach the
    server through the openai provider; coopt's own settings, when given, win."""
    from coopt.llm.providers import open_model

    server.script = [Reply(completion())]
    env = {"OPENAI_BASE_URL": server.url, "OPENAI_MODEL": "sdk-model", "OPENAI_API_KEY": KEY}
    with open_model("openai", environ=env) as model:
        assert model is not None and model.query(ask()).ok
    sent = server.requests[0]
    assert sent["json"]["model"] == "sdk-model" and KEY in sent["headers"]["authorization"]
    ours = LLMConfig.from_env({**env, "COOPT_LLM_BASE_URL": "http://127.0.0.1:9/v1", "COOPT_LLM_MODEL": "ours"})
    assert (ours.base_url, ours.model) == ("http://127.0.0.1:9/v1", "ours")
    assert LLMConfig.from_env({"OPENAI_API_BASE": server.url, "OPENAI_MODEL": "m"}).base_url == server.url


def test_missing_openai_package_is_one_line_naming_the_extra() -> None:
    """openai is an extra: without it, asking for an LLM provider stops at set-up with the pip line, and nothing
    else of coopt needs it."""
    import subprocess
    import sys

    src = str(Path(__file__).resolve().parent.parent / "src")
    code = (
        "import importlib.util, sys\n"
        "sys.modules['openai'] = None  # hidden, as in an environment without the extra\n"
        "from coopt.llm.providers import open_model\n"
        "from coopt.llm.client import LLMConfigError\n"
        "import coopt.cli, coopt.wrapper.main, coopt.verify.pipeline\n"
        "try:\n"
        "    with open_model('openai', environ={'COOPT_LLM_BASE_URL': 'http://127.0.0.1:9/v1',"
        " 'COOPT_LLM_MODEL': 'm'}):\n"
        "        pass\n"
        "except LLMConfigError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": src},
                         capture_output=True, text=True, check=True).stdout
    assert out.count("\n") == 1 and "pip install 'coopt-cc[openai]'" in out
