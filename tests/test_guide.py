"""The guide's budget split and the budget itself, on simulated outcomes (the algorithm is pure)."""

from __future__ import annotations

import pytest

from coopt.budget import Budget, BudgetExhausted
from coopt.optimize.guide import Guide


def test_budget_is_never_overspent() -> None:
    b = Budget(max_evaluations=7)
    done = 0
    with pytest.raises(BudgetExhausted):
        while True:
            b.charge(evaluations=1)
            done += 1
    assert done == 7 and b.evaluations == 7
    assert not b.fits(evaluations=1)
    assert b.fraction_left() == 0.0


def test_token_budget_refuses_a_call_that_would_not_fit() -> None:
    b = Budget(max_tokens=1000)
    b.charge(tokens=600)
    assert not b.fits(tokens=500)
    with pytest.raises(BudgetExhausted, match="600/1000 tokens"):
        b.charge(tokens=500)
    assert b.tokens == 600


def test_a_budget_needs_a_limit() -> None:
    with pytest.raises(ValueError):
        Budget()


def _simulate(guide: Guide, outcome: dict[tuple[str, str], float], steps: int) -> dict[tuple[str, str], int]:
    pulls: dict[tuple[str, str], int] = {}
    for _ in range(steps):
        arm = guide.next_arm()
        if arm is None:
            break
        pulls[(arm.tu, arm.level)] = pulls.get((arm.tu, arm.level), 0) + 1
        guide.record(arm, outcome.get((arm.tu, arm.level)))
    return pulls


def test_budget_moves_to_the_level_that_pays() -> None:
    guide = Guide({"lvm.c": 0.6, "ltable.c": 0.2, "lgc.c": 0.1}, patience=3)
    pulls = _simulate(guide, {("lvm.c", "pgo"): 1.10}, steps=40)
    best = max(pulls, key=lambda k: pulls[k])
    assert best == ("lvm.c", "pgo")
    assert pulls[best] > sum(pulls.values()) / 2
    # Directions that never paid were retired after `patience` tries.
    for arm in guide.arms:
        if (arm.tu, arm.level) != ("lvm.c", "pgo"):
            assert arm.pulls <= 3


def test_hotter_tus_come_first_and_cold_ones_get_nothing() -> None:
    guide = Guide({"hot.c": 0.7, "warm.c": 0.2, "cold.c": 0.005})
    assert guide.next_arm().tu == "hot.c"
    assert all(a.tu != "cold.c" for a in guide.arms)


def test_everything_retires_when_nothing_pays() -> None:
    guide = Guide({"a.c": 0.5, "b.c": 0.5}, patience=2)
    pulls = _simulate(guide, {}, steps=1000)
    assert guide.next_arm() is None
    assert sum(pulls.values()) == 2 * len(guide.arms)


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown levels"):
        Guide({"a.c": 1.0}, levels=("magic",))
