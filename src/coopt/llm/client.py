"""The LLM client: chat completions from any OpenAI-compatible endpoint through the `openai` SDK.

One `query()` is one logical request:

1. The transcript cache is asked first (`transcripts.py`): a hit is parsed like a fresh answer, costs no tokens
   and sends nothing. In replay mode a miss is NOT_RECORDED, also without sending anything.
2. Tokens are reserved in the `Budget` before sending: an estimate of the prompt plus `max_tokens` (the request's,
   cut to the configured cap `[llm] max_tokens` when it asks for more: the cap is also what is sent). When that does
   not fit, `BudgetExhausted` propagates: it is the run's stop condition, not a model failure.
3. The request is sent with the SDK's own retries off, so this loop decides: a 429 waits for the server's
   Retry-After (else exponential backoff with jitter) and tries again, as do connection errors and 5xx, up to
   `max_retries` times. A timeout is not retried: a model that needed longer than `timeout` once will likely need
   it again, and each try would cost the same wall time. Any other 4xx is final.
4. After the call the reservation is corrected to the usage the server reports. A timeout, a 5xx, a dropped
   connection or a body without usage keeps the whole reservation: the server may well have spent it. A 429 or
   another 4xx gives it back: the server refused before doing any work.
5. A body that is a chat completion (even a truncated one) is stored in the transcript cache; failures are not.

Garbage, truncation, timeouts, refusals and exhausted retries come back as an `Answer` with `ok` False and a
one-line `detail`; nothing but `BudgetExhausted` and `LLMConfigError` (from construction) leaves this module.

The API key is read from the environment variable the config names, kept in memory only, and scrubbed from every
detail line; transcripts never contain it.
"""

from __future__ import annotations

import dataclasses
import email.utils
import math
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from coopt.budget import Budget
from coopt.llm.parse import parse_body
from coopt.llm.transcripts import TranscriptCache, request_key
from coopt.llm.types import Answer, AnswerStatus, ChatRequest, Usage

CACHE_MODES = ("use", "off", "replay")
# Sent when no key is configured: local servers need none, and the SDK refuses to start without one.
NO_KEY = "no-key"
# A conservative characters-per-token ratio for the reservation: code tokenizes at about 3-4 characters.
CHARS_PER_TOKEN = 3


class LLMConfigError(Exception):
    """The LLM settings are unusable; one line saying which setting and what to do."""


# Read when coopt's own variable (or config key) is not set: the SDK's own, and its older name.
SDK_BASE_URL_VARS = ("OPENAI_BASE_URL", "OPENAI_API_BASE")
SDK_MODEL_VARS = ("OPENAI_MODEL",)
OPENAI_MISSING = ("the LLM providers need the openai package, which is not installed: "
                  "pip install 'coopt-cc[openai]' (or [local] for the local model)")


def _first(env: Mapping[str, str], *names: str) -> str:
    """The first of `names` set to a non-empty value in `env`, else ""."""
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return ""


def require_sdk() -> None:
    """Raise LLMConfigError (one line naming the extra) when the openai SDK cannot be imported."""
    import importlib.util

    if importlib.util.find_spec("openai") is None:
        raise LLMConfigError(OPENAI_MISSING)


