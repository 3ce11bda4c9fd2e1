"""`coopt profile` on small programs of our own, built with coopt-cc and recorded by the real perf.

1. Static functions that share a name in two TUs go to the right TU: through DWARF with -g, through the binary's
   STT_FILE symbols without it, and stay outside as "ambiguous" when the binary has neither.
2. Call graphs give self vs children; `--perf-data` and `--perf-script` (perf's default text) read recordings made
   by perf itself and agree with each other.
3. `coopt profile merge` is the weighted mean of its inputs, and weights change the ranking.
4. One-line errors: perf missing, not permitted, unsupported event, workload missing or failing, no sample in
   journaled code (another build, empty journal, stripped binary), unreadable or foreign profiles.

The real projects (Lua, bzip2, zlib as a shared library) are in test_profile_real.py; time in libc called from
journaled code (strlen, memcpy, qsort) and the default call chains that credit it, in test_profile_libraries.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT, Coopt, require

TWIN = """__attribute__((noinline)) static long work(long n) {
    long s = 0;
    for (long i = 0; i < n; i++) s += (i * i) %% 7 + (s >> 9);
    return s;
}
%s
"""
# main.c runs a.c's work three times as long as b.c's, and spends some time in a function of its own, so every
# variant of the binary has journaled samples somewhere. `^ 1` keeps the entries on the stack (no tail call).
TWINS = {
    "a.c": TWIN % "long a_entry(long n) { return work(3 * n) ^ 1; }",
    "b.c": TWIN % "long b_entry(long n) { return work(n) ^ 1; }",
    "main.c": """#include <stdio.h>
#include <stdlib.h>
long a_entry(long n);
long b_entry(long n);
__attribute__((noinline)) long mix(long n) {
    unsigned long h = 1469598103934665603ul;
    for (long i = 0; i < n; i++) h = (h ^ (unsigned long)i) * 1099511628211ul;
    return (long)(h >> 1);
}
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 60000000;
    printf("%ld %ld %ld\\n", a_entry(n), b_entry(n), mix(n));
    return 0;
}
""",
}

# Two workloads of one program: "add" is hot in add.c, "mul" in mul.c.
MODES = {
    "add.c": "__attribute__((noinline)) long spin_add(long n) { long s = 0; "
    "for (long i = 0; i < n; i++) s += i ^ (s >> 3); return s; }\n",
    "mul.c": "__attribute__((noinline)) long spin_mul(long n) { long s = 1; "
    "for (long i = 0; i < n; i++) s = s * 31 + i; return s; }\n",
    "modes.c": """#include <stdio.h>
#include <stdlib.h>
#include <string.h>
long spin_add(long n);
long spin_mul(long n);
int main(int argc, char **argv) {
    long n = argc > 2 ? atol(argv[2]) : 150000000;
    if (argc > 1 && strcmp(argv[1], "fail") == 0) {
        fprintf(stderr, "modes: warming up\\nmodes: cannot open input.dat\\n");
        return 3;
    }
    int add = argc > 1 && strcmp(argv[1], "add") == 0;
    printf("%ld\\n", add ? spin_add(n) : spin_mul(n));
    return 0;
}
""",
}


@dataclass
class Program:
    dir: Path
    exe: Path
    objects: dict[str, Path]  # source name -> object


def build(coopt: Coopt, where: Path, sources: dict[str, str], flags: list[str], name: str = "prog") -> Program:
    """Compile each source with coopt-cc (journaled) and link them into `name`."""
    where.mkdir(parents=True, exist_ok=True)
    objects = {}
    for src, text in sources.items():
        (where / src).write_text(text)
        obj = where / (Path(src).stem + ".o")
        coopt.run([coopt.cc, *flags, "-c", src, "-o", obj.name], cwd=where)
        objects[src] = obj
    exe = where / name
    coopt.run([coopt.cc, *[o.name for o in objects.values()], "-o", name], cwd=where)
    return Program(where, exe, objects)


def profile(coopt: Coopt, cwd: Path, *args: str, out: str = "profile.json") -> dict:
    """Run `coopt profile -o out ARGS` and return the profile file it wrote."""
    coopt.coopt("profile", "-o", out, *args, cwd=cwd)
    return json.loads((cwd / out).read_text())


def functions(prof: dict, name: str) -> list[dict]:
    return [f for f in prof["functions"] if f["name"] == name]


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The error of a failed `coopt profile`: exit code 1 or 2, exactly one line on stderr, no traceback."""
    assert proc.returncode in (1, 2), (proc.returncode, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("coopt profile: error:")]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def nm_size(obj: Path, name: str) -> int:
    out = subprocess.run(["nm", "-S", "--defined-only", str(obj)], capture_output=True, text=True, check=True).stdout
    sizes = [int(ln.split()[1], 16) for ln in out.splitlines() if ln.split()[-1] == name and len(ln.split()) == 4]
    assert len(sizes) == 1, out
    return sizes[0]


