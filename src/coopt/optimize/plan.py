"""Before `coopt optimize` spends any budget: the profile's hot TUs, the program they end up in, the workloads.

Everything here can fail on bad input, always with one line saying what to do (OptimizeError).
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from dataclasses import dataclass, field

from coopt.agents.levels import HotTU
from coopt.hooks.workload import Workload, WorkloadError, Workloads, from_argv, from_line
from coopt.journal import log as journal
from coopt.journal import shared_libs
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
    program: str  # what the workloads run ({program}): the program, or one that loads the shared library
    link: LinkRecord  # the link relinked with candidates: the program's, or the shared library's
    hot: list[HotTU]  # TUs the guide gets arms for, hottest first
    skipped: list[tuple[HotTU, str]] = field(default_factory=list)  # TUs left out, and why
    runner: shared_libs.ProgramRun | None = None  # how `program` runs, when `link` is a shared library's


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
    prog, link, runner = _target(profile, journal_path, program)
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
    result = Plan(profile, os.path.abspath(profile_path), journal_path, prog, link, [], runner=runner)
    for t in tus:
        if t.object not in inside:
            result.skipped.append((t, "not in the link of %s" % os.path.basename(link.output)))
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


def _journaled_link(journal_path: str, path: str) -> LinkRecord | None:
    try:
        return find_link(journal_path, path)
    except RelinkError:
        return None


def _target(profile: Profile, journal_path: str, program: str | None
            ) -> tuple[str, LinkRecord, shared_libs.ProgramRun | None]:
    """What the run relinks and what its workloads run: (program, link, runner).

    A program that links the hot TUs itself is relinked and run (runner None), through a launcher with the
    wrapper's library path when libtool's wrapper script is what runs it (--program or the profile's command).
    When the hot TUs are in a shared library (libtool's .libs/libfoo.so), the library is relinked and `program`
    runs against it: --program when it names a program (a libtool wrapper script too), else the profile's
    command."""
    given = os.path.abspath(program) if program else None
    wrapper = _wrapper_run(given) if given else None
    link = _journaled_link(journal_path, wrapper.executable if wrapper else given) if given else None
    if link is None or (given and not shared_libs.is_shared(link) and not _takes_hot(link, profile)):
        try:
            hot_dso = _default_program(profile)
        except OptimizeError:
            if not given:
                raise
            hot_dso = ""
        library = _journaled_link(journal_path, hot_dso) if hot_dso else None
        if library is not None and shared_libs.is_shared(library):
            link = library
        elif link is None:
            try:
                link = find_link(journal_path, given or hot_dso)
            except RelinkError as exc:
                raise OptimizeError(str(exc)) from exc
    if not shared_libs.is_shared(link):
        if wrapper is None and given is None:
            wrapper = _wrapper_run(_command_program(profile))
        if wrapper is not None and os.path.realpath(wrapper.executable) == os.path.realpath(link.output_path):
            return wrapper.program, link, wrapper  # libtool's ./prog runs the relinked .libs/prog
        return given or link.output_path, link, None
    runs = given if given and os.path.realpath(given) != os.path.realpath(link.output_path) else None
    runs = runs or _workload_program(profile, link)
    try:
        runner = shared_libs.resolve(runs)
        loaded = shared_libs.loads(runner, link.output_path)
    except RelinkError as exc:
        raise OptimizeError(str(exc)) from exc
    if not loaded:
        raise OptimizeError("%s does not load %s, the shared library the hot TUs are in: give --program a program "
                            "that does (a libtool wrapper script is fine)" % (runs, link.output_path))
    return runs, link, runner


def _takes_hot(link: LinkRecord, profile: Profile) -> bool:
    """Whether the link takes in any TU of the profile."""
    return bool(linked_objects(link, sorted({t.object for t in profile.tus})))


def _command_program(profile: Profile) -> str:
    """The program the profile's recorded command started (an absolute path), "" when it names none."""
    wl = profile.workload
    name = wl.command[0] if wl.command else ""
    path = (os.path.join(wl.cwd or os.getcwd(), name) if "/" in name else shutil.which(name) or "") if name else ""
    return os.path.abspath(path) if path and os.path.isfile(path) else ""


def _wrapper_run(path: str) -> shared_libs.ProgramRun | None:
    """How the libtool wrapper script `path` runs its program; None when `path` is no such script."""
    if not path or not shared_libs.is_libtool_wrapper(path):
        return None
    try:
        return shared_libs.resolve(path)
    except RelinkError as exc:
        raise OptimizeError(str(exc)) from exc


def _workload_program(profile: Profile, library: LinkRecord) -> str:
    """The program the profile's recorded command started: the one to run against the relinked library."""
    path = _command_program(profile)
    if not path:
        raise OptimizeError("the hot TUs are in the shared library %s and the profile does not say which program "
                            "ran it; give --program PATH (a program that loads it)" % library.output_path)
    return path


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
