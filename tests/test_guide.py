"""The guide's budget split and the budget itself, on simulated outcomes (the algorithm is pure)."""

from __future__ import annotations

import pytest

from coopt.budget import Budget, BudgetExhausted
from coopt.optimize.search.guide import NOTHING, PRIOR_SPEEDUP, PROMISING, Guide, amdahl_bound


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


# ---- the lineage tree (docs/guide.md's policy) -----------------------------------------------------------------


def test_a_tu_whose_share_cannot_reach_min_gain_gets_no_arm() -> None:
    # 1.8% of the samples: even an infinitely fast TU gives 1/(1-0.018) = 1.018x, under min_gain 1.02.
    guide = Guide({"hot.c": 0.9, "tiny.c": 0.018}, min_share=0.0, min_gain=1.02)
    assert {a.tu for a in guide.arms} == {"hot.c"}
    assert "at most 1.018x" in guide.skipped["tiny.c"] and "under min_gain 1.02" in guide.skipped["tiny.c"]
    assert amdahl_bound(0.5) == 2.0
    # The same TU with a lower bar is worth an evaluation.
    assert any(a.tu == "tiny.c" for a in Guide({"tiny.c": 0.018}, min_share=0.0, min_gain=1.01).arms)


def test_an_accepted_node_is_expanded_first_then_the_search_backtracks() -> None:
    guide = Guide({"a.c": 0.8}, levels=("source", "flags", "pgo"), patience=2)
    arm = guide.next_arm()
    assert (arm.node, arm.level) == (0, "source")
    guide.record(arm, 1.30)
    guide.accepted("a.c", 1, "source", 1.30)
    # Every level that builds on a source rewrite gets an arm on node 1, and the node that paid is expanded first.
    assert {a.level for a in guide.arms if a.node == 1} == {"source", "flags", "pgo"}
    first = guide.next_arm()
    assert first.node == 1
    # Node 1's directions stop paying (`patience` failures each): the search backtracks to the root's.
    for a in [a for a in guide.arms if a.node == 1]:
        for _ in range(2):
            guide.record(a, None)
    assert all(a.retired for a in guide.arms if a.node == 1)
    after = guide.next_arm()
    assert after is not None and after.node == 0


def test_a_better_child_takes_the_expansion_from_its_parent() -> None:
    guide = Guide({"a.c": 0.8}, levels=("source", "flags", "pgo"))
    guide.accepted("a.c", 1, "source", 1.2)
    assert all(a.expand for a in guide.arms if a.node == 1)
    guide.accepted("a.c", 2, "flags", 1.4)  # flags on a source rewrite: only PGO builds on a flags node
    assert [a.level for a in guide.arms if a.node == 2] == ["pgo"]
    assert all(a.expand == (a.node == 2) for a in guide.arms)


def test_a_promising_rejection_is_retried_before_it_counts_as_a_failure() -> None:
    guide = Guide({"a.c": 0.8}, levels=("source",), patience=1, retries=2)
    arm = guide.arms[0]
    guide.record(arm, None, PROMISING)
    guide.record(arm, None, PROMISING)
    assert not arm.retired and arm.failures_in_row == 0
    guide.record(arm, None, PROMISING)  # the third promising miss in a row is a failure
    assert arm.retired


def test_a_level_that_keeps_returning_no_candidate_is_asked_no_more() -> None:
    guide = Guide({"a.c": 0.6, "b.c": 0.3}, levels=("source", "flags"), patience=10, no_candidate_limit=3)
    source = [a for a in guide.arms if a.level == "source"]
    guide.record(source[0], None, NOTHING)
    guide.record(source[1], None, NOTHING)
    assert not guide.retired_levels
    guide.record(source[0], None, NOTHING)
    assert "3 proposals in a row came back with no candidate" in guide.retired_levels["source"]
    assert all(a.retired for a in source) and not any(a.retired for a in guide.arms if a.level == "flags")
    guide.accepted("a.c", 1, "flags", 1.1)  # later nodes get no live arm of a retired level
    assert all(a.retired for a in guide.arms if a.level == "source")


def test_levels_that_returned_nothing_lose_their_share_of_the_budget() -> None:
    guide = Guide({"a.c": 0.5, "b.c": 0.5}, levels=("source", "pgo"), patience=100)
    before = guide.level_speedup("source")
    for a in [a for a in guide.arms if a.level == "source"] * 3:
        guide.record(a, None)
    assert guide.level_speedup("source") < before and guide.level_speedup("pgo") == PRIOR_SPEEDUP["pgo"]
    assert guide.next_arm().level == "pgo"


def test_a_model_written_node_is_lowered_by_the_compiler_levels_first() -> None:
    # A source rewrite 18x faster makes the source level's pooled speed-up dwarf the compiler levels' priors; still
    # the compiler lowers the new code (once per level) before the model is asked again (policy step 8).
    guide = Guide({"a.c": 0.9}, levels=("source", "flags", "pgo"))
    arm = guide.next_arm()
    assert (arm.node, arm.level) == (0, "source")
    guide.record(arm, 18.0)
    guide.accepted("a.c", 1, "source", 18.0)
    picks = []
    for _ in range(3):
        arm = guide.next_arm()
        picks.append((arm.node, arm.level))
        guide.record(arm, None)
    assert sorted(picks[:2]) == [(1, "flags"), (1, "pgo")]
    assert picks[2] == (1, "source")


