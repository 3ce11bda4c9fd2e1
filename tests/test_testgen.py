"""The test-generation agent's answers as verifier inputs: the JSON the model writes, parsed, fitted to each
parameter's role, and put through the verifier's own encoding, on signatures clang reads from real C."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from conftest import require
from coopt.agents.testgen import BadValue, LLMInputSource, describe_roles, parse_answer, to_case
from coopt.verify import inputs, signatures
from coopt.verify.inputs import Alias, Buffer, Null

FUNCTIONS = """#include <stddef.h>
struct pt { int x; double w; };
int count(const char *s) { int n = 0; while (*s++) n++; return n; }
void copy(char *dst, const char *src) { while (*src) *dst++ = *src++; }
long sum(const int *v, size_t n) { long s = 0; for (size_t i = 0; i < n; i++) s += v[i]; return s; }
double scale(double x, struct pt p, unsigned char k) { return x * p.w + p.x + k; }
"""


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, inputs.CallPlan]:
    require("clang")
    path = tmp_path_factory.mktemp("testgen") / "f.c"
    path.write_text(FUNCTIONS)
    tu = signatures.parse(str(path))
    return {name: inputs.plan(sig) for name, sig in tu.functions.items()}


@pytest.mark.parametrize("text, expected", [
    ('```json\n{"inputs": [{"args": ["a"], "why": "x"}, {"args": [""]}]}\n```', [["a"], [""]]),
    ('Sure! {"inputs": [{"args": [1, 2]}]} hope it helps', [[1, 2]]),
    ('```json\n[[1], {"args": [2]}]\n```', [[1], [2]]),
    ("```json\n{\"inputs\": [{\"args\": [1]},\n```", []),  # cut off: not JSON
    ("no inputs here", []),
    ('```json\n{"inputs": "none"}\n```', []),
])
def test_parse_answer(text: str, expected: list) -> None:
    assert parse_answer(text) == expected


def test_values_fit_each_role(plans: dict[str, inputs.CallPlan]) -> None:
    assert to_case(plans["count"], ["hé"]).args == (Buffer((104, -61, -87, 0)),)  # UTF-8 bytes, signed char, NUL
    assert to_case(plans["count"], [{"repeat": "ab", "count": 3}]).args == (Buffer(tuple(b"ababab\0")),)
    assert to_case(plans["count"], [None]).args == (Null(),)
    assert to_case(plans["copy"], [{"alias": "src", "offset": 2}, "abcdef"]).args[0] == Alias(1, 2)
    assert to_case(plans["sum"], [[1, -2, 3], 99]).args == (Buffer((1, -2, 3)), 99)
    assert to_case(plans["sum"], {"v": {"repeat": [7], "count": 4}, "n": "0x4"}).args == (Buffer((7,) * 4), 4)
    case = to_case(plans["scale"], ["-nan", {"x": 3, "w": "inf"}, "'A'"])
    x, p, k = case.args
    assert isinstance(x, float) and math.isnan(x) and math.copysign(1.0, x) < 0
    assert p == (3, math.inf) and k == 65


@pytest.mark.parametrize("name, args, message", [
    ("sum", [[1, 2]], "1 arguments for 2 parameters"),
    ("sum", [[1, "two"], 2], "'two' is not an integer"),
    ("copy", [{"alias": "nobody"}, "x"], "names no other parameter"),
    ("copy", [{"alias": "src", "offset": -1}, "x"], "not a byte count"),
    ("sum", ["abc", 3], "a string for v"),
    ("scale", [1.0, 5, 1], "not a list of field values"),
])
def test_values_that_do_not_fit_are_refused(plans: dict[str, inputs.CallPlan], name: str, args: list,
                                            message: str) -> None:
    with pytest.raises(BadValue, match=message):
        to_case(plans[name], args)


def test_the_source_serves_normalized_blobs_and_skips_bad_cases(plans: dict[str, inputs.CallPlan],
                                                                tmp_path: Path) -> None:
    path = tmp_path / "f.c"
    path.write_text(FUNCTIONS)
    sig = signatures.parse(str(path)).functions["sum"]
    source = LLMInputSource("sum", [[[1, 2, 3], 1000], [[1, 2, 3], 1000], [[5], "x"], [[], 0], [None, 3]])
    got = list(source.generate(sig, plans["sum"], 10, 0))
    # The length is clamped to the buffer as the harness would; the duplicate and the bad case are gone; NULL
    # with a positive length becomes length 0 (it would only crash the original).
    assert [g.text for g in got] == ["sum(v=[1, 2, 3] (3 elements), n=3)", "sum(v=[] (0 elements), n=0)",
                                     "sum(v=NULL, n=0)"]
    assert all(g.source == "llm" for g in got) and len(source.notes) == 1 and source.count == 5
    for g in got:
        assert inputs.encode(plans["sum"], inputs.decode(plans["sum"], g.blob)) == g.blob
    assert list(source.generate(sig, plans["sum"], 1, 0))[0].text.startswith("sum(v=[1, 2, 3]")
    other = signatures.parse(str(path)).functions["count"]
    assert list(source.generate(other, plans["count"], 10, 0)) == []  # another function's inputs are not its


def test_roles_are_described_for_the_model(plans: dict[str, inputs.CallPlan]) -> None:
    text, example = describe_roles(plans["sum"])
    assert text.splitlines() == [
        "1. v (const int *): a list of int values, or {\"repeat\": [1, 2], \"count\": 1000}, or "
        "{\"alias\": \"<other parameter>\", \"offset\": <bytes>} to point into another argument",
        "2. n (size_t): an integer: how many elements of v the function may use",
    ]
    assert example == "[1, 2, 3], 3"
    assert "one value per field, in order (x, w)" in describe_roles(plans["scale"])[0]
