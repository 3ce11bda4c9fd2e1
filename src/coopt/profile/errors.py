"""The one exception the profile package raises for the user to act on."""

from __future__ import annotations


class ProfileError(Exception):
    """Something the user must fix (perf missing, not permitted, workload failed, nothing journaled): one line
    saying what went wrong and what to do. The CLI prints it without a traceback."""
