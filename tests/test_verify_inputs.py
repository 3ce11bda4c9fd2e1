"""The built-in input source's newer stages with real clang IR: constants mined from both sides, keys drawn from
buffer contents, every small length. Each test names an input the issue-12 wrong candidates need and checks the
generator makes it within the default budget (the corpus tests in test_verify_corpus.py check the verdicts)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SRC, require

sys.path.insert(0, str(SRC))

from coopt.verify import inputs, signatures  # noqa: E402

SCAN = Path(__file__).parent / "verify_corpus" / "originals" / "scan.c"
BUDGET = 300  # VerifyOptions.max_inputs' default


@pytest.fixture(scope="module")
def scan() -> tuple[signatures.TranslationUnit, inputs.Mined]:
    require("clang")
    ir = subprocess.run(
        ["clang", "-O0", "-S", "-emit-llvm", str(SCAN), "-o", "-"], capture_output=True, text=True, check=True
    ).stdout
    return signatures.parse(str(SCAN), ["-O2"]), inputs.mine([ir])


def _cases(scan: tuple[signatures.TranslationUnit, inputs.Mined], name: str) -> list[inputs.InputCase]:
    tu, mined = scan
    sig = tu.functions[name]
    p = inputs.plan(sig)
    got = inputs.EdgeValueSource(mined).generate(sig, p, BUDGET, 1)
    return [inputs.decode(p, gi.blob) for gi in got if len(gi.blob) < 65536]  # the large ones are not the point


def _text(v: object) -> bytes:
    if not isinstance(v, inputs.Buffer):
        return b""  # the NULL-pointer input
    return bytes(int(x) & 0xFF for x in v.elems).split(b"\0")[0]


def test_constants_mined_per_function_first(scan: tuple[signatures.TranslationUnit, inputs.Mined]) -> None:
    _, mined = scan
    assert mined.for_function("field_len").ints[0] == ord(";")
    assert mined.for_function("hex_value").ints[:6] == [ord(c) for c in "09afAF"]
    assert mined.for_function("sum_skip_holes").ints[0] == 1000000
    assert mined.for_function("close_enough").floats[0] == 0.001
    assert 0 not in mined.everything.ints and 1 not in mined.everything.ints


def test_strings_hold_mined_characters(scan: tuple[signatures.TranslationUnit, inputs.Mined]) -> None:
    """A ';' no fixed string contains, and the pair "0X" of two mined characters."""
    assert not any(";" in s for s in inputs.STRINGS)
    fields = [_text(c.args[0]) for c in _cases(scan, "field_len")]
    assert any(t.startswith(b";") for t in fields) and any(b";" in t[1:] for t in fields)
    assert any(t.startswith(b"0X") for t in (_text(c.args[0]) for c in _cases(scan, "is_hex_prefix")))
    assert any(b"?" in t for t in (_text(c.args[0]) for c in _cases(scan, "count_stops")))


def test_scalars_and_buffers_hold_mined_values(scan: tuple[signatures.TranslationUnit, inputs.Mined]) -> None:
    assert {ord("F") - 1, ord("F"), ord("F") + 1} <= {c.args[0] for c in _cases(scan, "hex_value")}
    holes = [c.args[0] for c in _cases(scan, "sum_skip_holes")]
    assert any(isinstance(b, inputs.Buffer) and b.elems[0] == 1000000 and len(b.elems) > 1 for b in holes)
    assert (0.001, 0.0) in [c.args for c in _cases(scan, "close_enough")]


def test_keys_drawn_from_buffer_contents(scan: tuple[signatures.TranslationUnit, inputs.Mined]) -> None:
    """The searched key at the last, an odd and the first index of a buffer of distinct values (one element
    too), and a key absent from the buffer."""
    seen = set()
    for c in _cases(scan, "index_of"):
        a, n, key = c.args
        if not isinstance(a, inputs.Buffer) or not isinstance(n, int):
            continue
        elems = list(a.elems[:n])
        if key in elems and elems.count(key) == 1:
            at = elems.index(key)
            seen.add("first" if at == 0 else "last" if at == n - 1 else "odd" if at % 2 else "even")
            if n == 1:
                seen.add("one element")
        elif n and key not in elems:
            seen.add("absent")
    assert {"first", "last", "odd", "even", "one element", "absent"} <= seen, seen


def test_every_small_length(scan: tuple[signatures.TranslationUnit, inputs.Mined]) -> None:
    lengths = {c.args[1] for c in _cases(scan, "sum_bytes")}
    assert set(range(18)) <= lengths, sorted(lengths)


def test_without_mined_constants_the_source_still_works(
    scan: tuple[signatures.TranslationUnit, inputs.Mined],
) -> None:
    """EdgeValueSource() with nothing mined (other callers, assembly candidates) still draws keys from buffers."""
    tu, _ = scan
    sig = tu.functions["index_of"]
    p = inputs.plan(sig)
    got = list(inputs.EdgeValueSource().generate(sig, p, BUDGET, 1))
    calls = [inputs.decode(p, gi.blob).args for gi in got[:100]]
    last = [a for a in calls if isinstance(a[0], inputs.Buffer) and a[1] and a[0].elems[a[1] - 1] == a[2]]
    assert len(got) == BUDGET and len(last) >= 5


# A record the size of bzip2's EState in miniature: in-struct arrays of about 25 KB and pointer fields.
BIG_RECORD_C = """typedef struct { int freq[258]; unsigned char sel[18002]; int code[6][258]; int *ptr; int n; } State;
int touch(State *s) { return s->freq[0] + s->n + (s->ptr ? s->ptr[0] : 0); }
"""


def test_a_pointer_to_a_large_record_gets_inputs_of_bounded_size(tmp_path: Path) -> None:
    """Buffer counts are cut to MAX_BUFFER_BYTES: the large sizes (131075 elements) of an array of 25 KB records
    would be 3.3 GB an input (a bzip2 candidate made the optimizer build such inputs until the OOM killer ended it)."""
    from coopt.verify.inputs.edge import MAX_BUFFER_BYTES

    require("clang")
    src = tmp_path / "big.c"
    src.write_text(BIG_RECORD_C)
    sig = signatures.parse(str(src), ["-O2"]).functions["touch"]
    p = inputs.plan(sig)
    made = 0
    for gi in inputs.EdgeValueSource().generate(sig, p, BUDGET, 1):
        # The records' own pointer fields add small buffers (at most 33 elements each) to the cut array.
        assert len(gi.blob) <= MAX_BUFFER_BYTES + (1 << 20), (gi.describe if hasattr(gi, "describe") else "",
                                                              len(gi.blob))
        made += 1
    assert made == BUDGET
