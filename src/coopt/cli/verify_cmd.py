"""`coopt verify`: judge a candidate TU against the original. Exit 0 accepted, 1 rejected, 2 bad input; 3 when
the verifier could not decide (unsupported, inconclusive, timeout)."""

from __future__ import annotations

import argparse
import shlex
import sys

from coopt.cli import UsageError
from coopt.verify import DEFAULT_FUZZ_SECONDS

EXIT_ACCEPTED, EXIT_REJECTED, EXIT_UNDECIDED = 0, 1, 3


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="coopt verify",
        description="Check that a candidate variant of a C translation unit behaves like the original (and, with "
        "--bench or --perf, is faster). The candidate may be C (.c), LLVM IR (.ll) or assembly (.s).",
    )
    p.add_argument("--original", required=True, help="the original C file")
    p.add_argument("--candidate", required=True, help="the candidate: .c, .ll or .s of the same TU")
    p.add_argument("--function", action="append", default=[], metavar="NAME", help="drive only these functions")
    p.add_argument("--cflags", default="-O2", help='compile flags of the TU, one string (default "-O2")')
    p.add_argument("--test", metavar="CMD", help="test command run per side; outputs must match (see docs)")
    p.add_argument("--build", metavar="CMD", help="command run once per side before --test and --bench")
    p.add_argument("--bench", metavar="CMD", help="benchmark command: interleaved A/B timing of both sides")
    p.add_argument("--perf", choices=("wall", "callgrind"), help="time the harness itself as a micro-benchmark")
    p.add_argument("--min-gain", type=float, default=1.02, help="required speed-up lower bound (default 1.02)")
    p.add_argument("--max-inputs", type=int, default=300, help="inputs per function (default 300)")
    p.add_argument("--no-sanitizers", action="store_true", help="skip the sanitizer builds (ASan+UBSan, MSan)")
    p.add_argument("--no-msan", action="store_true", help="skip the MemorySanitizer build")
    p.add_argument(
        "--fuzz",
        type=float,
        default=DEFAULT_FUZZ_SECONDS,
        metavar="SECONDS",
        help="after the generated inputs, fuzz each driven function with libFuzzer for up to SECONDS (default %g; "
        "0: off)" % DEFAULT_FUZZ_SECONDS,
    )
    p.add_argument("--no-fuzz", action="store_true", help="no libFuzzer run (the same as --fuzz 0)")
    p.add_argument("--fp-tolerance", type=float, default=0.0, help="relative float tolerance (default exact)")
    p.add_argument("--link", action="append", default=[], metavar="OBJ", help="objects the TU needs to link")
    p.add_argument("--keep", metavar="DIR", help="keep the harness, objects and reproducer in DIR")
    p.add_argument("--json", action="store_true", help="print the evidence record as JSON")
    return p


def run(_name: str, argv: list[str]) -> int:
    a = _parser().parse_args(argv)
    from coopt.verify.perfstats import PerfSettings
    from coopt.verify.pipeline import VerifyInputError, VerifyOptions, verify

    if a.fuzz < 0:
        raise UsageError("--fuzz: seconds must be 0 or more, not %g" % a.fuzz)
    options = VerifyOptions(
        max_inputs=a.max_inputs,
        fuzz_seconds=0.0 if a.no_fuzz else a.fuzz,
        sanitizers=not a.no_sanitizers,
        msan=not a.no_msan,
        fp_tolerance=a.fp_tolerance,
        min_gain=a.min_gain,
        perf=a.perf or "",
        perf_settings=PerfSettings(min_gain=a.min_gain),
    )
    from coopt.cli.common import load_config, sandbox_gate

    sandbox_gate(load_config().verify.allow_unsandboxed, llm_candidates=True)
    try:
        cflags = shlex.split(a.cflags)
    except ValueError as exc:
        raise UsageError("--cflags: %s" % exc) from exc
    try:
        ev = verify(
            a.original,
            a.candidate,
            functions=a.function,
            cflags=cflags,
            test_cmd=a.test,
            bench_cmd=a.bench,
            build_cmd=a.build,
            options=options,
            workdir=a.keep,
            link_with=a.link,
        )
    except VerifyInputError as exc:
        raise UsageError(str(exc)) from exc
    if a.json:
        print(ev.to_json())
    else:
        print(ev.verdict.line())
        repro = ev.verdict.reproducer
        if repro is not None:
            print("reproducer: %s%s" % (repro.input_text, " (from %s)" % repro.source if repro.source else ""))
            if a.keep and repro.command:
                print("rerun: %s" % repro.command)
        for fn, why in sorted(ev.unsupported_functions.items()):
            print("cannot drive %s: %s" % (fn, why), file=sys.stderr)
        for fr in ev.fuzz:
            if fr.status != "ran":
                print("fuzz %s: %s: %s" % (fr.function, fr.status.upper(), fr.note), file=sys.stderr)
        ran = [fr for fr in ev.fuzz if fr.status == "ran"]
        if ran:
            from coopt.verify.fuzz import summary

            print("fuzz: %s" % summary(ran))
    if ev.verdict.code.accepted:
        return EXIT_ACCEPTED
    return EXIT_REJECTED if ev.verdict.code.is_failure else EXIT_UNDECIDED
