"""`verify`: the one entry point. It judges a candidate TU against the original and returns the evidence.

Checks, in order, each able to end the run: the candidate compiles with the original's flags and adds no warning
that matters; it keeps every exported symbol and every function signature; each changed function agrees with the
original on every generated input in the differential harness, built plain and under ASan+UBSan; the project's
test hook gives the same output; and, when asked, it is faster (bench hook, or the harness as micro-benchmark).
Candidates may be C (.c), LLVM IR (.ll) or assembly (.s) of the same TU; the original is always C.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import zlib
from collections.abc import Sequence

from coopt.toolchain import ToolchainError, find
from coopt.verify import diagnostics, fuzz, hotspots, inputs, sandbox, screen, signatures
from coopt.verify.acceptance import speed_code
from coopt.verify.differential import build, diffrun, harness
from coopt.verify.differential.sides import Run as _Run
from coopt.verify.differential.sides import Stop as _Stop
from coopt.verify.differential.sides import VerifyInputError, build_harness, first_error, micro_benchmark
from coopt.verify.evidence import Evidence, FunctionInputs, FuzzRun, Interval
from coopt.verify.options import VerifyOptions
from coopt.verify.perfstats import timed
from coopt.verify.program_level import hooks as program
from coopt.verify.verdict import Code, Reason, Reproducer, Verdict

CANDIDATE_EXTENSIONS = (".c", ".ll", ".s", ".S")


def verify(
    original: str,
    candidate: str,
    functions: Sequence[str] = (),
    cflags: Sequence[str] = ("-O2",),
    test_cmd: str | None = None,
    bench_cmd: str | None = None,
    build_cmd: str | None = None,
    options: VerifyOptions = VerifyOptions(),
    workdir: str | None = None,
    link_with: Sequence[str] = (),
) -> Evidence:
    """Judge `candidate` against `original` (a C file). Raises VerifyInputError on a bad request, never on a bad
    candidate: that is a REJECTED verdict in the returned evidence."""
    original, candidate = os.path.abspath(original), os.path.abspath(candidate)
    for what, path in (("original", original), ("candidate", candidate)):
        if not os.path.isfile(path):
            raise VerifyInputError("%s %s does not exist" % (what, path))
    if not original.endswith(".c"):
        raise VerifyInputError("the original must be a C file (.c): %s" % original)
    if not candidate.endswith(CANDIDATE_EXTENSIONS):
        raise VerifyInputError("the candidate must be .c, .ll or .s: %s" % candidate)
    try:
        tc = find(options.clang)
    except ToolchainError as exc:
        raise VerifyInputError(str(exc)) from exc
    keep = workdir is not None
    work = workdir or tempfile.mkdtemp(prefix="coopt-verify-")
    os.makedirs(work, exist_ok=True)
    ev = Evidence(original, candidate, Verdict.inconclusive("not run"), cflags=list(cflags))
    run = _Run(tc, work, list(cflags), options, time.monotonic() + options.total_timeout_s, ev)
    start = time.monotonic()
    try:
        ev.verdict = _verify(run, original, candidate, list(functions), test_cmd, bench_cmd, build_cmd, link_with)
    except _Stop as stop:
        ev.verdict = stop.verdict
    finally:
        ev.timings["total"] = round(time.monotonic() - start, 3)
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    return ev


def _verify(
    run: _Run,
    original: str,
    candidate: str,
    wanted: list[str],
    test_cmd: str | None,
    bench_cmd: str | None,
    build_cmd: str | None,
    link_with: Sequence[str],
) -> Verdict:
    tc, opts = run.tc, run.options
    t0 = time.monotonic()
    try:
        orig_tu = signatures.parse(original, run.cflags, tc.clang)
    except signatures.SignatureError as exc:
        raise VerifyInputError("the original does not parse: %s" % exc) from exc
    cand_tu = None
    lang = build.side_language(candidate)
    if lang == "c":
        try:
            cand_tu = signatures.parse(candidate, run.cflags, tc.clang)
        except signatures.SignatureError as exc:
            run.check("compile", False, str(exc), t0)
            return Verdict.rejected(Reason.COMPILE, "the candidate does not compile: %s" % exc)
    run.ev.timings["parse"] = round(time.monotonic() - t0, 3)
    for name in wanted:
        if name not in orig_tu.functions and name not in orig_tu.undrivable:
            raise VerifyInputError("the original defines no function %r" % name)

    _compile_plain(run, original, candidate, lang)
    _mark_inlined(orig_tu, wanted, run.syms["plain:o"])
    _screen(run, original, candidate)
    _check_interface(run, orig_tu, cand_tu, wanted)
    selected = _select(orig_tu, cand_tu, wanted, run.syms["plain:o"])
    run.ev.functions = [f for f in selected if f not in orig_tu.undrivable]
    run.ev.unsupported_functions = {f: orig_tu.undrivable[f] for f in selected if f in orig_tu.undrivable}
    driven = run.ev.functions

    generated: dict[str, list[inputs.GeneratedInput]] = {}
    mined = inputs.mine(list(run.ir.values()))  # constants both sides compare against, for the built-in source
    for name in driven:
        sig = orig_tu.functions[name]
        p = inputs.plan(sig)
        sources: list[inputs.InputSource] = [inputs.EdgeValueSource(mined), *opts.input_sources,
                                             *opts.speed_sources]
        seed = opts.seed or zlib.crc32(name.encode())
        generated[name] = inputs.merged(sources, sig, p, opts.max_inputs, seed)

    run.flavors, run.ev.sanitizers = _flavors(run, lang, link_with)
    valid: dict[str, list[bytes]] = {}
    if driven:
        verdict = _run_inputs(run, orig_tu, original, candidate, driven, generated, link_with, valid)
        if verdict is not None:
            return verdict
        if opts.fuzz_seconds > 0:
            # Fuzzing comes second: a candidate the fixed inputs already reject costs no fuzzing time, and the
            # inputs the original handled cleanly seed the fuzzer's corpus.
            verdict = _fuzz(run, orig_tu, original, candidate, lang, driven, generated, link_with, valid)
            if verdict is not None:
                return verdict

    sides = None
    if test_cmd or bench_cmd:
        sides = _program_sides(run, original, candidate, build_cmd)
    if test_cmd and sides:
        t = time.monotonic()
        o = program.observe(test_cmd, sides[0], run.cflags, opts.compare_files, opts.limits)
        if o.returncode != 0 and not o.stdout and o.stderr_tail:
            run.check("test", False, "the test command fails with the original: %s" % o.stderr_tail[-200:], t)
            raise VerifyInputError("the test command fails with the original: %s" % o.stderr_tail.strip()[-300:])
        c = program.observe(test_cmd, sides[1], run.cflags, opts.compare_files, opts.limits)
        diff = program.compare(o, c, opts.fp_tolerance)
        run.check("test", not diff, diff or "same output", t)
        if diff:
            return Verdict.rejected(Reason.TEST_OUTPUT, diff, Reproducer("(program)", "test command: %s" % test_cmd))

    if not driven and not test_cmd:
        why = "; ".join("%s: %s" % kv for kv in run.ev.unsupported_functions.items()) or "no function to drive"
        return Verdict.unsupported("no function could be driven (%s); give a test command" % why)
    if run.ev.unsupported_functions and not test_cmd:
        names = ", ".join(sorted(run.ev.unsupported_functions))
        return Verdict.unsupported(
            "the harness cannot drive %s (%s); only a test command can accept it"
            % (names, "; ".join(run.ev.unsupported_functions.values()))
        )
    if not any(fi.compared for fi in run.ev.inputs) and driven and not test_cmd:
        return Verdict.inconclusive("the original handled none of the generated inputs cleanly")

    interval = None
    if bench_cmd and sides:
        t = time.monotonic()
        interval = program.bench(bench_cmd, sides[0], sides[1], run.cflags, opts.limits, opts.perf_settings)
        run.check("bench", True, "speed-up %.3f [%.3f, %.3f]" % (interval.ratio, interval.low, interval.high), t)
    elif opts.perf and driven:
        interval = micro_benchmark(run, driven, valid)
    if interval is not None:
        run.ev.interval = interval
        gain = opts.min_gain
        text = "speed-up %.3f, interval [%.3f, %.3f], min_gain %.2f (%s)" % (
            interval.ratio,
            interval.low,
            interval.high,
            gain,
            interval.method,
        )
        code = speed_code(interval, gain)
        if code is Code.ACCEPTED:
            return Verdict.accepted("behaves like the original; " + text)
        if code is Code.REJECTED:
            return Verdict.rejected(Reason.NOT_FASTER, text)
        return Verdict.inconclusive("behaves like the original, speed-up not shown: " + text)
    if opts.speed_sources and driven:
        run.ev.micro = _speed(run, driven, generated, valid)
    n = sum(fi.compared for fi in run.ev.inputs)
    return Verdict.accepted("behaves like the original on %d input runs of %d function(s)" % (n, len(driven)))


def plain_object(work: str, side: str) -> str:
    """Where `verify(..., workdir=work)` leaves side `side`'s ("o" original, "c" candidate) TU compiled with the
    original's flags, symbols as they are: what a relinked program takes."""
    return os.path.join(work, "%s-plain.o" % side)


