"""Before `coopt optimize` spends any budget: the profile's hot TUs, the program they end up in, the workloads.

Everything here can fail on bad input, always with one line saying what to do (OptimizeError).
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field

from coopt.agents.levels import HotTU
from coopt.hooks.workload import Workload, WorkloadError, Workloads, from_argv, from_line
from coopt.journal import log as journal
from coopt.journal.job import CompileJob
from coopt.journal.relink import LinkRecord, RelinkError, find_link, linked_objects
from coopt.profile.errors import ProfileError
from coopt.profile.model import Profile, load

MIN_SHARE = 0.01  # the guide's floor: a TU under 1% of the samples cannot move the program by 1%


class OptimizeError(Exception):
    """Bad input or a set-up that cannot work; one line for the user."""


@dataclass
class Plan:
    """What the run works on."""

    profile: Profile
    profile_path: str
    journal: str
    program: str
    link: LinkRecord
    hot: list[HotTU]  # TUs the guide gets arms for, hottest first
    skipped: list[tuple[HotTU, str]] = field(default_factory=list)  # TUs left out, and why


def load_profile(path: str) -> Profile:
    try:
        return load(path)
    except ProfileError as exc:
        raise OptimizeError("%s (make one with `coopt profile -o %s -- COMMAND`)" % (exc, path)) from exc


def _default_program(profile: Profile) -> str:
    """The binary in which the journaled TUs' samples ran most (perf names it by path)."""
    by_dso: dict[str, float] = defaultdict(float)
    for f in profile.functions:
        if f.dso and os.path.isabs(f.dso):
            by_dso[f.dso] += f.share
    if not by_dso:
        raise OptimizeError("the profile does not say which program ran the hot code; give --program PATH")
    return max(sorted(by_dso), key=lambda d: by_dso[d])


def _newest_compiles(journal_path: str) -> dict[str, CompileJob]:
    jobs: dict[str, CompileJob] = {}
    for rec in journal.latest_compiles(journal.read(journal_path)):
        try:
            job = CompileJob.from_record(rec)
        except (KeyError, TypeError):
            continue  # a record of another journal version
        jobs[job.output_path] = job
    return jobs


def _rewrite_order(name: str, inlined_into: str | None) -> tuple[str, ...]:
    """Which functions a hot entry puts on the source agent's list, in order. Code of `name` that clang inlined
    into `inlined_into` (the profile's `work (inlined into upcase)`) may be slow in either: its loop is `name`'s, the
    call in a loop is the caller's (a `strlen` re-measured in a loop condition). The caller comes first, as the
    symbol that ran always did, unless it is `main`: a benchmark's `main` is long and judged only by runs of the
    whole program, while the function that holds its hot loop is small and the harness drives it."""
    if not inlined_into:
        return (name,)
    return (name, inlined_into) if inlined_into == "main" else (inlined_into, name)


def plan(profile_path: str, program: str | None, journal: str | None, max_tus: int) -> Plan:
    """The hot TUs of `profile_path` that the program's journaled link takes in, ranked by share."""
    profile = load_profile(profile_path)
    journal_path = journal or profile.journal
    if not journal_path or not os.path.exists(journal_path):
        raise OptimizeError("the journal %s the profile was made against does not exist; pass --journal FILE"
                            % (journal_path or "(none named)"))
    prog = os.path.abspath(program) if program else _default_program(profile)
    try:
        link = find_link(journal_path, prog)
    except RelinkError as exc:
        raise OptimizeError(str(exc)) from exc
    if "-shared" in link.args:
        raise OptimizeError("%s is a shared library; give --program a program that links the hot TUs statically "
                            "(shared libraries are not relinked yet)" % prog)
    tus: list[HotTU] = []
    hot_functions: dict[str, list[str]] = defaultdict(list)
    hot_lines: dict[str, dict[str, dict[int, int]]] = defaultdict(dict)
    # Weights count a TU's own samples plus the library calls it makes (a `strlen` in a loop condition is the
    # caller's cost to remove); without dwarf/lbr call graphs they are the plain self shares.
    for f in sorted(profile.functions, key=lambda f: (-f.weight, f.name)):
        for name in _rewrite_order(f.name, f.inlined_into):
            if name not in hot_functions[f.object]:
                hot_functions[f.object].append(name)
        lines = hot_lines[f.object].setdefault(f.name, {})
        for n, c in (f.lines or {}).items():
            lines[int(n)] = lines.get(int(n), 0) + c
    newest = _newest_compiles(journal_path)
    for entry in sorted(profile.tus, key=lambda t: (-t.weight, t.source, t.object)):
        # The build as the journal has it now is what the next build will look up; the profile's copy of the
        # record is the fallback.
        job = newest.get(entry.object)
        if job is None:
            try:
                job = CompileJob.from_record(entry.compile)
            except (KeyError, TypeError) as exc:
                raise OptimizeError("the profile's record of %s is not a journaled compile (%s): re-run "
                                    "`coopt profile`" % (entry.source, exc)) from exc
        tus.append(HotTU(entry.object, entry.source, entry.weight, job, hot_functions.get(entry.object, []),
                         {k: v for k, v in hot_lines.get(entry.object, {}).items() if v}))
    if not tus:
        raise OptimizeError("the profile %s names no journaled TU: nothing to optimize" % profile_path)
    inside = linked_objects(link, [t.object for t in tus])
    result = Plan(profile, os.path.abspath(profile_path), journal_path, prog, link, [])
    for t in tus:
        if t.object not in inside:
            result.skipped.append((t, "not in the link of %s" % os.path.basename(prog)))
        elif not os.path.isfile(t.job.source_path):
            result.skipped.append((t, "its source %s is gone" % t.job.source_path))
        elif t.share < MIN_SHARE:
            result.skipped.append((t, "under %d%% of the samples" % round(100 * MIN_SHARE)))  # library calls included
        elif len(result.hot) >= max_tus:
            result.skipped.append((t, "beyond the %d hottest TUs (--max-tus)" % max_tus))
        else:
            result.hot.append(t)
    if not result.hot:
        why = "; ".join("%s: %s" % (t.name, w) for t, w in result.skipped[:5])
        raise OptimizeError("no hot TU of the profile can be worked on in %s (%s)" % (prog, why))
    return result


def workloads(p: Plan, bench: str | None, train: str | None, tests: list[str], cwd: str) -> Workloads:
    """Bench, training and test commands; the profile's recorded workload is the default for bench and train."""
    wl = p.profile.workload
    recorded: Workload | None = None
    why = "it was read from %s" % wl.kind
    if wl.command:
        try:
            recorded = from_argv(wl.command, wl.cwd or cwd, p.program, "profile workload")
        except WorkloadError as exc:
            why = str(exc)
    try:
        b = from_line(bench, cwd, p.program, "--bench") if bench else recorded
        t = from_line(train, cwd, p.program, "--train") if train else (recorded or b)
        ts = [from_line(x, cwd, p.program, "--test") for x in tests]
    except WorkloadError as exc:
        raise OptimizeError(str(exc)) from exc
    if b is None or t is None:
        raise OptimizeError("the profile's workload cannot be run on a rebuilt program (%s); give --bench CMD" % why)
    return Workloads(b, t, ts or [Workload(b.line, b.cwd, "bench command")])
