"""The verifier's parts with real clang, LLVM tools and valgrind: signatures from the AST, the input encoding,
IR and assembly candidates, a real zlib TU, structs and globals, program-level hooks, containment, the CLI's exit
codes, and callgrind-based performance verdicts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SRC, Coopt, require

sys.path.insert(0, str(SRC))

from coopt.verify import inputs, sandbox, signatures  # noqa: E402
from coopt.verify.acceptance import speed_code  # noqa: E402
from coopt.verify.evidence import Interval  # noqa: E402
from coopt.verify.perfstats import bootstrap_interval  # noqa: E402
from coopt.verify.pipeline import VerifyOptions, verify  # noqa: E402
from coopt.verify.verdict import Code, Reason  # noqa: E402

CORPUS = Path(__file__).parent / "verify_corpus"
FAST = VerifyOptions(max_inputs=120)

STRUCTS = """
#include <stddef.h>
typedef struct { int x; double w; unsigned char tag[3]; unsigned flag : 1; } Item;
struct node { int v; struct node *next; };
int counter;
double weigh(const Item *items, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) { s += items[i].w * items[i].x; counter++; }
    return s;
}
Item make(int x) { Item it = { x, 0.5, "ab", 1 }; return it; }
int value(const struct node *p) { return p ? p->v : -1; }
int apply(int (*f)(int), int x) { return f(x); }
int sum_all(int n, ...) { return n; }
"""


def write(d: Path, name: str, text: str) -> str:
    p = d / name
    p.write_text(text)
    return str(p)


def test_signatures_from_the_ast(tmp_path: Path) -> None:
    require("clang")
    tu = signatures.parse(write(tmp_path, "s.c", STRUCTS))
    weigh = tu.functions["weigh"]
    assert [p.name for p in weigh.params] == ["items", "n"]
    item = weigh.params[0].type.pointee
    assert item is not None and item.kind == "record" and item.spelling == "Item"
    assert [f.name for f in item.fields] == ["x", "w", "tag", "flag"]
    assert item.fields[2].type.kind == "array" and item.fields[2].type.count == 3 and item.fields[3].bitfield
    assert weigh.canonical() == "float8s(Item*, int8u)"
    assert tu.functions["make"].ret.kind == "record"
    assert tu.undrivable["apply"].endswith("function pointer")
    assert tu.undrivable["sum_all"] == "variadic"
    assert "value" not in tu.undrivable  # pointer fields get buffers (one level deep)
    assert b"{ s +=" not in tu.stripped_source()


def test_encoding_round_trips_and_clamps(tmp_path: Path) -> None:
    require("clang")
    src = write(tmp_path, "e.c", "#include <stddef.h>\nvoid f(int *dst, const int *src, size_t n, const char *s) {}\n")
    sig = signatures.parse(src).functions["f"]
    p = inputs.plan(sig)
    assert [r.kind for r in p.roles] == ["buffer", "buffer", "length", "string"]
    assert p.roles[2].bound == (0, 1)
    case = inputs.InputCase((inputs.Buffer((1, 2, 3, 4)), inputs.Alias(0, 4), 100, inputs.Buffer((65, 66))))
    decoded = inputs.decode(p, inputs.encode(p, case))
    # The alias starts one int into a 4-int buffer: 3 elements fit, so n is clamped to 3; strings end in NUL.
    assert decoded.args == (inputs.Buffer((1, 2, 3, 4)), inputs.Alias(0, 4), 3, inputs.Buffer((65, 0)))
    gen = list(inputs.EdgeValueSource().generate(sig, p, 1500, 1))
    assert len({g.blob for g in gen}) == len(gen) == 1500
    assert any("=&dst+" in g.text for g in gen) and any("=NULL" in g.text for g in gen)


SLICES = """
#include <stddef.h>
struct node { int v; struct node *next; };
struct buf { unsigned char *data; size_t len; const char *name; double *w; int nw; struct node *head; int (*f)(int); };
double total(const struct buf *b) { return b->len; }
"""


def test_pointer_fields_get_buffers(tmp_path: Path) -> None:
    require("clang")
    sig = signatures.parse(write(tmp_path, "b.c", SLICES)).functions["total"]
    buf = sig.params[0].type.pointee
    assert buf is not None
    rp = inputs.record_plan(buf)
    # data and w get buffers measured by len and nw, name is a C string, head a list one node long, f stays NULL.
    assert rp.kinds == ("buffer", "value", "string", "buffer", "value", "buffer", "null")
    assert rp.bound == ((1, (0,)), (4, (3,)))
    node = buf.fields[5].type.pointee
    assert node is not None and inputs.record_plan(node, deep=True).kinds == ("value", "null")
    p = inputs.plan(sig)
    value = (inputs.Buffer((1, 2, 3)), 99, inputs.Buffer((104, 105)), inputs.Null(), 7, inputs.Buffer(((5, None),)))
    case = inputs.InputCase((inputs.Buffer((value,)),))
    decoded = inputs.decode(p, inputs.encode(p, case))
    # len is clamped to data's 3 elements, nw to 0 (w is NULL), the string ends in NUL, the node's next is NULL.
    (rec,) = decoded.args[0].elems  # type: ignore[union-attr]
    assert rec[:5] == (inputs.Buffer((1, 2, 3)), 3, inputs.Buffer((104, 0)), inputs.Null(), 0)
    assert rec[5] == inputs.Buffer(((5, inputs.Null()),)) and rec[6] == inputs.Null()
    gen = list(inputs.EdgeValueSource().generate(sig, p, 120, 1))
    for g in gen:
        if len(g.blob) < 65536:
            assert inputs.encode(p, inputs.decode(p, g.blob)) == g.blob
    assert any("{&[" in g.text for g in gen)


def test_ir_and_assembly_candidates(tmp_path: Path) -> None:
    require("clang", "llvm-objcopy", "llvm-nm")
    orig = str(CORPUS / "originals" / "numeric.c")
    good_ll, bad_s = tmp_path / "good.ll", tmp_path / "bad.s"
    subprocess.run(
        ["clang", "-O2", "-S", "-emit-llvm", str(CORPUS / "correct/isqrt_newton.c"), "-o", good_ll], check=True
    )
    subprocess.run(["clang", "-O2", "-S", str(CORPUS / "wrong/isqrt_via_float.c"), "-o", bad_s], check=True)
    ok = verify(orig, str(good_ll), functions=["isqrt"], options=FAST)
    assert ok.verdict.code is Code.ACCEPTED, ok.verdict.line()
    bad = verify(orig, str(bad_s), functions=["isqrt"], options=FAST)
    assert bad.verdict.code is Code.REJECTED and bad.verdict.reason is Reason.RETURN_VALUE, bad.verdict.line()
    assert "not instrumented" in bad.sanitizers


def test_real_zlib_translation_unit(debian_source, tmp_path: Path) -> None:
    require("clang", "llvm-objcopy", "llvm-nm")
    z = debian_source("zlib")
    orig = z / "adler32.c"
    text = orig.read_text()
    same = write(z, "adler32_same.c", text.replace("#define NMAX 5552", "#define NMAX 5552 /* unchanged */"))
    wrong = write(z, "adler32_wrong.c", text.replace("sum2 += adler;\n        if (sum2 >= BASE)", "if (sum2 >= BASE)"))
    flags = ["-O2", "-I%s" % z]
    ev = verify(str(orig), same, cflags=flags, options=FAST)
    assert ev.verdict.code is Code.ACCEPTED, ev.verdict.line()
    assert set(ev.functions) == {"adler32_z", "adler32", "adler32_combine", "adler32_combine64"}  # K&R style
    ev = verify(str(orig), wrong, cflags=flags, options=FAST)
    assert ev.verdict.code is Code.REJECTED and ev.verdict.reason is Reason.RETURN_VALUE, ev.verdict.line()
    assert ev.functions == ["adler32_z", "adler32"]  # the changed function and its caller


def test_structs_and_globals(tmp_path: Path) -> None:
    require("clang", "llvm-objcopy", "llvm-nm")
    orig = write(tmp_path, "o.c", STRUCTS)
    field = write(tmp_path, "f.c", STRUCTS.replace('0.5, "ab"', '0.5, "ac"'))
    ev = verify(orig, field, functions=["make"], options=FAST)
    assert ev.verdict.reason is Reason.RETURN_VALUE, ev.verdict.line()
    glob = write(tmp_path, "g.c", STRUCTS.replace("counter++; }", "} counter += (int)n;"))
    ev = verify(orig, glob, functions=["weigh"], options=FAST)
    assert ev.verdict.code is Code.ACCEPTED, ev.verdict.line()  # same final counter either way
    glob2 = write(tmp_path, "g2.c", STRUCTS.replace("counter++; }", "} counter += 2 * (int)n;"))
    ev = verify(orig, glob2, functions=["weigh"], options=FAST)
    assert ev.verdict.reason is Reason.GLOBAL and "counter" in ev.verdict.detail, ev.verdict.line()


def test_undrivable_function_needs_the_test_hook(tmp_path: Path) -> None:
    require("clang", "llvm-objcopy", "llvm-nm")
    orig = write(tmp_path, "o.c", STRUCTS)
    cand = write(tmp_path, "c.c", STRUCTS.replace("return f(x);", "return f(x) + (x == 7);"))
    main = write(
        tmp_path,
        "main.c",
        "int apply(int (*)(int), int);\nstatic int twice(int v) { return 2 * v; }\n"
        '#include <stdio.h>\nint main(void) { for (int i = 0; i < 10; i++) printf("%d\\n", apply(twice, i)); }\n',
    )
    ev = verify(orig, cand, functions=["apply"], options=FAST)
    assert ev.verdict.code is Code.UNSUPPORTED and "function pointer" in ev.verdict.detail
    test = "clang $COOPT_OBJECT %s -o app && ./app" % main
    ev = verify(orig, cand, functions=["apply"], test_cmd=test, options=FAST)
    assert ev.verdict.reason is Reason.TEST_OUTPUT and "line 8" in ev.verdict.detail, ev.verdict.line()
    ev = verify(orig, orig, functions=["apply"], test_cmd=test, options=FAST)
    assert ev.verdict.code is Code.ACCEPTED, ev.verdict.line()


INLINED = """static int twice(int v) { return v + v; }
int sum(int n) { int s = 0; for (int i = 0; i < n; i++) s += twice(i); return s; }
"""


def test_a_static_function_inlined_everywhere_is_judged_by_the_program(tmp_path: Path) -> None:
    # At -O2 `twice` exists in neither side's object: asked about it, the harness has nothing to call. It used to
    # reject every rewrite ("the candidate does not define twice"); now only the whole program can judge it.
    require("clang", "llvm-objcopy", "llvm-nm")
    orig = write(tmp_path, "o.c", INLINED)
    good = write(tmp_path, "good.c", INLINED.replace("v + v", "2 * v"))
    bad = write(tmp_path, "bad.c", INLINED.replace("v + v", "v + v + (v == 5)"))
    ev = verify(orig, good, functions=["twice"], options=FAST)
    assert ev.verdict.code is Code.UNSUPPORTED and "inlined into every caller" in ev.verdict.detail, ev.verdict.line()
    main = write(tmp_path, "main.c", '#include <stdio.h>\nint sum(int);\n'
                 'int main(void) { for (int n = 0; n < 9; n++) printf("%d\\n", sum(n)); }\n')
    test = "clang $COOPT_OBJECT %s -o app && ./app" % main
    ev = verify(orig, good, functions=["twice"], test_cmd=test, options=FAST)
    assert ev.verdict.code is Code.ACCEPTED, ev.verdict.line()
    ev = verify(orig, bad, functions=["twice"], test_cmd=test, options=FAST)
    assert ev.verdict.reason is Reason.TEST_OUTPUT, ev.verdict.line()


def test_sandbox_kills_the_group_and_limits_files(tmp_path: Path) -> None:
    # A command that leaves a grandchild sleeping: the timeout must take the whole group. Its pid inside the
    # sandbox's PID namespace means nothing outside, so the grandchild is found by its unique command line.
    token = "%d.%06d" % (300 + os.getpid() % 100, time.monotonic_ns() % 1000000)
    res = sandbox.run(["sh -c 'sleep %s & sleep 30'" % token], str(tmp_path), sandbox.Limits(wall_s=1), shell=True)
    assert res.timed_out

    def alive() -> list[int]:
        out = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                cmd = (stat.parent / "cmdline").read_bytes().split(b"\0")
                state = stat.read_text().rsplit(")", 1)[-1].split()[0]
            except OSError:
                continue
            if cmd[:2] == [b"sleep", token.encode()] and state not in ("Z", "X"):
                out.append(int(stat.parent.name))
        return out

    left = alive()
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left
    big = sandbox.run(["head -c 3000000 /dev/zero > big"], str(tmp_path), sandbox.Limits(file_size_mb=1), shell=True)
    assert big.returncode != 0 and (tmp_path / "big").stat().st_size <= 1 << 20
    if sandbox.network_namespace_prefix():
        net = sandbox.run(["tail -n +3 /proc/net/dev | cut -d: -f1"], str(tmp_path), shell=True)
        assert net.isolated_network and net.stdout.split() == ["lo"]


def test_cli_exit_codes_and_json(coopt: Coopt, tmp_path: Path) -> None:
    require("clang", "llvm-objcopy", "llvm-nm")
    orig = str(CORPUS / "originals" / "numeric.c")
    args = ["verify", "--original", orig, "--function", "clamp0", "--max-inputs", "80", "--no-fuzz"]
    ok = coopt.coopt(*args, "--candidate", orig, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = coopt.coopt(*args, "--candidate", str(CORPUS / "wrong/clamp0_negative_zero.c"), "--json", check=False)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    ev = json.loads(bad.stdout)
    assert ev["verdict"]["reason"] == "return-value" and "-0.0" in ev["verdict"]["reproducer"]["input_text"]
    missing = coopt.coopt("verify", "--original", str(tmp_path / "nope.c"), "--candidate", orig, check=False)
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    nofn = coopt.coopt("verify", "--original", orig, "--candidate", orig, "--function", "nope", check=False)
    assert nofn.returncode == 2 and "no function 'nope'" in nofn.stderr


def test_memory_sanitizer_sees_uninitialised_padding() -> None:
    # Comparing keys with memcmp reads their padding, which the input never sets: fresh memory is zero (and ASan
    # fills both keys alike), so only MemorySanitizer's build tells.
    require("clang", "llvm-objcopy", "llvm-nm")
    orig, cand = str(CORPUS / "originals/keys.c"), str(CORPUS / "wrong/key_equal_memcmp.c")
    if "msan not run" in verify(orig, orig, options=FAST).sanitizers:
        pytest.skip("no MemorySanitizer runtime here")
    ev = verify(orig, cand, options=VerifyOptions(max_inputs=120, msan=False))
    assert ev.verdict.code is Code.ACCEPTED, ev.verdict.line()
    assert "msan not run: turned off" in ev.sanitizers
    ev = verify(orig, cand, options=FAST)
    v = ev.verdict
    assert v.reason is Reason.SANITIZER and "(msan build)" in v.detail, v.line()
    assert "MemorySanitizer: use-of-uninitialized-value in the candidate's key_equal" in v.detail, v.line()
    assert ev.sanitizers == "asan+ubsan, msan" and {fi.build for fi in ev.inputs} == {"sanitized", "msan"}
    # A candidate that leaves memory uninitialised but never reads it passes all three builds.
    ok = verify(str(CORPUS / "originals/distinct.c"), str(CORPUS / "correct/distinct_clear_touched.c"), options=FAST)
    assert ok.verdict.code is Code.ACCEPTED, ok.verdict.line()
    assert {fi.build for fi in ok.inputs} == {"sanitized", "msan", "plain"}


def test_memory_sanitizer_only_where_everything_is_instrumented(tmp_path: Path) -> None:
    require("clang", "llvm-objcopy", "llvm-nm")
    orig = str(CORPUS / "originals/numeric.c")
    asm = tmp_path / "isqrt.s"
    subprocess.run(["clang", "-O2", "-S", str(CORPUS / "correct/isqrt_newton.c"), "-o", asm], check=True)
    ev = verify(orig, str(asm), functions=["isqrt"], options=FAST)
    assert ev.verdict.code is Code.ACCEPTED and "msan not run: the candidate is assembly" in ev.sanitizers
    helper = tmp_path / "helper.c"
    helper.write_text("int twice(int x) { return 2 * x; }\n")
    user = write(tmp_path, "user.c", "int twice(int);\nint quad(int x) { return twice(twice(x)); }\n")
    obj = tmp_path / "helper.o"
    subprocess.run(["clang", "-O2", "-c", str(helper), "-o", obj], check=True)
    ev = verify(user, user, options=FAST, link_with=[str(obj)])
    assert ev.verdict.code is Code.ACCEPTED, ev.verdict.line()
    assert "msan not run: the objects linked in with the TU are not instrumented" in ev.sanitizers


@pytest.mark.slow
def test_callgrind_performance_verdicts() -> None:
    require("clang", "llvm-objcopy", "llvm-nm", "valgrind")
    slow, fast = str(CORPUS / "originals/numeric.c"), str(CORPUS / "correct/isqrt_newton.c")
    opts = VerifyOptions(max_inputs=40, perf="callgrind", sanitizers=False)
    ev = verify(slow, fast, functions=["isqrt"], options=opts)
    assert ev.verdict.code is Code.ACCEPTED and ev.interval is not None, ev.verdict.line()
    assert ev.interval.method == "callgrind" and ev.interval.low > 2
    ev = verify(fast, slow, functions=["isqrt"], options=opts)  # the other way round: slower
    assert ev.verdict.reason is Reason.NOT_FASTER and ev.interval is not None and ev.interval.high < 1


def test_bootstrap_interval_brackets_the_ratio() -> None:
    a = [10.0, 10.2, 9.9, 10.1, 10.05, 9.95, 10.3]
    b = [5.0, 5.1, 4.9, 5.05, 5.2, 4.95, 5.0]
    point, low, high = bootstrap_interval(a, b, n=500, seed=3)
    assert low <= point <= high and low > 1.9 and high < 2.1
    assert bootstrap_interval(a, b, n=500, seed=3) == (point, low, high)


@pytest.mark.parametrize(("low", "high", "code"), [
    (1.02, 1.30, Code.ACCEPTED),  # the lower bound clears min_gain exactly: accepted
    (1.019, 1.30, Code.INCONCLUSIVE),  # straddles min_gain: not shown either way
    (0.90, 1.019, Code.REJECTED),  # wholly below: not faster
    (0.90, 1.02, Code.INCONCLUSIVE),  # the upper bound touches min_gain: not shown to be slower
])
def test_the_one_acceptance_rule(low: float, high: float, code: Code) -> None:
    # Both judges (the TU pipeline and the optimizer's program A/B) call this; its edges are the promise.
    assert speed_code(Interval((low + high) / 2, low, high, "wall"), 1.02) is code


def test_one_timer_gives_wall_or_cpu_seconds(tmp_path: Path) -> None:
    # The TU judge and the program-level A/B share perfstats.timed: a sleeping command takes wall time, no CPU.
    from coopt.verify.perfstats import timed

    limits = sandbox.Limits(cpu_s=0, address_space_mb=0, file_size_mb=0, processes=0, wall_s=30)
    env = {"PATH": "/usr/bin:/bin"}
    assert timed(["sleep 0.3"], str(tmp_path), env, limits, shell=True) >= 0.3
    assert timed(["sleep 0.3"], str(tmp_path), env, limits, shell=True, cpu=True) < 0.2
    with pytest.raises(RuntimeError, match="benchmark command failed"):
        timed(["exit 3"], str(tmp_path), env, limits, shell=True, cpu=True)