def _speed(
    run: _Run, driven: list[str], generated: dict[str, list[inputs.GeneratedInput]], valid: dict[str, list[bytes]]
) -> Interval | None:
    """The micro-benchmark on the speed sources' inputs that both sides ran alike (None when none did)."""
    names = {s.name for s in run.options.speed_sources}
    speed = {gi.blob for name in driven for gi in generated.get(name, []) if gi.source in names}
    chosen = {name: [b for b in valid.get(name, []) if b in speed] for name in driven}
    if not any(chosen.values()):
        run.check("performance", True, "not run: no speed input ran alike on both sides", time.monotonic())
        return None
    interval = micro_benchmark(run, driven, chosen)
    k, name = next((k, n) for k, n in enumerate(driven) if chosen[n])
    scratch = os.path.join(run.work, "hot-spots")
    os.makedirs(scratch, exist_ok=True)
    path = os.path.join(scratch, "inputs.bin")
    diffrun.write_inputs(path, chosen[name])
    exe = run.exes[build.PLAIN.name][1]
    env = sandbox.scrubbed_env(scratch)

    def run_for(n: int) -> float:
        return timed([exe, "b", str(k), path, str(n)], scratch, env, run.options.limits)

    iterations = hotspots.iterations(run_for, run.options.bench_iterations)
    run.ev.hot_spots = hotspots.hot_spots([exe, "b", str(k), path, str(iterations)], scratch, env,
                                          run.options.limits, [harness.CAND_PREFIX + name, harness.SIDE_PREFIX + name])
    return interval


