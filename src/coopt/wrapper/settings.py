"""The wrapper's settings: environment variables first, then `coopt.toml`, then defaults.

Only the few keys the wrapper needs are read here. The file is looked up from the working directory upwards
(one stat per directory) and parsed only when it exists, so projects without one pay nothing.

    COOPT_COMPILER     the real compiler for CC=coopt-cc        [compiler] path     default: clang
    COOPT_CACHE_DIR    the cache directory                      [cache] dir         default: ~/.cache/coopt
    COOPT_READONLY     look up variants, write nothing          [cache] read_only   default: off
    COOPT_DISABLE      pass everything through                  -                   default: off
    COOPT_DEBUG        log decisions, write key material        -                   default: off
    COOPT_CONFIG       the config file to use (skips the search)
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: keep the hot path import-light
    from collections.abc import Mapping

CONFIG_NAME = "coopt.toml"
_TRUE = ("1", "true", "yes", "on")


class ConfigError(Exception):
    """coopt's own configuration is broken: one line saying where and what, for the user to fix."""


class Settings:
    __slots__ = ("compiler", "cache_dir", "read_only", "disabled", "debug", "config_path")

    def __init__(self) -> None:
        self.compiler = ""
        self.cache_dir = ""
        self.read_only = False
        self.disabled = False
        self.debug = False
        self.config_path = ""


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def find_config(start: str, environ: Mapping[str, str] | None = None) -> str:
    """Path of the nearest coopt.toml at or above `start`, or "" (`COOPT_CONFIG` from `environ` wins, even empty)."""
    explicit = (os.environ if environ is None else environ).get("COOPT_CONFIG")
    if explicit is not None:
        return explicit
    d = start
    while True:
        candidate = os.path.join(d, CONFIG_NAME)
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(d)
        if parent == d:
            return ""
        d = parent


def _read_toml(path: str) -> dict:
    try:
        import tomllib  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError("%s: cannot read: %s" % (path, exc.strerror)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("%s: %s" % (path, exc)) from exc
    except UnicodeDecodeError as exc:  # tomllib decodes before parsing and lets this through
        raise ConfigError("%s: not UTF-8 text (byte %d)" % (path, exc.start)) from exc


def _table(data: dict, name: str, path: str) -> dict:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError("%s: [%s] must be a table" % (path, name))
    return value


def _typed(table: dict, key: str, kind: type, where: str) -> object:
    value = table.get(key)
    if value is not None and not isinstance(value, kind):
        raise ConfigError("%s: %s must be a %s, got %r" % (where, key, kind.__name__, value))
    return value


def load(cwd: str) -> Settings:
    """Effective wrapper settings for a compile run in `cwd`. Raises ConfigError for a broken coopt.toml."""
    s = Settings()
    s.disabled = env_flag("COOPT_DISABLE")
    s.debug = env_flag("COOPT_DEBUG")
    s.compiler = os.environ.get("COOPT_COMPILER", "")
    s.cache_dir = os.environ.get("COOPT_CACHE_DIR", "")
    ro_env = os.environ.get("COOPT_READONLY")
    s.read_only = ro_env is not None and ro_env.strip().lower() in _TRUE

    path = find_config(cwd)
    if path:
        s.config_path = path
        data = _read_toml(path)
        comp = _table(data, "compiler", path)
        cache = _table(data, "cache", path)
        # Check every key, also those the environment overrides: a broken file is reported where it is broken,
        # not on the first machine that happens to lack the override.
        compiler = _typed(comp, "path", str, path + ": [compiler]")
        cdir = _typed(cache, "dir", str, path + ": [cache]")
        read_only = _typed(cache, "read_only", bool, path + ": [cache]")
        if not s.compiler:
            s.compiler = str(compiler or "")
        if not s.cache_dir and cdir:
            s.cache_dir = os.path.join(os.path.dirname(os.path.abspath(path)), os.path.expanduser(str(cdir)))
        if ro_env is None:
            s.read_only = bool(read_only or False)

    if not s.compiler:
        s.compiler = "clang"
    if not s.cache_dir:
        from coopt.cache.layout import default_cache_dir

        s.cache_dir = default_cache_dir()
    return s
