"""The verifier against its corpus: every wrong candidate rejected for its stated reason, every correct one
accepted (behaviour only; speed is measured in bench/verify_cost.py). One row of tests/verify_corpus/manifest.toml
per test; rows with `fuzz` run the libFuzzer source too, and rows with `found_by` must be rejected on its input."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import SRC, require

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
CASES = tomllib.loads((CORPUS / "manifest.toml").read_text())["case"]


def test_manifest_covers_the_required_bugs() -> None:
    wrong = [c for c in CASES if c["expect"] == "rejected"]
    right = [c for c in CASES if c["expect"] == "accepted"]
    assert len(wrong) >= 58 and len(right) >= 10
    bugs = " | ".join(c["bug"] for c in wrong)
    for kind in (
        "off-by-one",
        "signed overflow",
        "aliasing",
        "float reassociation",
        "NaN",
        "-0.0",
        "uninitialised",
        "out-of-bounds",
        "globals",
        "early exit",
        "rounding",
        "large n",
        # issue 12: what honest mistakes hide from fixed inputs
        "related to a buffer",
        "literal",
        "sentinel",
        "tolerance",
        "signedness of char",
        "unsigned wrap",
        "static state",
        "power-of-two",
        "length exactly 1",
    ):
        assert kind in bugs, kind
    for c in CASES:
        assert (CORPUS / c["original"]).is_file() and (CORPUS / c["candidate"]).is_file()
        if c["expect"] == "rejected":
            Reason(c["reason"])  # a real reason name
        if "found_by" in c:
            assert c["found_by"] == fuzz.SOURCE_NAME and c.get("fuzz", 0) > 0, c["name"]
    fuzzed = [c for c in CASES if "found_by" in c]
    assert len(fuzzed) >= 2 and any(c["expect"] == "accepted" and c.get("fuzz") for c in CASES)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_corpus_case(case: dict) -> None:
    require("clang", "llvm-objcopy", "llvm-nm")
    if case.get("fuzz"):
        why = fuzz.runtime_missing(find())
        if why:
            pytest.skip(why)
    ev = verify(
        str(CORPUS / case["original"]),
        str(CORPUS / case["candidate"]),
        functions=case.get("functions", []),
        options=VerifyOptions(max_inputs=300, fuzz_seconds=case.get("fuzz", 0)),
    )
    v = ev.verdict
    if case["expect"] == "accepted":
        assert v.code is Code.ACCEPTED, v.line()
        assert sum(fi.compared for fi in ev.inputs) > 0
        builds = {fi.build for fi in ev.inputs}
        assert builds == ({"plain", "sanitized"} if "msan not run" in ev.sanitizers else {"plain", "sanitized", "msan"})
    else:
        assert v.code is Code.REJECTED, v.line()
        assert v.reason is Reason(case["reason"]), v.line()
        assert v.detail
        if v.reason not in (Reason.WARNING, Reason.INTERFACE, Reason.COMPILE):
            assert v.reproducer is not None and v.reproducer.input_text.startswith(tuple(ev.functions))
        if "found_by" in case:
            assert v.reproducer is not None and v.reproducer.source == case["found_by"], v.reproducer
            assert ev.fuzz and ev.fuzz[-1].findings >= 1 and ev.fuzz[-1].status == "ran", ev.fuzz
    if case.get("fuzz") and case["expect"] == "accepted":
        assert ev.fuzz and all(r.status == "ran" and r.executions > 0 and r.corpus > 0 for r in ev.fuzz), ev.fuzz
        assert any(fi.sources.get(fuzz.SOURCE_NAME) for fi in ev.inputs)  # its corpus went through the harness
