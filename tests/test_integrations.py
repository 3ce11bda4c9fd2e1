"""The build-system integrations, each driving a small real project under examples/ with the real tool:
CMake (toolchain file under the Makefile and Ninja generators, and the launcher alone), SCons
(site_tools/coopt.py) and make (coopt.mk). Each build must journal every TU and produce the same objects as a
plain clang build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, Coopt, require

EXAMPLES = ROOT / "examples"
DATA = ROOT / "src" / "coopt" / "data"


def copy_example(name: str, dest: Path) -> Path:
    """A private copy of examples/<name>: builds never write into the checkout."""
    return Path(shutil.copytree(EXAMPLES / name, dest / name))


def objects(root: Path) -> dict[str, bytes]:
    """Every object file under `root`, by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.o"))}


def journaled_sources(coopt: Coopt) -> list[str]:
    """Absolute paths of the journaled compiles' sources, in journal order."""
    out = []
    for rec in coopt.journal():
        if rec["type"] == "compile":
            src = rec["source"]
            out.append(os.path.normpath(src if os.path.isabs(src) else os.path.join(rec["cwd"], src)))
    return out


def linked_programs(coopt: Coopt) -> list[str]:
    """Absolute paths of the journaled links' outputs, in journal order."""
    return [os.path.normpath(os.path.join(r["cwd"], r["output"])) for r in coopt.journal() if r["type"] == "link"]


def real_clang_alias(tmp_path: Path) -> Path:
    """Another path to the real clang: a COOPT_COMPILER the journal tells apart from the clang on PATH."""
    clang = shutil.which("clang")
    assert clang
    d = tmp_path / "real-cc"
    d.mkdir()
    (d / "clang").symlink_to(os.path.realpath(clang))
    return d / "clang"


# --- the `coopt` commands that print where the files are ----------------------------------------------------


@pytest.mark.parametrize(
    ("command", "name", "link"),
    [
        ("cmake-toolchain", "coopt-toolchain.cmake", "cmake/coopt-toolchain.cmake"),
        ("scons-tool", "site_tools", "scons/site_tools"),
        ("make-include", "coopt.mk", "make/coopt.mk"),
    ],
)
def test_commands_print_the_one_installed_copy(coopt: Coopt, command: str, name: str, link: str) -> None:
    printed = Path(coopt.coopt(command).stdout.strip())
    assert printed.name == name and printed.exists()
    assert printed.resolve() == (DATA / name).resolve()
    # integration/ in a checkout links to the package data rather than keeping a second copy.
    if printed.is_dir():
        assert (ROOT / "integration" / link / "coopt.py").samefile(printed / "coopt.py")
    else:
        assert (ROOT / "integration" / link).samefile(printed)


def test_commands_reject_arguments_in_one_line(coopt: Coopt) -> None:
    proc = coopt.coopt("cmake-toolchain", "extra", check=False)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "no arguments" in proc.stderr


# --- CMake --------------------------------------------------------------------------------------------------

CMAKE_SOURCES = ("src/main.c", "src/greet.c", "src/squares.c")


def cmake_build(env: dict, src: Path, build: Path, generator: str, *defines: str) -> None:
    for cmd in (
        ["cmake", "-S", str(src), "-B", str(build), "-G", generator, "-DCMAKE_BUILD_TYPE=Release", *defines],
        ["cmake", "--build", str(build)],
        ["ctest", "--output-on-failure"],
    ):
        cwd = build if cmd[0] == "ctest" else src
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"


@pytest.fixture(scope="module")
def plain_cmake(tmp_path_factory: pytest.TempPathFactory):
    """Factory: the example's objects built by plain CMake with clang, once per generator."""
    built: dict[str, dict[str, bytes]] = {}
    src = copy_example("cmake-hello", tmp_path_factory.mktemp("plain-cmake"))

    def get(generator: str) -> dict[str, bytes]:
        if generator not in built:
            build = src.parent / ("build-" + generator.replace(" ", "-"))
            clang = str(shutil.which("clang"))
            cmake_build(dict(os.environ), src, build, generator, "-DCMAKE_C_COMPILER=" + clang)
            built[generator] = objects(build / "CMakeFiles")
            assert len(built[generator]) == len(CMAKE_SOURCES)
        return built[generator]

    return get