@dataclass(frozen=True)
class LLMConfig:
    """Where and how to ask. Holds the *name* of the environment variable with the API key, never the key."""

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 120.0
    max_retries: int = 4
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    cache_dir: str = ""  # the transcript cache; "" for none
    cache_mode: str = "use"  # use, off, replay (answers only from the transcript cache)
    max_tokens: int = 0  # [llm] max_tokens: the most completion tokens one request may ask for (0: the caller's)

    def __post_init__(self) -> None:
        if not self.base_url or urlsplit(self.base_url).scheme not in ("http", "https"):
            raise LLMConfigError("LLM base URL %r is not an http(s) URL; set COOPT_LLM_BASE_URL" % self.base_url)
        if not self.model:
            raise LLMConfigError("no LLM model name; set COOPT_LLM_MODEL")
        if not (self.timeout > 0 and self.max_retries >= 0 and self.backoff_initial >= 0 and self.backoff_max >= 0):
            raise LLMConfigError("LLM timeout must be > 0 and retries and backoff >= 0")
        if self.max_tokens < 0:
            raise LLMConfigError("LLM max_tokens must be 0 (no cap) or a positive number of tokens")
        if self.cache_mode not in CACHE_MODES:
            raise LLMConfigError("LLM cache mode %r is not one of %s" % (self.cache_mode, ", ".join(CACHE_MODES)))
        if self.cache_mode == "replay" and not self.cache_dir:
            raise LLMConfigError("LLM cache mode replay needs a transcript cache directory")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, cache_dir: str = "",
                 defaults: Mapping[str, str] | None = None) -> LLMConfig:
        """COOPT_LLM_BASE_URL (else OPENAI_BASE_URL, OPENAI_API_BASE), COOPT_LLM_MODEL (else OPENAI_MODEL),
        COOPT_LLM_API_KEY_ENV (default OPENAI_API_KEY),
        COOPT_LLM_TIMEOUT (s, default 120), COOPT_LLM_RETRIES (default 4), COOPT_LLM_CACHE (use, off, replay),
        COOPT_LLM_MAX_TOKENS (completion tokens per request, default 0: no cap).
        `defaults` stand in for variables the environment does not set."""
        env = {**(defaults or {}), **(os.environ if environ is None else environ)}

        def number(name: str, default: float) -> float:
            text = env.get(name, "")
            try:
                return float(text) if text.strip() else default
            except ValueError:
                raise LLMConfigError("%s=%r is not a number" % (name, text)) from None

        retries = number("COOPT_LLM_RETRIES", 4)
        if retries != int(retries):
            raise LLMConfigError("COOPT_LLM_RETRIES=%r is not a whole number" % env.get("COOPT_LLM_RETRIES"))
        cap = number("COOPT_LLM_MAX_TOKENS", 0)
        if cap != int(cap) or cap < 0:
            raise LLMConfigError("COOPT_LLM_MAX_TOKENS=%r is not a whole number of at least 0"
                                 % env.get("COOPT_LLM_MAX_TOKENS"))
        return cls(
            # coopt's own settings first, then the variables the openai SDK and compatible servers' users set.
            base_url=_first(env, "COOPT_LLM_BASE_URL", *SDK_BASE_URL_VARS),
            model=_first(env, "COOPT_LLM_MODEL", *SDK_MODEL_VARS),
            api_key_env=env.get("COOPT_LLM_API_KEY_ENV", "OPENAI_API_KEY"),
            timeout=number("COOPT_LLM_TIMEOUT", 120.0),
            max_retries=int(retries),
            cache_dir=cache_dir,
            cache_mode=env.get("COOPT_LLM_CACHE", "use") or "use",
            max_tokens=int(cap),
        )


@dataclass
class ClientStats:
    """What this client did, for reports: queries, cache hits, HTTP requests, tokens by kind."""

    queries: int = 0
    cache_hits: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_charged: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


