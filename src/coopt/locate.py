"""Where coopt's config file is: its name and the search for it, shared by coopt-cc and `coopt.config`.

Both readers must read the same file, and configuration must not depend on the hot path, so the search lives
here, below both: it imports nothing but `os` (coopt-cc runs it once per compile).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: keep the hot path import-light
    from collections.abc import Mapping

CONFIG_NAME = "coopt.toml"


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
