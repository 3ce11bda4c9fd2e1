"""The guide's deterministic policy: which (TU, level) to work on next, and when a direction stops paying.

The algorithm (documented in docs/guide.md):

1. Arms are (TU, level) pairs for the hot TUs of the profile. A TU's weight is its share of samples `h` (plus
   the library calls it makes, with dwarf call graphs).
2. Each arm starts from a prior program-level gain, Amdahl-weighted: `h * (1 - 1/s_level)`, where `s_level` is the
   speedup a level typically reaches on a TU (source rewrites most, flags least; see PRIOR_SPEEDUP).
3. After each evaluation the arm records the program-level gain it verified: `h * (1 - 1/s)` with `s` the lower
   bound of the candidate's speedup interval, or 0 when the candidate was rejected or not faster.
4. The next arm is the one with the highest upper confidence bound: mean gain (the prior counts as one
   observation) plus `c * prior * sqrt(ln N / n)`. Evaluations therefore flow to what pays, in proportion to how
   much of the program it can still move.
5. An arm that failed `patience` times in a row is retired ("stops a direction that stops paying"). TUs below
   `min_share` of the samples get no arms at all: even a 2x rewrite of them could not move the program.

The budget itself is enforced by `Budget`; the guide only orders the work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Typical per-TU speedup a level reaches when it works (priors, not promises): the paper reports up to 1.25x
# from source rewrites; PGO on the hottest TUs measured 1.02-1.14x here; flags alone moved nothing beyond noise.
PRIOR_SPEEDUP = {"source": 1.25, "pgo": 1.08, "ir": 1.05, "asm": 1.03, "flags": 1.02, "compilers": 1.02}
LEVEL_ORDER = ("pgo", "source", "ir", "flags", "asm")


@dataclass
class Arm:
    tu: str
    level: str
    share: float
    prior: float
    gains: list[float] = field(default_factory=list)
    failures_in_row: int = 0
    retired: bool = False

    @property
    def pulls(self) -> int:
        return len(self.gains)

    def mean(self) -> float:
        return (self.prior + sum(self.gains)) / (1 + len(self.gains))


@dataclass
class Guide:
    """Deterministic (TU, level) scheduler over hot TUs with their sample shares."""

    shares: dict[str, float]
    levels: tuple[str, ...] = LEVEL_ORDER
    exploration: float = 1.0
    patience: int = 3
    min_share: float = 0.01
    arms: list[Arm] = field(default_factory=list)

    def __post_init__(self) -> None:
        unknown = [lv for lv in self.levels if lv not in PRIOR_SPEEDUP]
        if unknown:
            raise ValueError("unknown levels: %s (known: %s)" % (", ".join(unknown), ", ".join(PRIOR_SPEEDUP)))
        for tu, share in sorted(self.shares.items(), key=lambda kv: (-kv[1], kv[0])):
            if share < self.min_share:
                continue
            for level in self.levels:
                prior = share * (1 - 1 / PRIOR_SPEEDUP[level])
                self.arms.append(Arm(tu, level, share, prior))

    def _live(self) -> list[Arm]:
        return [a for a in self.arms if not a.retired]

    def next_arm(self) -> Arm | None:
        """The arm to evaluate next, or None when every direction has stopped paying."""
        live = self._live()
        if not live:
            return None
        total = 1 + sum(a.pulls for a in self.arms)

        def ucb(a: Arm) -> tuple[float, float, str, int]:
            bonus = self.exploration * a.prior * math.sqrt(math.log(total + 1) / (1 + a.pulls))
            return (a.mean() + bonus, a.share, a.tu, -self.levels.index(a.level))

        return max(live, key=ucb)

    def record(self, arm: Arm, speedup_lower_bound: float | None) -> None:
        """Record one evaluation: the verified speedup's lower bound, or None when nothing was accepted."""
        gain = 0.0
        if speedup_lower_bound is not None and speedup_lower_bound > 1.0:
            gain = arm.share * (1 - 1 / speedup_lower_bound)
        arm.gains.append(gain)
        if gain > 0:
            arm.failures_in_row = 0
        else:
            arm.failures_in_row += 1
            if arm.failures_in_row >= self.patience:
                arm.retired = True

    def retire_tu(self, tu: str) -> None:
        """Stop working on a TU (e.g. it does not build, or its functions cannot be driven)."""
        for a in self.arms:
            if a.tu == tu:
                a.retired = True

    def plan(self) -> list[tuple[str, str, float]]:
        """The arms in their current order of promise: (tu, level, prior gain). For progress output and reports."""
        return [(a.tu, a.level, a.prior) for a in sorted(self._live(), key=lambda a: -a.mean())]
