"""Secrets are never printed: the one masking function behind every command, log line and stored record.

Two kinds of secret reach coopt's output: the password in a URL's user part (`redis://:pw@host`,
`http://user:pw@host/c/`, in a remote spec, an LLM base URL or any command line), and the value of an environment
variable that holds a credential (the team's HMAC key, the LLM API key named by `[llm] api_key_env`, a remote's
`password-env=NAME`, anything named like `*_API_KEY`, `*_TOKEN`, `*_PASSWORD`, `*_SECRET`). Both are shown as
`***`. The *names* of such variables are not secrets and stay as they are: they tell the user where to look.

Cheap and import-free (coopt-cc's log goes through it): string scans only, no `re`.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

MASK = "***"
# Variables whose value is a credential by name; the LLM key's variable is added from the environment (`mask`).
SECRET_VARS = ("COOPT_CACHE_HMAC_KEY", "OPENAI_API_KEY")
SECRET_SUFFIXES = ("_API_KEY", "_APIKEY", "_TOKEN", "_PASSWORD", "_PASSWD", "_SECRET", "_HMAC_KEY")
# Shorter values are left alone: masking "1" or "yes" everywhere would garble the output and hide nothing.
MIN_SECRET_LEN = 4
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
_URL_END = frozenset(" \t\r\n\"'<>`|,;")


def mask_url(url: str) -> str:
    """`url` with whatever sits between "://" and "@" past the first ":" (or all of it for redis) shown as ***."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return MASK if "@" in url else url
    # Up to the last "@": a password holding "/" or "@" unencoded must still be hidden.
    userinfo, at, tail = rest.rpartition("@")
    if not at:
        return url
    user, colon, _ = userinfo.partition(":")
    if (scheme.lower() == "redis" and not colon) or "/" in user:
        user = ""
    shown = "%s:%s" % (user, MASK) if user else MASK
    return "%s://%s@%s" % (scheme, shown, tail)


def _mask_urls(text: str) -> str:
    if "://" not in text or "@" not in text:
        return text
    out: list[str] = []
    pos = 0
    while True:
        sep = text.find("://", pos)
        if sep < 0:
            break
        start = sep
        while start > pos and text[start - 1] in _SCHEME_CHARS:
            start -= 1
        end = sep + 3
        while end < len(text) and text[end] not in _URL_END:
            end += 1
        out.append(text[pos:start])
        out.append(mask_url(text[start:end]) if start < sep else text[start:end])
        pos = end
    out.append(text[pos:])
    return "".join(out)


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """The credential values in the environment, longest first (so a secret containing another goes whole)."""
    env = os.environ if environ is None else environ
    names = set(SECRET_VARS)
    key_var = env.get("COOPT_LLM_API_KEY_ENV", "")
    if key_var:
        names.add(key_var)
    for name in env:
        if name.upper().endswith(SECRET_SUFFIXES):
            names.add(name)
    values = {env.get(n, "") for n in names}
    return sorted((v for v in values if len(v) >= MIN_SECRET_LEN), key=len, reverse=True)


def mask(text: str, environ: Mapping[str, str] | None = None, extra: tuple[str, ...] = ()) -> str:
    """`text` with URL passwords and credential values (from `environ`, default os.environ, and `extra`, such as
    the value of a `password-env=NAME` variable) replaced by ***."""
    text = _mask_urls(text)
    env = os.environ if environ is None else environ
    values = secret_values(env) + [v for v in extra if len(v) >= MIN_SECRET_LEN]
    for name in _password_env_names(text):
        value = env.get(name, "")
        if len(value) >= MIN_SECRET_LEN:
            values.append(value)
    for value in sorted(set(values), key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return text


def _password_env_names(text: str) -> list[str]:
    """NAME of each `password-env=NAME` in text (a remote spec's)."""
    names = []
    for marker in ("password-env=",):
        pos = text.find(marker)
        while pos >= 0:
            start = pos + len(marker)
            end = start
            while end < len(text) and (text[end].isalnum() or text[end] == "_"):
                end += 1
            if end > start:
                names.append(text[start:end])
            pos = text.find(marker, end)
    return names


def mask_data(value: object, environ: Mapping[str, str] | None = None) -> object:
    """`value` (JSON-like: str, list, tuple, dict, numbers) with every string masked as `mask` does; dict keys
    too. For records and JSON output."""
    if isinstance(value, str):
        return mask(value, environ)
    if isinstance(value, dict):
        return {(mask(k, environ) if isinstance(k, str) else k): mask_data(v, environ) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_data(v, environ) for v in value]
    return value
