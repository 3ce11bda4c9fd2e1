"""The classifier, on every kind of call a real build makes: each pass-through is named, counted, and behaves
exactly like plain clang; a candidate compile's key arguments rebuild the same object."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import Coopt, require
from coopt.wrapper.classify import classify, expand_response_files
from coopt.wrapper.reasons import Reason

F_C = '#include "f.h"\nint f(int x) { return x * K; }\nint main(void) { return f(1) - 3; }\n'
G_C = "int g(int x) { return x + 1; }\n"
F_CPP = "template <class T> T twice(T x) { return x + x; }\nint h(int x) { return twice(x); }\n"
F_S = ".text\n.globl s\ns:\n  ret\n"
F_I = "int i_fn(int x) { return x - 1; }\n"
VARIANT = '#include "f.h"\nint f(int x) { return x * K + EXTRA; }\nint main(void) { return 0; }\n'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    require("clang")
    p = tmp_path / "p"
    (p / "inc").mkdir(parents=True)
    (p / "f.h").write_text("#define K 3\n")
    (p / "inc" / "pre.h").write_text("#define PRE 7\n")
    (p / "f.c").write_text(F_C)
    (p / "g.c").write_text(G_C)
    (p / "f.cpp").write_text(F_CPP)
    (p / "f.s").write_text(F_S)
    (p / "f.i").write_text(F_I)
    (p / "noext").write_text(G_C)
    (p / "c_code.cpp").write_text(G_C)
    subprocess.run(["clang", "-c", "g.c", "-o", "g.o"], cwd=p, check=True)
    return p


def _run(
    cmd: list[str], cwd: Path, env: dict | None = None, stdin: bytes | None = None
) -> tuple[int, bytes, bytes]:
    proc = subprocess.run(cmd, cwd=cwd, env=env, input=stdin, capture_output=True)
    return proc.returncode, proc.stdout, proc.stderr


def _snapshot(d: Path) -> dict[str, bytes]:
    return {str(f.relative_to(d)): f.read_bytes() for f in sorted(d.rglob("*")) if f.is_file()}


# argv, the pass-through reason, and whether the files written must be byte-identical (not only named alike).
PASS_CASES = [
    ("-E f.c", Reason.PREPROCESS_ONLY, True),
    ("-S -O2 f.c -o out.s", Reason.ASSEMBLY_OUTPUT, True),
    ("-M f.c", Reason.DEPENDENCY_ONLY, True),
    ("-MM -MT tgt f.c", Reason.DEPENDENCY_ONLY, True),
    ("-c f.c g.c -o x.o", Reason.MULTIPLE_SOURCES, True),
    ("-c -O2 f.c -o -", Reason.OUTPUT_TO_STDOUT, True),
    ("-x c -c - -o stdin.o", Reason.STDIN_SOURCE, True),
    ("-c f.cpp -o cpp.o", Reason.NOT_C, True),
    ("-x c++ -c f.c -o cxx.o", Reason.NOT_C, True),
    ("-x fortran77 -c f.c", Reason.UNKNOWN_LANGUAGE, True),
    ("-c f.c -x c", Reason.UNKNOWN_LANGUAGE, True),
    ("-c f.s -o s.o", Reason.ASSEMBLER_SOURCE, True),
    ("-c f.i -o i.o", Reason.PREPROCESSED_SOURCE, True),
    ("-save-temps -c f.c", Reason.SAVE_TEMPS, True),
    ("-save-temps=obj -c f.c -o st.o", Reason.SAVE_TEMPS, True),
    ("-fprofile-generate -c f.c", Reason.PROFILE_GENERATE, True),
    ("-fprofile-instr-generate -c f.c", Reason.PROFILE_GENERATE, True),
    ("-fprofile-use=missing.profdata -c f.c", Reason.PROFILE_USE, True),
    ("-fauto-profile=missing.prof -c f.c", Reason.PROFILE_USE, True),
    ("-save-stats=obj -c f.c -o stats.o", Reason.EXTRA_OUTPUT, True),
    ("--coverage -c f.c", Reason.COVERAGE, False),
    ("-g -gsplit-dwarf -c f.c -o split.o", Reason.SPLIT_DWARF, True),
    ("-Xclang -disable-llvm-passes -O2 -c f.c", Reason.XCLANG, True),
    ("-Wp,-MD,w.d,-DK2=1 -c f.c", Reason.XPREPROCESSOR, True),
    ("-fsyntax-only f.c", Reason.SYNTAX_ONLY, True),
    ("-c", Reason.NO_INPUT, True),
    ("-c f.c g.o", Reason.LINKER_INPUT, True),
    ("-c f.c -o", Reason.MISSING_ARGUMENT, True),
    ("-fstack-usage -c f.c", Reason.EXTRA_OUTPUT, True),
    ("-O2 -Rpass=inline -c f.c", Reason.REMARKS, True),
    ("-v -c f.c", Reason.VERBOSE, True),
    ("-emit-llvm -c f.c -o f.bc", Reason.BITCODE_OUTPUT, True),
    ("-flto=thin -c f.c", Reason.BITCODE_OUTPUT, True),
    ("--version", Reason.QUERY, True),
    ("-print-prog-name=ld", Reason.QUERY, True),
    ("@missing.rsp -c f.c", Reason.BAD_RESPONSE_FILE, True),
]


@pytest.mark.parametrize("argv, reason, same_bytes", PASS_CASES, ids=[c[0] for c in PASS_CASES])
def test_pass_through_is_named_counted_and_identical_to_clang(
    coopt: Coopt, project: Path, argv: str, reason: str, same_bytes: bool
) -> None:
    args = argv.split()
    if reason != Reason.BAD_RESPONSE_FILE:
        c = classify(expand_response_files(args, str(project)))
        assert (c.kind, c.reason) == ("pass", reason)
    stdin = (project / "f.c").read_bytes()
    before = _snapshot(project)
    plain = _run(["clang", *args], project, stdin=stdin)
    plain_files = _snapshot(project)
    for name in set(plain_files) - set(before):
        (project / name).unlink()
    wrapped = _run([coopt.cc, *args], project, env=coopt.env, stdin=stdin)
    wrapped_files = _snapshot(project)

    assert wrapped == plain  # exit code, stdout and stderr, byte for byte
    assert sorted(wrapped_files) == sorted(plain_files)
    if same_bytes:
        assert wrapped_files == plain_files
    assert coopt.stats() == {reason: 1}
    assert coopt.journal() == []


def test_link_is_journaled_and_identical(coopt: Coopt, project: Path) -> None:
    subprocess.run(["clang", "-c", "f.c", "-o", "f.o"], cwd=project, check=True)
    plain = _run(["clang", "f.o", "g.o", "-o", "app"], project)
    plain_app = (project / "app").read_bytes()
    (project / "app").unlink()
    wrapped = _run([coopt.cc, "f.o", "g.o", "-o", "app"], project, env=coopt.env)
    assert wrapped == plain and (project / "app").read_bytes() == plain_app
    assert coopt.stats() == {Reason.LINK: 1}
    (rec,) = coopt.journal()
    assert rec["type"] == "link" and rec["output"] == "app" and rec["inputs"] == ["f.o", "g.o"]
    assert rec["cwd"] == str(project)

    # Without -o the linker writes a.out, and the journal says so.
    _run([coopt.cc, "f.o", "g.o"], project, env=coopt.env)
    assert (project / "a.out").is_file()
    assert coopt.journal()[-1]["output"] == "a.out"


# Candidate compiles: argv, then the source, output and dependency arguments the classifier must find.
COMPILE_CASES = [
    ("-c f.c", "f.c", "f.o", []),
    ("-O2 -c f.c -o out/f.o", "f.c", "out/f.o", []),
    ("-c -ofoo.o f.c", "f.c", "foo.o", []),
    ("-x c -c noext -o noext.o", "noext", "noext.o", []),
    ("-x c -c c_code.cpp -o fc.o", "c_code.cpp", "fc.o", []),
    ("-x none -c f.c -o none.o", "f.c", "none.o", []),
    ("-c f.c -MD", "f.c", "f.o", ["-MD"]),
    ("-c f.c -MMD -MF f.dep -MT t1 -MQ t$2", "f.c", "f.o", ["-MMD", "-MF", "f.dep", "-MT", "t1", "-MQ", "t$2"]),
    ("-c f.c -MD -MFjoined.d -MTjt", "f.c", "f.o", ["-MD", "-MFjoined.d", "-MTjt"]),
    ("-c f.c -MMD -MP", "f.c", "f.o", ["-MMD", "-MP"]),
    ("-c f.c -Wp,-MD,w.d -o w.o", "f.c", "w.o", ["-Wp,-MD,w.d"]),
    ("-c f.c -Wp,-MMD,w.d -o w.o", "f.c", "w.o", ["-Wp,-MMD,w.d"]),
    ("-O2 -march=native -c f.c", "f.c", "f.o", []),
    ("-iwithsysroot /usr/include -iframework /fw -isystem-after inc -c f.c", "f.c", "f.o", []),
]


@pytest.mark.parametrize("argv, source, output, dep_args", COMPILE_CASES, ids=[c[0] for c in COMPILE_CASES])
def test_candidate_compile_through_the_wrapper(
    coopt: Coopt, project: Path, argv: str, source: str, output: str, dep_args: list[str]
) -> None:
    args = argv.split()
    c = classify(args)
    assert (c.kind, c.source, c.output, c.dep_args) == ("compile", source, output, dep_args)
    (project / "out").mkdir()
    before = _snapshot(project)
    plain = _run(["clang", *args], project)
    plain_files = _snapshot(project)
    assert plain[0] == 0, plain
    for name in set(plain_files) - set(before):
        (project / name).unlink()
    wrapped = _run([coopt.cc, *args], project, env=coopt.env)
    assert wrapped == plain
    assert _snapshot(project) == plain_files
    assert coopt.stats() == {"miss": 1}
    (rec,) = coopt.journal()
    assert (rec["type"], rec["source"], rec["output"]) == ("compile", source, output)
    assert rec["dep_args"] == dep_args
    assert rec["args"] == args and rec["native"] == ("-march=native" in args)


COLOUR = {"-fcolor-diagnostics", "-fno-color-diagnostics", "-fdiagnostics-color=always"}

# Real flag combinations; `[clang, *key_args, -c, SRC, -o, OTHER]` must build the very same object.
REPLAY_CASES = [
    "-O2 -g -DX=1 -Iinc -MD -fcolor-diagnostics -Wall -c f.c -o f.o",
    "-O3 -march=native -ffast-math -x c -c f.c -o build/f.o",
    "-Os -fPIC -fno-strict-aliasing -std=c99 -MMD -MF deps/f.d -MT t -fdiagnostics-color=always -c f.c -o f.o",
    "-O1 -g3 -Wp,-MD,w.d -include inc/pre.h -D K2=2 -I inc -c f.c -o f.o",
    "-O2 -fno-color-diagnostics -ffunction-sections -fdata-sections -fstack-protector-strong -c f.c",
    "-g -O0 -fdebug-prefix-map=/x=/y -U K2 -MD -MP -MQ q$ -c -o f.o f.c",
]


@pytest.mark.parametrize("argv", REPLAY_CASES)
def test_key_args_drop_only_outputs_deps_colour_and_replay_the_same_object(project: Path, argv: str) -> None:
    args = argv.split()
    c = classify(args)
    assert c.kind == "compile"
    dropped = list(args)
    for a in c.key_args:
        dropped.remove(a)
    expected_dropped = ["-c", c.source, *c.dep_args] + [a for a in args if a in COLOUR]
    if "-o" in args:
        expected_dropped += ["-o", c.output]
    assert sorted(dropped) == sorted(expected_dropped)

    for d in ("build", "deps"):
        (project / d).mkdir(exist_ok=True)
    subprocess.run(["clang", *args], cwd=project, check=True, capture_output=True)
    original = (project / c.output).read_bytes()
    replay = ["clang", *c.key_args, "-c", c.source, "-o", "replayed-elsewhere.o"]
    subprocess.run(replay, cwd=project, check=True, capture_output=True)
    assert (project / "replayed-elsewhere.o").read_bytes() == original


def test_response_files_nested_and_quoted(coopt: Coopt, project: Path) -> None:
    (project / "rsp").mkdir()
    (project / "rsp" / "outer.rsp").write_text('-O2 "-DMSG=\\"hi there\\"" @rsp/inner.rsp\n-c f.c\n')
    (project / "rsp" / "inner.rsp").write_text("'-DTWO=1 + 1' -Dback=a\\ b \"\" -o rsp.o\n")
    args = expand_response_files(["@rsp/outer.rsp"], str(project))
    assert args == ["-O2", '-DMSG="hi there"', "-DTWO=1 + 1", "-Dback=a b", "-o", "rsp.o", "-c", "f.c"]

    subprocess.run(["clang", "@rsp/outer.rsp"], cwd=project, check=True)
    plain = (project / "rsp.o").read_bytes()
    (project / "rsp.o").unlink()
    coopt.run([coopt.cc, "@rsp/outer.rsp"], cwd=project)
    assert (project / "rsp.o").read_bytes() == plain
    (rec,) = coopt.journal()
    assert rec["args"] == args and rec["key_args"] == ["-O2", '-DMSG="hi there"', "-DTWO=1 + 1", "-Dback=a b"]

    # The journaled compile is a real one: a variant can be stored for it, and is served through the @file.
    (project / "v.c").write_text(VARIANT.replace("EXTRA", "TWO"))
    coopt.coopt("cache", "put", "--artifact", "v.c", "--for-object", "rsp.o", "--unverified", cwd=project)
    coopt.run([coopt.cc, "@rsp/outer.rsp"], cwd=project)
    assert coopt.stats().get("hit") == 1
    assert (project / "rsp.o").read_bytes() != plain


def test_response_file_that_cannot_be_read_passes_through(coopt: Coopt, project: Path) -> None:
    (project / "loop.rsp").write_text("-c f.c @loop.rsp\n")
    (project / "dir.rsp").mkdir()
    for argv in (["@loop.rsp"], ["-c", "f.c", "@dir.rsp"]):
        plain = _run(["clang", *argv], project)
        wrapped = _run([coopt.cc, *argv], project, env=coopt.env)
        assert wrapped == plain
    assert coopt.stats() == {Reason.BAD_RESPONSE_FILE: 2}


def test_ambiguous_nested_response_file_passes_through(coopt: Coopt, project: Path) -> None:
    # rsp/outer.rsp names @sub.rsp, which exists both beside it and in the working directory.
    (project / "rsp").mkdir()
    (project / "rsp" / "outer.rsp").write_text("-c f.c @sub.rsp\n")
    (project / "rsp" / "sub.rsp").write_text("-DK2=1\n")
    (project / "sub.rsp").write_text("-DK2=2\n")
    plain = _run(["clang", "@rsp/outer.rsp"], project)
    wrapped = _run([coopt.cc, "@rsp/outer.rsp"], project, env=coopt.env)
    assert wrapped == plain
    assert coopt.stats() == {Reason.BAD_RESPONSE_FILE: 1}


def test_march_native_is_keyed_on_the_cpu_and_served(coopt: Coopt, project: Path) -> None:
    env = dict(coopt.env, COOPT_DEBUG="1")
    subprocess.run(["clang", "-O2", "-march=native", "-c", "f.c", "-o", "plain.o"], cwd=project, check=True)
    subprocess.run([coopt.cc, "-O2", "-march=native", "-c", "f.c"], cwd=project, env=env, check=True)
    assert (project / "f.o").read_bytes() == (project / "plain.o").read_bytes()
    material = (project / "f.o.coopt-key").read_text()
    assert "arg=-march=native\n" in material
    assert any(line.startswith("cpu=") for line in material.splitlines())
    (rec,) = coopt.journal()
    assert rec["native"] is True and rec["output"] == "f.o"  # no -o: clang's default name

    (project / "v.c").write_text(VARIANT.replace("EXTRA", "5"))
    coopt.coopt("cache", "put", "--artifact", "v.c", "--for-object", "f.o", "--unverified", cwd=project)
    os.unlink(project / "f.o")
    coopt.run([coopt.cc, "-O2", "-march=native", "-c", "f.c"], cwd=project)
    assert coopt.stats().get("hit") == 1
    subprocess.run(["clang", "-O2", "-march=native", "-c", "v.c", "-o", "v.o"], cwd=project, check=True)
    assert (project / "f.o").read_bytes() != (project / "plain.o").read_bytes()
    # Without -march=native it is another key.
    coopt.run([coopt.cc, "-O2", "-c", "f.c", "-o", "generic.o"], cwd=project)
    assert coopt.stats().get("hit") == 1


def test_cxx_compiler_in_prefix_form_passes_cxx_through(coopt: Coopt, project: Path) -> None:
    if shutil.which("clang++") is None:
        pytest.skip("no clang++")
    plain = _run(["clang++", "-c", "f.cpp", "-o", "cpp.o"], project)
    first = (project / "cpp.o").read_bytes()
    wrapped = _run([coopt.cc, "clang++", "-c", "f.cpp", "-o", "cpp.o"], project, env=coopt.env)
    assert wrapped == plain and (project / "cpp.o").read_bytes() == first
    assert coopt.stats() == {Reason.NOT_C: 1}