def _compile_plain(run: _Run, original: str, candidate: str, lang: str) -> None:
    t = time.monotonic()
    flav = build.PLAIN
    extra = diagnostics.WARNING_FLAGS
    for side, src in (("o", original), ("c", candidate)):
        obj = plain_object(run.work, side)
        try:
            diag = build.compile_object(run.tc, src, obj, run.cflags, flav, extra if lang == "c" or side == "o" else ())
        except build.BuildError as exc:
            if side == "o":
                raise VerifyInputError("the original does not compile: %s" % first_error(exc.output)) from exc
            run.check("compile", False, first_error(exc.output), t)
            raise _Stop(
                Verdict.rejected(Reason.COMPILE, "the candidate does not compile: %s" % first_error(exc.output))
            ) from None
        run.objects["plain:" + side] = obj
        run.syms["plain:" + side] = build.symbols(run.tc, obj)
        if side == "o":
            orig_diag = diag
    run.check("compile", True, "both sides compile with %s" % " ".join(run.cflags), t)
    if lang == "c":
        new = diagnostics.new_warnings(orig_diag, diag)
        run.check("warnings", not new, "; ".join(new[:3]) or "no new warnings that matter", t)
        if new:
            raise _Stop(Verdict.rejected(Reason.WARNING, "new warning: %s" % new[0]))


