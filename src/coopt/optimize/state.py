"""The saved state of one `coopt optimize` run: what was tried, judged and kept, in a versioned JSON file.

The run writes `state.json` in its run directory after every step (atomically), so an interrupted or killed run
leaves a readable record, and `coopt report` renders it. Readers refuse a newer `version` with a clear error.
`RUN_VERSION` is bumped when a field changes meaning or disappears, not when one is added.
"""

from __future__ import annotations

import enum
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from coopt.verify.evidence import Interval

RUN_FORMAT = "coopt-optimize-run"
RUN_VERSION = 1
STATE_NAME = "state.json"
# A sharded run's state file names its shard, so shards sharing a run directory never overwrite each other.
SHARD_STATE = re.compile(r"shard-(\d+)-of-(\d+)\.json")

# How a run ended. "running" is what a killed run leaves behind.
STATUSES = ("running", "finished", "budget-spent", "interrupted", "failed")


class RunStateError(Exception):
    """A run directory holds no readable run state; the message says why and what to do."""


@dataclass
class CommandRecord:
    """A workload command as the run used it: a shell line naming the program as `{program}`, and where it ran."""

    line: str
    cwd: str
    origin: str  # where it came from: "--bench", "--train", "--test", "profile workload", "bench command"


@dataclass
class TuRecord:
    """A hot TU of the profile and whether the run worked on it."""

    object: str
    source: str
    share: float
    note: str = ""  # why it got no work ("not in the link of ...", "under 1% of the samples"), else ""


class Outcome(str, enum.Enum):
    """What became of one attempt, a closed set; only ACCEPTED may be stored. The judge's own codes (accepted,
    rejected, inconclusive; see verify.verdict.Code) plus the run's: the proposal or its build failed, the run was
    stopped during it, it produced an object already tried, or a compiler sweep's screen ranked it below the row it
    judged (optimize/search/sweep.py). `value` is the name in the state file and reports."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    INCONCLUSIVE = "inconclusive"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    DUPLICATE = "duplicate"
    SCREENED = "screened out"

    def __str__(self) -> str:  # reports print the name as written in the state file
        return self.value


@dataclass
class AttemptRecord:
    """One candidate, a node of its TU's lineage: what it built on, who proposed it, how it was judged, what it
    cost. `parent` is the attempt number of the verified node it extends (0: the TU's journaled compile; state
    files written before lineages existed hold only such attempts)."""

    number: int
    object: str
    source: str
    level: str
    label: str
    proposer: str
    verdict: Outcome
    detail: str = ""
    interval: Interval | None = None
    seconds: float = 0.0
    started: str = ""
    flags: list[str] = field(default_factory=list)
    training: dict[str, Any] | None = None  # PGO: the training workload and whether it is the bench workload
    tokens: int = 0  # LLM tokens the proposal cost (LLM levels)
    remeasured: Interval | None = None  # the first, inconclusive measurement when the attempt was timed again
    kept: bool = False  # stored in the cache as the TU's best (a later, better one may replace it)
    entry_key: str = ""
    parent: int = 0  # the node this one builds on: an accepted attempt's number, 0 for the journaled compile
    artifact: str = ""  # the node's artifact, kept in the run directory when the node was accepted
    artifact_digest: str = ""
    object_digest: str = ""
    duplicate_of: int = 0  # DUPLICATE: the attempt (0: the baseline) that produced the same object first
    no_candidate: bool = False  # FAILED because the agent had no candidate to offer (the guide counts these)
    free: bool = False  # no candidate, and nothing was spent to learn it (no tokens, no build): no evaluation
    micro: Interval | None = None  # the function's micro-benchmark on the speed inputs (LLM levels), if run
    screen: Interval | None = None  # a compiler sweep's short screen against the baseline (optimize/search/sweep.py)
    swept: bool = False  # a row of a compiler sweep that costs nothing of its own: the sweep's evaluation is charged
    # to the row it judged (or, when no row could be judged, to its first failed row)


@dataclass
class KeptRecord:
    """The best verified variant of one TU, as stored in the cache."""

    object: str
    source: str
    attempt: int
    key: str
    level: str
    label: str
    interval: Interval
    withdrawn: str = ""  # set when the variant was removed again (e.g. the final program was slower)


@dataclass
class MeasurementRecord:
    """An interleaved A/B measurement of whole programs (noise check: baseline against itself; final: all
    kept variants against the baseline)."""

    interval: Interval | None
    pairs: int
    seconds: float
    note: str = ""


@dataclass
class ShardRecord:
    """Which share of the hot TUs a sharded run (`--shard K/N`) worked on."""

    index: int  # K, from 1
    count: int  # N
    plan: str  # the split's id (`shard.plan_id`): equal in every shard of the same plan
    assignment: dict[str, int] = field(default_factory=dict)  # every hot TU's object -> its shard, in every shard


@dataclass
class RunState:
    """Everything `coopt report` needs about one run."""

    created: str
    program: str
    profile: str
    journal: str
    cache_dir: str
    levels: list[str]
    min_gain: float
    pairs: int
    llm: str
    budget: dict[str, float]  # limits: evaluations, seconds (0: unlimited)
    bench: CommandRecord
    train: CommandRecord | None
    tests: list[CommandRecord]
    same_workload: bool  # PGO trains on the workload it is judged on
    measure: str = "cpu"  # what the A/B timed: "cpu" (user+sys of the bench command) or "wall"
    profile_digest: str = ""  # the profile file's content hash: a resumed run must work from the same profile
    resumed: int = 0  # how many times `resume` continued this run
    float_tolerance: float = 0.0  # floating-point numbers in test output within this compared equal (0: exact)
    assume_cpu: bool = False  # compiler tools could target this machine's CPU (-march=native)
    status: str = "running"
    stop_reason: str = ""
    updated: str = ""
    spent: dict[str, float] = field(default_factory=lambda: {"evaluations": 0, "seconds": 0.0})
    tus: list[TuRecord] = field(default_factory=list)
    attempts: list[AttemptRecord] = field(default_factory=list)
    kept: dict[str, KeptRecord] = field(default_factory=dict)  # by TU object
    noise: MeasurementRecord | None = None
    final: MeasurementRecord | None = None
    notes: list[str] = field(default_factory=list)
    shard: ShardRecord | None = None  # set by `--shard K/N`
    version: int = RUN_VERSION


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def to_dict(state: RunState) -> dict[str, Any]:
    d = asdict(state)
    d["format"] = RUN_FORMAT
    return d


def state_name(state: RunState) -> str:
    """The state's file name in its run directory: `state.json`, or `shard-K-of-N.json` for a shard."""
    return "shard-%d-of-%d.json" % (state.shard.index, state.shard.count) if state.shard else STATE_NAME


