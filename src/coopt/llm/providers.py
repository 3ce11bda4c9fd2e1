"""Choosing the model: provider `none`, `openai` (any OpenAI-compatible endpoint) or `local` (llama.cpp).

    none     no LLM: the compiler tools work alone (the offline default)
    openai   COOPT_LLM_BASE_URL, COOPT_LLM_MODEL (else the SDK's OPENAI_BASE_URL, OPENAI_MODEL), the key in
             $COOPT_LLM_API_KEY_ENV (default OPENAI_API_KEY); needs the `openai` extra
    local    the GGUF in $COOPT_MODEL_PATH, else the largest model `coopt model fetch` stored; served by an
             embedded llama.cpp server that starts at the first request the transcript cache cannot answer

Both real providers share the client in `client.py`, its budget accounting and its transcript cache.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

from coopt.budget import Budget
from coopt.llm.client import ChatClient, LLMConfig, require_sdk
from coopt.llm.types import Model

PROVIDERS = ("none", "local", "openai")
# A small model on one core decodes about 20 tokens/s: 1024 tokens of answer after a long prompt take minutes.
LOCAL_TIMEOUT = 600.0


@contextlib.contextmanager
def open_model(provider: str, budget: Budget | None = None, cache_dir: str = "",
               environ: Mapping[str, str] | None = None) -> Iterator[Model | None]:
    """The model for `provider` (None for `none`), open for the duration of the `with` block.

    Raises LLMConfigError or LocalModelError (one line each) when the provider cannot be set up."""
    env = os.environ if environ is None else environ
    if provider == "none":
        yield None
        return
    if provider in ("openai", "local"):
        require_sdk()  # at set-up, before any budget is spent
    if provider == "openai":
        with ChatClient(LLMConfig.from_env(env, cache_dir), budget, environ=env) as client:
            yield client
        return
    if provider != "local":
        from coopt.llm.client import LLMConfigError

        raise LLMConfigError("unknown LLM provider %r; use one of %s" % (provider, ", ".join(PROVIDERS)))
    from coopt.llm.local_server import LocalServer, model_name, resolve_model_path

    path = resolve_model_path(dict(env))
    server = LocalServer(path)
    # The base URL is a placeholder until the server starts (connect) and tells its port. The endpoint settings
    # of the openai provider do not apply; timeout, retries and cache mode do.
    config = LLMConfig.from_env(
        {**env, "COOPT_LLM_BASE_URL": "http://127.0.0.1/v1", "COOPT_LLM_MODEL": model_name(path),
         "COOPT_LLM_API_KEY_ENV": ""},
        cache_dir, defaults={"COOPT_LLM_TIMEOUT": str(LOCAL_TIMEOUT), "COOPT_LLM_RETRIES": "1"})
    try:
        with ChatClient(config, budget, environ=env, connect=server.start) as client:
            yield client
    finally:
        server.stop()