def _screen(run: _Run, original: str, candidate: str) -> None:
    """The static screen, before any candidate code runs: calls, instructions and load-time code the original
    cannot reach end the run here (screen.py)."""
    t = time.monotonic()
    objs = {side: run.objects["plain:" + side] for side in ("o", "c")}
    got = screen.screen(run.tc, original, candidate, objs, run.cflags, run.work)
    run.ir = got.ir
    run.ev.timings["screen"] = round(time.monotonic() - t, 3)
    run.check("screen", not got.findings, got.summary if run.options.screen else "off: " + got.summary, t)
    if got.findings and run.options.screen:
        raise _Stop(Verdict.rejected(got.findings[0].reason, got.findings[0].detail))


def _check_interface(
    run: _Run, orig_tu: signatures.TranslationUnit, cand_tu: signatures.TranslationUnit | None, wanted: list[str]
) -> None:
    t = time.monotonic()
    so, sc = run.syms["plain:o"], run.syms["plain:c"]
    missing = sorted(n for n, s in so.items() if not s.local and not n.startswith(".") and (n not in sc or sc[n].local))
    if missing:
        run.check("interface", False, "missing: %s" % ", ".join(missing), t)
        raise _Stop(Verdict.rejected(Reason.INTERFACE, "the candidate no longer exports %s" % ", ".join(missing)))
    if cand_tu is not None:
        for name, sig in orig_tu.functions.items():
            other = cand_tu.functions.get(name)
            if other is not None and other.canonical() != sig.canonical():
                detail = "%s changed signature: %s -> %s" % (name, sig.canonical(), other.canonical())
                run.check("interface", False, detail, t)
                raise _Stop(Verdict.rejected(Reason.INTERFACE, detail))
    for name in wanted:
        if name not in sc and name not in orig_tu.undrivable:
            run.check("interface", False, "%s missing" % name, t)
            raise _Stop(Verdict.rejected(Reason.INTERFACE, "the candidate does not define %s" % name))
    run.check("interface", True, "same exported symbols and signatures", t)


def _mark_inlined(orig_tu: signatures.TranslationUnit, wanted: list[str], orig_syms: dict[str, build.Symbol]) -> None:
    """A static function asked about that the original's object does not define (clang inlined it into every
    caller) has no symbol for the harness to call, in the original as in the candidate: like `main`, only a run of
    the whole program can judge it."""
    for name in wanted:
        sig = orig_tu.functions.get(name)
        if sig is not None and sig.static and name not in orig_syms:
            orig_tu.undrivable[name] = "static and inlined into every caller: the object has no symbol for it"


def _select(
    orig_tu: signatures.TranslationUnit,
    cand_tu: signatures.TranslationUnit | None,
    wanted: list[str],
    orig_syms: dict[str, build.Symbol],
) -> list[str]:
    """The functions to drive: those asked for, else the changed ones and everything that calls them."""
    emitted = [f for f in list(orig_tu.functions) + list(orig_tu.undrivable) if f in orig_syms]
    emitted = list(dict.fromkeys(emitted))
    if wanted:
        return wanted
    if cand_tu is None or " ".join(orig_tu.outside_bodies.split()) != " ".join(cand_tu.outside_bodies.split()):
        return emitted
    changed = {
        f for f, body in orig_tu.bodies.items() if " ".join(body.split()) != " ".join(cand_tu.bodies.get(f, "").split())
    }
    if not changed:
        return emitted
    grew = True
    while grew:
        grew = False
        for f, callees in orig_tu.calls.items():
            if f not in changed and callees & changed:
                changed.add(f)
                grew = True
    return [f for f in emitted if f in changed]


def _flavors(run: _Run, lang: str, link_with: Sequence[str]) -> tuple[list[build.Flavor], str]:
    """The harness builds, in order, and what ran under sanitizers in words. ASan+UBSan come first: they decide
    which inputs lie outside the original's contract (out-of-bounds accesses, UB), which MSan alone cannot. MSan
    then sees uninitialised reads whose garbage happens to give the right answer, which no other build shows."""
    opts = run.options
    if not opts.sanitizers:
        return [build.PLAIN], "off"
    words = "asan+ubsan"
    if lang == "asm":
        words += " (candidate assembly is not instrumented)"
    why = ""
    if not opts.msan:
        why = "turned off"
    elif lang != "c":
        why = "the candidate is %s, which clang does not instrument for it" % ("assembly" if lang == "asm" else "IR")
    elif link_with:
        why = "the objects linked in with the TU are not instrumented"
    else:
        why = build.runtime_missing(run.tc, build.MSAN)
    if why:
        return [build.SANITIZED, build.PLAIN], "%s; msan not run: %s" % (words, why)
    return [build.SANITIZED, build.MSAN, build.PLAIN], words + ", msan"


