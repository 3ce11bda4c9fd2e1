"""Relinking a real program from the journal with objects replaced, including members of static archives."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import Coopt, require
from coopt.journal.relink import LinkRecord, RelinkError, find_link, relink
from coopt.toolchain import find_toolchain

pytestmark = pytest.mark.slow

PI_SCRIPT = "print(string.format('%.6f', math.pi))\n"


def test_relink_lua_with_an_archive_member_and_a_direct_object_replaced(
    coopt: Coopt, debian_source, tmp_path: Path
) -> None:
    require("clang", "make")
    lua = debian_source("lua5.4", pristine=True)
    src = lua / "src"
    coopt.run(["make", "-j2", "linux-noreadline", "CC=coopt-cc"], cwd=src)
    link = find_link(str(coopt.cache_dir / "journal.jsonl"), str(src / "lua"))
    assert "liblua.a" in link.inputs and "lua.o" in link.inputs

    # A variant of lmathlib.c (inside liblua.a) with another value of pi: the relinked program must show it.
    variant = tmp_path / "lmathlib.c"
    text = (src / "lmathlib.c").read_text()
    assert "3.141592653589793238462643383279502884" in text
    variant.write_text(text.replace("3.141592653589793238462643383279502884", "3.0"))
    rec = next(r for r in coopt.journal() if r["type"] == "compile" and r["source"] == "lmathlib.c")
    obj = tmp_path / "lmathlib-variant.o"
    subprocess.run(
        [rec["compiler"], *rec["key_args"], "-iquote", str(src), "-c", str(variant), "-o", str(obj)],
        cwd=rec["cwd"], check=True,
    )
    script = tmp_path / "pi.lua"
    script.write_text(PI_SCRIPT)
    out = tmp_path / "lua-relinked"
    relink(link, {str(src / "lmathlib.o"): str(obj)}, str(out), workdir=str(tmp_path))
    assert subprocess.run([str(out), str(script)], capture_output=True, text=True).stdout.strip() == "3.000000"
    # The original program and archive are untouched.
    assert subprocess.run([str(src / "lua"), str(script)], capture_output=True, text=True).stdout.strip() == "3.141593"

    # A direct input (lua.o) is replaced on the command line.
    out2 = tmp_path / "lua-relinked-2"
    relink(link, {str(src / "lua.o"): str(src / "lua.o")}, str(out2), workdir=str(tmp_path))
    assert subprocess.run([str(out2), str(script)], capture_output=True, text=True).stdout.strip() == "3.141593"

    with pytest.raises(RelinkError, match="not found in the link"):
        relink(link, {str(tmp_path / "nowhere.o"): str(obj)}, str(tmp_path / "x"), workdir=str(tmp_path))


def test_find_link_names_the_missing_program(tmp_path: Path) -> None:
    with pytest.raises(RelinkError, match="no journaled link"):
        find_link(str(tmp_path / "journal.jsonl"), str(tmp_path / "prog"))


def test_toolchain_matches_clang_version() -> None:
    require("clang")
    tc = find_toolchain("clang")
    for name in ("opt", "llc", "llvm-profdata"):
        args = ["merge", "--version"] if name == "llvm-profdata" else ["--version"]
        out = subprocess.run([tc.tool(name), *args], capture_output=True, text=True).stdout
        assert "version %d." % tc.major in out


def test_link_record_round_trip() -> None:
    rec = {"cwd": "/b", "compiler": "/usr/bin/clang", "args": ["-o", "p", "a.o"], "output": "p", "inputs": ["a.o"]}
    link = LinkRecord.from_record(rec)
    assert link.output_path == "/b/p"


# hot.c's sum_scaled calls scale() from libutil.a, whose scale() calls back into hot.c's bias(): the verifier can
# only run hot.c's functions with the rest of the program linked in.
REST = {
    "util.c": "unsigned bias(void);\nunsigned scale(unsigned x) { return 3 * x + bias(); }\n",
    "hot.c": "unsigned scale(unsigned x);\nunsigned bias(void) { return 1; }\n"
             "unsigned sum_scaled(const unsigned *a, int n) {\n    unsigned s = 0;\n"
             "    for (int i = 0; i < n; i++) s += scale(a[i]);\n    return s;\n}\n",
    "main.c": "#include <stdio.h>\nunsigned sum_scaled(const unsigned *a, int n);\n"
              "int main(void) { unsigned a[4] = {1, 2, 3, 4}; printf(\"%u\\n\", sum_scaled(a, 4)); return 0; }\n",
}
FASTER = REST["hot.c"].replace("for (int i = 0; i < n; i++) s += scale(a[i]);",
                               "for (int i = n - 1; i >= 0; i--) s += scale(a[i]);")
WRONG = REST["hot.c"].replace("i < n;", "i + 1 < n;")


def test_the_verifier_links_the_rest_of_the_program_when_the_tu_calls_into_it(coopt: Coopt, tmp_path: Path) -> None:
    from coopt.journal.relink import defines_what_obj_needs, rest_of_program
    from coopt.verify.pipeline import VerifyOptions, verify

    require("clang", "ar")
    d = tmp_path / "prog"
    d.mkdir()
    for name, text in REST.items():
        (d / name).write_text(text)
    for name in REST:
        coopt.run([coopt.cc, "-O2", "-c", name], cwd=d)
    subprocess.run(["ar", "rcs", "libutil.a", "util.o"], cwd=d, check=True)
    coopt.run([coopt.cc, "main.o", "hot.o", "-L.", "-lutil", "-o", "prog"], cwd=d)
    link = find_link(str(coopt.cache_dir / "journal.jsonl"), str(d / "prog"))

    rest = rest_of_program(link, "hot.o", str(tmp_path / "rest"))
    assert str(d / "hot.o") not in rest and str(d / "main.o") in rest and str(d / "libutil.a") in rest
    assert defines_what_obj_needs(str(d / "hot.o"), rest)
    assert not defines_what_obj_needs(str(d / "util.o"), [str(d / "main.o")])

    options = VerifyOptions(max_inputs=200, total_timeout_s=240)
    for name, text in (("faster.c", FASTER), ("wrong.c", WRONG)):
        (tmp_path / name).write_text(text)
    alone = verify(str(d / "hot.c"), str(tmp_path / "faster.c"), ["sum_scaled"], ["-O2"], options=options)
    assert alone.verdict.code.value == "unsupported" and "scale" in alone.verdict.detail
    good = verify(str(d / "hot.c"), str(tmp_path / "faster.c"), ["sum_scaled"], ["-O2"], options=options,
                  link_with=rest)
    assert good.verdict.code.value == "accepted", good.verdict
    bad = verify(str(d / "hot.c"), str(tmp_path / "wrong.c"), ["sum_scaled"], ["-O2"], options=options,
                 link_with=rest)
    assert bad.verdict.code.value == "rejected", bad.verdict
