"""Opening the run's model for an LLM level or the LLM guide: provider, context size, transcripts, one way for all.

Every LLM level (source, ir, asm) and the optimizer's LLM guide open their model here, so a bad set-up reads the
same wherever it is found (LLMSetupError: one line) and every transcript lands in <cache_dir>/llm.
"""

from __future__ import annotations

import contextlib
import os

from coopt.agents.levels import AgentContext, LevelUnavailable, LLMSetupError
from coopt.llm.client import LLMConfigError
from coopt.llm.local_server import LocalModelError
from coopt.llm.types import Model


def transcripts_dir(ctx: AgentContext) -> str:
    """Where the LLM agents keep their transcripts: <cache_dir>/llm."""
    cache_dir = ctx.settings.cache_dir
    if not cache_dir:
        from coopt.cache.layout import default_cache_dir

        cache_dir = default_cache_dir()
    return os.path.join(cache_dir, "llm")


def context_window(llm: str, environ: dict[str, str] | None = None) -> int:
    """The model's context in tokens: $COOPT_LLM_CONTEXT, else the local server's, else 16384."""
    env = os.environ if environ is None else environ
    text = env.get("COOPT_LLM_CONTEXT", "").strip()
    if text:
        try:
            value = int(text)
        except ValueError:
            raise LLMConfigError("COOPT_LLM_CONTEXT=%r is not a whole number of tokens" % text) from None
        if value < 512:
            raise LLMConfigError("COOPT_LLM_CONTEXT=%d is too small (at least 512 tokens)" % value)
        return value
    if llm == "local":
        from coopt.llm.local_server import DEFAULT_CTX

        return DEFAULT_CTX
    return 16384


FOLLOW_UP_ROOM = 4096  # tokens of any window kept for the prompt and one follow-up (which repeats the answer)
ANSWER_CAP = 8192


def answer_tokens(context: int, least: int) -> int:
    """The most one answer of a level may take in a `context`-token window: the level's own `least` (sized for the
    local model's 4096 tokens), or a third of what a larger window holds beyond FOLLOW_UP_ROOM, up to ANSWER_CAP.
    A fixed 768 would cut a strong endpoint's rewrite of a 1000-token hot function to its hot region."""
    return max(least, min(ANSWER_CAP, (context - FOLLOW_UP_ROOM) // 3))


def open_level_model(level: str, llm: str, ctx: AgentContext) -> tuple[contextlib.ExitStack, Model, int]:
    """The run's model for an LLM level (source, ir, asm), the stack that stops it, and its context in tokens.
    LLMSetupError for a bad LLM set-up; LevelUnavailable when no LLM is configured."""
    from coopt.llm.providers import open_model

    stack = contextlib.ExitStack()
    # The configuration's LLM settings (coopt.toml, COOPT_* overriding) over this process's environment, which
    # still holds what the configuration names but never stores (the API key).
    environ = ctx.settings.environ
    env = {**os.environ, **environ} if environ is not None else None
    try:
        context = context_window(llm, env)
        model = stack.enter_context(open_model(llm, ctx.settings.budget, transcripts_dir(ctx), environ=env))
    except (LLMConfigError, LocalModelError) as exc:
        stack.close()
        raise LLMSetupError(str(exc)) from exc
    if model is None:
        stack.close()
        raise LevelUnavailable("level %s needs an LLM (--llm local or --llm openai)" % level)
    return stack, model, context
