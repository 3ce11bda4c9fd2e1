"""Every configuration key coopt knows: one row per key, with its type, default and environment variable.

The table is the single source of truth: the loader, `coopt config show`, docs/config.md and the tests all read it.
Each kind of value parses both what a TOML file holds and what an environment variable holds (always text), and
says what it expected when the value is wrong, so a bad value becomes one line naming the file, line and key.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from coopt.agents.registry import COMPILER_LEVELS, DEFAULT_LEVELS, LLM_LEVELS

LLM_PROVIDERS = ("none", "local", "openai")
GUIDES = ("ucb", "llm")  # optimize/search/llm_guide.py
HOOKS = ("build", "clean", "test", "bench", "profile")

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


class BadValue(Exception):
    """A value of the wrong type or out of range; the message says what was expected (`expected ...`)."""


@dataclass(frozen=True)
class Command:
    """A project command from the config: a shell line (a TOML string) or an argv list (a TOML array)."""

    line: str = ""
    argv: tuple[str, ...] = ()

    def shell_line(self) -> str:
        """The command as one shell line (an argv list quoted word by word)."""
        return self.line if self.line else shlex.join(self.argv)

    def __str__(self) -> str:
        return self.shell_line()


@dataclass(frozen=True)
class Kind:
    """How a key's value is read from TOML and from the environment, and shown."""

    name: str  # what a wrong value is told it should be ("a whole number of at least 1")
    from_toml: Callable[[Any], Any]
    from_env: Callable[[str], Any]
    show: Callable[[Any], str] = repr
    switch: bool = False  # an on/off value: an empty environment variable means off, not unset


def _expect(ok: bool, what: str, value: Any) -> None:
    if not ok:
        raise BadValue("expected %s, got %s" % (what, _shown(value)))


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array %s" % _short(repr(value))
    return _short(repr(value))


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def quote(text: str) -> str:
    """A TOML basic string."""
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")


def _string(nonempty: bool = False) -> Kind:
    what = "a non-empty string" if nonempty else "a string"

    def parse(v: Any) -> str:
        _expect(isinstance(v, str) and (bool(v.strip()) or not nonempty), what, v)
        return str(v)

    return Kind(what, parse, parse, quote)


def _bool() -> Kind:
    def from_toml(v: Any) -> bool:
        _expect(isinstance(v, bool), "true or false", v)
        return bool(v)

    def from_env(text: str) -> bool:
        t = text.strip().lower()
        _expect(t in _TRUE or t in _FALSE, "1/true/yes/on or 0/false/no/off", text)
        return t in _TRUE

    return Kind("true or false", from_toml, from_env, lambda v: "true" if v else "false", switch=True)


def _number(integer: bool, low: float, exclusive: bool = False) -> Kind:
    base = "a whole number" if integer else "a number"
    what = "%s %s %s" % (base, "greater than" if exclusive else "of at least", ("%d" if integer else "%g") % low)

    def check(v: Any) -> Any:
        ok_type = isinstance(v, int) if integer else isinstance(v, (int, float))
        _expect(ok_type and not isinstance(v, bool), what, v)
        _expect(v > low if exclusive else v >= low, what, v)
        return int(v) if integer else float(v)

    def from_env(text: str) -> Any:
        try:
            v: Any = int(text.strip()) if integer else float(text.strip())
        except ValueError:
            raise BadValue("expected %s, got %r" % (what, text)) from None
        return check(v)

    return Kind(what, check, from_env, lambda v: str(v))


def _size() -> Kind:
    what = "a size such as 500M or 5G, or a byte count"

    def from_env(text: str) -> int:
        from coopt.cache.store import parse_size

        try:
            return parse_size(text)
        except ValueError:
            raise BadValue("expected %s, got %r" % (what, text)) from None

    def from_toml(v: Any) -> int:
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return int(v)
        _expect(isinstance(v, str), what, v)
        return from_env(str(v))

    return Kind(what, from_toml, from_env, _human_size)