def test_every_level_is_tried_once_on_a_node_before_one_goes_twice() -> None:
    # Three compiler levels, a budget of three: a failed PGO try must not keep flags and other compilers from running.
    guide = Guide({"a.c": 0.95}, levels=("flags", "pgo", "compilers"))
    picks = []
    for _ in range(3):
        arm = guide.next_arm()
        picks.append(arm.level)
        guide.record(arm, None)
    assert sorted(picks) == ["compilers", "flags", "pgo"]


def test_every_level_is_tried_once_on_a_tu_before_a_node_that_paid_is_expanded() -> None:
    # bench grid_paths, budget 3: PGO paid a little, flags more; PGO on the flags node took the third evaluation
    # and other compilers (2.3x alone) never ran. Breadth over the levels first, then depth.
    guide = Guide({"a.c": 0.95}, levels=("flags", "pgo", "compilers"))
    first = guide.next_arm()
    guide.record(first, 1.03)
    guide.accepted("a.c", 1, first.level, 1.03)
    second = guide.next_arm()
    assert second.level != first.level
    guide.record(second, 1.12)
    guide.accepted("a.c", 2, second.level, 1.12)
    third = guide.next_arm()
    assert (third.node, third.level) == (0, ({"flags", "pgo", "compilers"} - {first.level, second.level}).pop())
    guide.record(third, None)
    assert guide.next_arm().node == 2  # then the node that paid most is expanded


def test_a_promising_compiler_level_does_not_jump_ahead_of_untried_levels() -> None:
    # A compiler level learns nothing from the verdict: its next proposal is the next row of its table.
    guide = Guide({"a.c": 0.95}, levels=("flags", "pgo", "compilers"))
    first = guide.next_arm()
    guide.record(first, None, PROMISING)
    assert first.failures_in_row == 0 and not first.retired
    second = guide.next_arm()
    assert second.level != first.level
    guide.record(second, None)
    assert guide.next_arm().level not in (first.level, second.level)


def test_the_levels_not_yet_tried_on_a_tu_are_known() -> None:
    # What a second measurement of a promising candidate must leave room for (optimize/search/attempt.py).
    guide = Guide({"a.c": 0.6, "b.c": 0.3}, levels=("flags", "pgo", "compilers"))
    assert guide.levels_not_tried("a.c") == {"flags", "pgo", "compilers"}
    arm = next(a for a in guide.arms if (a.tu, a.level) == ("a.c", "pgo"))
    guide.record(arm, None)
    assert guide.levels_not_tried("a.c") == {"flags", "compilers"}
    assert guide.levels_not_tried("b.c") == {"flags", "pgo", "compilers"}
    guide.retire_level("compilers", "not installed")
    assert guide.levels_not_tried("a.c") == {"flags"}


def test_a_promising_direction_goes_again_next() -> None:
    guide = Guide({"a.c": 0.8}, levels=("source", "pgo"))
    arm = guide.next_arm()
    assert arm.level == "source"
    guide.record(arm, None, PROMISING)
    assert guide.next_arm() is arm
    guide.record(arm, None, PROMISING)
    assert guide.next_arm() is arm
    guide.record(arm, None, PROMISING)  # retries spent: now a failure, and the untried level goes
    assert guide.next_arm().level == "pgo"


def test_with_sweep_the_compilers_go_first_on_a_tu_as_one_choice() -> None:
    # Step 10: the source level's prior (1.25x) is the highest, yet the compiler levels of the root are swept first,
    # together; then the model; a model-written node is lowered by one sweep (step 8).
    guide = Guide({"a.c": 0.9, "b.c": 0.05}, levels=("flags", "pgo", "compilers", "source"), sweep=True)
    arm = guide.next_arm()
    assert arm.tu == "a.c" and arm.node == 0 and arm.level in ("flags", "pgo", "compilers")
    group = guide.sweep_group(arm)
    assert group[0] is arm and {(a.node, a.level) for a in group} == {(0, "flags"), (0, "pgo"), (0, "compilers")}
    for a in group:
        guide.record(a, None)
    arm = guide.next_arm()
    assert (arm.tu, arm.node, arm.level) == ("a.c", 0, "source")
    assert guide.sweep_group(arm) == [arm]  # an LLM level is never part of a sweep
    guide.record(arm, 3.0)
    guide.accepted("a.c", 1, "source", 3.0)
    arm = guide.next_arm()
    assert arm.node == 1 and {a.level for a in guide.sweep_group(arm)} == {"flags", "pgo", "compilers"}
    assert all(a.node == 1 for a in guide.sweep_group(arm))


def test_without_sweep_the_priors_order_the_levels() -> None:
    guide = Guide({"a.c": 0.9}, levels=("flags", "pgo", "compilers", "source"))
    arm = guide.next_arm()
    assert arm.level == "source" and guide.sweep_group(arm) == [arm]
    assert guide.sweep_group(next(a for a in guide.arms if a.level == "pgo"))[0].level == "pgo"
    assert len(guide.sweep_group(next(a for a in guide.arms if a.level == "pgo"))) == 1
