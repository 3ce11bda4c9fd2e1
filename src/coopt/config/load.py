"""The effective configuration: defaults, then the config file, then `COOPT_*` variables, then command-line flags.

Every key of the file is checked, also those the environment overrides: a broken file is reported where it is
broken, not on the first machine that happens to lack the override (coopt-cc does the same). Unknown tables and
keys are errors, with the nearest known name suggested: a misspelt hook would otherwise be silently skipped.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from coopt.agents.registry import COMPILER_LEVELS, LLM_LEVELS
from coopt.config import model, schema
from coopt.config.source import ConfigError, ConfigFile, find

# Section name -> its dataclass; a test checks each one's fields are exactly the section's keys.
SECTION_TYPES: dict[str, type] = {
    "compiler": model.CompilerConfig,
    "cache": model.CacheConfig,
    "llm": model.LlmConfig,
    "optimize": model.OptimizeConfig,
    "hooks": model.HooksConfig,
    "verify": model.VerifyConfig,
    "nightly": model.NightlyConfig,
}


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return "did you mean %s? " % close[0] if close else ""


def _check_layout(cf: ConfigFile) -> None:
    """Unknown tables and keys, tables that are not tables, and coopt-cc's keys outside coopt.toml."""
    by_name = {k.name: k for k in schema.KEYS}
    for section, table in cf.data.items():
        if section not in schema.SECTIONS:
            if section in by_name:
                k = by_name[section]
                raise ConfigError("%s: %s: keys belong in their table: write it under [%s]"
                                  % (cf.where(section), section, k.section))
            raise ConfigError("%s: [%s]: unknown table; %s(tables: %s)" % (
                cf.where(section), section, _suggest(section, list(schema.SECTIONS)), ", ".join(schema.SECTIONS)))
        if not isinstance(table, dict):
            raise ConfigError("%s: %s: expected a table [%s], got %r" % (cf.where(section), section, section, table))
        names = [k.name for k in schema.keys_of(section)]
        for name in table:
            if name not in names:
                raise ConfigError("%s: [%s] %s: unknown key; %s(keys of [%s]: %s)" % (
                    cf.where(section, name), section, name, _suggest(name, names), section, ", ".join(names)))
            key = schema.BY_DOTTED["%s.%s" % (section, name)]
            if key.wrapper and cf.root:
                raise ConfigError("%s: [%s] %s: coopt-cc reads this key from coopt.toml only, never from %s; move "
                                  "it to a coopt.toml next to it" % (cf.where(section, name), section, name,
                                                                    os.path.basename(cf.path)))


def _from_file(cf: ConfigFile, key: schema.Key) -> tuple[Any, model.Origin] | None:
    table = cf.data.get(key.section, {})
    if key.name not in table:
        return None
    where = cf.where(key.section, key.name)
    try:
        value = key.kind.from_toml(table[key.name])
    except schema.BadValue as exc:
        raise ConfigError("%s: [%s] %s: %s" % (where, key.section, key.name, exc)) from None
    if key.relative and value:
        value = os.path.normpath(os.path.join(cf.directory, os.path.expanduser(value)))
    return value, model.Origin("file", where)


def _from_env(key: schema.Key, environ: Mapping[str, str], cwd: str) -> tuple[Any, model.Origin] | None:
    if key.env not in environ:
        return None
    text = environ[key.env]
    # An empty variable is unset, as coopt-cc reads COOPT_COMPILER and COOPT_CACHE_DIR; except a switch, which it
    # reads as off (COOPT_READONLY= turns a file's read_only off).
    if not text and not key.kind.switch:
        return None
    try:
        value = key.kind.from_env(text)
    except schema.BadValue as exc:
        raise ConfigError("%s (environment): %s" % (key.env, exc)) from None
    if key.relative:
        value = os.path.normpath(os.path.join(cwd, value))  # as given, like coopt-cc (no ~ expansion)
    return value, model.Origin("env", key.env)


def _from_flag(key: schema.Key, value: Any, flag: str) -> tuple[Any, model.Origin]:
    try:
        value = key.kind.from_toml(value)
    except schema.BadValue as exc:
        raise ConfigError("%s: %s" % (flag, exc)) from None
    return value, model.Origin("flag", flag)


def _describe(origin: model.Origin, key: schema.Key) -> str:
    if origin.kind == "file":
        return "%s: [%s] %s" % (origin.where, key.section, key.name)
    if origin.kind == "env":
        return "%s (environment)" % origin.where
    return origin.where or key.dotted


def _cross_checks(values: dict[str, model.Setting]) -> None:
    levels = values["optimize.levels"]
    provider = values["llm.provider"]
    wanted = [lv for lv in levels.value if lv in LLM_LEVELS]  # type: ignore[attr-defined]
    if wanted and provider.value == "none":
        raise ConfigError("%s: level %s needs an LLM: set [llm] provider to local or openai (or COOPT_LLM_PROVIDER), "
                          "or keep to levels %s" % (_describe(levels.origin, schema.BY_DOTTED["optimize.levels"]),
                                                    ", ".join(wanted), ", ".join(COMPILER_LEVELS)))


def load(cwd: str | None = None, environ: Mapping[str, str] | None = None,
         flags: Mapping[str, tuple[Any, str]] | None = None) -> model.Config:
    """The effective configuration for work in `cwd` (default: the working directory).

    `flags` maps `section.key` to (value, option name) for command-line overrides. Raises ConfigError (one line:
    file:line, key, what was expected) for a broken file, variable or flag."""
    cwd = os.path.abspath(cwd or os.getcwd())
    env = os.environ if environ is None else environ
    cf = find(cwd, env)
    if cf is not None:
        _check_layout(cf)
    project = cf.directory if cf else cwd
    values: dict[str, model.Setting] = {}
    for key in schema.KEYS:
        default = schema.default_of(key, env)
        if key.relative and default and not os.path.isabs(default):
            default = os.path.join(project, default)
        chosen: tuple[Any, model.Origin] = (default, model.Origin("default"))
        in_file = _from_file(cf, key) if cf else None
        chosen = in_file or chosen
        chosen = _from_env(key, env, cwd) or chosen
        if flags and key.dotted in flags:
            chosen = _from_flag(key, *flags[key.dotted])
        values[key.dotted] = model.Setting(key.dotted, chosen[0], chosen[1])
    unknown = set(flags or ()) - set(values)
    if unknown:
        raise ConfigError("unknown configuration key %s" % ", ".join(sorted(unknown)))
    _cross_checks(values)
    sections = {}
    for section, cls in SECTION_TYPES.items():
        sections[section] = cls(**{f.name: values["%s.%s" % (section, f.name)].value for f in fields(cls)})
    return model.Config(file=cf.path if cf else "", project_dir=project, settings=tuple(values.values()),
                        **sections)


def environment(config: model.Config) -> dict[str, str]:
    """The `COOPT_*` variables that give child processes (coopt-cc in a build, the LLM client) this configuration."""
    out: dict[str, str] = {}
    for s in config.settings:
        key = schema.BY_DOTTED[s.dotted]
        if s.value is None or (key.provider_default and s.origin.kind == "default"):
            continue
        if isinstance(s.value, bool):
            out[key.env] = "1" if s.value else "0"
        elif isinstance(s.value, tuple):
            out[key.env] = ",".join(s.value)
        elif isinstance(s.value, schema.Command):
            out[key.env] = s.value.shell_line()
        else:
            out[key.env] = str(s.value)
    return out


def shown(setting: model.Setting) -> str:
    """A value as `coopt config show` writes it (TOML-like)."""
    return schema.BY_DOTTED[setting.dotted].kind.show(setting.value)