def require_perf() -> None:
    require("perf", "clang", "nm")


# --- 1. static functions with the same name -------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags,how",
    [(["-O2", "-g"], "dwarf"), (["-O2"], "file-symbol")],
    ids=["with-debug-info", "without-debug-info"],
)
def test_same_named_statics_go_to_their_own_tu(coopt: Coopt, tmp_path: Path, flags: list[str], how: str) -> None:
    require_perf()
    prog = build(coopt, tmp_path / "twins", TWINS, flags)
    # Same code, same size: neither the name nor the size can tell the two `work`s apart.
    assert nm_size(prog.objects["a.c"], "work") == nm_size(prog.objects["b.c"], "work")

    prof = profile(coopt, prog.dir, "--", str(prog.exe))
    works = {Path(f["source"]).name: f for f in functions(prof, "work")}
    assert set(works) == {"a.c", "b.c"}, prof["functions"]
    assert {f["how"] for f in works.values()} == {how}
    assert works["a.c"]["object"] == str(prog.objects["a.c"])
    # a.c's work does three times the iterations of b.c's.
    assert works["a.c"]["share"] > 1.5 * works["b.c"]["share"] > 0
    assert not [o for o in prof["outside"] if o["reason"] == "ambiguous"]


def test_same_named_statics_without_any_source_information_stay_ambiguous(coopt: Coopt, tmp_path: Path) -> None:
    """No DWARF and no STT_FILE symbols (stripped of them): the samples are counted as ambiguous, not guessed."""
    require_perf()
    require("objcopy")
    prog = build(coopt, tmp_path / "twins", TWINS, ["-O2"])
    subprocess.run(
        ["objcopy", "--strip-symbol=a.c", "--strip-symbol=b.c", "--strip-debug", str(prog.exe)], check=True
    )
    prof = profile(coopt, prog.dir, "--", str(prog.exe))
    assert functions(prof, "work") == []
    ambiguous = [o for o in prof["outside"] if o["reason"] == "ambiguous"]
    assert len(ambiguous) == 1 and ambiguous[0]["dso"] == str(prog.exe)
    assert ambiguous[0]["symbols"][0]["name"] == "work"
    assert ambiguous[0]["share"] > 0.3
    assert functions(prof, "mix"), "main.c's own function is still attributed"


# --- 2. call graphs, perf.data and perf script input ----------------------------------------------------------


def test_call_graph_gives_self_and_children(coopt: Coopt, tmp_path: Path) -> None:
    require_perf()
    prog = build(coopt, tmp_path / "twins", TWINS, ["-O2", "-g"])
    prof = profile(coopt, prog.dir, "--call-graph", "--", str(prog.exe))
    assert prof["call_graph"] == "dwarf"
    (main,) = functions(prof, "main")
    (b_entry,) = functions(prof, "b_entry")
    work_b = next(f for f in functions(prof, "work") if f["source"].endswith("b.c"))
    # main calls everything; b_entry spends its time in b.c's work and almost none in itself.
    assert main["children_share"] > 0.8
    assert b_entry["children_share"] > 0.5 * work_b["share"] > 0
    assert b_entry["children_share"] > b_entry["share"]
    by_source = {Path(t["source"]).name: t for t in prof["tus"]}
    assert by_source["main.c"]["children_share"] > by_source["a.c"]["children_share"]


