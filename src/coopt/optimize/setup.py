"""The run's set-up: say what it will do, compile the baselines, check the tests and measure the machine's noise.

The baseline is the program relinked with the hot TUs compiled again by the real compiler with the user's own
flags (plain clang, whatever the cache served before); the noise check times it against a second copy of itself.
"""

from __future__ import annotations

import os
import time

from coopt.agents.compiler.tools import ToolError, compile_with_flags
from coopt.agents.levels import HotTU
from coopt.cache.publish import PutError, check_original, tu_key
from coopt.hooks.workload import PLACEHOLDER, WorkloadError
from coopt.journal.relink import RelinkError
from coopt.optimize.lineage import code_digest
from coopt.optimize.plan import OptimizeError
from coopt.optimize.session import Run, interval_text
from coopt.optimize.state import MeasurementRecord
from coopt.verify.program_level.bench import Interrupted, ProgramBench


def announce(run: Run) -> None:
    p, say = run.plan, run.progress.line
    if run.state.shard:
        sh = run.state.shard
        say("sharded run: this shard's %d of the plan's %d hot TU(s) (split %s; the others: %s)" % (
            len(p.hot), len(sh.assignment), sh.plan, ", ".join(
                "%s -> %d" % (t.name, sh.assignment[t.object]) for t, _ in p.skipped if t.object in sh.assignment)
            or "none"))
    say("coopt optimize: %s, %d hot TU(s): %s" % (p.program, len(p.hot), ", ".join(
        "%s %.1f%%" % (t.name, 100 * t.share) for t in p.hot) or "none"))
    say("  levels %s, budget %s, min gain %.2f, %d pairs per A/B of %s time" % (
        ",".join(run.opts.levels), run.budget.describe(), run.opts.min_gain, run.opts.pairs, run.opts.measure))
    say("  bench: %s (%s)" % (_shown(run, run.loads.bench.line), run.loads.bench.origin))
    if "pgo" in run.opts.levels:
        if run.loads.same:
            say("  train: the same workload as the bench (PGO is judged on what it was trained on)")
        else:
            say("  train: %s (%s)" % (_shown(run, run.loads.train.line), run.loads.train.origin))
    if run.opts.float_tolerance:
        say("  floating-point numbers in test output may differ by %g x max(1, |value|)" % run.opts.float_tolerance)
    if run.opts.assume_cpu:
        say("  assume_cpu: variants may target this machine's CPU (-march=native); every machine sharing the cache "
            "must have it")
    if run.opts.min_gain < 1.0:
        say("  warning: --min-gain %.2f accepts variants slower than the original" % run.opts.min_gain)
    say("  run directory: %s" % run.run_dir)


def _shown(run: Run, line: str) -> str:
    rel = os.path.relpath(run.plan.program)
    return line.replace(PLACEHOLDER, rel if "/" in rel else "./" + rel)


def prepare(run: Run) -> None:
    """Baseline objects (plain compiler, user's flags), the cache's view of each TU, the baseline's outputs and
    the noise of the machine (the baseline timed against a second copy of itself)."""
    layout = run.store.layout
    usable: list[HotTU] = []
    for t in run.plan.hot:
        run.progress.status("%s: compiling the baseline" % t.name)
        try:
            tu_key(t.job, layout)
            check_original(t.job)
            out = os.path.join(run.work, "baseline-objects", "%s.o" % os.path.splitext(t.name)[0])
            os.makedirs(os.path.dirname(out), exist_ok=True)
            if os.path.exists(out):
                out = out[:-2] + "-%d.o" % len(usable)
            t.baseline_object = compile_with_flags(t.job, [], out).object_path
        except (PutError, ToolError) as exc:
            if run.stop.requested:  # Ctrl-C on a terminal reaches the compiler too
                raise Interrupted("stopped by the user") from exc
            _note_tu(run, t, "cannot be cached: %s" % exc)
            continue
        run.seen[t.object] = {code_digest(t.baseline_object): 0}  # the baseline: attempt 0
        usable.append(t)
    if not usable:
        raise OptimizeError("no hot TU can get a variant: %s" % "; ".join(
            "%s: %s" % (os.path.basename(r.source), r.note) for r in run.state.tus if r.note))
    run.plan.hot = usable
    run.bench = ProgramBench(
        run.plan.link, run.work, run.loads.bench, run.loads.tests, run.opts.pairs, run.opts.timeout_s,
        lambda: run.stop.requested, run.deadline, run.opts.measure, run.progress.status,
        float_tolerance=run.opts.float_tolerance, runner=run.plan.runner,
    )
    try:
        run.base = run.bench.side("base", {t.object: t.baseline_object for t in usable})
        twin = run.bench.side("twin", {t.object: t.baseline_object for t in usable})
        run.bench.record_baseline(run.base)
    except RelinkError as exc:
        raise OptimizeError("cannot relink %s: %s" % (run.plan.program, exc)) from exc
    except WorkloadError as exc:
        raise OptimizeError(str(exc)) from exc
    start = time.monotonic()
    try:
        noise = run.bench.time_ab(run.base, twin)
    except RuntimeError as exc:
        raise OptimizeError("the bench command fails on the original program: %s" % exc) from exc
    run.state.noise = MeasurementRecord(noise, run.opts.pairs, round(time.monotonic() - start, 2),
                                        "the baseline timed against a second copy of itself")
    lead = "  baseline: tests pass; noise (baseline vs itself) %s" % interval_text(noise)
    if noise.low > 1.0 or noise.high < 1.0:
        lead += " -- the machine is noisy: identical programs measure as different"
        run.state.notes.append("noise check: identical programs measured %s; treat small speed-ups with care"
                               % interval_text(noise))
    elif noise.high - noise.low > 2 * (run.opts.min_gain - 1) > 0:
        # An interval this wide around a true speed-up of min_gain would straddle it: most verdicts will be
        # inconclusive and the guide will pay nothing, which is right, but the budget buys little.
        lead += " -- wider than the min gain margin: expect inconclusive verdicts (more --pairs, a quieter machine)"
        run.state.notes.append("noise check: %s is wider than 2 x (min gain - 1); few candidates can be shown faster"
                               % interval_text(noise))
    run.progress.line(lead)
    run.save()


def _note_tu(run: Run, t: HotTU, why: str) -> None:
    for r in run.state.tus:
        if r.object == t.object:
            r.note = why
    run.progress.line("  %s: %s" % (t.name, why))