def _run_inputs(
    run: _Run,
    orig_tu: signatures.TranslationUnit,
    original: str,
    candidate: str,
    driven: list[str],
    generated: dict[str, list[inputs.GeneratedInput]],
    link_with: Sequence[str],
    valid: dict[str, list[bytes]],
) -> Verdict | None:
    """The differential run of every driven function over its inputs, sanitized builds first: an input on which
    the original reports UB or a memory error is outside its contract, and the plain build (what ships) is then
    compared only on inputs inside it. `valid` receives, per function, the inputs both sides ran alike."""
    for flavor in run.flavors:
        exes = build_harness(run, orig_tu, original, candidate, flavor, driven, link_with)
        for k, name in enumerate(driven):
            if run.over_time():
                return Verdict.timeout("verification ran past %.0f s" % run.options.total_timeout_s)
            gen = generated.get(name, [])
            if not gen:
                continue
            if name in valid:
                kept = set(valid[name])
                gen = [gi for gi in gen if gi.blob in kept]
            verdict = _differential(run, exes, k, orig_tu.functions[name], gen, flavor, valid)
            if verdict is not None:
                return verdict
    return None


def _fuzz(
    run: _Run,
    orig_tu: signatures.TranslationUnit,
    original: str,
    candidate: str,
    lang: str,
    driven: list[str],
    generated: dict[str, list[inputs.GeneratedInput]],
    link_with: Sequence[str],
    seeds: dict[str, list[bytes]],
) -> Verdict | None:
    """Fuzz each driven function for its time box, then judge what the fuzzer found in the differential run
    before the next function is fuzzed. Without libFuzzer the run is recorded as UNSUPPORTED in the evidence
    and the verdict rests on the other inputs."""
    t = time.monotonic()
    opts = run.options
    why = fuzz.runtime_missing(run.tc)
    exe = ""
    if not why:
        try:
            exe = build_harness(run, orig_tu, original, candidate, build.FUZZ, driven, link_with)[0]
        except _Stop as stop:
            why = "the fuzz target does not build: %s" % stop.verdict.detail
        except VerifyInputError as exc:
            why = "the fuzz target does not build: %s" % exc
    if why:
        run.ev.fuzz = [FuzzRun(name, "unsupported", note=why) for name in driven]
        run.check("fuzz", True, "UNSUPPORTED: %s" % why, t)
        return None
    note = "candidate assembly has no coverage instrumentation" if lang == "asm" else ""
    words: list[bytes] = []
    for side in ("o", "c"):
        words += fuzz.dictionary_words(run.ir.get(side, ""))
    dict_path = os.path.join(run.work, "fuzz.dict") if words else ""
    if words:
        fuzz.write_dictionary(dict_path, list(dict.fromkeys(words))[: fuzz.MAX_DICT])
    left = max(1.0, run.deadline - time.monotonic() - 30.0)
    source = fuzz.LibFuzzerSource(
        exe,
        {name: k for k, name in enumerate(driven)},
        min(opts.fuzz_seconds, left / len(driven)),
        run.work,
        seeds,
        opts.input_timeout_s,
        opts.limits,
        note,
        dict_path,
    )
    verdict = None
    for name in driven:
        sig = orig_tu.functions[name]
        tried = {gi.blob for gi in generated.get(name, [])}
        seed = opts.seed or zlib.crc32(name.encode())
        while verdict is None:
            gen = source.generate(sig, inputs.plan(sig), opts.max_inputs, seed)
            new = [gi for gi in gen if gi.blob not in tried]
            if new:
                verdict = _run_inputs(run, orig_tu, original, candidate, driven, {name: new}, link_with, {})
            if verdict is not None or not source.resumable(name) or run.over_time():
                break
            # The in-process finding did not stand up in the differential run (the original's own fault, or
            # state left from earlier inputs): fuzz on for the rest of the time box.
            source.runs[name].dismissed += 1
        run.ev.fuzz.append(source.runs[name])
        if verdict is not None:
            break
    run.check("fuzz", True, fuzz.summary(run.ev.fuzz), t)
    return verdict


