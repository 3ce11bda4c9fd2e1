"""Several sources in one `-c` call, and compile-and-link in one call: each C source is a journaled TU that can be
served a variant, and what the caller gets (objects, program, diagnostics, exit status) is plain clang's."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import Coopt, require
from coopt.journal.relink import find_link, relink
from coopt.wrapper.classify import classify
from coopt.wrapper.reasons import DESCRIPTIONS, Reason

A = "int a(int x) { return x + 1; }\n"
B = "int b(int x) { return x * 3; }\n"
B_VARIANT = "int b(int x) { return x + x + x; }\n"
C_WARN = "int c(int x) { int unused; return x - 1; }\n"
BAD = "int bad(void) { return missing; }\n"
MAIN = '#include <stdio.h>\nint a(int); int b(int);\nint main(void) { printf("%d\\n", a(1) + b(2)); return 0; }\n'


def _run(cmd: list[str], cwd: Path, env: dict | None = None) -> tuple[int, bytes, bytes]:
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    require("clang")
    d = tmp_path / "p"
    d.mkdir()
    for name, text in (("a.c", A), ("b.c", B), ("c.c", C_WARN), ("bad.c", BAD), ("main.c", MAIN),
                       ("v.c", B_VARIANT)):
        (d / name).write_text(text)
    return d


def _objects(d: Path, names: list[str]) -> dict[str, bytes]:
    return {n: (d / n).read_bytes() for n in names if (d / n).exists()}


def _clean(d: Path) -> None:
    for p in [*d.glob("*.o"), *d.glob("*.d"), d / "prog"]:
        p.unlink(missing_ok=True)


@pytest.mark.parametrize("args", [
    ["-O2", "-g", "-Wall", "-c", "a.c", "b.c", "c.c"],
    ["-O2", "-Wall", "-c", "a.c", "bad.c", "c.c"],  # one fails: clang goes on with c.c, exits 1
    ["-O2", "-MD", "-c", "a.c", "b.c"],  # one .d per object, named after it
])
def test_several_sources_give_clangs_objects_diagnostics_and_status(coopt: Coopt, proj: Path,
                                                                    args: list[str]) -> None:
    names = ["a.o", "b.o", "c.o", "bad.o", "a.d", "b.d"]
    plain = _run(["clang", *args], proj)
    expected = _objects(proj, names)
    _clean(proj)
    assert _run([coopt.cc, *args], proj, env=coopt.env) == plain
    assert _objects(proj, names) == expected
    sources = [a for a in args if a.endswith(".c")]
    compiles = [r for r in coopt.journal() if r["type"] == "compile"]
    assert [r["source"] for r in compiles] == sources
    assert [r["output"] for r in compiles] == [s[:-2] + ".o" for s in sources]
    assert coopt.stats().get("miss") == len(sources)


def test_a_variant_is_served_for_one_source_of_several(coopt: Coopt, proj: Path) -> None:
    coopt.coopt("cache", "put", "--artifact", "v.c", "--unverified", "--", "clang", "-O2", "-Wall", "-c", "b.c",
                cwd=proj)
    (stored,) = (coopt.cache_dir / "entries").glob("*/*/object.o")
    args = ["-O2", "-Wall", "-c", "a.c", "c.c", "b.c", "bad.c"]
    plain = _run(["clang", *args], proj)
    expected = _objects(proj, ["a.o", "c.o", "b.o"])
    _clean(proj)
    got = _run([coopt.cc, *args], proj, env=coopt.env)
    assert got == plain  # c.c's warning, then bad.c's error, in order; exit 1
    assert (proj / "b.o").read_bytes() == stored.read_bytes() != expected["b.o"]
    assert _objects(proj, ["a.o", "c.o"]) == {k: expected[k] for k in ("a.o", "c.o")}
    assert not (proj / "bad.o").exists()
    assert coopt.stats().get("hit") == 1


@pytest.mark.parametrize(("argv", "reason"), [
    ("-c a.c b.c -o x.o", Reason.MULTIPLE_SOURCES),
    ("-c a.c b.cc", Reason.MULTIPLE_SOURCES_NOT_C),
    ("-c a.c b.s", Reason.MULTIPLE_SOURCES_NOT_C),
    ("-x c -c a.c b.c", Reason.MULTIPLE_SOURCES_NOT_C),
    ("-c a.c b.c -MD -MF all.d", Reason.MULTIPLE_SOURCES_DEPFILE),
    ("-c a.c b.c -Wp,-MD,all.d", Reason.MULTIPLE_SOURCES_DEPFILE),
    ("-c x/a.c y/a.c", Reason.MULTIPLE_SOURCES_SAME_OBJECT),
    ("-c a.c b.c -save-temps", Reason.SAVE_TEMPS),
    ("-c a.c - ", Reason.STDIN_SOURCE),
    ("-c a.c b.c -flto", Reason.BITCODE_OUTPUT),
])
def test_what_cannot_be_split_passes_through_with_a_named_reason(argv: str, reason: str) -> None:
    c = classify(argv.split())
    assert (c.kind, c.reason) == ("pass", reason)
    assert reason in DESCRIPTIONS


@pytest.mark.parametrize(("argv", "kind", "reason"), [
    ("-O2 -o prog main.c a.c -lm", "compile_link", Reason.LINK),
    ("-o prog main.c x.o", "compile_link", Reason.LINK),
    ("-o prog main.c a.cc", "link", Reason.LINK_SOURCES_NOT_C),
    ("-o prog main.c -MD", "link", Reason.LINK_SOURCES_DEPFILE),
    ("-o prog main.o a.o", "link", Reason.LINK),
    ("-O2 -o conftest conftest.c -lm", "link", Reason.CONFIGURE_PROBE),
])
def test_compile_and_link_classification(argv: str, kind: str, reason: str) -> None:
    c = classify(argv.split())
    assert (c.kind, c.reason) == (kind, reason)
    assert reason in DESCRIPTIONS


LINK_ARGS = ["-O2", "-g", "-o", "prog", "main.c", "a.c", "b.c", "-L.", "-lm", "-Wl,--as-needed"]


def test_compile_and_link_gives_clangs_program_and_journals_each_tu(coopt: Coopt, proj: Path) -> None:
    plain = _run(["clang", *LINK_ARGS], proj)
    assert plain[0] == 0
    expected = (proj / "prog").read_bytes()
    _clean(proj)
    assert _run([coopt.cc, *LINK_ARGS], proj, env=coopt.env) == plain
    assert (proj / "prog").read_bytes() == expected  # no temporary object name reaches the program
    assert not list(proj.glob("*.o"))  # as the driver: no object in the build tree
    recs = coopt.journal()
    compiles = [r for r in recs if r["type"] == "compile"]
    assert [r["source"] for r in compiles] == ["main.c", "a.c", "b.c"]
    kept = [r["output"] for r in compiles]
    assert all(k.startswith(str(coopt.cache_dir)) and Path(k).is_file() for k in kept)
    assert not any("-L." in r["key_args"] or "-lm" in r["key_args"] for r in compiles)
    link = find_link(str(coopt.cache_dir / "journal.jsonl"), str(proj / "prog"))
    assert [a for a in link.args if a.endswith(".o")] == kept

    # The optimizer's relink: the program with b's object replaced by a variant's computes the same.
    subprocess.run(["clang", "-O2", "-g", "-c", "v.c", "-o", "variant.obj"], cwd=proj, check=True)
    relink(link, {kept[2]: str(proj / "variant.obj")}, str(proj / "relinked"))
    assert subprocess.run([str(proj / "relinked")], capture_output=True, text=True).stdout == "8\n"
    nm = subprocess.run(["nm", str(proj / "relinked")], capture_output=True, text=True).stdout
    assert " b\n" in nm.replace(" T b\n", " b\n")


def test_compile_and_link_serves_a_variant_and_fails_like_clang(coopt: Coopt, proj: Path) -> None:
    coopt.coopt("cache", "put", "--artifact", "v.c", "--unverified", "--", "clang", "-O2", "-g", "-c", "b.c",
                cwd=proj)
    assert _run([coopt.cc, *LINK_ARGS], proj, env=coopt.env)[0] == 0
    assert coopt.stats().get("hit") == 1
    kept_b = [r["output"] for r in coopt.journal() if r["type"] == "compile" and r["source"] == "b.c"][-1]
    (stored,) = (coopt.cache_dir / "entries").glob("*/*/object.o")
    assert Path(kept_b).read_bytes() == stored.read_bytes()
    assert subprocess.run([str(proj / "prog")], capture_output=True, text=True).stdout == "8\n"

    # One source fails: every source is compiled (diagnostics in order), nothing is linked, clang's status.
    (proj / "prog").unlink()
    args = ["-O2", "-Wall", "-o", "prog", "main.c", "bad.c", "c.c"]
    plain = _run(["clang", *args], proj)
    assert plain[0] != 0 and b"unused" in plain[2]
    assert _run([coopt.cc, *args], proj, env=coopt.env) == plain
    assert not (proj / "prog").exists()


def test_the_fast_path_hands_these_calls_to_python(fast_launcher_bin: Path, coopt: Coopt, proj: Path) -> None:
    """coopt-cc-fast has no memo for a call with several sources or a compile-and-link: every run journals each
    TU again (a replayed pass-through or link memo would journal none)."""
    coopt.env["PATH"] = "%s:%s" % (fast_launcher_bin, coopt.env["PATH"])
    cc = str(fast_launcher_bin / "coopt-cc")
    for _ in range(3):
        assert _run([cc, "-O2", "-c", "a.c", "b.c"], proj, env=coopt.env)[0] == 0
        assert _run([cc, "-O2", "-o", "prog", "main.c", "a.c", "b.c"], proj, env=coopt.env)[0] == 0
        assert _run([cc, "-O2", "-c", "c.c"], proj, env=coopt.env)[0] == 0  # a plain compile: memo replayed
    recs = coopt.journal()
    assert [r["source"] for r in recs if r["type"] == "compile"] == ["a.c", "b.c", "main.c", "a.c", "b.c", "c.c"] * 3
    assert sum(1 for r in recs if r["type"] == "link") == 3
    assert coopt.stats().get("miss_fast", 0) >= 1
