"""The widened compiler tools with real tools: three kinds of PGO (front-end, IR-level, context-sensitive IR) and
other installed compilers (gcc, other clang releases) lowering a C TU; each builds, trains where it must, gives its
own object, runs right, and is judged by `coopt optimize` like every candidate. No timing is asserted."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, Coopt, require
from coopt.agents.compiler.othercc import (
    GCC_ARGS,
    Untranslatable,
    find_compilers,
    gcc_args,
    lower,
)
from coopt.agents.compiler.tools import PGO_KINDS, ToolError, compile_with_flags, pgo_compile, pgo_train
from coopt.journal.job import CompileJob
from coopt.journal.relink import find_link, relink

PROGRAM = "bubble_sort"  # a hot loop in a small function, branches PGO can order


def _built(coopt: Coopt, tmp_path: Path) -> tuple[Path, CompileJob]:
    require("clang", "make")
    tree = tmp_path / "programs"
    shutil.copytree(ROOT / "bench" / "programs", tree)
    coopt.run(["make", "CC=coopt-cc", PROGRAM], cwd=tree)
    rec = [r for r in coopt.journal() if r["type"] == "compile" and r["source"] == PROGRAM + ".c"][-1]
    return tree, CompileJob.from_record(rec)


def _runs_right(link, tree: Path, obj: str, out: Path) -> None:
    relink(link, {str(tree / (PROGRAM + ".o")): obj}, str(out), workdir=str(out.parent))
    proc = subprocess.run([str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr  # the program's own self-check at its default scale
    assert proc.stdout.startswith(PROGRAM + " ")


def test_gcc_translation_table_is_sorted_and_refuses_what_it_cannot_carry() -> None:
    keys = [(r.option, r.prefix, r.takes_value) for r in GCC_ARGS]
    assert [k[0] for k in keys] == sorted(k[0] for k in keys)
    assert len(set(keys)) == len(keys)
    assert gcc_args(["-O2", "-g", "-I", "inc", "-DX=1", "-Wall", "-Werror", "-fno-color-diagnostics", "-fPIC"]) == \
        ["-O2", "-g", "-I", "inc", "-DX=1", "-fPIC", "-ffp-contract=off"]
    assert gcc_args(["-O2", "-ffp-contract=fast"]) == ["-O2", "-ffp-contract=fast"]  # the user's choice stands
    for bad, why in ((["-O2", "-flto=thin"], "LTO"), (["-mllvm", "-inline-threshold=9"], "LLVM"),
                     (["-fsanitize=address"], "sanitizer"), (["-fprofile-instr-use=x"], "profile"),
                     (["-fblocks"], "no translation"), (["-x", "c++"], "only C")):
        with pytest.raises(Untranslatable, match=why):
            gcc_args(bad)


@pytest.mark.slow
def test_each_pgo_kind_trains_and_gives_its_own_object(coopt: Coopt, tmp_path: Path) -> None:
    tree, job = _built(coopt, tmp_path)
    link = find_link(str(coopt.cache_dir / "journal.jsonl"), str(tree / PROGRAM))
    workload = [["{program}", "8"]]
    base = compile_with_flags(job, [], str(tmp_path / "base.o"))
    assert Path(base.object_path).read_bytes() == (tree / (PROGRAM + ".o")).read_bytes()
    with pytest.raises(ToolError, match="ir profile"):  # context-sensitive PGO builds on IR PGO's profile
        pgo_train([job], link, workload, str(tmp_path / "cs-alone"), kind="cs")
    profiles = {"fe": pgo_train([job], link, workload, str(tmp_path / "fe"), kind="fe")}
    profiles["ir"] = pgo_train([job], link, workload, str(tmp_path / "ir"), kind="ir")
    profiles["cs"] = pgo_train([job], link, workload, str(tmp_path / "cs"), kind="cs", base=profiles["ir"])
    objects = {"base": Path(base.object_path).read_bytes()}
    for kind, profile in profiles.items():
        assert profile.kind == kind and Path(profile.profdata).stat().st_size > 0
        built = pgo_compile(job, profile, str(tmp_path / ("%s.o" % kind)))
        assert built.label == PGO_KINDS[kind].label
        assert "%s=%s" % (PGO_KINDS[kind].use, profile.profdata) in built.recipe[0]
        objects[kind] = Path(built.object_path).read_bytes()
        _runs_right(link, tree, built.object_path, tmp_path / kind / "prog")
    assert len(set(objects.values())) == len(objects)  # four different objects
    # The CS profile holds the IR profile's counters and context-sensitive ones; the IR profile has none of those.
    def functions(profdata: str, *flags: str) -> int:
        out = subprocess.run([shutil.which("llvm-profdata") or "llvm-profdata", "show", *flags, profdata],
                             capture_output=True, text=True, check=True).stdout
        return int(out.split("Total functions:")[1].split()[0])

    assert functions(profiles["cs"].profdata, "--showcs") > 0 == functions(profiles["ir"].profdata, "--showcs")
    assert functions(profiles["cs"].profdata) == functions(profiles["ir"].profdata) > 0


@pytest.mark.slow
def test_other_compilers_lower_the_tu_and_name_themselves(coopt: Coopt, tmp_path: Path) -> None:
    tree, job = _built(coopt, tmp_path)
    link = find_link(str(coopt.cache_dir / "journal.jsonl"), str(tree / PROGRAM))
    found, skipped = find_compilers(job.compiler)
    own = subprocess.run([job.compiler, "--version"], capture_output=True, text=True).stdout
    assert all(c.path != shutil.which(job.compiler) for c in found)
    assert all(not (c.family == "clang" and "version %s" % c.version in own) for c in found)  # never the TU's own
    families = {c.family: c for c in found}
    if "gcc" not in families and not shutil.which("clang-19"):
        pytest.skip("no other compiler installed (gcc or clang-19): %s" % ("; ".join(skipped) or "none found"))
    original = (tree / (PROGRAM + ".o")).read_bytes()
    for cc in found:
        built = lower(job, cc, ["-O3"], str(tmp_path / ("%s-%s.o" % (cc.family, cc.version))))
        assert built.level == "compilers" and built.label == "%s %s -O3" % (cc.family, cc.version)
        assert built.recipe[0][0] == cc.path  # the evidence names the compiler that made the object
        assert Path(built.object_path).read_bytes() != original
        comment = subprocess.run(["readelf", "-p", ".comment", built.object_path], capture_output=True,
                                 text=True).stdout
        assert ("GCC" if cc.family == "gcc" else "clang version %s" % cc.version) in comment
        _runs_right(link, tree, built.object_path, tmp_path / ("run-" + cc.version) / "prog")
    bad = CompileJob(job.cwd, job.compiler, job.args, [*job.key_args, "-flto"], job.source, job.output, [])
    if "gcc" in families:
        with pytest.raises(Untranslatable, match="LTO"):
            lower(bad, families["gcc"], [], str(tmp_path / "lto.o"))
    else:
        pytest.skip("gcc is not installed: the translation was not tried on a real compile")


def _optimize(coopt: Coopt, tree: Path, levels: str, budget: int, run_dir: Path) -> dict:
    coopt.coopt("profile", "--quiet", "-o", "profile.json", "--", "./" + PROGRAM, "10", cwd=tree)
    # --no-sweep: each row judged in full, one per evaluation (tests/test_sweep.py has the sweep's screen).
    coopt.coopt("optimize", "--levels", levels, "--no-sweep", "--budget", str(budget), "--pairs", "3", "--min-gain",
                "0.5", "--no-final", "--bench", "./%s 10" % PROGRAM, "--test", "./%s" % PROGRAM,
                "--run-dir", str(run_dir), cwd=tree)
    return json.loads((run_dir / "state.json").read_text())


@pytest.mark.slow
def test_optimize_judges_every_pgo_kind_and_another_compiler(coopt: Coopt, tmp_path: Path) -> None:
    require("perf")
    tree, _ = _built(coopt, tmp_path)
    found, _ = find_compilers("clang")
    levels = "pgo,compilers" if found else "pgo"
    state = _optimize(coopt, tree, levels, 6 + (2 * len(found) if found else 0), tmp_path / "run")
    attempts = state["attempts"]
    labels = {a["label"]: a for a in attempts}
    # Every PGO kind was trained and judged on the whole program: tests, then the A/B timing.
    for kind in ("pgo", "pgo-ir", "pgo-cs"):
        assert kind in labels, sorted(labels)
        assert labels[kind]["verdict"] in ("accepted", "rejected", "inconclusive"), labels[kind]
        assert labels[kind]["training"]["kind"] == {"pgo": "fe", "pgo-ir": "ir", "pgo-cs": "cs"}[kind]
    for cc in found:  # each other compiler lowered the TU (at -O3 first, then at its own flags) and was judged
        name = "%s %s" % (cc.family, cc.version)
        a = next((a for label, a in labels.items() if label in (name, name + " -O3")), None)
        assert a is not None, sorted(labels)
        assert a["level"] == "compilers" and a["verdict"] in ("accepted", "rejected", "inconclusive"), a
    kept = [k for k in state["kept"].values() if not k["withdrawn"]]
    if found and any(k["level"] == "compilers" for k in kept):
        from coopt.cache.store import Store

        entry = Store(str(coopt.cache_dir)).get(next(k for k in kept if k["level"] == "compilers")["key"])
        assert entry is not None
        ev = entry.meta["evidence"]
        assert ev["proposer"]["level"] == "compilers" and ev["proposer"]["label"].split()[0] in ("gcc", "clang")
        build = next(c for c in ev["checks"] if c["name"] == "build")
        assert build["detail"].split()[0] in {c.path for c in found}


def test_compilers_that_cannot_serve_are_skipped_with_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A name that is not a compiler this level knows, and a compiler for another target (here a clang whose
    -dumpmachine says aarch64, as a cross compiler's would), are skipped, each with its reason; with nothing
    left the level says what to install."""
    require("clang")
    from coopt.agents.compiler.othercc import CompilersAgent
    from coopt.agents.levels import AgentContext

    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "gcc-99").write_text("#!/bin/sh\necho 'not a compiler'\n")
    real = shutil.which("clang")
    (bindir / "clang-77").write_text('#!/bin/sh\n[ "$1" = -dumpmachine ] && { echo aarch64-linux-gnu; exit 0; }\n'
                                     '[ "$1" = --version ] && { echo "clang version 77.0.1"; exit 0; }\n'
                                     'exec %s "$@"\n' % real)
    (bindir / "clang-14").write_text('#!/bin/sh\nexec %s "$@"\n' % real)  # a wrapper: the same release
    for f in bindir.iterdir():
        f.chmod(0o755)
    (bindir / "clang").symlink_to(real)
    monkeypatch.setenv("PATH", str(bindir))
    found, skipped = find_compilers("clang")
    assert found == []
    assert "gcc-99: not a gcc or clang this level knows" in skipped
    assert "clang-77: targets another machine than clang" in skipped
    assert any(s.startswith("clang-14: the same release as clang (clang ") for s in skipped), skipped
    agent = CompilersAgent(AgentContext(link=None, hot=[], train=None, same_workload=True,  # type: ignore[arg-type]
                                        workdir=str(tmp_path)))
    why = agent.unavailable()
    assert why.startswith("no other compiler installed") and "gcc-99" in why and "apt-get install gcc" in why
