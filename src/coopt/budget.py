"""The optimization budget: candidate evaluations, LLM tokens and wall time, checked in one place.

Every unit of work asks `charge()` before it starts; nothing is ever spent past a limit. A limit of 0 means that
resource is not limited (but at least one limit must be set).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


class BudgetExhausted(Exception):
    """The next piece of work does not fit in what is left; the run stops and keeps what was verified."""


@dataclass
class Budget:
    """Limits and what has been spent. Units: evaluations (candidate builds + verifications), tokens, seconds."""

    max_evaluations: int = 0
    max_tokens: int = 0
    max_seconds: float = 0.0
    evaluations: int = 0
    tokens: int = 0
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if not (self.max_evaluations or self.max_tokens or self.max_seconds):
            raise ValueError("a budget needs at least one limit (evaluations, tokens or seconds)")

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def fits(self, evaluations: int = 0, tokens: int = 0, seconds: float = 0.0) -> bool:
        """Would work of this size fit in what is left?"""
        if self.max_evaluations and self.evaluations + evaluations > self.max_evaluations:
            return False
        if self.max_tokens and self.tokens + tokens > self.max_tokens:
            return False
        return not (self.max_seconds and self.seconds + seconds > self.max_seconds)

    def charge(self, evaluations: int = 0, tokens: int = 0, seconds: float = 0.0) -> None:
        """Reserve work before doing it. Raises BudgetExhausted when it does not fit."""
        if not self.fits(evaluations, tokens, seconds):
            raise BudgetExhausted(self.describe())
        self.evaluations += evaluations
        self.tokens += tokens

    def add_tokens(self, tokens: int) -> None:
        """Record tokens an LLM call actually used (known only after the call)."""
        self.tokens += tokens

    def fraction_left(self) -> float:
        """The smallest fraction left over all limited resources (1.0 fresh, 0.0 spent)."""
        parts = []
        if self.max_evaluations:
            parts.append(1 - self.evaluations / self.max_evaluations)
        if self.max_tokens:
            parts.append(1 - self.tokens / self.max_tokens)
        if self.max_seconds:
            parts.append(1 - self.seconds / self.max_seconds)
        return max(0.0, min(parts))

    def describe(self) -> str:
        parts = []
        if self.max_evaluations:
            parts.append("%d/%d evaluations" % (self.evaluations, self.max_evaluations))
        if self.max_tokens:
            parts.append("%d/%d tokens" % (self.tokens, self.max_tokens))
        if self.max_seconds:
            parts.append("%.0f/%.0f s" % (self.seconds, self.max_seconds))
        return ", ".join(parts)
