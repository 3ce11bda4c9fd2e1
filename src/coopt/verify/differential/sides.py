"""The state of one verification run, and building and timing the programs that run each side.

Each harness flavour (plain, ASan+UBSan, MSan) is built as two programs: the original's object with a harness
around it, and the candidate's with another, so the program that speaks for the original contains no candidate
code. The libFuzzer target is the one program that links both: it only proposes inputs (fuzz.py). The
micro-benchmark times each side's program from outside (`micro_benchmark`), so a candidate cannot report its
own time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from coopt.toolchain import Toolchain
from coopt.verify import inputs, sandbox, signatures
from coopt.verify.differential import build, diffrun, harness
from coopt.verify.evidence import CheckResult, Evidence, Interval
from coopt.verify.options import VerifyOptions
from coopt.verify.perfstats import callgrind_instructions, count_interval, interleaved, timed
from coopt.verify.verdict import Reason, Verdict

SIDES = (("o", harness.ORIG_PREFIX), ("c", harness.CAND_PREFIX))


class VerifyInputError(Exception):
    """The request itself is wrong (missing file, original that does not compile, unknown function)."""


class Stop(Exception):
    """Ends a verification with `verdict`."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.line())
        self.verdict = verdict


@dataclass
class Run:
    """State of one verification while it runs."""

    tc: Toolchain
    work: str
    cflags: list[str]
    options: VerifyOptions
    deadline: float
    ev: Evidence
    objects: dict[str, str] = field(default_factory=dict)  # "plain:o" -> object path
    syms: dict[str, dict[str, build.Symbol]] = field(default_factory=dict)
    exes: dict[str, tuple[str, str]] = field(default_factory=dict)  # flavor -> (original's, candidate's) program
    flavors: list[build.Flavor] = field(default_factory=list)  # harness builds every input runs through, in order
    ir: dict[str, str] = field(default_factory=dict)  # "o"/"c" -> the side's LLVM IR, read by the static screen
    globals_: list[str] = field(default_factory=list)  # names of the harness's globals, by index

    def check(self, name: str, ok: bool, detail: str, start: float) -> None:
        self.ev.checks.append(CheckResult(name, ok, detail, round(time.monotonic() - start, 3)))

    def over_time(self) -> bool:
        return time.monotonic() > self.deadline


def first_error(text: str) -> str:
    """The first line of compiler output that says `error`, else its first line."""
    for line in text.splitlines():
        if "error" in line:
            return line.strip()
    return text.strip().splitlines()[0] if text.strip() else "(no output)"


def trap_bodies(tu: signatures.TranslationUnit) -> bytes:
    """The TU's text with every function body replaced by a trap: its types and macros, none of its code."""
    with open(tu.path, "rb") as f:
        data = f.read()
    for start, end in sorted(tu.body_ranges.values(), reverse=True):
        data = data[:start] + harness.TRAP_BODY + data[end:]
    return data


def _side_object(run: Run, side: str, src: str, flavor: build.Flavor) -> str:
    """One side compiled for `flavor` and renamed apart with its prefix."""
    key = "%s:%s" % (flavor.name, side)
    if key not in run.objects:
        obj = os.path.join(run.work, "%s-%s.o" % (side, flavor.name))
        try:
            build.compile_object(run.tc, src, obj, run.cflags, flavor)
        except build.BuildError as exc:
            what = "the %s does not compile (%s): %s" % (
                "original" if side == "o" else "candidate",
                flavor.name,
                first_error(exc.output),
            )
            if side == "o":
                raise VerifyInputError(what) from exc
            raise Stop(Verdict.rejected(Reason.COMPILE, what)) from None
        run.objects[key] = obj
    renamed = os.path.join(run.work, "%s-%s-renamed.o" % (side, flavor.name))
    if not os.path.exists(renamed):
        build.rename_apart(run.tc, run.objects[key], renamed, dict(SIDES)[side])
    return renamed


