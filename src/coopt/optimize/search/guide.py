"""The guide's deterministic policy: which (TU, node, level) to work on next in the lineage trees of the hot TUs.

The policy (documented in docs/guide.md):

1. **Where it can pay (Amdahl).** A TU holding a share `h` of the samples can speed the whole program up by at most
   `1/(1-h)`, whatever is done to it. A TU with `1/(1-h) < min_gain` gets no arm at all (listed in `skipped`, said
   in the run's output), nor does one below `min_share`: no evaluation is ever spent where it cannot pay.
2. **Arms are (TU, node, level).** A node is a verified variant of the TU (an accepted attempt) or the root (the
   TU's journaled compile, node 0). Each level builds on the nodes the registry allows (agents/registry.py,
   `builds_on`): flags and PGO on a source rewrite, IR or assembly rewrites of a rewritten source, PGO with
   other flags. When an attempt is accepted, its node gets arms for every level that builds on it.
3. **Expected gain.** An arm's prior program-level gain is `h * (1 - 1/s)`, with `s` its level's speed-up: at
   first a typical one (PRIOR_SPEEDUP), then what the level has returned so far in this run, pooled over every TU
   and node (a level that returned nothing drifts to `s = 1`): the budget splits between levels by what each
   returned. An arm on the TU's best node gets EXPAND times its prior: **expand what paid**.
4. **Choice.** The arm with the highest upper confidence bound: its mean gain (the prior counts as one observation,
   each evaluation adds `h * (1 - 1/low)`, `low` the lower bound of an accepted speed-up, else 0) plus
   `exploration * prior * sqrt(ln N / n)`. Ties go to the larger share, then the root, then LEVEL_ORDER.
5. **Retry a promising rejected direction.** A candidate that was inconclusive (the interval straddled min_gain
   with a ratio above it) or rejected by the judge with a reproducer does not count as a failure the first
   `retries` times in a row. For an LLM level the same arm goes again next, and the agent hears the judge's
   feedback (`learn`); a compiler level's next proposal is the next row of a fixed table whatever the judge said,
   so its arm keeps its place in the order instead of jumping ahead of the levels not yet tried.
6. **Backtrack from what stopped paying.** An arm retires after `patience` failures in a row; when a better node
   of the TU appears, arms on the nodes it beat lose their expansion bonus, so work moves to the new best and,
   once its arms stop paying, back to the other nodes and the root.
7. **Stop asking a level that returns nothing.** A level whose proposals came back with no candidate
   `no_candidate_limit` times in a row (over every TU and node) is retired for the run, with a note.
8. **Lower what a model wrote.** When an LLM step becomes a TU's best node, the compiler levels (flags, PGO,
   other compilers) are tried on it once each before anything else: the model's code is new to the compiler, so
   what flags or a profile did to the original says little about what they do to it, and a lowering costs no
   tokens.
9. **Every level once on a TU, and on a node, before one goes twice there.** When the highest bound is an arm
   whose level was already tried on its TU while another level has not been tried on that TU at all, the best
   arm of an untried level goes first; likewise on a node. A level's prior, or a node that paid, must not keep
   the other levels from ever running on a small budget. Other TUs keep their Amdahl order.

10. **The compiler first, as one sweep.** With `sweep` (the default of a run), the compiler levels' arms on one
   node are one choice: their rows are screened together and the fastest is judged, as one evaluation
   (sweep.py, `sweep_group`). Before anything else is asked of a TU, the sweep goes on its root: it costs
   no tokens, finds what the compiler alone can do, and the LLM levels then know the bar they must clear. Step 8's
   lowering of a model's code is then one sweep too.

The budget itself is enforced by `Budget`; the guide only orders the work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from coopt.agents.registry import BY_NAME, COMPILER_LEVELS, LLM_LEVELS, ROOT

# Typical per-TU speedup a level reaches when it works (priors, not promises): the paper reports up to 1.25x
# from source rewrites; PGO on the hottest TUs measured 1.02-1.14x here; flags alone moved nothing beyond noise.
PRIOR_SPEEDUP = {"source": 1.25, "pgo": 1.08, "ir": 1.05, "asm": 1.03, "flags": 1.02, "compilers": 1.02}
LEVEL_ORDER = ("pgo", "source", "ir", "flags", "asm")
EXPAND = 1.5  # prior factor of arms on a TU's best verified node

# How an evaluation came out, for the guide: paid (accepted with a gain), promising (worth a retry with the judge's
# feedback), failed (judged and nothing to show), nothing (no candidate came back at all).
PAID, PROMISING, FAILED, NOTHING = "paid", "promising", "failed", "nothing"


def amdahl_bound(share: float) -> float:
    """The most a TU holding `share` of the samples can speed up the whole program: 1/(1-h)."""
    return math.inf if share >= 1.0 else 1.0 / (1.0 - share)


@dataclass
class Arm:
    """One live direction: a level building on one node of one TU."""

    tu: str
    node: int  # 0: the TU's journaled compile, else the accepted attempt it builds on
    level: str
    share: float
    gains: list[float] = field(default_factory=list)
    failures_in_row: int = 0
    retries_in_row: int = 0
    retired: bool = False
    expand: bool = False  # the node is the TU's best verified variant: expand what paid

    @property
    def pulls(self) -> int:
        return len(self.gains)


@dataclass
class Guide:
    """Deterministic (TU, node, level) scheduler over hot TUs with their sample shares."""

    shares: dict[str, float]
    levels: tuple[str, ...] = LEVEL_ORDER
    exploration: float = 1.0
    patience: int = 3
    retries: int = 2
    no_candidate_limit: int = 3
    min_share: float = 0.01
    min_gain: float = 1.0
    sweep: bool = False  # step 10: the compiler levels of a node are swept together
    arms: list[Arm] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # TU -> why it gets no evaluation
    retired_levels: dict[str, str] = field(default_factory=dict)  # level -> why it is asked no more
    returned: dict[str, list[float]] = field(default_factory=dict)  # level -> speed-up lower bounds (1.0: nothing)
    nothing_in_row: dict[str, int] = field(default_factory=dict)
    node_level: dict[tuple[str, int], str] = field(default_factory=dict)
    best: dict[str, tuple[int, float]] = field(default_factory=dict)  # TU -> (node, its speed-up's lower bound)

    def __post_init__(self) -> None:
        unknown = [lv for lv in self.levels if lv not in PRIOR_SPEEDUP]
        if unknown:
            raise ValueError("unknown levels: %s (known: %s)" % (", ".join(unknown), ", ".join(PRIOR_SPEEDUP)))
        for tu, share in sorted(self.shares.items(), key=lambda kv: (-kv[1], kv[0])):
            if share < self.min_share:
                self.skipped[tu] = "%.1f%% of the samples, under min_share %.1f%%" % (100 * share,
                                                                                     100 * self.min_share)
            elif amdahl_bound(share) < self.min_gain:
                self.skipped[tu] = "%.1f%% of the samples: even an infinite speed-up of it gives at most %.3fx, " \
                    "under min_gain %.2f" % (100 * share, amdahl_bound(share), self.min_gain)
            else:
                self.add_node(tu, 0, ROOT)

    def add_node(self, tu: str, node: int, level: str) -> None:
        """A verified node of `tu` (made at `level`; ROOT for the journaled compile): arms for every level of the
        run that builds on it."""
        if tu not in self.shares or tu in self.skipped:
            return
        self.node_level[(tu, node)] = level
        for lv in self.levels:
            if level in BY_NAME[lv].builds_on and not any(
                    a.tu == tu and a.node == node and a.level == lv for a in self.arms):
                self.arms.append(Arm(tu, node, lv, self.shares[tu], retired=lv in self.retired_levels))

    def accepted(self, tu: str, node: int, level: str, low: float) -> None:
        """An accepted attempt: a new node to build on; the TU's best moves to it when it is faster."""
        self.add_node(tu, node, level)
        if low > self.best.get(tu, (0, 1.0))[1]:
            self.best[tu] = (node, low)
        best = self.best.get(tu, (0, 1.0))[0]
        for a in self.arms:
            if a.tu == tu:
                a.expand = a.node == best and best != 0

    def level_speedup(self, level: str) -> float:
        """The level's expected speed-up: its prior, as one observation, pooled with what it returned."""
        got = self.returned.get(level, [])
        return (PRIOR_SPEEDUP[level] + sum(got)) / (1 + len(got))

    def prior(self, a: Arm) -> float:
        gain = a.share * (1 - 1 / max(1.0, self.level_speedup(a.level)))
        return gain * (EXPAND if a.expand else 1.0)

    def mean(self, a: Arm) -> float:
        return (self.prior(a) + sum(a.gains)) / (1 + a.pulls)

    def live(self) -> list[Arm]:
        return [a for a in self.arms if not a.retired]

    def score(self, a: Arm, total: int) -> float:
        """The arm's upper confidence bound (policy step 4)."""
        return self.mean(a) + self.exploration * self.prior(a) * math.sqrt(math.log(total + 1) / (1 + a.pulls))

    def next_arm(self) -> Arm | None:
        """The arm to evaluate next, or None when every direction has stopped paying (policy steps 4, 5, 8, 9)."""
        live = self.live()
        if not live:
            return None
        total = 1 + sum(a.pulls for a in self.arms)

        def key(a: Arm) -> tuple[float, float, str, int, int]:
            return (self.score(a, total), a.share, a.tu, -a.node, -self.levels.index(a.level))

        lower = [a for a in live if a.pulls == 0 and a.level in COMPILER_LEVELS and a.node != 0
                 and self.best.get(a.tu, (0, 1.0))[0] == a.node and self.node_level.get((a.tu, a.node)) in LLM_LEVELS]
        if lower:  # step 8: the compiler lowers what a model wrote before anything else is asked of that code
            return max(lower, key=key)
        retry = [a for a in live if a.retries_in_row > 0 and a.level in LLM_LEVELS]
        if retry:  # step 5: a promising direction goes again, with the judge's feedback
            return max(retry, key=key)
        pick = max(live, key=key)
        first = [a for a in live if a.tu == pick.tu and a.node == 0 and a.level in COMPILER_LEVELS]
        if self.sweep and first and not any(a.pulls for a in self.arms if a.tu == pick.tu and a.level in
                                            COMPILER_LEVELS):
            return max(first, key=key)  # step 10: the compiler's sweep of the root before anything else on the TU
        # Step 9: every level once on the TU, then on the node, before one of them goes twice there.
        on_tu = {a.level for a in self.arms if a.tu == pick.tu and a.pulls}
        new_level = [a for a in live if a.tu == pick.tu and a.level not in on_tu]
        if pick.level in on_tu and new_level:
            return max(new_level, key=key)
        untried = [a for a in live if a.pulls == 0 and (a.tu, a.node) == (pick.tu, pick.node)]
        if pick.pulls and untried:
            return max(untried, key=key)
        return pick

    def sweep_group(self, arm: Arm) -> list[Arm]:
        """The arms one evaluation of `arm` covers: with `sweep`, every live compiler arm on its node (`arm`
        first); else `arm` alone."""
        if not self.sweep or arm.level not in COMPILER_LEVELS:
            return [arm]
        return [arm] + [a for a in self.live() if a is not arm and (a.tu, a.node) == (arm.tu, arm.node)
                        and a.level in COMPILER_LEVELS]

    def levels_not_tried(self, tu: str) -> set[str]:
        """The live levels no evaluation on `tu` has tried yet: what step 9 still owes the TU before depth."""
        tried = {a.level for a in self.arms if a.tu == tu and a.pulls}
        return {a.level for a in self.live() if a.tu == tu and a.level not in tried}

    def record(self, arm: Arm, low: float | None, result: str = "") -> None:
        """Record one evaluation of `arm`: `low` the accepted speed-up's lower bound (None: nothing accepted) and
        `result` one of PAID, PROMISING, FAILED, NOTHING (default: PAID with a `low`, else FAILED)."""
        result = result or (PAID if low is not None else FAILED)
        gain = arm.share * (1 - 1 / low) if result == PAID and low is not None and low > 1.0 else 0.0
        arm.gains.append(gain)
        self.returned.setdefault(arm.level, []).append(low if gain > 0 and low is not None else 1.0)
        self.nothing_in_row[arm.level] = self.nothing_in_row.get(arm.level, 0) + 1 if result == NOTHING else 0
        if gain > 0:
            arm.failures_in_row = arm.retries_in_row = 0
        elif result == PROMISING and arm.retries_in_row < self.retries:
            arm.retries_in_row += 1  # retried with the judge's feedback; not counted as a failure yet
        else:
            arm.retries_in_row = 0
            arm.failures_in_row += 1
            if arm.failures_in_row >= self.patience:
                arm.retired = True
        if self.nothing_in_row[arm.level] >= self.no_candidate_limit:
            self.retire_level(arm.level, "asked no more: %d proposals in a row came back with no candidate"
                              % self.nothing_in_row[arm.level])

    def retire_level(self, level: str, why: str) -> None:
        """Ask `level` no more in this run (every TU, every node); `why` completes "level X ..." in the output."""
        self.retired_levels.setdefault(level, why)
        for a in self.arms:
            if a.level == level:
                a.retired = True

    def retire_tu(self, tu: str) -> None:
        """Stop working on a TU (e.g. it does not build, or its functions cannot be driven)."""
        for a in self.arms:
            if a.tu == tu:
                a.retired = True

    def plan(self) -> list[tuple[str, int, str, float]]:
        """The live arms in their order of promise: (tu, node, level, prior gain). For progress and reports."""
        return [(a.tu, a.node, a.level, self.prior(a)) for a in sorted(self.live(), key=lambda a: -self.mean(a))]
