"""Merging the results of a sharded optimize (`coopt optimize --shard K/N` on N machines) into one report.

Each shard's state file (`shard-K-of-N.json`) carries the whole split (`ShardRecord.assignment`: every hot TU's
shard), so the merge knows which shards there should be and which TUs each one owed: a shard with no result file
is reported as missing, with its TUs, never silently left out. Results of different splits (another profile,
journal or --max-tus) are refused. Every TU is shown once, from the shard that owned it. No machine measured the
program with all shards' variants together, so the merged report has no single whole-program number: it lists
each shard's own final measurement and which shards contributed variants.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from coopt.optimize.state import (
    AttemptRecord,
    KeptRecord,
    RunState,
    RunStateError,
    TuRecord,
    load_file,
    result_files,
)


@dataclass
class ShardResult:
    """One shard of the split: its result, or none (missing)."""

    index: int
    count: int
    path: str = ""  # the state file it came from; "" when missing
    state: RunState | None = None
    tus: list[str] = field(default_factory=list)  # the objects it owed, hottest first

    @property
    def missing(self) -> bool:
        return self.state is None

    @property
    def kept(self) -> list[KeptRecord]:
        return [k for k in self.state.kept.values() if not k.withdrawn] if self.state else []


@dataclass
class Shards:
    """What the merge saw: N, the split's id, one ShardResult per shard (in order), and what it noticed."""

    count: int
    plan: str
    results: list[ShardResult]
    notes: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[int]:
        return [r.index for r in self.results if r.missing]

    @property
    def contributed(self) -> list[int]:
        """Shards that stored at least one variant still in use."""
        return [r.index for r in self.results if r.kept]

    def shard_of(self, obj: str) -> int | None:
        for r in self.results:
            if obj in r.tus:
                return r.index
        return None


def load_results(paths: list[str], below: bool = True) -> list[tuple[str, RunState]]:
    """Every run state found at `paths` (files, or directories holding state files, searched `below` too);
    RunStateError when there is none or one cannot be read."""
    files: list[str] = []
    for p in paths:
        found = result_files(p, below)
        if not found:
            raise RunStateError("no run state in %s (no state.json, no shard-K-of-N.json): is it a `coopt optimize` "
                                "run directory or a downloaded result?" % p)
        files += [f for f in found if f not in files]
    return [(f, load_file(f)) for f in files]


def combine(results: list[tuple[str, RunState]]) -> tuple[RunState, Shards | None]:
    """One run's state as it is, or the merge of shard results: (merged state, what the merge saw).
    RunStateError when the results cannot be merged (one line)."""
    if not results:
        raise RunStateError("no run state to report on")
    plain = [p for p, s in results if s.shard is None]
    if plain and len(results) == 1:
        return results[0][1], None
    if plain:
        raise RunStateError("%s is not a shard's result and cannot be merged with others (%d state files given); "
                            "report on one run with --run DIR" % (plain[0], len(results)))
    first = results[0][1].shard
    assert first is not None
    for path, s in results:
        assert s.shard is not None
        if (s.shard.plan, s.shard.count) != (first.plan, first.count):
            raise RunStateError("%s is shard %d/%d of split %s, but %s is of split %s with %d shards: results of "
                                "different plans (profile, journal or --max-tus) cannot be merged" % (
                                    path, s.shard.index, s.shard.count, s.shard.plan, results[0][0], first.plan,
                                    first.count))
    shards = Shards(first.count, first.plan, [ShardResult(i, first.count) for i in range(1, first.count + 1)])
    owed: dict[int, list[str]] = {}
    for obj, k in first.assignment.items():
        owed.setdefault(k, []).append(obj)
    for r in shards.results:
        r.tus = owed.get(r.index, [])
    for path, s in results:
        assert s.shard is not None
        r = shards.results[s.shard.index - 1]
        if r.state is not None:
            newer, older = (s, path), (r.state, r.path)
            if (r.state.updated, r.path) > (s.updated, path):
                newer, older = older, newer
            shards.notes.append("shard %d/%d: two results (%s, %s); the newer one, %s, is used" % (
                r.index, r.count, older[1], newer[1], newer[1]))
            r.state, r.path = newer
        else:
            r.state, r.path = s, path
    return _merged_state(shards), shards


def _merged_state(sh: Shards) -> RunState:
    present = [r for r in sh.results if r.state is not None]
    states = [r.state for r in present if r.state is not None]
    base = states[0]
    notes = list(sh.notes)
    for name in ("program", "levels", "min_gain", "pairs", "measure", "llm", "budget"):
        values = {repr(getattr(s, name)) for s in states}
        if len(values) > 1:
            notes.append("the shards ran with different %s: %s" % (name, ", ".join(
                "%d/%d %s" % (r.index, r.count, getattr(r.state, name)) for r in present)))
    tus: list[TuRecord] = []
    seen: set[str] = set()
    for r in sh.results:  # each hot TU from the shard that owned it
        for obj in r.tus:
            rec = _tu_record(sh, obj)
            if r.state is None:
                rec = replace(rec, note="not optimized: shard %d/%d sent no result" % (r.index, r.count))
            else:
                rec = next((t for t in r.state.tus if t.object == obj), rec)
            tus.append(rec)
            seen.add(obj)
    for t in base.tus:  # TUs no shard worked on (cold, not in the link...) are the same in every shard
        if t.object not in seen:
            tus.append(t)
            seen.add(t.object)
    attempts: list[AttemptRecord] = []
    kept: dict[str, KeptRecord] = {}
    for r in present:
        assert r.state is not None
        numbers = {}
        for a in r.state.attempts:
            numbers[a.number] = len(attempts) + 1
            attempts.append(replace(a, number=len(attempts) + 1))
        for obj, k in r.state.kept.items():
            kept[obj] = replace(k, attempt=numbers.get(k.attempt, k.attempt))
        notes += ["shard %d/%d: %s" % (r.index, r.count, n) for n in r.state.notes]
    statuses = sorted({s.status for s in states})
    if sh.missing:
        status = "incomplete"
        reason = "no result from shard(s) %s" % ", ".join("%d/%d" % (i, sh.count) for i in sh.missing)
    else:
        status = statuses[0] if len(statuses) == 1 else "mixed"
        reason = "; ".join("shard %d/%d: %s" % (r.index, r.count, r.state.stop_reason or r.state.status)
                           for r in present if r.state is not None)
    return replace(
        base,
        created=min(s.created for s in states),
        status=status,
        stop_reason=reason,
        updated=max(s.updated for s in states),
        budget={k: sum(s.budget.get(k, 0) for s in states) for k in ("evaluations", "seconds")},
        spent={k: sum(s.spent.get(k, 0) for s in states) for k in ("evaluations", "seconds")},
        tus=tus,
        attempts=attempts,
        kept=kept,
        noise=None,
        final=None,  # no machine measured every shard's variants together
        notes=notes,
        shard=None,
    )


def _tu_record(sh: Shards, obj: str) -> TuRecord:
    """The TU as any present shard recorded it (every shard lists every TU of the profile)."""
    for r in sh.results:
        if r.state is not None:
            for t in r.state.tus:
                if t.object == obj:
                    return t
    return TuRecord(obj, obj, 0.0, "recorded by no shard")
