"""What each kept variant changed, read back from its cache entry: the diff of its source, IR or assembly against
the original's, or for the compiler tools the flags and the PGO profile it was built with.

The run state names each kept variant's cache entry; the entry holds the artifact it was built from
(`artifact.c`, `.ll`, `.s`, `.profdata`), the compile job and the evidence (cache/publish.py). The original IR or
assembly is not stored, so it is made again from the job, exactly as the agents made it; a source that changed
since the run is said, never silently diffed against.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Any

from coopt.cache.hashing import hash_file
from coopt.cache.store import Store
from coopt.journal.job import CompileJob
from coopt.optimize.state import AttemptRecord, KeptRecord, RunState

MAX_DIFF_LINES = 80  # per variant: a report is read, not scrolled through a whole module
CONTEXT = 3

# The line that names the function a hunk is in, per artifact kind (like git's diff funcname): the nearest such
# line above the hunk. C: a line starting a declaration; IR: a `define`; assembly: a global label.
_FUNC = {
    "c": re.compile(r"^[A-Za-z_][\w \t*]*?\b([A-Za-z_]\w*)\s*\([^;]*$"),
    "ir": re.compile(r"^define\b[^@]*@([-\w.$\"]+)\("),
    "asm": re.compile(r"^([A-Za-z_$][\w.$]*):"),
}
_KEYWORDS = frozenset({"if", "for", "while", "switch", "return", "else", "do", "sizeof"})


@dataclass
class Change:
    """One kept variant's change: facts (flags, profile) and a unified diff, cut to MAX_DIFF_LINES."""

    object: str
    source: str
    level: str
    label: str
    facts: list[str] = field(default_factory=list)
    diff: list[str] = field(default_factory=list)
    more: int = 0  # diff lines left out
    note: str = ""  # why there is no diff, or what to know about it


def kept_changes(state: RunState) -> list[Change]:
    """A Change for every kept variant still in use, hottest first as the state lists the TUs."""
    order = {t.object: i for i, t in enumerate(sorted(state.tus, key=lambda t: -t.share))}
    kept = sorted((k for k in state.kept.values() if not k.withdrawn), key=lambda k: order.get(k.object, 1 << 30))
    store = Store(state.cache_dir, read_only=True)
    return [_change(state, store, k) for k in kept]


def _change(state: RunState, store: Store, k: KeptRecord) -> Change:
    """What `k` changed; a missing entry or an unreadable original is a note, never an error (a report of a run
    whose cache was since cleaned must still render)."""
    ch = Change(k.object, k.source, k.level, k.label)
    attempt = next((a for a in state.attempts if a.number == k.attempt and a.object == k.object), None)
    entry = store.get(k.key)
    meta: dict[str, Any] = entry.meta if entry is not None else {}
    evidence: dict[str, Any] = meta["evidence"] if isinstance(meta.get("evidence"), dict) else {}
    steps = [st for st in evidence.get("lineage") or [] if isinstance(st, dict)]
    if attempt is not None and attempt.parent:
        ch.facts.append("lineage: %s" % chain_text(state, attempt))
        # Each LLM source step's diff against the step before (the provenance keeps them); a compiler step on top
        # changes no text.
        for st in steps[:-1] if k.level in ("flags", "pgo") else []:
            ch.diff += [str(line) for line in st.get("diff") or []]
        if k.level in ("flags", "pgo"):
            ch.facts.append("built on #%d with the TU's own flags plus: %s" % (attempt.parent, " ".join(
                f for f in attempt.flags if not f.startswith(("-fprofile-instr-use=", "-Wno-profile-instr")))
                or "nothing"))
            if k.level == "pgo":
                ch.facts += _profile_facts(evidence.get("training") or attempt.training,
                                           entry.artifact_path if entry is not None and meta.get("artifact") else "")
            else:  # flags on top of a PGO node compile with that node's profile: say which, and how it was trained
                ch.facts += _inherited_profile(state, attempt)
            ch.diff, ch.more = ch.diff[:MAX_DIFF_LINES], max(0, len(ch.diff) - MAX_DIFF_LINES)
            return ch
    proposer: dict[str, Any] = evidence["proposer"] if isinstance(evidence.get("proposer"), dict) else {}
    flags = list(proposer.get("flags") or (attempt.flags if attempt else []))
    training = evidence.get("training") or (attempt.training if attempt else None)
    own_flags = " ".join(meta["job"].get("key_args", [])) if isinstance(meta.get("job"), dict) else ""
    if k.level in ("flags", "pgo"):
        use = [f.partition("=")[0] for f in flags if f.startswith(("-fprofile-instr-use=", "-fprofile-use="))]
        added = [f for f in flags if not f.startswith(("-fprofile-instr-use=", "-fprofile-use=", "-Wno-profile-instr"))]
        if k.level == "pgo":
            added.insert(0, "%s=<the profile>" % (use[0] if use else "-fprofile-instr-use"))
        ch.facts.append("source unchanged; built with the TU's own flags%s plus: %s" % (
            " (%s)" % own_flags if own_flags else "", " ".join(added) or "nothing"))
    if k.level == "compilers":
        ch.facts.append("source unchanged; compiled by %s with the TU's own flags%s" % (
            k.label, " (%s)" % own_flags if own_flags else ""))
    if k.level == "pgo":
        ch.facts += _profile_facts(training, entry.artifact_path if entry and meta.get("artifact") else "")
    if entry is None:
        ch.note = "entry %s is not in the cache %s (removed since the run, or stored in another machine's cache " \
                  "by a shard)" % (k.key[:16], state.cache_dir)
        return ch
    if k.level in ("flags", "pgo", "compilers"):
        return ch  # the compiler tools change no text: their flags and profile are the change
    artifact = entry.artifact_path if meta.get("artifact") else ""
    if not artifact:
        ch.note = "the entry holds no artifact to compare"
        return ch
    kind = {".ll": "ir", ".s": "asm"}.get(os.path.splitext(artifact)[1], "c")
    try:
        job = CompileJob.from_record(meta["job"])
        original, note = _original(job, kind, meta.get("source_hash", ""))
        with open(artifact, encoding="utf-8", errors="replace") as f:
            variant = f.read()
    except (KeyError, TypeError, ValueError, OSError, subprocess.SubprocessError) as exc:
        ch.note = "the original could not be read or made again: %s" % (str(exc) or type(exc).__name__)
        return ch
    ch.note = note
    ch.diff, ch.more = unified(original, variant, os.path.basename(k.source), kind)
    if not ch.diff:
        ch.note = ch.note or "the artifact is the original, unchanged"
    return ch


