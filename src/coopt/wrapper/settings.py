"""The wrapper's settings: environment variables first, then `coopt.toml`, then defaults.

Only the few keys the wrapper needs are read here. The file is looked up from the working directory upwards
(one stat per directory) and parsed only when it exists, so projects without one pay nothing.

    COOPT_COMPILER     the real compiler for CC=coopt-cc        [compiler] path     default: clang
    COOPT_LAUNCHER     ccache, sccache... in front of it        [compiler] launcher default: none
    COOPT_CACHE_DIR    the cache directory                      [cache] dir         default: ~/.cache/coopt
    COOPT_READONLY     look up variants, write nothing          [cache] read_only   default: off
    COOPT_REMOTE_STORAGE       remote stores behind the local cache  [cache] remote   default: none
                               (space-separated specs in the environment; a list of specs in the file)
    COOPT_REMOTE_READ_ONLY     never write to any remote             [cache] remote_read_only    default: off
    COOPT_REMOTE_RETRY_AFTER   seconds a failed remote is skipped     [cache] remote_retry_after  default: 60
    COOPT_REMOTE_RECHECK       seconds coopt-cc-fast trusts a miss    [cache] remote_recheck      default: 300
    COOPT_SERVE_UNVERIFIED     serve `cache put --unverified` entries [cache] serve_unverified   default: off
    COOPT_BASE_DIR     key absolute paths under it relative     [cache] base_dir    default: none
                       (as ccache's base_dir; in the file, relative to the file's directory)
    COOPT_DISABLE      pass everything through                  -                   default: off
    COOPT_DEBUG        log decisions, write key material        -                   default: off
    COOPT_CONFIG       the config file to use (skips the search)
"""

from __future__ import annotations

import os

from coopt.locate import CONFIG_NAME as CONFIG_NAME
from coopt.locate import find_config

REMOTE_RETRY_AFTER = 60.0  # config/schema.py has the same defaults (a test checks)
REMOTE_RECHECK = 300.0
_TRUE = ("1", "true", "yes", "on")


class ConfigError(Exception):
    """coopt's own configuration is broken: one line saying where and what, for the user to fix."""