def save(state: RunState, run_dir: str) -> str:
    """Write the state atomically into `run_dir`; returns the file's path."""
    state.updated = now_utc()
    path = os.path.join(run_dir, state_name(state))
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(to_dict(state), f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    return path


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError("%s is not an object" % where)
    names = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in names})
    except TypeError as exc:
        raise ValueError("%s: %s" % (where, exc)) from exc


def _interval(data: Any, where: str) -> Interval | None:
    return None if data is None else _build(Interval, data, where)


def _measurement(data: Any, where: str) -> MeasurementRecord | None:
    if data is None:
        return None
    m: MeasurementRecord = _build(MeasurementRecord, data, where)
    m.interval = _interval(m.interval, where + ".interval")
    return m


def _shard(data: Any) -> ShardRecord | None:
    if data is None:
        return None
    rec: ShardRecord = _build(ShardRecord, data, "shard")
    ok = isinstance(rec.index, int) and isinstance(rec.count, int) and 1 <= rec.index <= rec.count
    if not ok or not isinstance(rec.assignment, dict) or not all(
            isinstance(v, int) and 1 <= v <= rec.count for v in rec.assignment.values()):
        raise ValueError("shard: not a shard K/N with an assignment of TUs to shards 1..N")
    return rec


def from_dict(data: Any, where: str = "run state") -> RunState:
    """A RunState from its JSON form; RunStateError for another format or a newer version."""
    if not isinstance(data, dict) or data.get("format") != RUN_FORMAT:
        raise RunStateError("%s is not a coopt optimize run state (no \"format\": %r)" % (where, RUN_FORMAT))
    version = data.get("version")
    if not isinstance(version, int) or not 1 <= version <= RUN_VERSION:
        raise RunStateError("%s has run state version %r; this coopt reads versions 1 to %d: upgrade coopt"
                            % (where, version, RUN_VERSION))
    try:
        parts = dict(data)
        parts["bench"] = _build(CommandRecord, data.get("bench"), "bench")
        parts["train"] = None if data.get("train") is None else _build(CommandRecord, data["train"], "train")
        parts["tests"] = [_build(CommandRecord, t, "tests[%d]" % i) for i, t in enumerate(data.get("tests") or [])]
        parts["tus"] = [_build(TuRecord, t, "tus[%d]" % i) for i, t in enumerate(data.get("tus") or [])]
        attempts = []
        for i, a in enumerate(data.get("attempts") or []):
            rec: AttemptRecord = _build(AttemptRecord, a, "attempts[%d]" % i)
            rec.interval = _interval(rec.interval, "attempts[%d].interval" % i)
            rec.remeasured = _interval(rec.remeasured, "attempts[%d].remeasured" % i)
            rec.micro = _interval(rec.micro, "attempts[%d].micro" % i)
            rec.screen = _interval(rec.screen, "attempts[%d].screen" % i)
            rec.verdict = Outcome(rec.verdict)  # ValueError (a damaged state) for a name outside the set
            attempts.append(rec)
        parts["attempts"] = attempts
        kept = {}
        for obj, k in (data.get("kept") or {}).items():
            rec_k: KeptRecord = _build(KeptRecord, k, "kept[%s]" % obj)
            rec_k.interval = _build(Interval, rec_k.interval, "kept[%s].interval" % obj)
            kept[obj] = rec_k
        parts["kept"] = kept
        parts["noise"] = _measurement(data.get("noise"), "noise")
        parts["final"] = _measurement(data.get("final"), "final")
        parts["shard"] = _shard(data.get("shard"))
        state: RunState = _build(RunState, parts, "run state")
        return state
    except ValueError as exc:
        raise RunStateError("%s is a damaged run state: %s" % (where, exc)) from exc


