"""The three ways to a profile: record a command, read a perf.data file, read `perf script` text.

This is the front door the `coopt profile` command and the nightly optimizer both use.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from coopt.profile import perf
from coopt.profile.attribute import attribute
from coopt.profile.errors import ProfileError
from coopt.profile.explain import explain_nothing_journaled, nothing_to_rank
from coopt.profile.model import Profile, Workload
from coopt.profile.script import ParseStats, Sample, parse
from coopt.profile.tus import load_index

# Call chains are recorded by default: without them, time in a library called from journaled code (a strlen in a
# loop condition) is nobody's. dwarf, not fp, because frame-pointer chains lose the caller of exactly those library
# functions (see explain.py and docs/profile.md, "Call graphs").
DEFAULT_CALL_GRAPH = "dwarf"
DWARF_FREQ = 1000  # default sampling rate with --call-graph dwarf
SCRIPT_HINT = "make it with `perf script -F %s`" % perf.SCRIPT_FIELDS


def _resolve(
    samples: list[Sample],
    journal: str,
    workload: Workload,
    event: str | None,
    call_graph: str | None,
    stats: ParseStats,
) -> Profile:
    index = load_index(journal)
    profile = attribute(samples, index, workload, event=event, call_graph=call_graph, mappings=stats.mappings)
    # With dwarf/lbr chains, time spent in libc on behalf of journaled code (a strlen in a loop) is that code's
    # to remove: such a profile is useful even when no leaf sample fell in journaled code itself.
    if nothing_to_rank(profile):
        raise ProfileError(explain_nothing_journaled(profile, index, samples))
    return profile


def from_perf_data(
    data: str, journal: str, event: str | None = None, workload: Workload | None = None, call_graph: str | None = None
) -> Profile:
    """The profile of an existing perf.data recording. Its call graph mode, when not given, is read from the
    recording (dwarf chains credit library time to the journaled caller, others do not)."""
    wl = workload or Workload(kind="perf-data", input=os.path.abspath(data))
    stats = ParseStats()
    with perf.script_lines(data, event) as lines:
        samples = list(parse(lines, stats))
    if call_graph is None and any(len(s.frames) > 1 for s in samples):
        call_graph = perf.recorded_call_graph(data)
    return _resolve(samples, journal, wl, event, call_graph, stats)


def from_perf_script(path: str, journal: str, event: str | None = None, call_graph: str | None = None) -> Profile:
    """The profile of `perf script` text made elsewhere (default fields, or those of perf.SCRIPT_FIELDS). The text
    does not say how its call chains were recorded: `call_graph` does, when the caller knows."""
    stats = ParseStats()
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            samples = list(parse(f, stats))
    except FileNotFoundError as exc:
        raise ProfileError("perf script file %s not found" % path) from exc
    except OSError as exc:
        raise ProfileError("cannot read %s: %s" % (path, exc.strerror or exc)) from exc
    if not samples and stats.skipped:
        raise ProfileError("%s holds no sample lines `perf script` would write: %s" % (path, SCRIPT_HINT))
    wl = Workload(kind="perf-script", input=os.path.abspath(path))
    return _resolve(samples, journal, wl, event, call_graph, stats)


def record_command(
    cmd: list[str],
    journal: str,
    event: str = perf.DEFAULT_EVENT,
    call_graph: str | None = DEFAULT_CALL_GRAPH,
    freq: int | None = None,
    allow_failure: bool = False,
    keep_data: str | None = None,
) -> Profile:
    """Run `cmd` under perf, then resolve its samples. `call_graph` None records no call chains. The recording
    goes to `keep_data` when given, else to a temporary directory removed afterwards."""
    if freq is None and call_graph and call_graph.startswith("dwarf"):
        # Each dwarf sample carries 8 KB of stack: at perf's 4000 Hz a 10 s run writes ~400 MB and takes ~5 s to
        # unwind; 1000 Hz still gives 10,000 samples (docs/profile.md has the numbers).
        freq = DWARF_FREQ
    tmp = tempfile.mkdtemp(prefix="coopt-profile-")
    try:
        data = keep_data or os.path.join(tmp, "perf.data")
        rec = perf.record(cmd, data, event=event, call_graph=call_graph, freq=freq, allow_failure=allow_failure)
        wl = Workload(
            kind="record",
            command=list(cmd),
            cwd=os.getcwd(),
            exit_code=rec.exit_code,
            input=os.path.abspath(keep_data) if keep_data else None,
            seconds=round(rec.seconds, 3),
        )
        return from_perf_data(data, journal, event=event, workload=wl, call_graph=call_graph)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