class ChatClient:
    """A `Model` speaking the OpenAI chat-completions protocol to one endpoint."""

    def __init__(self, config: LLMConfig, budget: Budget | None = None,
                 sleep: Callable[[float], None] = time.sleep, environ: Mapping[str, str] | None = None,
                 connect: Callable[[], str] | None = None) -> None:
        """`connect`, when given, is called before the first request is sent and returns the base URL to use
        instead of the config's: the local provider starts its server there, so a rerun answered entirely from
        the transcript cache never loads the model."""
        env = os.environ if environ is None else environ
        self.config = config
        self.budget = budget
        self.stats = ClientStats()
        self._sleep = sleep
        self._connect = connect
        self.base_url = config.base_url
        self._key = env.get(config.api_key_env, "") if config.api_key_env else ""
        self._cache = TranscriptCache(config.cache_dir) if config.cache_dir and config.cache_mode != "off" else None
        self._client: Any = None

    def _sdk(self) -> Any:
        if self._client is None:
            try:
                import openai
            except ImportError:
                raise LLMConfigError(OPENAI_MISSING) from None

            if self._connect is not None:
                self.base_url = self._connect()
            # Our loop retries; the SDK's would hide 429s and timeouts from the accounting.
            self._client = openai.OpenAI(base_url=self.base_url, api_key=self._key or NO_KEY,
                                         timeout=self.config.timeout, max_retries=0)
        return self._client

    @property
    def name(self) -> str:
        return self.config.model

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def capped(self, request: ChatRequest) -> ChatRequest:
        """`request` with its completion tokens cut to the configured cap ([llm] max_tokens), if it asks for more:
        what is sent, reserved in the budget and keyed in the transcript cache."""
        cap = self.config.max_tokens
        if cap and request.sampling.max_tokens > cap:
            return dataclasses.replace(request, sampling=dataclasses.replace(request.sampling, max_tokens=cap))
        return request

    def reservation(self, request: ChatRequest) -> int:
        """Tokens reserved before sending: the prompt estimated from its size, plus the most the answer may use."""
        return math.ceil(request.text_size() / CHARS_PER_TOKEN) + request.sampling.max_tokens

    def query(self, request: ChatRequest) -> Answer:
        """Ask once (with retries). Every failure of the model or the endpoint is an Answer that is not ok; only
        BudgetExhausted (the run's stop condition) and errors of `connect` (a local server that cannot start)
        are raised."""
        request = self.capped(request)
        payload = request.payload(self.config.model)
        key = request_key(payload)
        tool_names = frozenset(t.name for t in request.tools)
        self.stats.queries += 1
        if self._cache is not None:
            record = self._cache.get(key)
            if record is not None:
                self.stats.cache_hits += 1
                return self._finish(self._answer(record["response"], tool_names, 0, 0.0, 0, cached=True))
            if self.config.cache_mode == "replay":
                return self._finish(Answer(AnswerStatus.NOT_RECORDED, model=self.name,
                                           detail="replay mode: no transcript for this request (key %s)" % key[:16]))
        reserved = self.reservation(request)
        if self.budget is not None:
            self.budget.charge(tokens=reserved)
        try:
            # Connecting (a local server loads its model) is not the model's time: it stays out of `seconds`.
            sdk = self._sdk()
            started = time.monotonic()
            body, failure, attempts = self._send(sdk, payload)
        except BaseException:  # nothing was asked (connect failed) or the user interrupted: give the tokens back
            if self.budget is not None:
                self.budget.add_tokens(-reserved)
            raise
        seconds = time.monotonic() - started
        if failure is not None:
            # A refusal (429, 4xx) was answered before any work: the reservation goes back. After a timeout, a
            # dropped connection or a 5xx the server may well have worked on it: the reservation stays spent.
            charged = 0 if failure[0] in (AnswerStatus.RATE_LIMITED, AnswerStatus.REJECTED) else reserved
            if self.budget is not None:
                self.budget.add_tokens(charged - reserved)
            return self._finish(Answer(failure[0], model=self.name, detail=self._scrub(failure[1]),
                                       tokens_charged=charged, seconds=seconds, attempts=attempts))
        answer = self._answer(body, tool_names, reserved, seconds, attempts, cached=False)
        if self.budget is not None:
            self.budget.add_tokens(answer.tokens_charged - reserved)
        if self._cache is not None and answer.status in (AnswerStatus.OK, AnswerStatus.TRUNCATED):
            try:
                self._cache.put(key, payload, body, seconds, {"prompt_tokens": answer.usage.prompt_tokens,
                                                              "completion_tokens": answer.usage.completion_tokens})
            except OSError as exc:
                answer = _with_detail(answer, "transcript not stored: %s" % exc.strerror)
        return self._finish(answer)

    def _answer(self, body: str, tool_names: frozenset[str], reserved: int, seconds: float, attempts: int,
                cached: bool) -> Answer:
        parsed = parse_body(body, tool_names)
        usage = parsed.usage or Usage()
        # Without reported usage the reservation is the best estimate of what was spent.
        charged = 0 if cached else (usage.total if parsed.usage is not None else reserved)
        return Answer(parsed.status, parsed.text, parsed.tool_calls, usage, charged, cached, parsed.finish_reason,
                      self._scrub(parsed.detail), seconds, attempts, self.name)

    def _finish(self, answer: Answer) -> Answer:
        s = self.stats
        s.requests += answer.attempts
        s.prompt_tokens += answer.usage.prompt_tokens if not answer.cached else 0
        s.completion_tokens += answer.usage.completion_tokens if not answer.cached else 0
        s.tokens_charged += answer.tokens_charged
        s.by_status[answer.status.value] = s.by_status.get(answer.status.value, 0) + 1
        return answer

    def _send(self, sdk: Any, payload: dict[str, Any]) -> tuple[str, tuple[AnswerStatus, str] | None, int]:
        """POST the payload, retrying what is worth retrying. Returns (body, failure or None, requests sent)."""
        import openai

        attempts = 0
        while True:
            attempts += 1
            delay: float | None = None
            try:
                raw = sdk.chat.completions.with_raw_response.create(**payload)
                return raw.text, None, attempts
            except openai.APITimeoutError:
                return "", (AnswerStatus.TIMEOUT, "no answer within %g s" % self.config.timeout), attempts
            except openai.APIConnectionError as exc:
                failure = (AnswerStatus.UNAVAILABLE, "cannot reach %s: %s" % (self.base_url,
                                                                              _cause(exc)))
            except openai.APIStatusError as exc:
                code = exc.status_code
                what = "HTTP %d from %s: %s" % (code, self.base_url, _error_message(exc))
                if code == 429:
                    failure = (AnswerStatus.RATE_LIMITED, what)
                    delay = retry_after(exc.response.headers)
                elif code >= 500:
                    failure = (AnswerStatus.UNAVAILABLE, what)
                else:
                    return "", (AnswerStatus.REJECTED, what + _hint(code, self.config.api_key_env)), attempts
            except Exception as exc:  # the SDK's contract is its exceptions, but a run must never die of a reply
                return "", (AnswerStatus.GARBAGE, "the SDK failed on the reply: %s" % type(exc).__name__), attempts
            if attempts > self.config.max_retries:
                return "", (failure[0], "%s (after %d tries)" % (failure[1], attempts)), attempts
            wait = self._backoff(attempts) if delay is None else min(delay, self.config.backoff_max)
            if self.budget is not None and self.budget.max_seconds and not self.budget.fits(seconds=wait):
                return "", (failure[0], "%s (no time left in the budget to wait %.0f s)" % (failure[1], wait)), \
                    attempts
            self._sleep(wait)

    def _backoff(self, attempt: int) -> float:
        base = self.config.backoff_initial * (2 ** (attempt - 1))
        # Jitter (half to all of the step) keeps several clients of one server from retrying in lockstep.
        return min(self.config.backoff_max, base * (0.5 + random.random() / 2))

    def _scrub(self, text: str) -> str:
        if self._key and len(self._key) >= 4:
            text = text.replace(self._key, "***")
        return _KEYLIKE.sub("***", text)


_KEYLIKE = re.compile(r"\bsk-[A-Za-z0-9_\-*]{8,}")


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks us to wait: retry-after-ms, or Retry-After in seconds or as an HTTP date."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        msg = err.get("message") if isinstance(err, dict) else err
        if isinstance(msg, str) and msg:
            return _one_line(msg)
    return _one_line(str(getattr(exc, "message", "") or type(exc).__name__))


def _cause(exc: BaseException) -> str:
    inner = exc.__cause__ or exc.__context__
    return _one_line(str(inner) or type(inner).__name__) if inner is not None else _one_line(str(exc))


def _hint(code: int, key_env: str) -> str:
    if code in (401, 403):
        return " (check the API key in $%s)" % key_env if key_env else " (the endpoint wants an API key)"
    if code == 404:
        return " (check COOPT_LLM_BASE_URL and COOPT_LLM_MODEL)"
    return ""


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit] + "..."


def _with_detail(answer: Answer, note: str) -> Answer:
    from dataclasses import replace

    return replace(answer, detail="; ".join(x for x in (answer.detail, note) if x))