# upcase.c calls libc's strlen in its loop condition (the stores may alias `src`, so it is not hoisted): most of
# the time is in libc, outside journaled code, but it is upcase's to remove.
LIBCALLS = {
    "upcase.c": """#include <string.h>
void upcase(char *dst, const char *src) {
    for (size_t i = 0; i < strlen(src); i++) dst[i] = (src[i] >= 'a' && src[i] <= 'z') ? src[i] - 32 : src[i];
}
""",
    "main.c": """#include <stdio.h>
#include <stdlib.h>
void upcase(char *dst, const char *src);
int main(void) {
    size_t n = 60000;
    char *s = malloc(n + 1), *d = malloc(n + 1);
    for (size_t i = 0; i < n; i++) s[i] = "hello world "[i % 12];
    s[n] = 0;
    unsigned long sum = 0;
    for (int r = 0; r < 6; r++) {
        upcase(d, s);
        for (int k = 0; k < 100; k++)  /* main.c's own share of the time, so every mode has journaled samples */
            for (size_t i = 0; i < n; i++) sum = sum * 31 + (unsigned char)d[i] + k;
    }
    printf("%lu\\n", sum);
    return 0;
}
""",
}


@pytest.mark.parametrize("mode", ["dwarf", "fp"])
def test_library_time_is_credited_to_the_journaled_caller(coopt: Coopt, tmp_path: Path, mode: str) -> None:
    """With dwarf chains, libc's strlen samples count as `library_share` of upcase (and upcase.c), which then
    outweighs main.c and ranks first for the optimizer; frame-pointer chains cannot name a frameless library
    leaf's caller, so they credit nothing (`library_share` null) rather than guess."""
    require_perf()
    prog = build(coopt, tmp_path / "lib", LIBCALLS, ["-O2", "-fno-omit-frame-pointer"])
    prof = profile(coopt, prog.dir, "--call-graph", mode, "--", str(prog.exe))
    tus = {Path(t["source"]).name: t for t in prof["tus"]}
    libc = sum(o["share"] for o in prof["outside"] if o["reason"] == "not-journaled")
    if mode == "fp":
        assert all(t["library_share"] is None for t in prof["tus"])
        return
    (up,) = functions(prof, "upcase")
    # Nearly all of the time is strlen's; upcase's own loop may get no sample at all.
    assert up["library_share"] > max(up["share"], 0.5)
    assert tus["upcase.c"]["library_share"] == pytest.approx(up["library_share"], abs=1e-6)
    assert tus["upcase.c"]["library_share"] <= libc + 1e-6
    assert tus["upcase.c"]["library_share"] > 10 * (tus["main.c"]["library_share"] or 0.0)
    # What the optimizer ranks by: upcase.c, though main.c has comparable or more self samples.
    from coopt.profile.model import load

    loaded = load(str(prog.dir / "profile.json"))
    assert max(loaded.tus, key=lambda t: t.weight).source.endswith("upcase.c")
    shown = coopt.coopt("profile", "show", "profile.json", cwd=prog.dir).stdout
    assert "lib" in shown.splitlines()[3]


def test_perf_data_and_perf_script_text_from_elsewhere_agree(coopt: Coopt, tmp_path: Path) -> None:
    """A recording made with perf directly, read as perf.data and as `perf script` text in perf's default
    format (which prints runtime addresses and no mmap events)."""
    require_perf()
    prog = build(coopt, tmp_path / "twins", TWINS, ["-O2", "-g"])
    data = prog.dir / "perf.data"
    coopt.run(["perf", "record", "-e", "cpu-clock", "-o", str(data), str(prog.exe)], cwd=prog.dir)
    text = coopt.run(["perf", "script", "-i", str(data)], cwd=prog.dir).stdout
    (prog.dir / "perf.txt").write_text(text)

    from_data = profile(coopt, prog.dir, "--perf-data", str(data), out="data.json")
    from_text = profile(coopt, prog.dir, "--perf-script", "perf.txt", out="text.json")
    assert from_data["workload"]["kind"] == "perf-data" and from_text["workload"]["kind"] == "perf-script"
    assert from_data["samples"] == from_text["samples"] > 0

    def counts(prof: dict) -> dict:
        return {(f["source"], f["name"]): f["samples"] for f in prof["functions"]}

    assert counts(from_data) == counts(from_text)
    assert len(functions(from_text, "work")) == 2

    # With call chains, in perf's default layout too (one tab-indented frame per line).
    graph = prog.dir / "graph.data"
    coopt.run(["perf", "record", "-e", "cpu-clock", "-F", "1000", "--call-graph", "dwarf", "-o", str(graph),
               str(prog.exe)], cwd=prog.dir)
    (prog.dir / "graph.txt").write_text(coopt.run(["perf", "script", "-i", str(graph)], cwd=prog.dir).stdout)
    graph_data = profile(coopt, prog.dir, "--perf-data", str(graph), out="graph-data.json")
    graph_text = profile(coopt, prog.dir, "--perf-script", "graph.txt", out="graph-text.json")
    assert graph_text["call_graph"] == "recorded"
    assert counts(graph_data) == counts(graph_text)
    (main,) = functions(graph_text, "main")
    assert main["children_share"] > 0.8

    # The binary is not here (the text came from another machine): names decide, and same-named statics cannot.
    prog.exe.rename(prog.dir / "elsewhere")
    by_name = profile(coopt, prog.dir, "--perf-script", "perf.txt", out="by-name.json")
    assert {f["how"] for f in by_name["functions"]} == {"name"}
    assert functions(by_name, "mix") and not functions(by_name, "work")
    assert [o["symbols"][0]["name"] for o in by_name["outside"] if o["reason"] == "ambiguous"] == ["work"]