@pytest.mark.slow
@pytest.mark.parametrize(
    ("generator", "form"),
    [
        ("Unix Makefiles", "toolchain"),
        ("Ninja", "toolchain"),
        ("Unix Makefiles", "toolchain+COOPT_COMPILER"),
        ("Ninja", "launcher"),
    ],
)
def test_cmake_project_builds_through_coopt(
    coopt: Coopt, tmp_path: Path, plain_cmake, generator: str, form: str
) -> None:
    require("cmake", "ctest", "clang", *(["ninja"] if generator == "Ninja" else []))
    src = copy_example("cmake-hello", tmp_path)
    build = tmp_path / "build"
    env = dict(coopt.env)
    expected_compiler = shutil.which("clang", path=env["PATH"])
    if form == "launcher":
        defines = [
            "-DCMAKE_C_COMPILER=" + str(expected_compiler),
            "-DCMAKE_C_COMPILER_LAUNCHER=coopt-cc",
            "-DCMAKE_C_LINKER_LAUNCHER=coopt-cc",
        ]
    else:
        toolchain = coopt.coopt("cmake-toolchain").stdout.strip()
        defines = ["-DCMAKE_TOOLCHAIN_FILE=" + toolchain]
        if form == "toolchain+COOPT_COMPILER":
            env["COOPT_COMPILER"] = str(real_clang_alias(tmp_path))
            expected_compiler = env["COOPT_COMPILER"]
    cmake_build(env, src, build, generator, *defines)

    # Every TU of the project went through coopt-cc, and nothing else (CMake's probe compiles bypass it).
    assert sorted(journaled_sources(coopt)) == sorted(str(src / s) for s in CMAKE_SOURCES)
    assert {r["compiler"] for r in coopt.journal()} == {expected_compiler}
    # The link went through coopt-cc too: it tells which objects make up the program.
    assert linked_programs(coopt) == [str(build / "hello")]
    assert coopt.stats().get("miss") == len(CMAKE_SOURCES)
    assert objects(build / "CMakeFiles") == plain_cmake(generator)
    out = subprocess.run([str(build / "hello"), "12"], capture_output=True, text=True, check=True).stdout
    assert out == f"hello from cmake-hello\nsum of squares 1..12 = {sum(i * i for i in range(1, 13))}\n"