def build_harness(
    run: Run,
    orig_tu: signatures.TranslationUnit,
    original: str,
    candidate: str,
    flavor: build.Flavor,
    driven: list[str],
    link_with: Sequence[str],
) -> tuple[str, str]:
    """The (original's, candidate's) harness programs for `flavor`; for the fuzz flavour both are the one target
    that links both sides."""
    if flavor.name in run.exes:
        return run.exes[flavor.name]
    t = time.monotonic()
    tc, work = run.tc, run.work
    objs = {side: _side_object(run, side, src, flavor) for side, src in (("o", original), ("c", candidate))}
    # Globals both sides define, sized from the plain build (sanitizers pad globals with redzones).
    so, sc = run.syms["plain:o"], run.syms["plain:c"]
    pairs = [
        harness.GlobalPair(n, s.size, s.type in build.WRITABLE_TYPES)
        for n, s in sorted(so.items())
        if n in sc and build.reachable(s) and build.reachable(sc[n]) and sc[n].size == s.size and s.size > 0
    ]
    run.globals_ = [gp.name for gp in pairs]
    stripped = os.path.join(work, "original-stripped.c")
    if not os.path.exists(stripped):
        with open(stripped, "wb") as f:
            f.write(trap_bodies(orig_tu))
    fns = [(n, orig_tu.functions[n].ret, inputs.plan(orig_tu.functions[n])) for n in driven]
    if flavor is build.FUZZ:  # the one program with both sides in it
        compiles = [("fuzz", [p for _, p in SIDES], [("fuzz", list(SIDES))])]
    else:  # one harness object, linked once with each side
        compiles = [("side", [harness.SIDE_PREFIX], [(side, [(side, p)]) for side, p in SIDES])]
    linked: list[str] = []
    names = driven + run.globals_
    try:
        rest = build.program_rest(tc, link_with, work) if link_with else []
        for tag, prefixes, programs in compiles:
            src = harness.generate(stripped, fns, pairs, prefixes, "main" in orig_tu.body_ranges)
            hsrc = os.path.join(work, "harness-%s-%s.c" % (flavor.name, tag))
            with open(hsrc, "w", encoding="utf-8") as f:
                f.write(src)
            hobj = hsrc[:-2] + ".o"
            build.compile_harness(
                tc, hsrc, hobj, build.parse_flags(run.cflags), os.path.dirname(original), flavor, harness.C_DIR
            )
            for name, sides in programs:
                exe = os.path.join(work, "harness-%s-%s" % (flavor.name, name))
                first = sides[0][1]
                # The rest of the program calls back into the copy it is linked with (the original's in the
                # fuzz target), as it would in the real link.
                back = build.back_references(tc, rest, run.syms["plain:o"], first) if rest else []
                if tag == "side":
                    back += harness.side_links(names, first)
                build.link(tc, [hobj, *(objs[s] for s, _ in sides), *rest], exe, flavor, back)
                linked.append(exe)
    except build.BuildError as exc:
        if "undefined reference" in exc.output:
            missing = sorted(
                {ln.split("`")[-1].rstrip("'") for ln in exc.output.splitlines() if "undefined reference" in ln}
            )
            raise Stop(
                Verdict.unsupported(
                    "the TU needs symbols from the rest of the program (%s); pass the objects that define them"
                    % ", ".join(missing[:5])
                )
            ) from None
        raise Stop(
            Verdict.unsupported("the harness does not build (%s): %s" % (exc.what, first_error(exc.output)))
        ) from None
    run.ev.timings["build_" + flavor.name] = round(time.monotonic() - t, 3)
    pair = (linked[0], linked[-1])
    run.exes[flavor.name] = pair
    return pair


def _names(prefix: str, name: str) -> list[str]:
    """A side's function under both its symbols (its own and the harness's alias): callgrind picks either."""
    return [prefix + name, harness.SIDE_PREFIX + name]


def micro_benchmark(run: Run, driven: list[str], valid: dict[str, list[bytes]]) -> Interval | None:
    """The plain build's two programs as benchmark: each side alone over the inputs the original handles, timed
    from outside (wall clock of the whole process, or callgrind's count inside the function)."""
    t = time.monotonic()
    exe_o, exe_c = run.exes[build.PLAIN.name]
    scratch = os.path.join(run.work, "bench")
    os.makedirs(scratch, exist_ok=True)
    env = sandbox.scrubbed_env(scratch)
    files = []
    for k, name in enumerate(driven):
        path = os.path.join(scratch, "bench-%d.bin" % k)
        diffrun.write_inputs(path, valid.get(name, []))
        files.append((k, name, path))
    opts = run.options
    try:
        if opts.perf == "callgrind":
            total_o = total_c = 0
            for k, name, path in files:
                total_o += callgrind_instructions(
                    [exe_o, "b", str(k), path, "1"], scratch, env, opts.limits, _names(harness.ORIG_PREFIX, name)
                )
                total_c += callgrind_instructions(
                    [exe_c, "b", str(k), path, "1"], scratch, env, opts.limits, _names(harness.CAND_PREFIX, name)
                )
            interval = count_interval(total_o, total_c)
        else:
            iters = str(opts.bench_iterations)

            def side(exe: str) -> float:
                return sum(timed([exe, "b", str(k), path, iters], scratch, env, opts.limits) for k, _, path in files)

            interval = interleaved(lambda: side(exe_o), lambda: side(exe_c), opts.perf_settings)
    except (RuntimeError, OSError) as exc:
        run.check("performance", False, str(exc), t)
        return None
    run.check(
        "performance",
        True,
        "%s speed-up %.3f [%.3f, %.3f]" % (interval.method, interval.ratio, interval.low, interval.high),
        t,
    )
    return interval