# --- 3. merge -------------------------------------------------------------------------------------------------


def test_merge_is_the_weighted_mean_and_weights_change_the_ranking(coopt: Coopt, tmp_path: Path) -> None:
    require_perf()
    prog = build(coopt, tmp_path / "modes", MODES, ["-O2"], name="modes")
    add = profile(coopt, prog.dir, "--", str(prog.exe), "add", out="add.json")
    mul = profile(coopt, prog.dir, "--", str(prog.exe), "mul", out="mul.json")
    assert Path(add["tus"][0]["source"]).name == "add.c"
    assert Path(mul["tus"][0]["source"]).name == "mul.c"

    def shares(prof: dict) -> dict[str, float]:
        return {t["object"]: t["share"] for t in prof["tus"]}

    for weights, top in (("3,1", "add.c"), ("1,3", "mul.c")):
        out = "merged-%s.json" % weights.replace(",", "-")
        coopt.coopt("profile", "merge", "add.json", "mul.json", "--weights", weights, "-o", out, cwd=prog.dir)
        merged = json.loads((prog.dir / out).read_text())
        wa, wm = (float(w) for w in weights.split(","))
        for obj in set(shares(add)) | set(shares(mul)):
            expected = (wa * shares(add).get(obj, 0.0) + wm * shares(mul).get(obj, 0.0)) / (wa + wm)
            assert shares(merged)[obj] == pytest.approx(expected, abs=2e-6)
        assert Path(merged["tus"][0]["source"]).name == top
        assert merged["samples"] == add["samples"] + mul["samples"]
        assert [(m["file"], m["weight"]) for m in merged["merged_from"]] == [("add.json", wa), ("mul.json", wm)]
        assert merged["workload"]["kind"] == "merge" and merged["version"] == add["version"]

    shown = coopt.coopt("profile", "show", "merged-3-1.json", cwd=prog.dir).stdout
    assert "merge of add.json (x3), mul.json (x1)" in shown
    assert shown.index("add.c") < shown.index("mul.c")

    bad = coopt.coopt("profile", "merge", "add.json", "mul.json", "--weights", "1", "-o", "x.json",
                      cwd=prog.dir, check=False)
    assert "1 weights for 2 profiles" in one_line_error(bad)


# --- 4. errors ------------------------------------------------------------------------------------------------


@pytest.fixture
def modes(coopt: Coopt, tmp_path: Path) -> Program:
    require_perf()
    return build(coopt, tmp_path / "modes", MODES, ["-O2"], name="modes")


def test_error_perf_missing(coopt: Coopt, modes: Program) -> None:
    env = dict(coopt.env, PATH=str(coopt.bin))  # coopt itself, and nothing else: no perf
    proc = subprocess.run([str(coopt.bin / "coopt"), "profile", "--", str(modes.exe), "add"], cwd=modes.dir,
                          env=env, capture_output=True, text=True)
    assert "apt-get install linux-perf" in one_line_error(proc)


def _python_for_nobody(prefix: list[str]) -> str | None:
    """A Python of this version that `nobody` may run (the venv's may live in root's private home)."""
    candidates = [sys.executable, os.path.realpath(sys.executable), "/usr/bin/python3.%d" % sys.version_info[1]]
    for py in candidates:
        if os.path.exists(py):
            # Through sh, as the launcher runs it: sh's exec checks what a direct exec by setpriv does not.
            ok = subprocess.run([*prefix, "sh", "-c", 'exec "$0" -c pass', py], capture_output=True)
            if ok.returncode == 0:
                return py
    return None


