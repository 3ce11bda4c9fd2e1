"""The lineage of variants: every attempt is a node of its TU's tree, and a stored variant carries its chain.

A node is an attempt (`state.AttemptRecord`): its level, its artifact (a rewritten source, IR or assembly file, a
PGO profile), the node it built on (`parent`: an accepted attempt's number, 0 for the TU's journaled compile) and
how (the level's step: an LLM rewrite, a compiler lowering with flags, a PGO profile). Only accepted nodes are built
on, and every node is judged on its own against the baseline (the program's tests, the A/B timing) and, for LLM
steps, against the TU's original code (behaviour evidence): a wrong step anywhere is rejected, whatever follows it.

An accepted node's artifact is copied into the run directory (`nodes/`), so a resumed run can still build on it
after the work directory is gone. What the cache stores is the best accepted leaf, with `Provenance`: the chain of
`Step`s from the root, each with its artifact's digest, verdict and measurement, and for source rewrites the diff
against the step before (`coopt report` shows it as a chain).
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Any

from coopt.agents.levels import HotTU, Node, Training, child_job
from coopt.agents.registry import BY_NAME, ROOT
from coopt.cache.hashing import hash_file
from coopt.journal.job import CompileJob
from coopt.optimize.state import AttemptRecord, CommandRecord, Outcome
from coopt.verify.evidence import CheckResult, Evidence, Interval
from coopt.verify.verdict import Verdict

NODES_DIR = "nodes"  # in the run directory: accepted nodes' artifacts and behaviour evidence
PROFILE_FLAG = "-fprofile-instr-use="
MAX_STEP_DIFF = 60  # lines of a source step's diff kept in the provenance


@dataclass(frozen=True)
class Step:
    """One step of a stored variant's lineage, as the cache entry's evidence records it."""

    node: int
    parent: int
    level: str
    how: str  # the registry's step: "LLM rewrite of C source", "compiler lowering with flags", ...
    label: str
    proposer: str
    flags: list[str]
    artifact: str  # the file's name (what the step produced)
    artifact_digest: str
    object_digest: str
    verdict: str
    detail: str
    interval: Interval | None
    diff: list[str] = field(default_factory=list)  # source rewrites: against the step before


@dataclass(frozen=True)
class ProposerRecord:
    """Who proposed the stored leaf (cache/accept.py reads `level`)."""

    agent: str
    level: str
    label: str
    flags: list[str]


@dataclass(frozen=True)
class Provenance:
    """How a stored variant was made and judged: added to its behaviour evidence in the cache entry."""

    proposer: ProposerRecord
    lineage: list[Step]
    training: Training | None  # PGO: how the profile was trained
    program: str
    bench: CommandRecord
    tests: list[CommandRecord]
    pairs: int
    min_gain: float
    noise: Interval | None
    run: str
    by: str = "coopt optimize"
    verified: bool = True

    def fields(self) -> dict[str, Any]:
        """The evidence's provenance fields (JSON): the cache's format is JSON; these are its typed source."""
        return asdict(self)


def code_digest(obj: str) -> str:
    """The digest of an object's code and data, without its local symbols: two candidates that differ only in the
    file name the compiler wrote into the symbol table (each sample is its own file), or in debug information,
    are the same object to the judge. Falls back to the whole file's digest when no objcopy can strip it."""
    tool = shutil.which("objcopy") or shutil.which("llvm-objcopy")
    if tool:
        with tempfile.TemporaryDirectory(prefix="coopt-digest-") as tmp:
            out = os.path.join(tmp, "stripped.o")
            proc = subprocess.run([tool, "--strip-unneeded", obj, out], capture_output=True, timeout=120)
            if proc.returncode == 0:
                return hash_file(out)
    return hash_file(obj)


def chain(attempts: list[AttemptRecord], rec: AttemptRecord) -> list[AttemptRecord]:
    """`rec` and the nodes it descends from, root first (the root itself, the journaled compile, is not a record)."""
    by_number = {a.number: a for a in attempts if a.object == rec.object}
    out = [rec]
    while out[-1].parent and out[-1].parent in by_number and len(out) <= len(by_number):
        out.append(by_number[out[-1].parent])
    return out[::-1]


def node_job(tu: HotTU, attempts: list[AttemptRecord], rec: AttemptRecord) -> CompileJob | None:
    """The compile of node `rec`'s code (agents.levels.Node.job): None for IR and assembly nodes."""
    job = tu.job
    for a in chain(attempts, rec):
        if a.level == "source" and a.artifact:
            job = child_job(job, source=a.artifact)
        elif a.level in ("flags", "pgo"):
            job = child_job(job, flags=a.flags)
        else:
            return None
    return job