def chain_text(state: RunState, rec: AttemptRecord) -> str:
    """`original -> #1 source (f sample 0) -> #5 flags (-O3)`: the attempt's lineage in the run."""
    nodes = [rec, *_ancestors(state, rec)]
    return " -> ".join(["original"] + ["#%d %s (%s)" % (a.number, a.level, a.label) for a in nodes[::-1]])


def _ancestors(state: RunState, rec: AttemptRecord) -> list[AttemptRecord]:
    """The nodes `rec` builds on, its parent first (bounded: a damaged state file cannot make it loop)."""
    by_number = {a.number: a for a in state.attempts if a.object == rec.object}
    out: list[AttemptRecord] = []
    while rec.parent in by_number and len(out) < len(by_number):
        rec = by_number[rec.parent]
        out.append(rec)
    return out


def _inherited_profile(state: RunState, rec: AttemptRecord) -> list[str]:
    """The profile facts of the PGO node a flags node builds on (its profile flag names the copy it used)."""
    used = [f.partition("=")[2] for f in rec.flags if f.startswith(("-fprofile-instr-use=", "-fprofile-use="))]
    if not used:
        return []
    node = next((a for a in _ancestors(state, rec) if a.level == "pgo"), None)
    return _profile_facts(node.training if node else None, used[0], " of #%d" % node.number if node else "")


def _profile_facts(training: object, profdata: str, of: str = "") -> list[str]:
    t = training if isinstance(training, dict) else {}
    out = []
    name = os.path.basename(str(t.get("profdata") or "")) or "merged.profdata"
    try:
        size = "%.1f KiB" % (os.path.getsize(profdata) / 1024) if profdata else "not stored"
    except OSError:
        size = "not stored"
    kinds = {"fe": "front-end", "ir": "IR-level", "cs": "context-sensitive IR"}
    kind = ", %s instrumentation" % kinds[t["kind"]] if t.get("kind") in kinds else ""
    out.append("PGO profile%s %s (%s%s), merged from the instrumented hot TUs (%d)" % (
        of, name, size, kind, len(t.get("instrumented") or [])))
    if t.get("workload"):
        out.append("trained on `%s` in %s%s" % (t["workload"], t.get("cwd", "?"),
                                                " (the bench workload itself)" if t.get("same_as_bench") else ""))
    return out


def _original(job: CompileJob, kind: str, source_hash: str) -> tuple[str, str]:
    """The original's text of `kind` and a note: C read from the source, IR or assembly compiled from it."""
    note = ""
    if source_hash and hash_file(job.source_path) != source_hash:
        note = "%s changed since the run: the diff is against today's file" % job.source
    if kind == "c":
        with open(job.source_path, encoding="utf-8", errors="replace") as f:
            return f.read(), note
    with tempfile.TemporaryDirectory(prefix="coopt-report-") as tmp:
        out = os.path.join(tmp, "original" + (".ll" if kind == "ir" else ".s"))
        # The same commands the IR and assembly agents cut the function from (agents/rewrite/ir.py, asm.py).
        extra = ["-S", "-emit-llvm"] if kind == "ir" else ["-S"]
        cmd = [job.compiler, *job.key_args, *extra, job.source, "-o", out]
        proc = subprocess.run(cmd, cwd=job.cwd, capture_output=True, timeout=300, env=job.subprocess_env())
        if proc.returncode != 0:
            raise OSError("%s exited %d" % (" ".join(cmd[:2]), proc.returncode))
        with open(out, encoding="utf-8", errors="replace") as f:
            return f.read(), note


def unified(original: str, variant: str, name: str, kind: str = "c",
            limit: int = MAX_DIFF_LINES) -> tuple[list[str], int]:
    """The unified diff of `original` and `variant` (hunk headers name their function), cut to `limit` lines:
    (lines, how many were left out)."""
    a, b = original.splitlines(), variant.splitlines()
    what = {"ir": " IR", "asm": " assembly"}.get(kind, "")
    lines = list(difflib.unified_diff(a, b, "a/%s (original%s)" % (name, what), "b/%s (variant%s)" % (name, what),
                                      n=CONTEXT, lineterm=""))
    pattern = _FUNC.get(kind, _FUNC["c"])
    out = []
    for line in lines:
        m = re.match(r"^@@ -(\d+)", line)
        if m:
            func = _function_above(a, int(m.group(1)) - 1 + CONTEXT, pattern)
            line = line + (" " + func if func else "")
        out.append(line)
    return out[:limit], max(0, len(out) - limit)


def _function_above(lines: list[str], index: int, pattern: re.Pattern[str]) -> str:
    for i in range(min(index, len(lines) - 1), -1, -1):
        m = pattern.match(lines[i])
        if m and m.group(1) not in _KEYWORDS:
            return m.group(1)
    return ""
