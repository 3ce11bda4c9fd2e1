"""coopt's configuration: `coopt.toml` (or `[tool.coopt]` in pyproject.toml), `COOPT_*` overrides, typed values.

    from coopt.config import load, ConfigError
    config = load()                      # the effective configuration for the working directory
    config.hooks.build, config.cache.dir, config.setting("optimize.min_gain").origin

The key table is `schema.KEYS`; docs/config.md lists it. coopt-cc keeps its own import-light reader of the three
keys it needs (wrapper/settings.py); tests/test_config.py checks both readers agree on them.
"""

from __future__ import annotations

from coopt.config.load import environment, load, shown
from coopt.config.model import Config, Origin, Setting
from coopt.config.schema import KEYS, Command
from coopt.config.source import ConfigError

__all__ = ["KEYS", "Command", "Config", "ConfigError", "Origin", "Setting", "environment", "load", "shown"]