def _differential(
    run: _Run,
    exes: tuple[str, str],
    k: int,
    sig: signatures.FunctionSig,
    gen: list[inputs.GeneratedInput],
    flavor: build.Flavor,
    valid: dict[str, list[bytes]],
) -> Verdict | None:
    t = time.monotonic()
    p = inputs.plan(sig)
    scratch = os.path.join(run.work, "run-%s" % flavor.name)
    opts = run.options
    j = diffrun.judge(
        exes, k, gen, sig.ret, p, scratch, flavor, opts.input_timeout_s, opts.limits, opts.fp_tolerance, run.globals_
    )
    fi = FunctionInputs(sig.name, flavor.name, len(gen), j.compared, j.invalid, j.inconclusive)
    for gi in gen:
        fi.sources[gi.source] = fi.sources.get(gi.source, 0) + 1
    run.ev.inputs.append(fi)
    name = "differential" if flavor is build.PLAIN else "sanitizers" if flavor is build.SANITIZED else flavor.name
    if j.fault is None:
        run.check(
            name,
            True,
            "%s: %d inputs compared, %d outside the original's contract, %d inconclusive"
            % (sig.name, j.compared, j.invalid, j.inconclusive),
            t,
        )
        valid[sig.name] = [gen[i].blob for i in j.same]  # inside the contract; also the inputs worth timing
        return None
    gi = gen[j.fault.index]
    repro_dir = os.path.join(run.work, "reproducer")
    os.makedirs(repro_dir, exist_ok=True)
    diffrun.write_inputs(os.path.join(repro_dir, "input.bin"), [gi.blob])
    repro = Reproducer(
        function=sig.name,
        input_text=gi.text,
        input_hex=gi.blob.hex()[:4096],
        command="%s r %d %s %s"
        % (exes[1], k, os.path.join(repro_dir, "input.bin"), os.path.join(repro_dir, "results")),
        directory=run.work,
        source=gi.source,
        index=j.fault.index,
    )
    detail = "%s: %s (%s build) on %s" % (sig.name, j.fault.detail, flavor.name, gi.text)
    run.check(name, False, detail, t)
    return Verdict.rejected(j.fault.reason, detail, repro)


def _program_sides(
    run: _Run, original: str, candidate: str, build_cmd: str | None
) -> tuple[program.Side, program.Side]:
    sides = []
    for name, side, src in (("original", "o", original), ("candidate", "c", candidate)):
        d = os.path.join(run.work, "program-" + name)
        os.makedirs(d, exist_ok=True)
        s = program.Side(name, src, run.objects["plain:" + side], d, _project_paths(run, original, candidate))
        if build_cmd:
            res = sandbox.run([build_cmd], d, run.options.limits, program.side_env(s, run.cflags), shell=True,
                              readonly=s.readonly)
            if res.returncode != 0:
                if name == "original":
                    raise VerifyInputError("the build command fails with the original: %s" % res.stderr.strip()[-300:])
                raise _Stop(
                    Verdict.rejected(
                        Reason.COMPILE, "the build command fails with the candidate: %s" % res.stderr.strip()[-300:]
                    )
                )
        sides.append(s)
    return sides[0], sides[1]


def _project_paths(run: _Run, original: str, candidate: str) -> tuple[str, ...]:
    """What the user's hook commands may read inside the sandbox: both sides' TUs and objects, the directories
    of the original and the candidate (the project's other sources, a main.c), and the working directory; a
    directory that is / or holds the home directory is left out (its dot files are not the project's)."""
    home = os.path.realpath(os.path.expanduser("~")).rstrip("/") + "/"
    dirs = [os.path.dirname(os.path.abspath(original)), os.path.dirname(os.path.abspath(candidate)), os.getcwd()]
    safe = [d for d in map(os.path.realpath, dirs) if not home.startswith(d.rstrip("/") + "/")]
    return tuple(os.path.abspath(p) for p in [*run.objects.values(), original, candidate, *safe])