def _human_size(n: int) -> str:
    for unit, shift in (("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return '"%d%s"' % (n >> shift, unit)
    return str(n)


def _choice(options: tuple[str, ...]) -> Kind:
    what = "one of %s" % ", ".join(options)

    def parse(v: Any) -> str:
        _expect(isinstance(v, str) and v in options, what, v)
        return str(v)

    return Kind(what, parse, lambda t: parse(t.strip()), quote)


def _levels() -> Kind:
    known = COMPILER_LEVELS + LLM_LEVELS
    what = "a non-empty list of levels from %s" % ", ".join(known)

    def check(items: list[Any], raw: Any) -> tuple[str, ...]:
        _expect(bool(items) and all(isinstance(i, str) and i in known for i in items), what, raw)
        _expect(len(set(items)) == len(items), what + " without repeats", raw)
        return tuple(items)

    def from_toml(v: Any) -> tuple[str, ...]:
        _expect(isinstance(v, list), what, v)
        return check(list(v), v)

    def from_env(text: str) -> tuple[str, ...]:
        return check([p.strip() for p in text.split(",") if p.strip()], text)

    return Kind(what, from_toml, from_env, lambda v: "[%s]" % ", ".join(quote(i) for i in v))


def _command() -> Kind:
    what = "a shell command line (a string) or an argv list of strings"

    def from_toml(v: Any) -> Command | None:
        if isinstance(v, str):
            return Command(line=v) if v.strip() else None
        _expect(isinstance(v, list) and bool(v) and all(isinstance(a, str) for a in v), what, v)
        return Command(argv=tuple(v))

    def from_env(text: str) -> Command | None:
        return Command(line=text) if text.strip() else None

    def show(v: Command | None) -> str:
        if v is None:
            return "(not set)"
        return quote(v.line) if v.line else "[%s]" % ", ".join(quote(a) for a in v.argv)

    return Kind(what, from_toml, from_env, show)


def redact(spec: str) -> str:
    """A remote spec without the credentials in its URL (`redis://:secret@h` -> `redis://***@h`), for showing."""
    from coopt.redact import mask

    return mask(spec)


def _remotes() -> Kind:
    what = "remote storage specs (redis://, http://, file://; `|read-only` after one marks it read-only)"

    def check(items: list[Any], raw: Any) -> tuple[str, ...]:
        _expect(all(isinstance(i, str) for i in items), what, raw)
        if not items:
            return ()
        from coopt.cache.remote import parse_spec

        for item in items:
            try:
                parse_spec(item)
            except Exception as exc:  # the backends' own error says what is wrong with the spec
                raise BadValue(str(exc)) from None
        return tuple(items)

    def from_toml(v: Any) -> tuple[str, ...]:
        if isinstance(v, str):
            return check(v.split(), v)
        _expect(isinstance(v, list), what, v)
        return check([i.strip() if isinstance(i, str) else i for i in v if not isinstance(i, str) or i.strip()], v)

    def from_env(text: str) -> tuple[str, ...]:
        return check(text.split(), text)

    def show(v: tuple[str, ...]) -> str:
        return "[%s]" % ", ".join(quote(redact(i)) for i in v)

    return Kind(what, from_toml, from_env, show)


def _path() -> Kind:
    kind = _string(nonempty=True)
    return Kind(kind.name, kind.from_toml, kind.from_env, kind.show)


def _base_dir() -> Kind:
    """A directory; in the environment it must be absolute (a compile's working directory varies), in the file it
    may be relative to the file's directory (`base_dir = "."`: the checkout holding coopt.toml)."""
    what = "a directory (absolute in the environment)"

    def from_toml(v: Any) -> str:
        _expect(isinstance(v, str), what, v)
        return str(v)

    def from_env(text: str) -> str:
        _expect(os.path.isabs(text), "an absolute path", text)
        return text

    return Kind(what, from_toml, from_env, quote)


@dataclass(frozen=True)
class Key:
    """One configuration key: `[section] name`, its kind, default, environment variable and meaning."""

    section: str
    name: str
    kind: Kind
    default: Any
    env: str
    doc: str
    relative: bool = False  # a path: relative to the config file's directory when it comes from the file
    wrapper: bool = False  # coopt-cc reads it too (wrapper/settings.py), from coopt.toml only
    # The default is the openai provider's; another provider (local) has its own, which an exported default would
    # shadow: only a value the user set is passed on to child processes.
    provider_default: bool = False

    @property
    def dotted(self) -> str:
        return "%s.%s" % (self.section, self.name)


def default_cache_dir(environ: Mapping[str, str]) -> str:
    """Where the cache goes when nothing says otherwise: `$XDG_CACHE_HOME/coopt`, else `~/.cache/coopt`
    (cache/layout.py's rule, with the environment passed in)."""
    xdg = environ.get("XDG_CACHE_HOME")
    if xdg:
        return os.path.join(xdg, "coopt")
    home = environ.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, ".cache", "coopt")


_DEFAULT_CACHE = object()  # resolved at load time: HOME and XDG_CACHE_HOME may change between loads


def _hook(name: str, doc: str) -> Key:
    return Key("hooks", name, _command(), None, "COOPT_HOOK_%s" % name.upper(), doc)


KEYS: tuple[Key, ...] = (
    Key("compiler", "path", _string(nonempty=True), "clang", "COOPT_COMPILER",
        "the real C compiler behind CC=coopt-cc (a name on PATH or a path)", wrapper=True),
    Key("compiler", "launcher", _string(), "", "COOPT_LAUNCHER",
        "a launcher every real compile goes through, such as ccache or sccache (coopt-cc stays first: "
        "docs/ccache.md); empty: none", wrapper=True),
    Key("cache", "dir", _path(), _DEFAULT_CACHE, "COOPT_CACHE_DIR",
        "the variant cache directory (default $XDG_CACHE_HOME/coopt or ~/.cache/coopt)", relative=True, wrapper=True),
    Key("cache", "max_size", _size(), 5 << 30, "COOPT_CACHE_MAX_SIZE",
        "size limit of the cache; `coopt cache evict` and the nightly run drop least recently used entries"),
    Key("cache", "read_only", _bool(), False, "COOPT_READONLY",
        "look variants up, write nothing: the day's builds of a CI fleet", wrapper=True),
    Key("cache", "remote", _remotes(), (), "COOPT_REMOTE_STORAGE",
        "remote stores consulted in order after a local miss, written by `coopt cache put` and the optimizer "
        "(space-separated in the environment); see docs/remote.md", wrapper=True),
    Key("cache", "remote_read_only", _bool(), False, "COOPT_REMOTE_READ_ONLY",
        "use the remote stores for lookups only, never write to them: a day build", wrapper=True),
    Key("cache", "remote_retry_after", _number(False, 0), 60.0, "COOPT_REMOTE_RETRY_AFTER",
        "seconds a remote that failed (timeout, refused) is skipped by every compile before it is tried again",
        wrapper=True),
    Key("cache", "remote_recheck", _number(False, 0), 300.0, "COOPT_REMOTE_RECHECK",
        "seconds coopt-cc-fast may replay a local miss before a compile asks the remotes again", wrapper=True),
    Key("cache", "serve_unverified", _bool(), False, "COOPT_SERVE_UNVERIFIED",
        "also serve variants stored with `coopt cache put --unverified` (experiments only: never verified)",
        wrapper=True),
    Key("cache", "base_dir", _base_dir(), "", "COOPT_BASE_DIR",
        "absolute paths under this directory are keyed relative to the compile's directory, as ccache's base_dir, "
        "so checkouts at different paths share variants (see docs/remote.md)", relative=True, wrapper=True),
    Key("llm", "provider", _choice(LLM_PROVIDERS), "none", "COOPT_LLM_PROVIDER",
        "the LLM for the source, ir and asm levels: none (compiler tools only), local (llama.cpp) or openai"),
    Key("llm", "model", _string(), "", "COOPT_LLM_MODEL", "the model name sent to an openai-compatible endpoint"),
    Key("llm", "base_url", _string(), "", "COOPT_LLM_BASE_URL",
        "the endpoint of the openai provider, e.g. http://127.0.0.1:8000/v1"),
    Key("llm", "api_key_env", _string(), "OPENAI_API_KEY", "COOPT_LLM_API_KEY_ENV",
        "the environment variable holding the API key (the key itself never goes in a file)"),
    Key("llm", "timeout", _number(False, 0, exclusive=True), 120.0, "COOPT_LLM_TIMEOUT",
        "seconds one LLM request may take (the local provider's default is its own, 600: a small model on a few "
        "cores is slow)", provider_default=True),
    Key("llm", "max_tokens", _number(True, 0), 0, "COOPT_LLM_MAX_TOKENS",
        "the most completion tokens one LLM request may ask for; a request asking more is cut to it, and the "
        "budget reserves the prompt plus this (0: each agent's own limit)"),
    Key("optimize", "budget", _number(True, 1), 20, "COOPT_BUDGET",
        "candidate evaluations one optimize run may spend"),
    Key("optimize", "budget_seconds", _number(False, 0), 0.0, "COOPT_BUDGET_SECONDS",
        "wall time one optimize run may spend (0: no time limit)"),
    Key("optimize", "budget_tokens", _number(True, 0), 0, "COOPT_BUDGET_TOKENS",
        "LLM tokens (prompt and answer) one optimize run may spend over every agent and the LLM guide; each call "
        "reserves its prompt and its max_tokens first, so the limit is never passed (0: no token limit)"),
    Key("optimize", "levels", _levels(), DEFAULT_LEVELS, "COOPT_LEVELS",
        "levels to try (comma-separated in the environment); source, ir and asm need an LLM; compilers (gcc, "
        "other clang releases) is asked for by name"),
    Key("optimize", "min_gain", _number(False, 0, exclusive=True), 1.02, "COOPT_MIN_GAIN",
        "speed-up the lower bound of a variant's interval must clear to be kept"),
    Key("optimize", "pairs", _number(True, 3), 20, "COOPT_PAIRS", "interleaved A/B pairs per measurement"),
    Key("optimize", "max_tus", _number(True, 1), 8, "COOPT_MAX_TUS", "work on at most this many of the hottest TUs"),
    Key("optimize", "final_check", _bool(), True, "COOPT_FINAL_CHECK",
        "time the whole program with all kept variants at the end; withdraw them all if it measures slower"),
    Key("optimize", "float_tolerance", _number(False, 0), 0.0, "COOPT_FLOAT_TOLERANCE",
        "how far a floating-point number in a candidate's output may be from the baseline's: "
        "tolerance x max(1, |value|), in the program's test output and the harness's float results; text and "
        "integers still compare exactly (0: exact)"),
    Key("optimize", "fuzz_seconds", _number(False, 0), 3.0, "COOPT_FUZZ_SECONDS",
        "libFuzzer time per rewritten function when the verifier judges an LLM level's candidate (source, ir, "
        "asm), after the generated inputs agree; 0: no fuzzing"),
    Key("optimize", "guide", _choice(GUIDES), "ucb", "COOPT_GUIDE",
        "who picks the next (TU, level) to evaluate: ucb, the deterministic policy of docs/guide.md; llm, the "
        "configured model choosing among the same live arms (the policy's pick when it gives no usable answer)"),
    Key("optimize", "sweep", _bool(), True, "COOPT_SWEEP",
        "the compiler levels' rows on a node (flag sets, PGO kinds, other compilers) are built together, each timed "
        "by a short screen, and the fastest judged, as one evaluation (docs/guide.md); false: one row per "
        "evaluation"),
    Key("optimize", "assume_cpu", _bool(), False, "COOPT_ASSUME_CPU",
        "the compiler tools may also try -march=native flag sets; when false they never add a target CPU "
        "option (-march, -mcpu, -mtune, ISA switches). Only when every machine sharing the cache has this CPU"),
    _hook("build", "builds the project; runs with CC=coopt-cc and coopt-cc first on PATH"),
    _hook("clean", "removes build outputs, so the next build compiles every TU"),
    _hook("test", "the project's tests; must exit 0"),
    _hook("bench", "the workload timed A/B (default: the profile workload); names the program by its path"),
    _hook("profile", "the workload profiled with perf; names the program by its path"),
    Key("hooks", "timeout", _number(False, 0, exclusive=True), 3600.0, "COOPT_HOOK_TIMEOUT",
        "seconds one hook may run before it is stopped"),
    Key("verify", "allow_unsandboxed", _bool(), False, "COOPT_ALLOW_UNSANDBOXED",
        "where bubblewrap is missing or cannot work, still run LLM candidates, with rlimits only (a warning on every "
        "run); compiler-tool candidates (flags, PGO) run that way without it"),
    Key("nightly", "dir", _path(), ".coopt-nightly", "COOPT_NIGHTLY_DIR",
        "where `coopt nightly` keeps its state, logs, profile and report (relative: to the project directory)",
        relative=True),
)

SECTIONS: tuple[str, ...] = tuple(dict.fromkeys(k.section for k in KEYS))
BY_DOTTED: dict[str, Key] = {k.dotted: k for k in KEYS}


def default_of(key: Key, environ: Mapping[str, str]) -> Any:
    """The key's default value (the cache directory's is computed from the environment's HOME/XDG)."""
    return default_cache_dir(environ) if key.default is _DEFAULT_CACHE else key.default


def keys_of(section: str) -> list[Key]:
    return [k for k in KEYS if k.section == section]