def node(tu: HotTU, attempts: list[AttemptRecord], rec: AttemptRecord | None) -> Node | None:
    """The agents' view of node `rec` (None: the root)."""
    if rec is None:
        return None
    return Node(rec.number, rec.level, rec.label, node_job(tu, attempts, rec), rec.artifact)


def keep_artifact(run_dir: str, rec: AttemptRecord, artifact: str, behaviour: Evidence | None) -> None:
    """Copy an accepted node's artifact (and a PGO node's profile named in its flags) into the run directory, so
    the node can be built on after the work directory is gone; write its behaviour evidence beside it."""
    where = os.path.join(run_dir, NODES_DIR)
    os.makedirs(where, exist_ok=True)

    def copy(path: str) -> str:
        dest = os.path.join(where, "%d-%s" % (rec.number, os.path.basename(path)))
        shutil.copyfile(path, dest)
        return dest

    if artifact and os.path.isfile(artifact):
        rec.artifact = copy(artifact)
    for i, f in enumerate(rec.flags):
        if f.startswith(PROFILE_FLAG) and os.path.isfile(f[len(PROFILE_FLAG):]):
            rec.flags[i] = PROFILE_FLAG + (rec.artifact if rec.level == "pgo" and rec.artifact.endswith(
                ".profdata") else copy(f[len(PROFILE_FLAG):]))
    if behaviour is not None:
        with open(os.path.join(where, "%d.evidence.json" % rec.number), "w", encoding="utf-8") as out:
            out.write(behaviour.to_json())


def behaviour_of(run_dir: str, number: int, kept: dict[int, Evidence]) -> Evidence | None:
    """Node `number`'s behaviour evidence: from this process, or (a resumed run) as written by keep_artifact."""
    if number in kept:
        return kept[number]
    try:
        with open(os.path.join(run_dir, NODES_DIR, "%d.evidence.json" % number), encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, ValueError):
        return None
    ev = Evidence(d.get("original", ""), d.get("candidate", ""), Verdict.accepted(d.get("verdict", {}).get(
        "detail", "")), list(d.get("functions") or []), dict(d.get("unsupported_functions") or {}),
        [CheckResult(**c) for c in d.get("checks") or [] if isinstance(c, dict)],
        sanitizers=str(d.get("sanitizers", "")), cflags=list(d.get("cflags") or []))
    kept[number] = ev
    return ev


def _source_text(tu: HotTU, attempts: list[AttemptRecord], rec: AttemptRecord) -> str:
    job = node_job(tu, attempts, rec) if rec.number else tu.job
    try:
        with open(job.source_path if job else "", encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def steps(tu: HotTU, attempts: list[AttemptRecord], rec: AttemptRecord) -> list[Step]:
    """The lineage of `rec` as provenance steps, root first."""
    out = []
    nodes = chain(attempts, rec)
    for i, a in enumerate(nodes):
        diff: list[str] = []
        if a.level == "source" and a.artifact:
            before = _source_text(tu, attempts, nodes[i - 1]) if i else _source_text(tu, attempts, _ROOT)
            try:
                with open(a.artifact, encoding="utf-8", errors="replace") as f:
                    diff = list(difflib.unified_diff(before.splitlines(), f.read().splitlines(),
                                                     "a/%s (step before)" % tu.name, "b/%s (#%d)" % (tu.name, a.number),
                                                     n=3, lineterm=""))[:MAX_STEP_DIFF]
            except OSError:
                diff = []
        digest = a.artifact_digest or (hash_file(a.artifact) if a.artifact and os.path.isfile(a.artifact) else "")
        out.append(Step(a.number, a.parent, a.level, BY_NAME[a.level].step, a.label, a.proposer, list(a.flags),
                        os.path.basename(a.artifact), digest, a.object_digest, str(a.verdict), a.detail,
                        a.interval, diff))
    return out


_ROOT = AttemptRecord(0, "", "", ROOT, "", "", Outcome.ACCEPTED)


def lineage_text(attempts: list[AttemptRecord], rec: AttemptRecord) -> str:
    """`original -> #3 source (f sample 0) -> #5 pgo (pgo -O3)`: for progress lines and reports."""
    return " -> ".join(["original"] + ["#%d %s (%s)" % (a.number, a.level, a.label) for a in chain(attempts, rec)])
