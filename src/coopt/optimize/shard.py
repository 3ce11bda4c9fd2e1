"""Sharded optimize: split the hot TUs of one plan into N shares, so N machines each optimize one.

`coopt optimize --shard K/N` (or `COOPT_SHARD=K/N`) works only on share K. Every machine of a CI matrix computes
the split itself, so it must come out the same everywhere: it depends only on the TUs the profile and the journal
name and on their Amdahl weights (sample shares), never on timing, the machine, the order of a dict or Python's
hash seed.

The split is longest-processing-time-first (LPT): TUs sorted by weight, heaviest first (ties by object path),
each given to the shard with the least weight so far (ties: the lower shard number). No shard's weight then
exceeds the ideal (total / N) by more than the heaviest single TU. Weights are whole parts per billion of the
samples, so the sums are exact integers and no floating-point rounding can tip a tie on another machine.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

ENV = "COOPT_SHARD"
SCALE = 1_000_000_000  # weights in parts per billion of the samples
_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


class ShardError(ValueError):
    """A --shard value that is not K/N with 1 <= K <= N; the message is one line for the user."""


@dataclass(frozen=True)
class ShardSpec:
    """Shard `index` (1-based) of `count`."""

    index: int
    count: int

    def __str__(self) -> str:
        return "%d/%d" % (self.index, self.count)

    @property
    def name(self) -> str:
        """The shard's part of file names: `shard-K-of-N`."""
        return "shard-%d-of-%d" % (self.index, self.count)


def parse(text: str, origin: str = "--shard") -> ShardSpec:
    """`K/N` -> ShardSpec; ShardError naming `origin` (the option or variable it came from) otherwise."""
    m = _SPEC.fullmatch(text)
    if not m:
        raise ShardError("%s %r is not K/N (shard K of N machines, e.g. 1/3)" % (origin, text))
    k, n = int(m.group(1)), int(m.group(2))
    if n < 1:
        raise ShardError("%s %r: N must be at least 1 (the number of shards)" % (origin, text))
    if not 1 <= k <= n:
        raise ShardError("%s %r: K must be between 1 and %d (shards are numbered from 1; a Kubernetes "
                         "JOB_COMPLETION_INDEX counts from 0, add 1)" % (origin, text, n))
    return ShardSpec(k, n)


def weight(share: float) -> int:
    """A sample share as an exact integer weight."""
    return max(0, round(share * SCALE))


def partition(items: Sequence[tuple[str, float]], count: int) -> list[list[str]]:
    """Split (key, share) items into `count` lists of keys by LPT; list i is shard i + 1, heaviest first.

    The result does not depend on the order of `items`. Keys must be unique."""
    if count < 1:
        raise ValueError("the number of shards must be at least 1")
    keys = [k for k, _ in items]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate keys in the items to partition")
    order = sorted(((weight(s), k) for k, s in items), key=lambda wk: (-wk[0], wk[1]))
    shards: list[list[str]] = [[] for _ in range(count)]
    loads = [0] * count
    for w, k in order:
        i = min(range(count), key=lambda j: (loads[j], j))
        shards[i].append(k)
        loads[i] += w
    return shards


def assignment(items: Sequence[tuple[str, float]], count: int) -> dict[str, int]:
    """key -> its shard number (1-based)."""
    return {k: i + 1 for i, keys in enumerate(partition(items, count)) for k in keys}


def plan_id(items: Sequence[tuple[str, float]], count: int) -> str:
    """A short name of the split: equal on every machine that computed the same split from the same plan, so
    results of shards of different plans (another profile, another --max-tus) are not merged by mistake."""
    canon = json.dumps([count, sorted((k, weight(s)) for k, s in items)], separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:12]
