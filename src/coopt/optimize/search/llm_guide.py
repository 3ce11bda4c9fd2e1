"""The LLM guide: asks the model which (TU, node, level) to work on next, within the deterministic guide's rules.

The model sees the live arms as a table (TU, the node it builds on with that node's record, level, share of the
samples, tries, what they verified, and the deterministic policy's score) and answers with one call of the
`choose` tool (natively or as JSON in its text).
Its choice must be a live arm: the deterministic guide still decides which arms exist, records every result and
retires what stops paying, so the model can only reorder work, never spend budget on what the rules excluded.
A missing, garbled or out-of-range answer, a timeout, or a spent token budget falls back to the deterministic
pick for that step; each fallback is counted and said in the run's notes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from coopt.budget import BudgetExhausted
from coopt.llm.types import ChatRequest, Message, Model, Sampling, Tool
from coopt.optimize.search.guide import Arm, Guide

GUIDES = ("ucb", "llm")  # [optimize] guide: the deterministic policy, or the model choosing among its arms

CHOOSE = Tool(
    "choose",
    "Pick the arm to evaluate next.",
    {
        "type": "object",
        "properties": {
            "arm": {"type": "integer", "description": "the number of the arm in the table"},
            "why": {"type": "string", "description": "one short sentence"},
        },
        "required": ["arm"],
    },
)

SYSTEM = (
    "You schedule a compiler optimizer. Each arm is a translation unit (TU) of a C program, a node to build on "
    "(the original compile, or a verified faster variant made earlier) and an optimization level: flags (compiler "
    "flags), pgo (profile-guided optimization), compilers (another installed compiler), source/ir/asm (an LLM "
    "rewrites a hot function in C, LLVM IR or assembly). An evaluation builds one candidate of an arm on its node "
    "and measures the whole program. Prefer "
    "arms whose TU has a large share of the time, that build on a node that paid, and whose level has paid off; "
    "avoid arms that keep failing. Call the tool `choose` once with the number of the arm to evaluate next."
)
# Said with the system prompt when the run sweeps the compiler levels (docs/guide.md, step 10).
SWEEP_NOTE = (
    " An arm of flags, pgo or compilers sweeps all three on its node in one evaluation: each of their candidates "
    "is timed briefly and the fastest is measured in full."
)


@dataclass
class LLMGuide:
    """The deterministic Guide with the model choosing among its live arms."""

    guide: Guide
    model: Model
    max_tokens: int = 128
    nodes: dict[tuple[str, int], str] = field(default_factory=dict)  # (TU, node) -> its record, one line
    asked: int = 0
    followed: int = 0
    fallbacks: list[str] = field(default_factory=list)  # why the deterministic pick was taken instead

    @property
    def arms(self) -> list[Arm]:
        return self.guide.arms

    def record(self, arm: Arm, speedup_lower_bound: float | None, result: str = "") -> None:
        """Record one evaluation (the deterministic guide keeps the statistics)."""
        self.guide.record(arm, speedup_lower_bound, result)

    def table(self, live: list[Arm], pick: Arm) -> str:
        """The arms as the model sees them, numbered from 1."""
        rows = ["| # | TU | builds on | level | share | tries | verified gain | score |",
                "|---|---|---|---|---|---|---|---|"]
        for i, a in enumerate(live, 1):
            verified = sum(1 for g in a.gains if g > 0)
            node = "original" if a.node == 0 else self.nodes.get((a.tu, a.node), "node %d" % a.node)
            rows.append("| %d | %s | %s | %s | %.1f%% | %d | %d of %d | %.4f%s |" % (
                i, os.path.basename(a.tu), node, a.level, 100 * a.share, a.pulls, verified, a.pulls,
                self.guide.mean(a), " (deterministic pick)" if a is pick else ""))
        return "\n".join(rows)

    def next_arm(self) -> Arm | None:
        """The model's choice among the live arms, or the deterministic pick when it gives none."""
        pick = self.guide.next_arm()
        live = [a for a in self.guide.arms if not a.retired]
        if pick is None or len(live) < 2:
            return pick
        request = ChatRequest(
            (Message("system", SYSTEM + (SWEEP_NOTE if self.guide.sweep else "")),
             Message("user", "Arms:\n\n%s\n\nWhich arm next?" % self.table(live, pick))),
            (CHOOSE,),
            Sampling(max_tokens=self.max_tokens),
        )
        self.asked += 1
        try:
            answer = self.model.query(request)
        except BudgetExhausted as exc:
            return self._fallback(pick, "the token budget is spent (%s)" % exc)
        if not answer.ok:
            return self._fallback(pick, "%s: %s" % (answer.status.value, answer.detail or "no answer"))
        calls = [c for c in answer.tool_calls if c.name == CHOOSE.name]
        if not calls:
            return self._fallback(pick, "the answer called no `choose`")
        number = calls[0].arguments.get("arm")
        if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= len(live):
            return self._fallback(pick, "arm %r is not in the table" % (number,))
        self.followed += 1
        return live[number - 1]

    def _fallback(self, pick: Arm, why: str) -> Arm:
        self.fallbacks.append(why)
        return pick

    def summary(self) -> str:
        """One line for the run's notes."""
        text = "LLM guide: asked %d time(s), followed %d" % (self.asked, self.followed)
        if self.fallbacks:
            text += "; deterministic pick taken %d time(s) (last: %s)" % (len(self.fallbacks), self.fallbacks[-1])
        return text
