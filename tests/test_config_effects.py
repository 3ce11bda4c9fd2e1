"""The configuration keys that change what coopt does reach the code that does it: `[optimize] float_tolerance`
in the program-level output check, `[optimize] assume_cpu` in the compiler tools' flags, `[cache] max_size`/`dir`
in `coopt cache evict`, and the `[optimize]` keys in `coopt optimize` (COOPT_* overriding the file, command-line
options overriding both). `[llm] max_tokens` is in test_llm_client.py; the nightly's use of them in
test_nightly_cli.py."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import Coopt, require
from coopt.agents.compiler.tools import ToolError, compile_with_flags, target_flags
from coopt.agents.levels import FLAG_SETS, TARGET_FLAG_SETS, AgentContext, AgentSettings, FlagsAgent, HotTU
from coopt.hooks.workload import from_line
from coopt.journal import log as journal
from coopt.journal.job import CompileJob
from coopt.journal.relink import find_link
from coopt.verify.program_level.bench import ProgramBench
from coopt.verify.program_level.hooks import Observation, compare, numbers_close

# ---- float_tolerance ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("a, b, tolerance, close", [
    ("x 1.0 y\n", "x 1.0000000000005 y\n", 1e-12, True),  # 5e-13 relative: within 1e-12
    ("x 1.0 y\n", "x 1.000000000002 y\n", 1e-12, False),  # 2e-12: larger
    ("1e10\n", "1.000000000001e10\n", 1e-9, True),  # relative above 1
    ("0.0000001\n", "0.0000002\n", 1e-6, True),  # absolute below 1
    ("3.5 apples\n", "3.5 pears\n", 1, False),  # the text around numbers must match
    ("count 1000000\n", "count 1000001\n", 1e-3, False),  # integers are never rounded
    ("value 1\n", "value 1.0000000000010001\n", 1e-9, True),  # %g writes 1.0 as 1
    ("nan inf\n", "-nan inf\n", 1e-12, True),  # NaNs match each other, as in the harness
    ("0.5 0.5\n", "0.5\n", 1, False),  # as many numbers on both sides
    ("-0.25e-3,", "-0.2500000000001e-3,", 1e-9, True),
])
def test_numbers_close(a: str, b: str, tolerance: float, close: bool) -> None:
    assert numbers_close(a, b, tolerance) is close
    orig, cand = Observation(0, a, (), False, ""), Observation(0, b, (), False, "")
    assert (compare(orig, cand, tolerance) == "") is close
    assert compare(orig, cand, 0.0) != ""  # exact by default


MAIN_C = '#include <stdio.h>\ndouble value(void);\nint main(void) { printf("value %.17g\\n", value()); return 0; }\n'
VALUE_C = "double value(void) { return 1.0 + %s; }\n"


@pytest.fixture
def float_program(coopt: Coopt, tmp_path: Path) -> tuple[Path, CompileJob]:
    require("clang")
    (tmp_path / "main.c").write_text(MAIN_C)
    (tmp_path / "value.c").write_text(VALUE_C % "0.0")
    for name in ("main", "value"):
        coopt.run([coopt.cc, "-O2", "-c", "%s.c" % name, "-o", "%s.o" % name], cwd=tmp_path)
    coopt.run([coopt.cc, "-o", "app", "main.o", "value.o"], cwd=tmp_path)
    job = next(CompileJob.from_record(r) for r in journal.read(str(coopt.cache_dir / "journal.jsonl"))
               if r.get("type") == "compile" and r.get("output", "").endswith("value.o"))
    return tmp_path, job


def test_float_tolerance_reaches_the_program_check(coopt: Coopt, float_program: tuple[Path, CompileJob]) -> None:
    d, _job = float_program
    link = find_link(str(coopt.cache_dir / "journal.jsonl"), str(d / "app"))
    bench = from_line("./app", str(d), str(d / "app"), "--bench")
    variants = {}
    for name, delta in (("tiny", "1e-12"), ("large", "1e-6")):
        src = d / ("value_%s.c" % name)
        src.write_text(VALUE_C % delta)
        subprocess.run(["clang", "-O2", "-c", str(src), "-o", str(d / ("value_%s.o" % name))], check=True)
        variants[name] = str(d / ("value_%s.o" % name))

    def judge(tolerance: float) -> dict[str, str]:
        pb = ProgramBench(link, str(d / ("work%g" % tolerance)), bench, [bench], 3, 60.0, lambda: False,
                          lambda: 0.0, float_tolerance=tolerance)
        pb.record_baseline(pb.side("base", {}))
        return {name: pb.check(pb.side(name, {str(d / "value.o"): obj})) for name, obj in variants.items()}

    exact = judge(0.0)
    assert "stdout line 1" in exact["tiny"] and "stdout line 1" in exact["large"]
    loose = judge(1e-9)
    assert loose["tiny"] == "" and "stdout line 1" in loose["large"], loose


# ---- assume_cpu -------------------------------------------------------------------------------------------------


def _agent(coopt: Coopt, d: Path, job: CompileJob, assume_cpu: bool) -> tuple[FlagsAgent, HotTU]:
    link = find_link(str(coopt.cache_dir / "journal.jsonl"), str(d / "app"))
    tu = HotTU(job.output_path, job.source_path, 1.0, job)
    ctx = AgentContext(link, [tu], from_line("./app", str(d), str(d / "app"), "--train"), True, str(d / "agents"),
                       AgentSettings(assume_cpu=assume_cpu))
    return FlagsAgent(ctx), tu


@pytest.mark.parametrize("assume_cpu", [False, True])
def test_assume_cpu_decides_whether_target_flags_are_used(coopt: Coopt, float_program: tuple[Path, CompileJob],
                                                          assume_cpu: bool) -> None:
    d, job = float_program
    agent, tu = _agent(coopt, d, job, assume_cpu)
    used: list[list[str]] = []
    out = d / ("cands-%s" % assume_cpu)
    out.mkdir()
    while agent.has_more(tu):
        cand = agent.propose(tu, str(out))
        used.append(cand.built.extra_flags)
        # What ran is what is recorded: the compile command carries exactly the candidate's target flags.
        assert target_flags(cand.built.recipe[-1]) == target_flags(job.key_args) + target_flags(used[-1])
    targeted = [f for f in used if target_flags(f)]
    if assume_cpu:
        assert [tuple(f) for f in targeted] == list(TARGET_FLAG_SETS)
    else:
        assert targeted == [] and len(used) == len(FLAG_SETS)
    o = str(d / ("native-%s.o" % assume_cpu))
    if assume_cpu:
        assert compile_with_flags(job, ["-march=x86-64-v3"], o, assume_cpu=True).extra_flags == ["-march=x86-64-v3"]
    else:
        for flags in (["-march=native"], ["-mcpu=native"], ["-O3", "-march=x86-64-v3"], ["-mavx2"]):
            with pytest.raises(ToolError, match="assume_cpu is false"):
                compile_with_flags(job, flags, o)
        assert not Path(o).exists()


# ---- coopt cache evict and coopt optimize read coopt.toml ------------------------------------------------------


def test_cache_evict_reads_max_size_and_dir_from_coopt_toml(coopt: Coopt, tmp_path: Path) -> None:
    require("clang")
    d = tmp_path / "p"
    d.mkdir()
    (d / "a.c").write_text("int a(int x) { return x + 1; }\n")
    (d / "a_v.c").write_text("int a(int x) { return 1 + x; }\n")
    cache = tmp_path / "from-file"
    del coopt.env["COOPT_CACHE_DIR"]
    (d / "coopt.toml").write_text('[cache]\ndir = "%s"\n' % cache)
    coopt.run([coopt.cc, "-O2", "-c", "a.c", "-o", "a.o"], cwd=d)
    coopt.coopt("cache", "put", "--artifact", "a_v.c", "--for-object", "a.o", "--unverified", cwd=d)
    assert len(list((cache / "entries").rglob("meta.json"))) == 1
    (d / "coopt.toml").write_text('[cache]\ndir = "%s"\nmax_size = 1\n' % cache)
    coopt.env["COOPT_CACHE_MAX_SIZE"] = "1G"  # the environment overrides the file
    assert "evicted 0 entries" in coopt.coopt("cache", "evict", cwd=d).stdout
    show = coopt.coopt("config", "show", cwd=d).stdout
    assert any("max_size" in ln and "COOPT_CACHE_MAX_SIZE" in ln for ln in show.splitlines()), show
    del coopt.env["COOPT_CACHE_MAX_SIZE"]
    assert "evicted 1 entries" in coopt.coopt("cache", "evict", cwd=d).stdout
    assert list((cache / "entries").rglob("meta.json")) == []
    (d / "coopt.toml").write_text('[cache]\nmax_size = "lots"\n')
    bad = coopt.coopt("cache", "evict", cwd=d, check=False)
    assert bad.returncode == 2 and "coopt.toml:2: [cache] max_size: expected a size" in bad.stderr, bad.stderr


@pytest.mark.parametrize("toml, env, args, message", [
    ("[optimize]\npairs = 2\n", {}, [], "coopt.toml:2: [optimize] pairs: expected a whole number of at least 3"),
    ('[optimize]\nlevels = ["source"]\n', {}, [], "level source needs an LLM"),
    # The environment overrides the file, the command line both: the run gets as far as the missing profile.
    ('[optimize]\nlevels = ["source"]\n', {"COOPT_LEVELS": "flags"}, [], "profile.json not found"),
    ('[optimize]\nlevels = ["source"]\n', {"COOPT_LEVELS": "ir"}, ["--levels", "flags"], "profile.json not found"),
    ("[optimize]\nfloat_tolerance = -1\n", {}, [], "[optimize] float_tolerance: expected a number of at least 0"),
    ("[llm]\nprovider = \"openai\"\n[optimize]\nlevels = [\"flags\"]\n", {}, ["--levels", "source", "--llm", "none"],
     "--levels: level source needs an LLM"),
])
def test_optimize_reads_coopt_toml(coopt: Coopt, tmp_path: Path, toml: str, env: dict[str, str], args: list[str],
                                   message: str) -> None:
    (tmp_path / "coopt.toml").write_text(toml)
    coopt.env.update(env)
    proc = coopt.coopt("optimize", *args, cwd=tmp_path, check=False)
    assert proc.returncode == 2 and message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr


HARMONIC_MAIN = """#include <stdio.h>
double value(long n);
int main(void) { printf("value %.17g\\n", value(30000000)); return 0; }
"""


def test_optimize_run_takes_its_settings_from_coopt_toml(coopt: Coopt, tmp_path: Path) -> None:
    """A real `coopt optimize` run on a profiled program: the run state records the file's settings, with the
    environment's budget overriding the file's."""
    require("clang", "perf")
    d = tmp_path / "p"
    d.mkdir()
    (d / "main.c").write_text(HARMONIC_MAIN)
    (d / "value.c").write_text("double value(long n) { double s = 0; for (long i = 1; i <= n; i++) s += 1.0 / i; "
                               "return s; }\n")
    for name in ("main", "value"):
        coopt.run([coopt.cc, "-O1", "-c", "%s.c" % name, "-o", "%s.o" % name], cwd=d)
    coopt.run([coopt.cc, "-o", "app", "main.o", "value.o"], cwd=d)
    coopt.coopt("profile", "-o", "profile.json", "--", "./app", cwd=d)
    (d / "coopt.toml").write_text('[optimize]\nlevels = ["flags"]\nbudget = 5\npairs = 3\nmin_gain = 10\n'
                                  "max_tus = 1\nfloat_tolerance = 1e-9\nfinal_check = false\nsweep = false\n")
    coopt.env["COOPT_BUDGET"] = "1"
    out = coopt.coopt("optimize", "--run-dir", "run", cwd=d).stdout
    assert "floating-point numbers in test output may differ by 1e-09" in out, out
    state = json.loads((d / "run" / "state.json").read_text())
    assert (state["levels"], state["min_gain"], state["pairs"], state["float_tolerance"]) == (["flags"], 10, 3, 1e-9)
    assert state["budget"]["evaluations"] == 1 and state["spent"]["evaluations"] == 1
    assert state["assume_cpu"] is False and all(not target_flags(a["flags"]) for a in state["attempts"])
    assert len(state["attempts"]) == 1  # sweep = false: one row per evaluation, not a screened sweep
    # --resume continues that run with a larger budget: the judged candidate is not built again.
    coopt.env["COOPT_BUDGET"] = "2"
    out = coopt.coopt("optimize", "--run-dir", "run", "--resume", cwd=d).stdout
    assert "resuming the run of %s: 1 judged attempt(s)" % state["created"] in out, out
    again = json.loads((d / "run" / "state.json").read_text())
    assert again["attempts"][0] == state["attempts"][0] and again["resumed"] == 1
    # The flag sets in the table's order, none built twice; one that builds the same code as an earlier candidate
    # or the baseline is a duplicate: recorded, and it costs no evaluation.
    labels = [a["label"] for a in again["attempts"]]
    assert labels == [" ".join(fs) for fs in FLAG_SETS[:len(labels)]] and len(labels) >= 2
    assert again["spent"]["evaluations"] == sum(a["verdict"] != "duplicate" for a in again["attempts"]) <= 2
    bad = coopt.coopt("optimize", "--resume", cwd=d, check=False)
    assert bad.returncode == 2 and "--resume needs --run-dir" in bad.stderr
