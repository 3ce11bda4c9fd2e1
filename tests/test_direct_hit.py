"""A hit skips the compiler run only when that is provably the same as compiling: a clean TU whose header search
is recorded, no dependency file asked for, and no header shadowing a recorded one. Everything else keeps the
-fsyntax-only run (or compiles for real), and its output equals plain clang's."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import Coopt, require

# include_next (clang's limits.h) and __has_include (glibc's unistd.h) are both exercised by a clean TU.
CLEAN = '#include <limits.h>\n#include <stddef.h>\n#include <unistd.h>\n#include "x.h"\n#include <sub/y.h>\n' \
        "int f(int a) { return a * K + Y + (int)sizeof(size_t) + (CHAR_BIT > 8); }\n"
VARIANT = CLEAN.replace("a * K", "K * a")


def _run(cmd: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True)


def _manifest_text(coopt: Coopt) -> str:
    (path,) = list((coopt.cache_dir / "manifests").glob("*/*"))
    return path.read_text()


def _put(coopt: Coopt, d: Path, args: list[str], artifact: str = "v.c") -> None:
    coopt.coopt("cache", "put", "--artifact", artifact, "--unverified", "--", "clang", *args, cwd=d)


@pytest.fixture
def proj(coopt: Coopt, tmp_path: Path) -> Path:
    """f.c includes "x.h" and <sub/y.h> from late/; early/ comes first on the search list and is empty; new/ is on
    the list but does not exist. A variant is stored for `-O2 -Iearly -Inew -Ilate`."""
    require("clang")
    d = tmp_path / "p"
    for sub in ("early", "late/sub"):
        (d / sub).mkdir(parents=True)
    (d / "late" / "x.h").write_text("#define K 3\n")
    (d / "late" / "sub" / "y.h").write_text("#define Y 4\n")
    (d / "f.c").write_text(CLEAN)
    (d / "v.c").write_text(VARIANT)
    _put(coopt, d, ARGS)
    return d


ARGS = ["-O2", "-Iearly", "-Inew", "-Ilate", "-c", "f.c", "-o", "f.o"]


def test_clean_tu_is_served_without_a_compiler_run(coopt: Coopt, proj: Path) -> None:
    text = _manifest_text(coopt)
    assert "\ndirect clean\n" in text
    assert "\nabsent early/x.h\n" in text and "\nabsent early/sub/y.h\n" in text and "\nabsent new\n" in text
    assert "\nabsent f.c\n" not in text  # a path clang never tried is not recorded
    proc = _run([coopt.cc, *ARGS], proj, coopt.env)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"", b"")
    assert coopt.stats() == {"hit": 1, "hit_direct": 1}
    _run(["clang", "-O2", "-Iearly", "-Ilate", "-c", "v.c", "-o", "v.o"], proj)
    assert (proj / "f.o").read_bytes() == (proj / "v.o").read_bytes()


SHADOWS = {
    "quoted, includer's directory": ("x.h", "#define K 5\n"),
    "quoted, earlier -I": ("early/x.h", "#define K 5\n"),
    "angled, new subdirectory of an earlier -I": ("early/sub/y.h", "#define Y 9\n"),
    "angled, -I directory that did not exist": ("new/sub/y.h", "#define Y 9\n"),
}


@pytest.mark.parametrize("where", SHADOWS)
def test_a_new_shadowing_header_is_never_served(coopt: Coopt, proj: Path, where: str) -> None:
    path, content = SHADOWS[where]
    (proj / path).parent.mkdir(parents=True, exist_ok=True)
    (proj / path).write_text(content)
    plain = _run(["clang", *ARGS[:-1], "plain.o"], proj)
    wrapped = _run([coopt.cc, *ARGS], proj, coopt.env)
    assert (wrapped.returncode, wrapped.stdout, wrapped.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert (proj / "f.o").read_bytes() == (proj / "plain.o").read_bytes()
    stats = coopt.stats()
    assert "hit" not in stats and "hit_direct" not in stats and stats.get("miss_deps_changed") == 1, stats


def test_unrelated_files_in_search_directories_keep_the_direct_hit(coopt: Coopt, proj: Path) -> None:
    # Objects land next to sources in in-tree builds: only the exact candidate paths matter, not directory mtimes.
    (proj / "other.o").write_bytes(b"x")
    (proj / "early" / "unrelated.h").write_text("\n")
    assert _run([coopt.cc, *ARGS], proj, coopt.env).returncode == 0
    assert coopt.stats() == {"hit": 1, "hit_direct": 1}


def test_dependency_file_keeps_the_compiler_run(coopt: Coopt, proj: Path) -> None:
    args = [*ARGS, "-MMD", "-MF", "f.d"]
    plain = _run(["clang", *args], proj)
    plain_d = (proj / "f.d").read_bytes()
    (proj / "f.d").unlink()
    wrapped = _run([coopt.cc, *args], proj, coopt.env)
    assert (wrapped.returncode, wrapped.stdout, wrapped.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert (proj / "f.d").read_bytes() == plain_d
    assert coopt.stats() == {"hit": 1}


def test_a_warning_keeps_the_compiler_run_and_is_printed(coopt: Coopt, tmp_path: Path) -> None:
    require("clang")
    d = tmp_path / "w"
    d.mkdir()
    (d / "w.c").write_text("int w(int x) {\n  int unused;\n  return x + 1;\n}\n")
    (d / "v.c").write_text("int w(int x) { return 1 + x; }\n")
    args = ["-O2", "-Wall", "-c", "w.c", "-o", "w.o"]
    _put(coopt, d, args)
    assert "\ndirect check diagnostics\n" in _manifest_text(coopt)
    plain = _run(["clang", *args], d)
    wrapped = _run([coopt.cc, *args], d, coopt.env)
    assert b"unused" in plain.stderr
    assert (wrapped.returncode, wrapped.stdout, wrapped.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert coopt.stats() == {"hit": 1}


HAS_INCLUDE = '#if __has_include("opt.h")\n#include "opt.h"\n#else\n#define OPT 1\n#endif\n' \
              "int g(void) { return OPT; }\n"


def test_has_include_with_a_literal_is_recorded_and_a_new_file_is_noticed(coopt: Coopt, tmp_path: Path) -> None:
    require("clang")
    d = tmp_path / "h"
    d.mkdir()
    (d / "g.c").write_text(HAS_INCLUDE)
    (d / "v.c").write_text(HAS_INCLUDE.replace("return OPT", "return OPT + 0"))
    args = ["-O2", "-c", "g.c", "-o", "g.o"]
    _put(coopt, d, args)
    text = _manifest_text(coopt)
    assert "\ndirect clean\n" in text and "\nabsent opt.h\n" in text
    assert _run([coopt.cc, *args], d, coopt.env).returncode == 0
    assert coopt.stats() == {"hit": 1, "hit_direct": 1}
    (d / "opt.h").write_text("#define OPT 7\n")
    plain = _run(["clang", "-O2", "-c", "g.c", "-o", "plain.o"], d)
    wrapped = _run([coopt.cc, *args], d, coopt.env)
    assert (wrapped.returncode, wrapped.stderr) == (plain.returncode, plain.stderr) == (0, b"")
    assert (d / "g.o").read_bytes() == (d / "plain.o").read_bytes()
    assert coopt.stats().get("hit") == 1 and coopt.stats().get("hit_direct") == 1  # the second was not a hit


def test_has_include_it_cannot_read_keeps_the_compiler_run(coopt: Coopt, tmp_path: Path) -> None:
    require("clang")
    d = tmp_path / "h"
    d.mkdir()
    src = '#define HAS(x) __has_include(x)\n#if HAS("opt.h")\n#define OPT 2\n#else\n#define OPT 1\n#endif\n' \
          "int g(void) { return OPT; }\n"
    (d / "g.c").write_text(src)
    (d / "v.c").write_text(src.replace("return OPT", "return OPT + 0"))
    args = ["-O2", "-c", "g.c", "-o", "g.o"]
    _put(coopt, d, args)
    assert "\ndirect check has_include_form\n" in _manifest_text(coopt)
    assert _run([coopt.cc, *args], d, coopt.env).returncode == 0
    assert coopt.stats() == {"hit": 1}


def test_forced_include_keeps_the_compiler_run(coopt: Coopt, tmp_path: Path) -> None:
    require("clang")
    d = tmp_path / "i"
    d.mkdir()
    (d / "pre.h").write_text("#define P 2\n")
    (d / "g.c").write_text("int g(void) { return P; }\n")
    (d / "v.c").write_text("int g(void) { return P + 0; }\n")
    args = ["-O2", "-include", "pre.h", "-c", "g.c", "-o", "g.o"]
    _put(coopt, d, args)
    assert "\ndirect check include\n" in _manifest_text(coopt)
    assert _run([coopt.cc, *args], d, coopt.env).returncode == 0
    assert coopt.stats() == {"hit": 1}


@pytest.mark.parametrize(
    "code, uses",
    [
        (b"#ifdef __has_include\n#if __has_include(<a.h>)\n#endif\n#endif\n", [("a.h", True, False)]),
        (b'#if defined(__has_include) && __has_include_next ( "b/c.h" )\n#endif\n', [("b/c.h", False, True)]),
        (b"/* __has_include argument (GCC PR 80005) */\n// __has_include(x)\n", []),
        (b'const char *s = "__has_include";\n', None),  # conservative: not worth telling apart
        (b"#define H __has_include\n", None),
        (b"#if __has_include(HDR)\n#endif\n", None),
        (b"#if __has_embed(<x.bin>)\n#endif\n", None),
        (b"#embed <x.bin>\n", None),
    ],
)
def test_has_include_scan(code: bytes, uses: list | None) -> None:
    from coopt.cache.header_search import NeedsCheck, has_include_uses

    if uses is None:
        with pytest.raises(NeedsCheck):
            has_include_uses(code)
    else:
        assert has_include_uses(code) == uses


def test_result_marked_to_keep_the_run_is_still_a_hit(coopt: Coopt, proj: Path) -> None:
    # What the benchmark does to time a hit that keeps the -fsyntax-only run: the recorded checks are then unused.
    (path,) = list((coopt.cache_dir / "manifests").glob("*/*"))
    path.write_text(path.read_text().replace("\ndirect clean\n", "\ndirect check bench\n"))
    proc = _run([coopt.cc, *ARGS], proj, coopt.env)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"", b"")
    assert coopt.stats() == {"hit": 1}


@pytest.mark.parametrize(
    "args, why",
    [
        (["-O2", "-Iinc", "-DFOO=1", "-Wall"], None),
        (["-O2", "-include", "pre.h"], "include"),
        (["-imacros", "m.h"], "imacros"),
        (["-F/Library/Frameworks"], "framework"),
        (["-fmodules-cache-path=x"], "fmodules"),
        (["-ivfsoverlay", "o.yaml"], "ivfsoverlay"),
        (["-fms-compatibility"], "fms_compatibility"),
    ],
)
def test_arguments_whose_header_search_is_not_modelled(args: list[str], why: str | None) -> None:
    from coopt.cache.header_search import _unmodelled

    assert _unmodelled(args) == why


def test_search_list_with_a_framework_or_header_map_is_not_modelled() -> None:
    from coopt.cache.header_search import NeedsCheck, parse_search_list

    ok = '#include "..." search starts here:\n q\n#include <...> search starts here:\n a\n /usr/include\n' \
         'End of search list.\nignoring nonexistent directory "gone"\n'
    sl = parse_search_list(ok)
    assert (sl.quote, sl.angled, sl.nonexistent) == (["q"], ["a", "/usr/include"], ["gone"])
    with pytest.raises(NeedsCheck):
        parse_search_list(ok.replace(" a\n", " /F (framework directory)\n"))


def test_a_format_2_manifest_is_still_served_with_the_compiler_run(coopt: Coopt, proj: Path) -> None:
    (path,) = list((coopt.cache_dir / "manifests").glob("*/*"))
    lines = path.read_text().splitlines()
    old = ["coopt-manifest 2"] + [line for line in lines[1:] if line.startswith(("result ", "dep "))]
    path.write_text("\n".join(old) + "\n")
    proc = _run([coopt.cc, *ARGS], proj, coopt.env)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"", b"")
    assert coopt.stats() == {"hit": 1}