class Settings:
    __slots__ = ("compiler", "launcher", "cache_dir", "read_only", "disabled", "debug", "config_path", "config_digest",
                 "cache_dir_from_config", "remote", "remote_read_only", "remote_retry_after", "remote_recheck",
                 "serve_unverified", "base_dir")

    def __init__(self) -> None:
        self.compiler = ""
        self.launcher = ""  # a program every real compile goes through (wrapper/launcher.py); "" for none
        self.cache_dir = ""
        self.read_only = False
        self.remote: tuple[str, ...] = ()  # spec texts, parsed only when a lookup needs them (cache/remote/sync.py)
        self.remote_read_only = False
        self.remote_retry_after = REMOTE_RETRY_AFTER
        self.remote_recheck = REMOTE_RECHECK
        self.serve_unverified = False  # the user's explicit opt-in to entries stored without evidence
        self.base_dir = ""  # absolute and normalized, or "" (cache/key.py rebase_path)
        self.disabled = False
        self.debug = False
        self.config_path = ""
        self.config_digest = ""  # xxh3-128 of the config file's bytes: coopt-cc-fast's memos depend on them
        self.cache_dir_from_config = False


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def _read_toml(path: str) -> tuple[dict, bytes]:
    """The parsed file and the bytes it was parsed from."""
    try:
        import tomllib  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]
    try:
        with open(path, "rb") as f:
            raw = f.read()
        return tomllib.loads(raw.decode("utf-8")), raw
    except OSError as exc:
        raise ConfigError("%s: cannot read: %s" % (path, exc.strerror)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("%s: %s" % (path, exc)) from exc
    except UnicodeDecodeError as exc:
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


def _remote_list(value: object, where: str) -> tuple[str, ...]:
    """`remote = "spec"` or `remote = ["spec", ...]` -> the spec texts."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(v.strip() for v in value if v.strip())
    raise ConfigError("%s: remote must be a string or a list of strings, got %r" % (where, value))


def _seconds(value: object, name: str, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ConfigError("%s: %s must be a number of seconds, got %r" % (where, name, value)) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError("%s: %s must be a number of seconds of at least 0, got %r" % (where, name, value))
    return float(value)


def load(cwd: str) -> Settings:
    """Effective wrapper settings for a compile run in `cwd`. Raises ConfigError for a broken coopt.toml."""
    s = Settings()
    s.disabled = env_flag("COOPT_DISABLE")
    s.debug = env_flag("COOPT_DEBUG")
    s.compiler = os.environ.get("COOPT_COMPILER", "")
    s.launcher = os.environ.get("COOPT_LAUNCHER", "").strip()
    s.cache_dir = os.environ.get("COOPT_CACHE_DIR", "")
    ro_env = os.environ.get("COOPT_READONLY")
    s.read_only = ro_env is not None and ro_env.strip().lower() in _TRUE
    remote_env = os.environ.get("COOPT_REMOTE_STORAGE")
    rro_env = os.environ.get("COOPT_REMOTE_READ_ONLY")
    retry_env = os.environ.get("COOPT_REMOTE_RETRY_AFTER")
    recheck_env = os.environ.get("COOPT_REMOTE_RECHECK")
    unverified_env = os.environ.get("COOPT_SERVE_UNVERIFIED")
    base_env = os.environ.get("COOPT_BASE_DIR")

    path = find_config(cwd)
    if path:
        from coopt.cache.hashing import hash_bytes

        s.config_path = path
        data, raw = _read_toml(path)
        s.config_digest = hash_bytes(raw)
        comp = _table(data, "compiler", path)
        cache = _table(data, "cache", path)
        # Check every key, also those the environment overrides: a broken file is reported where it is broken,
        # not on the first machine that happens to lack the override.
        compiler = _typed(comp, "path", str, path + ": [compiler]")
        launcher = _typed(comp, "launcher", str, path + ": [compiler]")
        cdir = _typed(cache, "dir", str, path + ": [cache]")
        read_only = _typed(cache, "read_only", bool, path + ": [cache]")
        if not s.compiler:
            s.compiler = str(compiler or "")
        if not s.launcher:
            s.launcher = str(launcher or "").strip()
        if not s.cache_dir and cdir:
            s.cache_dir_from_config = True
            s.cache_dir = os.path.join(os.path.dirname(os.path.abspath(path)), os.path.expanduser(str(cdir)))
        if ro_env is None:
            s.read_only = bool(read_only or False)
        where = path + ": [cache]"
        remote = _remote_list(cache.get("remote"), where)
        rro = _typed(cache, "remote_read_only", bool, where)
        retry = _seconds(cache.get("remote_retry_after"), "remote_retry_after", where)
        recheck = _seconds(cache.get("remote_recheck"), "remote_recheck", where)
        s.serve_unverified = bool(_typed(cache, "serve_unverified", bool, where) or False)
        base = _typed(cache, "base_dir", str, where)
        if base:
            s.base_dir = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)),
                                                       os.path.expanduser(str(base))))
        s.remote = remote
        s.remote_read_only = bool(rro or False)
        if retry is not None:
            s.remote_retry_after = retry
        if recheck is not None:
            s.remote_recheck = recheck

    if remote_env:  # empty is unset, as for every non-switch key (config/load.py)
        s.remote = tuple(remote_env.split())
    if rro_env is not None:
        s.remote_read_only = rro_env.strip().lower() in _TRUE
    if unverified_env is not None:
        s.serve_unverified = unverified_env.strip().lower() in _TRUE
    if base_env:
        if not os.path.isabs(base_env):
            raise ConfigError("COOPT_BASE_DIR (environment): must be an absolute path, got %r" % base_env)
        s.base_dir = os.path.normpath(base_env)
    if retry_env:
        s.remote_retry_after = _seconds(retry_env, "COOPT_REMOTE_RETRY_AFTER", "environment") or 0.0
    if recheck_env:
        s.remote_recheck = _seconds(recheck_env, "COOPT_REMOTE_RECHECK", "environment") or 0.0

    if not s.compiler:
        s.compiler = "clang"
    if not s.cache_dir:
        from coopt.cache.layout import default_cache_dir

        s.cache_dir = default_cache_dir()
    return s