def load(run_dir: str) -> RunState:
    """Read the state of the run in `run_dir`."""
    path = os.path.join(run_dir, STATE_NAME)
    if not os.path.exists(path):
        raise RunStateError("no run state in %s (no %s): is it a `coopt optimize` run directory?"
                            % (run_dir, STATE_NAME))
    return load_file(path)


def load_file(path: str) -> RunState:
    """Read one state file (`state.json` or a shard's `shard-K-of-N.json`)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError as exc:
        raise RunStateError("%s does not exist: give a run state file or a run directory" % path) from exc
    except OSError as exc:
        raise RunStateError("cannot read %s: %s" % (path, exc.strerror or exc)) from exc
    except ValueError as exc:
        raise RunStateError("%s is not JSON (%s)" % (path, exc)) from exc
    return from_dict(data, path)


def is_state_file(name: str) -> bool:
    """A run state file's name: `state.json` or `shard-K-of-N.json`."""
    return name == STATE_NAME or SHARD_STATE.fullmatch(name) is not None


def result_files(path: str, below: bool = True) -> list[str]:
    """The run state files at `path`: the file itself, or every state file in the directory, and with `below` in
    the directories under it too (a CI system puts each downloaded artifact in a directory of its own), sorted."""
    if not os.path.isdir(path):
        if not os.path.exists(path):
            raise RunStateError("%s does not exist: give run state files or directories holding them" % path)
        return [path]
    found = []
    for top, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if below and d != "work" and not d.startswith("work-"))
        found += [os.path.join(top, f) for f in files if is_state_file(f)]
    return sorted(found)


def _state_times(run_dir: str) -> list[float]:
    """When each state file in `run_dir` was last written (none: not a run directory)."""
    try:
        names = [n for n in os.listdir(run_dir) if is_state_file(n)]
    except OSError:
        return []
    times = []
    for n in names:
        try:
            times.append(os.stat(os.path.join(run_dir, n)).st_mtime)
        except OSError:
            pass
    return times


def runs_dir(cache_dir: str) -> str:
    """Where runs go by default: `<cache>/runs/` (evict keeps the newest of them)."""
    from coopt.cache.layout import CacheLayout

    return CacheLayout(cache_dir).runs_dir


def new_run_dir(cache_dir: str) -> str:
    """A fresh, uniquely named run directory under the cache's runs/ (created)."""
    base = os.path.join(runs_dir(cache_dir), time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-%d" % os.getpid())
    path, n = base, 1
    while os.path.exists(path):
        n += 1
        path = "%s.%d" % (base, n)
    os.makedirs(path)
    return path


LAST_NAME = "last"  # in runs/: the path of the newest run, wherever its --run-dir put it


def remember_run(cache_dir: str, run_dir: str) -> None:
    """Note `run_dir` as the cache's newest run, so `coopt report` finds it without --run."""
    top = runs_dir(cache_dir)
    os.makedirs(top, exist_ok=True)
    tmp = os.path.join(top, "%s.tmp.%d" % (LAST_NAME, os.getpid()))
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(os.path.abspath(run_dir) + "\n")
    os.replace(tmp, os.path.join(top, LAST_NAME))


def latest_run(cache_dir: str) -> str:
    """The newest run: the one `remember_run` noted, else the most recently updated directory under the cache's
    runs/; RunStateError when there is none."""
    top = runs_dir(cache_dir)
    try:
        with open(os.path.join(top, LAST_NAME), encoding="utf-8") as f:
            noted = f.read().strip()
        if noted and _state_times(noted):
            return noted
    except OSError:
        pass
    best, best_time = "", -1.0
    try:
        names = os.listdir(top)
    except OSError:
        names = []
    for name in names:
        times = _state_times(os.path.join(top, name))
        if not times:
            continue
        t = max(times)
        if t > best_time:
            best, best_time = os.path.join(top, name), t
    if not best:
        raise RunStateError("no optimize run found under %s: run `coopt optimize` first, or pass --run DIR" % top)
    return best