def test_cmake_toolchain_refuses_a_missing_compiler(coopt: Coopt, tmp_path: Path) -> None:
    require("cmake")
    src = copy_example("cmake-hello", tmp_path)
    env = dict(coopt.env, COOPT_COMPILER="no-such-compiler-xyz")
    toolchain = coopt.coopt("cmake-toolchain").stdout.strip()
    proc = subprocess.run(
        ["cmake", "-S", str(src), "-B", str(tmp_path / "build"), "-DCMAKE_TOOLCHAIN_FILE=" + toolchain],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "COOPT_COMPILER 'no-such-compiler-xyz' not found" in proc.stderr
    assert coopt.journal() == []


# --- SCons --------------------------------------------------------------------------------------------------

SCONS_SOURCES = ("main.c", "greet.c", "count.c")


def scons_command() -> list[str]:
    """SCons from PATH, else the one installed with the test dependencies next to this Python."""
    found = shutil.which("scons")
    if found:
        return [found]
    try:
        import SCons  # noqa: F401
    except ImportError:
        pytest.skip("missing tools: scons (run `make test`, which installs it)")
    return [sys.executable, "-m", "SCons"]


def vowels(text: str) -> int:
    """What examples/scons-hello's count_vowels computes."""
    return sum(c in "aeiou" for c in text)


def program_output(path: Path) -> str:
    return subprocess.run([str(path)], capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
def test_scons_project_builds_through_coopt_and_serves_a_variant(coopt: Coopt, tmp_path: Path) -> None:
    require("clang")
    scons = scons_command()
    proj = copy_example("scons-hello", tmp_path)
    coopt.run([*scons, "-Q"], cwd=proj)
    plain_objects = objects(proj)
    assert len(plain_objects) == len(SCONS_SOURCES)
    original = "hello from scons-hello"
    assert program_output(proj / "hello") == f"{original}\n{vowels(original)} vowels\n"
    assert coopt.journal() == []  # SCons ignores the CC in the environment: nothing went through coopt-cc

    tools = coopt.coopt("scons-tool").stdout.strip()
    coopt.run([*scons, "-Q", "COOPT_TOOLS=" + tools], cwd=proj)
    # The tool changed the compile commands: SCons rebuilt every TU, through coopt-cc, to the same objects.
    assert sorted(journaled_sources(coopt)) == sorted(str(proj / s) for s in SCONS_SOURCES)
    assert linked_programs(coopt) == [str(proj / "hello")]
    assert {os.path.basename(r["compiler"]) for r in coopt.journal()} == {"clang"}
    assert objects(proj) == plain_objects
    assert coopt.stats().get("miss") == len(SCONS_SOURCES)

    # A variant stored from the user's shell is served to the next SCons build of that TU.
    greeting = "hello from a coopt variant"
    variant = tmp_path / "variant" / "greet.c"
    variant.parent.mkdir()
    variant.write_text(f'const char *greeting(void) {{ return "{greeting}"; }}\n')
    coopt.coopt("cache", "put", "--artifact", str(variant), "--for-object", "greet.o", "--unverified", cwd=proj)
    (proj / "greet.o").unlink()  # SCons rebuilds only what changed; the source did not
    coopt.run([*scons, "-Q", "COOPT_TOOLS=" + tools], cwd=proj)
    assert coopt.stats().get("hit") == 1
    assert (proj / "greet.o").read_bytes() != plain_objects["greet.o"]
    assert program_output(proj / "hello") == f"{greeting}\n{vowels(greeting)} vowels\n"


def test_scons_tool_uses_coopt_compiler_and_passes_the_environment(coopt: Coopt, tmp_path: Path) -> None:
    require("clang")
    scons = scons_command()
    real = real_clang_alias(tmp_path)
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "one.c").write_text("int one(void) { return 1; }\n")
    # Print what the build's commands will see, then build one object.
    tools = coopt.coopt("scons-tool").stdout.strip()
    (proj / "SConstruct").write_text(
        "env = Environment(CC='gcc')\n"
        f"env.Tool('coopt', toolpath=[{tools!r}])\n"
        "print('CC=' + env['CC'])\n"
        "for name in ('COOPT_COMPILER', 'COOPT_CACHE_DIR', 'LC_ALL'):\n"
        "    print(name + '=' + str(env['ENV'].get(name)))\n"
        "env.Object('one.c')\n"
    )
    env = dict(coopt.env, COOPT_COMPILER=str(real))
    out = subprocess.run([*scons, "-Q"], cwd=proj, env=env, capture_output=True, text=True, check=True).stdout
    seen = dict(line.split("=", 1) for line in out.splitlines() if line.partition("=")[0].isidentifier())
    assert seen["CC"] == coopt.cc
    assert seen["COOPT_COMPILER"] == str(real)  # COOPT_COMPILER wins over the CC set before the tool
    assert seen["COOPT_CACHE_DIR"] == str(coopt.cache_dir)
    assert seen["LC_ALL"] == "C"
    assert [r["compiler"] for r in coopt.journal() if r["type"] == "compile"] == [str(real)]


def test_scons_tool_stops_with_one_line_without_coopt_cc(coopt: Coopt, tmp_path: Path) -> None:
    scons = scons_command()
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "one.c").write_text("int one(void) { return 1; }\n")
    tools = coopt.coopt("scons-tool").stdout.strip()
    (proj / "SConstruct").write_text(
        f"env = Environment()\nenv.Tool('coopt', toolpath=[{tools!r}])\nenv.Object('one.c')\n"
    )
    env = dict(coopt.env, COOPT_CC=str(tmp_path / "missing" / "coopt-cc"))
    proc = subprocess.run([*scons, "-Q"], cwd=proj, env=env, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "coopt-cc not found" in proc.stderr and "Traceback" not in proc.stderr
    assert not (proj / "one.o").exists()


# --- make ---------------------------------------------------------------------------------------------------

MAKE_SOURCES = ("main.c", "greet.c", "fib.c")


@pytest.mark.slow
def test_make_include_builds_through_coopt(coopt: Coopt, tmp_path: Path) -> None:
    require("make", "clang")
    proj = copy_example("make-hello", tmp_path)
    expected = "hello from make-hello\nfib(40) = 102334155\n"

    coopt.run(["make", "COOPT_MK="], cwd=proj)  # plain clang
    plain_objects = objects(proj)
    assert len(plain_objects) == len(MAKE_SOURCES)
    assert program_output(proj / "hello") == expected
    assert coopt.journal() == []
    coopt.run(["make", "clean"], cwd=proj)

    # The Makefile sets CC = clang and includes coopt.mk: clang becomes the real compiler behind coopt-cc.
    coopt.run(["make"], cwd=proj)
    assert sorted(journaled_sources(coopt)) == sorted(str(proj / s) for s in MAKE_SOURCES)
    records = coopt.journal()
    assert {r["compiler"] for r in records} == {shutil.which("clang", path=coopt.env["PATH"])}
    assert linked_programs(coopt) == [str(proj / "hello")]
    assert objects(proj) == plain_objects
    assert program_output(proj / "hello") == expected

    # COOPT_COMPILER wins over the Makefile's CC. Set as a Makefile variable (--eval), it reaches the compiles
    # only because coopt.mk exports it; the environment and the command line would export it by themselves.
    coopt.run(["make", "clean"], cwd=proj)
    real = real_clang_alias(tmp_path)
    coopt.run(["make", f"--eval=COOPT_COMPILER = {real}"], cwd=proj)
    later = coopt.journal()[len(records) :]
    assert len(later) == len(MAKE_SOURCES) + 1
    assert {r["compiler"] for r in later} == {str(real)}
    assert objects(proj) == plain_objects
