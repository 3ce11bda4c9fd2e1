"""A report's worth of kept variants in a real cache: a small C project compiled by clang, one kept variant per
kind (source, flags, PGO with a real trained profile, IR, assembly) stored by the cache's own publish step, and
the run state of an optimize run that names them, plus a TU with nothing measured and a cold one.

The run state is constructed (a real `coopt optimize` with kept variants is tested in test_optimize.py and
test_source_agent_e2e.py); the cache entries, artifacts and objects are real, so the report reads them exactly as
it reads an optimize run's. Used by tests/test_report_view.py and bench/report_screenshot.py.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from coopt.cache.publish import put_variant
from coopt.cache.store import Store
from coopt.journal.job import CompileJob
from coopt.optimize.state import (
    AttemptRecord,
    CommandRecord,
    KeptRecord,
    MeasurementRecord,
    Outcome,
    RunState,
    TuRecord,
)
from coopt.verify.evidence import Evidence, Interval
from coopt.verify.verdict import Verdict

TEXT = """#include <stddef.h>

static size_t text_length(const char *s)
{
    size_t n = 0;
    while (s[n] != '\\0')
        n++;
    return n;
}

void upcase(char *dst, const char *src)
{
    for (size_t i = 0; i < text_length(src); i++) {
        char c = src[i];
        dst[i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
}
"""
HOISTED = TEXT.replace("""    for (size_t i = 0; i < text_length(src); i++) {""", """    size_t n = text_length(src);
    for (size_t i = 0; i < n; i++) {""")
SUM = """long sum_%s(const int *v, long n)
{
    long s = 0;
    for (long i = 0; i < n; i++)
        s += v[i] * 3;
    return s;
}
"""
MAIN = """#include <stdio.h>
long sum_pgo(const int *v, long n);
int main(void)
{
    static int v[1000];
    long s = 0;
    for (int r = 0; r < 200; r++)
        s += sum_pgo(v, 1000);
    printf("%ld\\n", s);
    return 0;
}
"""
# An attempt's detail as long as the verifier's are: longer than the attempts table shows.
LONG_DETAIL = ("test: the output differs from the baseline's on `{program} --check input-%d.txt`: line 1: "
               "expected 'checksum 8a1c6b2e' but the candidate printed 'checksum 00000000' after reading every "
               "record of the input and comparing each against the reference table of the project (%s)")
IDLE = "a_translation_unit_with_a_rather_long_name.c"
_FUNCTION = {"text.c": "upcase", "flags.c": "sum_flags", "pgo.c": "sum_pgo", "ir.c": "sum_ir", "asm.c": "sum_asm"}


def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, "%s: %s" % (" ".join(cmd), proc.stderr)


def _job(root: Path, name: str) -> CompileJob:
    return CompileJob(str(root), shutil.which("clang") or "clang", [], ["-O2"], name, name[:-2] + ".o", [])


def build(root: Path) -> RunState:
    """The project, its cache under `root/cache` and the run state naming its kept variants (not saved)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "text.c").write_text(TEXT)
    (root / "text_variant.c").write_text(HOISTED)
    for stem in ("flags", "pgo", "ir", "asm", "cold"):
        (root / ("%s.c" % stem)).write_text(SUM % stem)
    (root / IDLE).write_text(SUM % "idle")
    (root / "main.c").write_text(MAIN)
    store = Store(str(root / "cache"))
    keys: dict[str, str] = {}

    def put(name: str, artifact: Path, kind: str, level: str, flags: list[str], training: dict | None = None,
            prebuilt: str | None = None) -> None:
        # The verifier's accepted record, as the optimizer stores it (optimize/search/attempt.py), with who proposed it.
        evidence = Evidence(name, str(artifact), Verdict.accepted("sample"), functions=[_FUNCTION[name]]).to_dict()
        evidence.update({"verified": True, "proposer": {"agent": "sample", "level": level, "label": level,
                                                        "flags": flags}, "training": training})
        entry = put_variant(store, _job(root, name), str(artifact), kind, evidence, flags, prebuilt_object=prebuilt,
                            level=level)
        keys[name] = entry.key

    put("text.c", root / "text_variant.c", "c", "source", [])
    # flags and PGO as the optimizer stores them: the object built with the flags, the source (or profile) as
    # the artifact.
    flags = ["-O3", "-funroll-loops"]
    _run(["clang", "-O2", *flags, "-c", "flags.c", "-o", "flags-variant.o"], root)
    put("flags.c", root / "flags.c", "c", "flags", flags, prebuilt=str(root / "flags-variant.o"))
    _run(["clang", "-O2", "-fprofile-instr-generate", "main.c", "pgo.c", "-o", "app-instr"], root)
    _run(["env", "LLVM_PROFILE_FILE=%s" % (root / "train.profraw"), "./app-instr"], root)
    _run(["llvm-profdata", "merge", "-o", "merged.profdata", "train.profraw"], root)
    pgo_flags = ["-fprofile-instr-use=%s" % (root / "merged.profdata"), "-Wno-profile-instr-unprofiled", "-O3"]
    _run(["clang", "-O2", *pgo_flags, "-c", "pgo.c", "-o", "pgo-variant.o"], root)
    training = {"workload": "{program} < input.txt", "cwd": str(root), "origin": "profile workload",
                "same_as_bench": True, "instrumented": [str(root / "pgo.c")],
                "profdata": str(root / "merged.profdata")}
    put("pgo.c", root / "merged.profdata", "c", "pgo", pgo_flags, training, prebuilt=str(root / "pgo-variant.o"))
    # IR and assembly: the module as the agents make it, one function changed.
    _run(["clang", "-O2", "-S", "-emit-llvm", "ir.c", "-o", "ir.ll"], root)
    ir = (root / "ir.ll").read_text()
    (root / "ir_variant.ll").write_text(ir.replace("define dso_local i64 @sum_ir(", "; hand-tuned\n"
                                                   "define dso_local i64 @sum_ir(", 1))
    put("ir.c", root / "ir_variant.ll", "ir", "ir", [])
    _run(["clang", "-O2", "-S", "asm.c", "-o", "asm.s"], root)
    asm = (root / "asm.s").read_text()
    head = asm.index("\t.cfi_startproc\n", asm.index("\nsum_asm:")) + len("\t.cfi_startproc\n")
    (root / "asm_variant.s").write_text(asm[:head] + "\tnop\n" + asm[head:])
    put("asm.c", root / "asm_variant.s", "asm", "asm", [])
    return _state(root, keys)


def _iv(ratio: float, low: float, high: float) -> Interval:
    return Interval(ratio, low, high, "cpu", [1.0, 1.0, 1.0], [ratio, ratio, ratio])


def _state(root: Path, keys: dict[str, str]) -> RunState:
    p = str(root)
    s = RunState(
        created="2026-12-06T02:00:00Z", program=p + "/app", profile=p + "/profile.json",
        journal=p + "/cache/journal.jsonl", cache_dir=p + "/cache", levels=["flags", "pgo", "source", "ir", "asm"],
        min_gain=1.02, pairs=10, llm="openai", budget={"evaluations": 12, "seconds": 0},
        bench=CommandRecord("{program} < input.txt", p, "profile workload"),
        train=CommandRecord("{program} < input.txt", p, "profile workload"),
        tests=[CommandRecord("make check", p, "--test")], same_workload=True, status="done",
        stop_reason="budget spent",
    )
    shares = {"text.c": 0.41, "flags.c": 0.17, "pgo.c": 0.12, "ir.c": 0.08, "asm.c": 0.06, IDLE: 0.05,
              "cold.c": 0.004}
    s.tus = [TuRecord(p + "/" + n[:-2] + ".o", p + "/" + n, share,
                      "under 1% of the samples" if n == "cold.c" else "") for n, share in shares.items()]
    kept = {"text.c": ("source", "upcase sample 0", _iv(4.8, 4.2, 5.3)),
            "flags.c": ("flags", "-O3 -funroll-loops", _iv(1.06, 1.035, 1.09)),
            "pgo.c": ("pgo", "pgo -O3", _iv(1.031, 1.021, 1.04)),
            "ir.c": ("ir", "sum_ir sample 1", _iv(1.025, 1.0205, 1.03)),
            "asm.c": ("asm", "sum_asm sample 0", _iv(1.022, 1.0201, 1.024))}
    n = 0
    for name, (level, label, iv) in kept.items():
        obj, src = p + "/" + name[:-2] + ".o", p + "/" + name
        n += 1
        s.attempts.append(AttemptRecord(n, obj, src, "flags", "-O3", "compiler-tools/flags", Outcome.REJECTED,
                                        "not faster: speed-up 0.990x [0.970, 1.010]", _iv(0.99, 0.97, 1.01), 30.0,
                                        flags=["-O3"]))
        n += 1
        s.attempts.append(AttemptRecord(n, obj, src, level, label, "sample/" + level, Outcome.ACCEPTED,
                                        "speed-up %.3fx" % iv.ratio, iv, 41.0, kept=True, entry_key=keys[name]))
        s.kept[obj] = KeptRecord(obj, src, n, keys[name], level, label, iv)
    idle_obj = p + "/" + IDLE[:-2] + ".o"
    for i in (1, 2):
        n += 1
        s.attempts.append(AttemptRecord(n, idle_obj, p + "/" + IDLE, "source", "sum_idle sample %d" % i,
                                        "sample/source", Outcome.REJECTED, LONG_DETAIL % (i, "x" * 40), None, 12.0))
    s.spent = {"evaluations": n, "seconds": 600.0}
    s.noise = MeasurementRecord(_iv(1.0, 0.995, 1.006), 10, 20.0)
    s.final = MeasurementRecord(_iv(5.1, 4.6, 5.5), 10, 40.0)
    return s