def _carry_for_nobody(lib: Path) -> None:
    """Copy this working tree's coopt and the distributions it imports into `lib`, readable by everyone."""
    import importlib.metadata

    shutil.copytree(ROOT / "src" / "coopt", lib / "coopt", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("xxhash", "filelock"):
        dist = importlib.metadata.distribution(name)
        for f in dist.files or []:
            src = Path(str(dist.locate_file(f)))
            if ".." in f.parts or not src.is_file() or f.parts[0].endswith((".dist-info", "__pycache__")):
                continue
            (lib / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, lib / f)
    for d in [lib, *(p for p in lib.rglob("*") if p.is_dir())]:
        d.chmod(0o755)


def test_error_perf_not_permitted(coopt: Coopt, modes: Program) -> None:
    """Kernel samples need perf_event_paranoid <= 1 without privileges: root runs the test as `nobody`."""
    from conftest import CLI

    paranoid = int(Path("/proc/sys/kernel/perf_event_paranoid").read_text())
    if paranoid < 2:
        pytest.skip("kernel.perf_event_paranoid=%d lets everyone record kernel samples" % paranoid)
    prefix: list[str] = []
    if os.geteuid() == 0:
        require("setpriv")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    python = _python_for_nobody(prefix)
    if python is None:
        pytest.skip("no Python %d.%d that nobody may run" % sys.version_info[:2])
    # Everything `nobody` touches must be readable by it: pytest's tmp dirs are private to root, and so may be the
    # clone and its virtualenv (a clone in root's home), so the test carries coopt and what it imports.
    shared = Path(tempfile.mkdtemp(prefix="coopt-profile-nobody-"))
    try:
        shared.chmod(0o755)
        lib = shared / "lib"
        _carry_for_nobody(lib)
        launcher = shared / "coopt"
        launcher.write_text(CLI.format(python=python, src=str(lib), purelib=str(lib), platlib=str(lib)))
        launcher.chmod(0o755)
        shutil.copy(modes.exe, shared / "modes")
        env = dict(coopt.env, COOPT_CACHE_DIR=str(shared / "cache"), HOME=str(shared))
        proc = subprocess.run(
            [*prefix, str(launcher), "profile", "--event", "cpu-clock:k", "-o", str(shared / "p.json"),
             "--", str(shared / "modes"), "add", "1000"],
            cwd=shared, env=env, capture_output=True, text=True,
        )
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    line = one_line_error(proc)
    assert "not permitted" in line and "perf_event_paranoid=%d" % paranoid in line
    assert "sysctl -w kernel.perf_event_paranoid=1" in line


def test_error_unsupported_event(coopt: Coopt, modes: Program) -> None:
    proc = coopt.coopt("profile", "--event", "no-such-event", "--", str(modes.exe), "add", cwd=modes.dir,
                       check=False)
    line = one_line_error(proc)
    assert "cannot record event 'no-such-event'" in line and "--event cpu-clock" in line


def test_error_workload_fails_with_exit_code_and_stderr_tail(coopt: Coopt, modes: Program) -> None:
    proc = coopt.coopt("profile", "--", str(modes.exe), "fail", cwd=modes.dir, check=False)
    line = one_line_error(proc)
    assert "exited with code 3" in line
    assert "modes: cannot open input.dat" in line and "--allow-failure" in line
    assert not (modes.dir / "profile.json").exists()
    # The workload's own stderr reached the user as it ran.
    assert "modes: warming up" in proc.stderr

    missing = coopt.coopt("profile", "--", "no-such-workload-xyz", cwd=modes.dir, check=False)
    assert "'no-such-workload-xyz' not found on PATH" in one_line_error(missing)


def test_error_workload_failure_allowed_keeps_the_profile(coopt: Coopt, modes: Program) -> None:
    # "fail" exits before doing any work, so spin first in another run and fail after: use a shell.
    script = "%s mul 150000000 && %s fail" % (modes.exe, modes.exe)
    prof = profile(coopt, modes.dir, "--allow-failure", "--", "sh", "-c", script)
    assert prof["workload"]["exit_code"] == 3
    assert Path(prof["tus"][0]["source"]).name == "mul.c"


OTHER = """#include <stdio.h>
__attribute__((noinline)) static long churn(long n) {
    long s = 7;
    for (long i = 0; i < n; i++) s = s * 5 + i;
    return s;
}
int main(void) { printf("%ld\\n", churn(150000000)); return 0; }
"""


def test_error_no_sample_in_journaled_code(coopt: Coopt, modes: Program, tmp_path: Path) -> None:
    journal = str(coopt.cache_dir / "journal.jsonl")
    plain = tmp_path / "plain"
    plain.mkdir()

    # A program coopt-cc never saw: its code is in no journaled object.
    (plain / "other.c").write_text(OTHER)
    subprocess.run(["clang", "-O2", "-o", "other", "other.c"], cwd=plain, check=True)
    line = one_line_error(coopt.coopt("profile", "--", str(plain / "other"), cwd=plain, check=False))
    assert "none of the" in line and "fell in code built with coopt-cc" in line and journal in line
    assert "not built with CC=coopt-cc" in line

    # The journaled program rebuilt with plain clang and other flags: same names, other code.
    for src in MODES:
        shutil.copy(modes.dir / src, plain / src)
    subprocess.run(["clang", "-O1", "-o", "modes", *MODES], cwd=plain, check=True)
    line = one_line_error(coopt.coopt("profile", "--", str(plain / "modes"), "add", cwd=plain, check=False))
    assert "fell in code built with coopt-cc" in line and "rebuilt without coopt-cc" in line

    # A stripped binary: perf cannot name its functions.
    stripped = modes.dir / "modes-stripped"
    shutil.copy(modes.exe, stripped)
    subprocess.run(["strip", str(stripped)], check=True)
    proc = coopt.coopt("profile", "--", str(stripped), "add", cwd=modes.dir, check=False)
    assert "stripped" in one_line_error(proc)

    # The wrong journal: an empty one.
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    proc = coopt.coopt("profile", "--journal", str(empty), "--", str(modes.exe), "add", cwd=modes.dir, check=False)
    assert "has no compiles" in one_line_error(proc)


def test_error_bad_profile_files(coopt: Coopt, tmp_path: Path) -> None:
    (tmp_path / "not.json").write_text("perf.data? no\n")
    assert "is not JSON" in one_line_error(coopt.coopt("profile", "show", "not.json", cwd=tmp_path, check=False))
    (tmp_path / "other.json").write_text('{"hello": 1}\n')
    assert "not a coopt profile" in one_line_error(
        coopt.coopt("profile", "show", "other.json", cwd=tmp_path, check=False)
    )
    (tmp_path / "future.json").write_text('{"format": "coopt-profile", "version": 99}\n')
    assert "upgrade coopt" in one_line_error(coopt.coopt("profile", "show", "future.json", cwd=tmp_path, check=False))
    assert "not found" in one_line_error(coopt.coopt("profile", "show", "nowhere.json", cwd=tmp_path, check=False))
    (tmp_path / "junk.txt").write_text("this is not perf output\nnor is this\n")
    proc = coopt.coopt("profile", "--perf-script", "junk.txt", cwd=tmp_path, check=False)
    assert "perf script -F" in one_line_error(proc)
    proc = coopt.coopt("profile", cwd=tmp_path, check=False)
    assert "no workload" in one_line_error(proc)


def test_docs_describe_every_field_of_the_schema() -> None:
    """docs/profile.md names every field, outside reason and attribution rule of the current schema."""
    from dataclasses import fields as dc_fields

    from coopt.profile import model

    doc = (ROOT / "docs" / "profile.md").read_text()
    for cls in (model.Profile, model.Workload, model.TUEntry, model.FunctionEntry, model.OutsideEntry,
                model.MergeInput):
        for f in dc_fields(cls):
            assert "`%s`" % f.name in doc, "docs/profile.md does not describe %s.%s" % (cls.__name__, f.name)
    for reason in model.OUTSIDE_REASONS:
        assert "`%s`" % reason in doc
    for how in model.HOW:
        assert "`%s`" % how in doc
    assert "PROFILE_VERSION = %d" % model.PROFILE_VERSION in doc or '"version": %d' % model.PROFILE_VERSION in doc
