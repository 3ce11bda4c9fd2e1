"""`coopt config`: the effective configuration, each value with where it came from."""

from __future__ import annotations

import argparse
import json
import sys

from coopt.cli import UsageError

DESCRIPTION = """Show the effective configuration: defaults, then coopt.toml (found from the working directory
upwards, or COOPT_CONFIG; else [tool.coopt] in pyproject.toml), then COOPT_* environment variables.

  coopt config show [--json]     every key, its value and its origin (default, file:line, env VAR)
  coopt config get KEY           one value, e.g. `coopt config get cache.dir` (for scripts and CI)
  coopt config path              the config file in use (nothing when there is none)

Keys and their meaning: docs/config.md. A broken file is one line: file:line, key, what was expected (exit 2)."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coopt config", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", nargs="?", default="show", choices=("show", "get", "path"))
    p.add_argument("key", nargs="?", help="section.key, for get")
    p.add_argument("--json", action="store_true", help="show: machine-readable output")
    return p


def _plain(value: object) -> object:
    """A value for JSON and for `get`: commands as their shell line, tuples as lists."""
    from coopt.config import Command

    if isinstance(value, Command):
        return value.shell_line()
    if isinstance(value, tuple):
        return list(value)
    return value


def run(_name: str, argv: list[str]) -> int:
    """Entry point of `coopt config`. Every value printed goes through coopt.redact: no command prints a secret
    (a remote URL's password, an API key), scripts included."""
    a = _parser().parse_args(argv)
    from coopt.config import KEYS, ConfigError, load, shown
    from coopt.redact import mask, mask_data

    try:
        config = load()
    except ConfigError as exc:
        raise UsageError("bad config: %s" % exc) from exc
    if a.action == "path":
        if config.file:
            print(config.file)
        return 0
    if a.action == "get":
        if not a.key:
            raise UsageError("give the key: coopt config get SECTION.KEY (e.g. cache.dir)")
        try:
            setting = config.setting(a.key)
        except KeyError:
            raise UsageError("unknown key %r; `coopt config show` lists them" % a.key) from None
        value = _plain(setting.value)
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list):
            value = ",".join(value)
        print("" if value is None else mask(str(value)))
        return 0
    if a.json:
        out = {"file": config.file, "project_dir": config.project_dir,
               "settings": {s.dotted: {"value": _plain(s.value), "origin": s.origin.kind, "where": s.origin.where}
                            for s in config.settings}}
        json.dump(mask_data(out), sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    print(mask("config file: %s" % (config.file or "none (defaults and COOPT_* variables only)")))
    print(mask("project dir: %s" % config.project_dir))
    by_dotted = {s.dotted: s for s in config.settings}
    section = ""
    width = max(len(k.name) for k in KEYS)
    for key in KEYS:
        if key.section != section:
            section = key.section
            print("[%s]" % section)
        s = by_dotted[key.dotted]
        print(mask("  %-*s = %-40s # %s" % (width, key.name, shown(s), s.origin)))
    return 0
