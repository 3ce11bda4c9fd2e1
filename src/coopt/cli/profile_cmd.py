"""`coopt profile`: record a workload with perf (or read a recording) and rank the journaled TUs and functions it
spent its time in; `coopt profile show` prints a profile; `coopt profile merge` combines several."""

from __future__ import annotations

import argparse
import os
import sys

from coopt.cache.layout import CacheLayout
from coopt.cli import UsageError
from coopt.cli.common import load_settings

DESCRIPTION = """Profile a workload and attribute its time to the translation units coopt-cc journaled.

  coopt profile [-o profile.json] [--event cpu-clock] [--call-graph MODE] -- COMMAND ARGS...
  coopt profile --perf-data perf.data [-o profile.json]
  coopt profile --perf-script perf-script.txt [-o profile.json]
  coopt profile show profile.json
  coopt profile merge a.json b.json [--weights 2,1] -o merged.json

Call chains are recorded by default (dwarf): they credit time spent in libraries (a strlen in a loop, memcpy,
qsort) to the journaled function that called them. --call-graph none records leaf samples only.
The schema of the profile file is in docs/profile.md."""

CALL_GRAPH_MODES = ("dwarf", "fp", "lbr", "none")


def _record_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="coopt profile", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("-o", "--output", default="profile.json", help="where to write the profile (default: %(default)s)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--perf-data", metavar="FILE", help="resolve an existing perf.data recording instead of running")
    src.add_argument("--perf-script", metavar="FILE", help="resolve `perf script` text made elsewhere")
    p.add_argument("--event", default=None, help="perf event to sample (default: cpu-clock, which works in VMs)")
    p.add_argument(
        "--call-graph",
        nargs="?",
        const="dwarf",
        default=None,
        metavar="MODE",
        help="call chains: dwarf (the default when recording; also dwarf,STACK_BYTES), fp, lbr or none",
    )
    p.add_argument("--no-call-graph", dest="call_graph", action="store_const", const="none",
                   help="record no call chains (same as --call-graph none)")
    p.add_argument(
        "--freq", type=int, default=None, help="samples per second (default: 1000 with dwarf call chains, else 4000)"
    )
    p.add_argument("--journal", default=None, help="the journal to attribute to (default: the cache's)")
    p.add_argument("--allow-failure", action="store_true", help="keep the profile when the workload exits non-zero")
    p.add_argument("--save-perf-data", metavar="FILE", help="keep the recording at FILE")
    p.add_argument("--quiet", action="store_true", help="print only where the profile went")
    return p


def _call_graph(text: str | None) -> str | None:
    """The perf --call-graph argument for `text` (None for none or not given), or a UsageError."""
    if text is None:
        return None
    if text.split(",")[0] not in CALL_GRAPH_MODES:
        raise UsageError("--call-graph takes one of %s (got %r)" % (", ".join(CALL_GRAPH_MODES), text))
    return None if text == "none" else text


def _journal(explicit: str | None) -> str:
    if explicit:
        return os.path.abspath(explicit)
    return CacheLayout(load_settings().cache_dir).journal_path


def _record(argv: list[str]) -> int:
    from coopt.profile import build, perf
    from coopt.profile.model import save
    from coopt.profile.report import render

    if "--" in argv:
        i = argv.index("--")
        opts, command = argv[:i], argv[i + 1 :]
    else:
        opts, command = argv, []
    a = _record_parser().parse_args(opts)
    journal = _journal(a.journal)
    mode = _call_graph(a.call_graph)
    if a.perf_data or a.perf_script:
        if command:
            raise UsageError("give either a command after -- or --perf-data/--perf-script, not both")
        if a.perf_data:
            profile = build.from_perf_data(a.perf_data, journal, event=a.event, call_graph=mode)
        else:
            profile = build.from_perf_script(a.perf_script, journal, event=a.event, call_graph=mode)
    else:
        if not command:
            raise UsageError("no workload: use `coopt profile [-o FILE] -- COMMAND ARGS...` (or --perf-data FILE)")
        if a.freq is not None and a.freq <= 0:
            raise UsageError("--freq must be a positive number of samples per second")
        profile = build.record_command(
            command,
            journal,
            event=a.event or perf.DEFAULT_EVENT,
            call_graph=build.DEFAULT_CALL_GRAPH if a.call_graph is None else mode,
            freq=a.freq,
            allow_failure=a.allow_failure,
            keep_data=a.save_perf_data,
        )
    save(profile, a.output)
    if not a.quiet:
        print(render(profile, top=10, functions=5))
        print()
    credited = sum(t.library_share or 0.0 for t in profile.tus)
    print("wrote %s (%d samples, %.1f%% in %d journaled TUs%s)" % (
        a.output, profile.samples, 100.0 * profile.journaled_share, len(profile.tus),
        ", %.1f%% more in libraries they called" % (100.0 * credited) if credited else ""))
    return 0


def _show(argv: list[str]) -> int:
    from coopt.profile.model import load
    from coopt.profile.report import render

    p = argparse.ArgumentParser(prog="coopt profile show", description="Print a profile as ranked tables.")
    p.add_argument("file")
    p.add_argument("--top", type=int, default=20, help="TUs to list (default: %(default)s)")
    p.add_argument("--functions", type=int, default=15, help="functions to list (default: %(default)s)")
    a = p.parse_args(argv)
    print(render(load(a.file), top=a.top, functions=a.functions))
    return 0


def _weights(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(w) for w in text.split(",")]
    except ValueError as exc:
        raise UsageError("--weights takes numbers separated by commas, e.g. --weights 2,1 (got %r)" % text) from exc


def _merge(argv: list[str]) -> int:
    from coopt.profile.merge import merge
    from coopt.profile.model import load, save

    p = argparse.ArgumentParser(
        prog="coopt profile merge",
        description="Combine profiles of several workloads: shares are the weighted mean of the inputs' shares.",
    )
    p.add_argument("inputs", nargs="+", metavar="PROFILE")
    p.add_argument("-o", "--output", required=True, help="where to write the merged profile")
    p.add_argument("--weights", help="one weight per input, comma-separated (default: all 1)")
    a = p.parse_args(argv)
    merged = merge([(f, load(f)) for f in a.inputs], _weights(a.weights))
    save(merged, a.output)
    print("wrote %s: %d profiles, %d TUs, %.1f%% in journaled code" % (
        a.output, len(a.inputs), len(merged.tus), 100.0 * merged.journaled_share))
    return 0


def run(_name: str, argv: list[str]) -> int:
    """Entry point of `coopt profile`."""
    from coopt.profile.errors import ProfileError

    actions = {"show": _show, "merge": _merge}
    try:
        if argv and argv[0] in actions:
            return actions[argv[0]](argv[1:])
        return _record(argv)
    except ProfileError as exc:
        sys.stderr.write("coopt profile: error: %s\n" % exc)
        return 1
