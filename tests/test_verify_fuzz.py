"""The libFuzzer input source with real clang and compiler-rt: the wrong candidates it is there for are accepted
without it, its dictionary comes from the sides' real IR, its fuzz target survives an original that crashes and
overruns buffers, the CLI reports what it ran, and a toolchain without libFuzzer's runtime gets an UNSUPPORTED
note instead of an error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SRC, Coopt, require

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

sys.path.insert(0, str(SRC))

from coopt.toolchain import find  # noqa: E402
from coopt.verify import fuzz  # noqa: E402
from coopt.verify.pipeline import VerifyOptions, verify  # noqa: E402
from coopt.verify.verdict import Code, Reason  # noqa: E402

CORPUS = Path(__file__).parent / "verify_corpus"
FOUND_BY_FUZZER = [
    c for c in tomllib.loads((CORPUS / "manifest.toml").read_text())["case"] if c.get("found_by") == "libfuzzer"
]


def require_libfuzzer() -> None:
    require("clang", "llvm-objcopy", "llvm-nm")
    why = fuzz.runtime_missing(find())
    if why:
        pytest.skip(why)


@pytest.mark.slow
@pytest.mark.parametrize("case", FOUND_BY_FUZZER, ids=[c["name"] for c in FOUND_BY_FUZZER])
def test_fixed_generators_miss_what_the_fuzzer_finds(case: dict) -> None:
    # The corpus test rejects these with the fuzzer's reproducer; without the fuzzer they pass, so it is the
    # fuzzer that catches them.
    require("clang", "llvm-objcopy", "llvm-nm")
    ev = verify(
        str(CORPUS / case["original"]),
        str(CORPUS / case["candidate"]),
        functions=case.get("functions", []),
        options=VerifyOptions(max_inputs=300),
    )
    assert ev.verdict.code is Code.ACCEPTED, ev.verdict.line()
    assert ev.fuzz == []


def test_dictionary_from_the_sides_ir(tmp_path: Path) -> None:
    require("clang")
    tc = find()
    words = []
    for side in ("originals/sniff.c", "wrong/sniff_word_compare.c"):
        words += fuzz.dictionary_words(fuzz.side_ir(tc, str(CORPUS / side), ["-O2"], str(tmp_path / "side.ll")))
    # The original's byte compares and its memcmp string; the candidate's word compares, both byte orders.
    for w in (b"B", b"Z", b"h", b"\x1f", b"\xfd7zXZ", b"BZh\x00", b"\x00hZB", b"(\xb5/\xfd"):
        assert w in words, w
    assert not any(len(w) > 1 and int.from_bytes(w, "little") < 256 for w in words if len(w) in (2, 4, 8))
    path = tmp_path / "d.dict"
    fuzz.write_dictionary(str(path), words)
    assert '"\\x42\\x5a\\x68\\x00"' in path.read_text().splitlines()


def test_fuzz_target_survives_crashes_and_overruns_of_the_original() -> None:
    # The original histogram writes 256 counters into a buffer of any size and crashes on NULL: in-process, each
    # such input must be dropped (guard page, signal handler) and the fuzzer go on, not stop or hang.
    require_libfuzzer()
    ev = verify(
        str(CORPUS / "originals/hist.c"),
        str(CORPUS / "correct/histogram_on_stack.c"),
        functions=["histogram"],
        options=VerifyOptions(max_inputs=150, fuzz_seconds=2),
    )
    assert ev.verdict.code is Code.ACCEPTED, ev.verdict.line()
    (run,) = ev.fuzz
    assert run.status == "ran" and run.starts == 1 and run.findings == 0, run
    assert run.executions > 0 and run.corpus > 0 and run.edges > 0, run
    fuzzed = [fi for fi in ev.inputs if fi.sources.get("libfuzzer")]
    assert {"sanitized", "plain"} <= {fi.build for fi in fuzzed}  # every build, as for the generated inputs
    assert any(fi.invalid for fi in fuzzed)  # it did reach inputs outside the original's contract


def test_cli_fuzz_reports_the_run(coopt: Coopt) -> None:
    require_libfuzzer()
    orig = str(CORPUS / "originals/sniff.c")
    args = ["verify", "--original", orig, "--max-inputs", "100", "--fuzz", "3"]
    bad = coopt.coopt(*args, "--candidate", str(CORPUS / "wrong/sniff_word_compare.c"), "--json", check=False)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    ev = json.loads(bad.stdout)
    assert ev["version"] >= 2 and ev["verdict"]["reason"] == Reason.RETURN_VALUE.value
    repro = ev["verdict"]["reproducer"]
    assert repro["source"] == "libfuzzer" and repro["function"] == "sniff_format", repro
    (run,) = ev["fuzz"]
    assert run["function"] == "sniff_format" and run["status"] == "ran" and run["findings"] >= 1
    good = coopt.coopt(*args, "--candidate", str(CORPUS / "correct/sniff_word_compare.c"), check=False)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "ACCEPTED" in good.stdout and "fuzz: sniff_format:" in good.stdout and "no finding" in good.stdout
    off = coopt.coopt(*args[:-2], "--no-fuzz", "--candidate", str(CORPUS / "wrong/sniff_word_compare.c"), check=False)
    assert off.returncode == 0 and "fuzz:" not in off.stdout, off.stdout  # only the fuzzer finds this one
    neg = coopt.coopt(*args[:-1], "-1", "--candidate", orig, check=False)
    assert neg.returncode == 2 and "--fuzz" in neg.stderr and "Traceback" not in neg.stderr


@pytest.fixture
def clang_without_libfuzzer(tmp_path: Path) -> str:
    """A real clang whose resource directory has every runtime but libFuzzer's and MemorySanitizer's (what a
    toolchain without those parts of Debian's libclang-rt-N-dev looks like to the verifier)."""
    require("clang")
    real = subprocess.run(["clang", "-print-resource-dir"], capture_output=True, text=True, check=True).stdout.strip()
    res = tmp_path / "resource"
    for dirpath, _dirs, files in os.walk(real):
        rel = os.path.relpath(dirpath, real)
        os.makedirs(res / rel, exist_ok=True)
        for name in files:
            if "fuzzer" not in name and "msan" not in name:
                os.symlink(os.path.join(dirpath, name), res / rel / name)
    wrapper = tmp_path / "bin" / "clang"
    wrapper.parent.mkdir()
    wrapper.write_text('#!/bin/sh\nexec clang -resource-dir "%s" "$@"\n' % res)
    wrapper.chmod(0o755)
    return str(wrapper)


def test_toolchain_without_libfuzzer_or_msan_is_unsupported_not_an_error(clang_without_libfuzzer: str) -> None:
    require("llvm-objcopy", "llvm-nm")
    tc = find(clang_without_libfuzzer)
    why = fuzz.runtime_missing(tc)
    assert "libclang-rt-%s-dev" % tc.major in why and "fuzzer" in why, why
    assert fuzz.runtime_missing(find()) == ""  # the real toolchain here has it (scripts/install-deps.sh)
    ev = verify(
        str(CORPUS / "originals/sniff.c"),
        str(CORPUS / "wrong/sniff_word_compare.c"),
        functions=["sniff_format"],
        options=VerifyOptions(max_inputs=100, fuzz_seconds=2, clang=clang_without_libfuzzer),
    )
    # The rest of the verifier ran with that clang (sanitizers included); only the fuzzer is missing, so the
    # verdict rests on the fixed inputs, which miss this bug, and the evidence says the fuzzer could not run.
    assert ev.verdict.code is Code.ACCEPTED, ev.verdict.line()
    assert ev.sanitizers.startswith("asan+ubsan; msan not run: ") and "cannot link a msan program" in ev.sanitizers
    assert {fi.build for fi in ev.inputs} == {"sanitized", "plain"}
    (run,) = ev.fuzz
    assert run.status == "unsupported" and run.note == why and run.executions == 0
    assert any(c.name == "fuzz" and c.detail.startswith("UNSUPPORTED") for c in ev.checks)
