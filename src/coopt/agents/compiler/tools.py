"""The compiler's own constituents as tools: flags, `opt` pipelines, `llc` options, per-TU PGO (front-end, IR-level
and context-sensitive IR instrumentation).

Each tool takes a journaled compile (CompileJob) and produces a candidate object in a work directory, with the
recipe that made it. Agents (LLM or deterministic) call these; the verifier judges what they produce.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field

from coopt.journal.job import CompileJob
from coopt.journal.relink import LinkRecord, relink
from coopt.journal.shared_libs import ProgramRun
from coopt.journal.shared_libs import side as launched_side
from coopt.llm.types import Tool
from coopt.toolchain import Toolchain, find_toolchain
from coopt.verify import sandbox


class ToolError(Exception):
    """A tool run failed; the message carries the command's last line of stderr."""


# Options that tie code to a CPU (clang's -march/-mcpu/-mtune and ISA switches, llc's -mcpu/-mattr). A variant
# built with one runs only where that CPU's instructions exist, yet its cache key is the user's compile: tools may
# add them only when [optimize] assume_cpu says every machine that shares the cache has this CPU.
TARGET_PREFIXES = ("-march=", "-mcpu=", "-mtune=", "-mattr=", "--march=", "--mcpu=", "-target-cpu",
                   "-target-feature", "-mavx", "-msse", "-mssse", "-mfma", "-mbmi", "-mpopcnt", "-mlzcnt",
                   "-mf16c", "-mmovbe", "-maes", "-mpclmul", "-msha", "-madx", "-mrdrnd", "-mneon", "-msve")


def target_flags(flags: list[str]) -> list[str]:
    """The options among `flags` that assume a target CPU (including -march=x86-64-v3 style levels)."""
    return [f for f in flags if f.startswith(TARGET_PREFIXES)]


def check_target(flags: list[str], assume_cpu: bool) -> None:
    """ToolError when `flags` assume a CPU and the configuration does not allow it."""
    found = target_flags(flags)
    if found and not assume_cpu:
        raise ToolError("%s assume%s a target CPU; [optimize] assume_cpu is false, so no variant may"
                        % (" ".join(found), "s" if len(found) == 1 else ""))


@dataclass(frozen=True)
class Built:
    """A candidate object for one TU and how it was made."""

    level: str  # flags, ir, asm, pgo, source
    label: str  # short human description, e.g. "-O3 -funroll-loops" or "pgo"
    object_path: str
    recipe: list[list[str]] = field(default_factory=list)  # the commands, in order
    artifact_path: str = ""  # the .ll/.s/.c/.profdata it was built from, if any
    extra_flags: list[str] = field(default_factory=list)


def _run(cmd: list[str], cwd: str, env: dict[str, str] | None = None, timeout: float = 900) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise ToolError("%s failed (exit %d): %s" % (os.path.basename(cmd[0]), proc.returncode,
                                                     lines[-1] if lines else ""))


def toolchain_for(job: CompileJob) -> Toolchain:
    return find_toolchain(job.compiler)


def compile_with_flags(job: CompileJob, flags: list[str], out: str, label: str = "", assume_cpu: bool = False
                       ) -> Built:
    """The TU compiled with the job's own flags followed by `flags` (later flags win, as with clang). Target CPU
    options among `flags` need `assume_cpu` (ToolError otherwise); the job's own flags are the user's choice."""
    check_target(flags, assume_cpu)
    cmd = job.replay_command(job.source, os.path.abspath(out), flags)
    _run(cmd, job.cwd, job.subprocess_env())
    return Built("flags", label or " ".join(flags), os.path.abspath(out), [cmd], extra_flags=list(flags))


def emit_ir(job: CompileJob, out_ll: str, flags: list[str] | None = None) -> list[str]:
    """The TU's LLVM IR as the job's flags produce it (optimized IR at the job's level)."""
    cmd = [job.compiler, *job.key_args, *(flags or []), "-S", "-emit-llvm", "-c", job.source, "-o",
           os.path.abspath(out_ll)]
    _run(cmd, job.cwd, job.subprocess_env())
    return cmd


# The compiler tools as an LLM sees them: one schema per tool, named as its Python function. An agent offers the
# ones its level can use (the IR agent: run_opt) and runs the call itself through the function of that name.
PIPELINE = re.compile(r"[A-Za-z0-9<>(),;=_.\-]{1,400}")
OPT_TOOL = Tool(
    "run_opt",
    "Have LLVM's opt transform the whole module with a new-pass-manager pipeline instead of writing IR "
    "yourself, e.g. \"function(loop-unroll<O3>,instcombine,simplifycfg)\" or \"default<O3>\"; the result "
    "becomes the candidate and is verified like written IR.",
    {"type": "object", "properties": {"pipeline": {"type": "string", "description": "an opt -passes= value"}},
     "required": ["pipeline"]},
)


def valid_pipeline(pipeline: object) -> str:
    """`pipeline` when it is a plausible opt -passes= value (one argument, no spaces or quotes), else ""."""
    return pipeline if isinstance(pipeline, str) and PIPELINE.fullmatch(pipeline) else ""


def run_opt(tc: Toolchain, ll: str, pipeline: str, out_ll: str) -> list[str]:
    """`opt -passes=PIPELINE` over an IR file (new pass manager syntax, e.g. "default<O3>")."""
    cmd = [tc.tool("opt"), "-passes=" + pipeline, "-S", ll, "-o", out_ll]
    _run(cmd, os.path.dirname(os.path.abspath(out_ll)))
    return cmd


def run_llc(tc: Toolchain, ll: str, options: list[str], out_obj: str, assume_cpu: bool = False) -> list[str]:
    """`llc` to an object file with the given options (e.g. -O3; -mcpu=... only with `assume_cpu`)."""
    check_target(options, assume_cpu)
    cmd = [tc.tool("llc"), *options, "-filetype=obj", "-relocation-model=pic", ll, "-o", out_obj]
    _run(cmd, os.path.dirname(os.path.abspath(out_obj)))
    return cmd


def profile_runtime_missing(clang: str) -> str:
    """Why `clang` cannot link an instrumented (-fprofile-instr-generate) program, in one line; "" when it can.
    Debian ships clang's profile runtime in libclang-rt-N-dev, which clang only recommends."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="coopt-pgo-check-") as d:
        src, exe = os.path.join(d, "t.c"), os.path.join(d, "t")
        with open(src, "w", encoding="utf-8") as f:
            f.write("int main(void) { return 0; }\n")
        try:
            proc = subprocess.run([clang, "-fprofile-instr-generate", src, "-o", exe], capture_output=True,
                                  text=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as exc:
            return "%s cannot be run: %s" % (clang, exc)
    if proc.returncode == 0:
        return ""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    try:
        major = str(find_toolchain(clang).major)
    except Exception:  # noqa: BLE001 - only the package name of the hint depends on it
        major = "N"
    return "%s cannot link an instrumented program (%s): install its profile runtime (apt-get install " \
        "libclang-rt-%s-dev)" % (clang, (lines[0] if lines else "exit %d" % proc.returncode)[:160], major)


@dataclass(frozen=True)
class PgoKind:
    """One kind of profile-guided optimization: how the hot TUs are instrumented (and the program linked), and the
    option that reads the merged profile back. `base` names the kind whose profile this one's instrumented build
    is already optimized with: context-sensitive IR PGO instruments the code after inlining, so it trains on a
    build that used the IR profile, and its merged profile holds both."""

    name: str
    label: str  # how candidates of this kind are labelled ("pgo", "pgo-ir", "pgo-cs")
    generate: tuple[str, ...]
    use: str  # the option that reads the profile, "=PATH" appended
    base: str = ""


# The kinds clang offers, by name. Front-end instrumentation (`fe`, counters on the AST) is the original `pgo`;
# IR-level instrumentation (`ir`) counts after early inlining and is what LLVM recommends; context-sensitive IR
# PGO (`cs`) adds a second training on the IR-PGO build, with counters placed after the main inliner.
PGO_KINDS: dict[str, PgoKind] = {
    "fe": PgoKind("fe", "pgo", ("-fprofile-instr-generate",), "-fprofile-instr-use"),
    "ir": PgoKind("ir", "pgo-ir", ("-fprofile-generate",), "-fprofile-use"),
    "cs": PgoKind("cs", "pgo-cs", ("-fcs-profile-generate",), "-fprofile-use", base="ir"),
}
# A profile that is stale or misses a function is not an error: the TU is still compiled, with less guidance.
PROFILE_QUIET = ("-Wno-profile-instr-unprofiled", "-Wno-profile-instr-out-of-date", "-Wno-profile-instr-missing")


@dataclass(frozen=True)
class PgoProfile:
    """A merged instrumentation profile for some TUs of one program, and the workload it was trained on."""

    profdata: str
    workload: list[str]
    runs: int
    kind: str = "fe"  # a key of PGO_KINDS


def pgo_train(
    jobs: list[CompileJob],
    link: LinkRecord,
    workload: list[list[str]],
    workdir: str,
    program_placeholder: str = "{program}",
    timeout: float = 900,
    runner: ProgramRun | None = None,
    cwd: str | None = None,
    kind: str = "fe",
    base: PgoProfile | None = None,
) -> PgoProfile:
    """Instrument only `jobs` (the hot TUs), relink the program, run each workload command, merge the profile.

    Workload commands name the program as `{program}`; they run in `cwd` (default: the link's directory), which
    the contained runs can read as well as the link's directory. Only the hot TUs carry
    instrumentation, which keeps training runs close to full speed. `runner`, when given, is how the program runs
    (journal/shared_libs.py): against the instrumented library when `link` is a shared library's, or through
    the launcher of a program that libtool's wrapper runs. `kind` is a key of PGO_KINDS; a kind with a
    `base` (context-sensitive IR PGO) needs that kind's trained profile as `base`, which its merged profile
    includes.
    """
    if not jobs:
        raise ToolError("no TUs to instrument")
    pk = PGO_KINDS[kind]
    if pk.base and (base is None or base.kind != pk.base):
        raise ToolError("%s PGO trains on a build optimized with a %s profile; none was given" % (kind, pk.base))
    tc = toolchain_for(jobs[0])
    os.makedirs(workdir, exist_ok=True)
    instrument = [*(["%s=%s" % (PGO_KINDS[pk.base].use, base.profdata), *PROFILE_QUIET] if base else []),
                  *pk.generate]
    replacements: dict[str, str] = {}
    for i, job in enumerate(jobs):
        obj = os.path.join(workdir, "instr-%d-%s.o" % (i, os.path.splitext(os.path.basename(job.source))[0]))
        _run(job.replay_command(job.source, obj, instrument), job.cwd, job.subprocess_env())
        replacements[job.output_path] = obj
    reads: tuple[str, ...] = ()
    if runner is not None:
        side = launched_side(link, replacements, runner, os.path.join(workdir, "instrumented"),
                             extra_args=list(pk.generate))
        program, reads = side.launcher, side.reads
    else:
        program = os.path.join(workdir, "instrumented-" + os.path.basename(link.output))
        relink(link, replacements, program, workdir=workdir, extra_args=list(pk.generate))
    raw_dir = os.path.join(workdir, "profraw")
    os.makedirs(raw_dir, exist_ok=True)
    # Contained like every run of built code (verify/sandbox/): the project's directory read-only, the profile
    # directory the only writable place; as the project's own code it may run unsandboxed where bwrap is missing.
    # LLVM_PROFILE_FILE overrides the default path of every kind.
    env = sandbox.scrubbed_env(raw_dir, {"LLVM_PROFILE_FILE": os.path.join(raw_dir, "%p-%m.profraw")})
    limits = sandbox.Limits(cpu_s=0, address_space_mb=0, file_size_mb=0, processes=4096, wall_s=timeout,
                            memory_mb=sandbox.machine_memory_mb() * 3 // 4)
    for cmd in workload:
        argv = [program if a == program_placeholder else a.replace(program_placeholder, program) for a in cmd]
        res = sandbox.run(argv, raw_dir, limits, env, cwd=cwd or link.cwd,
                          readonly=[cwd or link.cwd, link.cwd, workdir, *reads], own_code=True, keep_stdout=False)
        if res.returncode != 0 or res.timed_out:
            raise ToolError("training run %s failed (exit %d%s)" % (" ".join(cmd), res.returncode,
                                                                    ", timed out" if res.timed_out else ""))
    raws = sorted(os.path.join(raw_dir, f) for f in os.listdir(raw_dir) if f.endswith(".profraw"))
    if not raws:
        raise ToolError("the training runs wrote no profile")
    profdata = os.path.join(workdir, "merged.profdata")
    _run([tc.tool("llvm-profdata"), "merge", "-o", profdata, *raws, *([base.profdata] if base else [])], workdir)
    return PgoProfile(profdata=profdata, workload=[" ".join(c) for c in workload], runs=len(workload), kind=kind)


def pgo_compile(job: CompileJob, profile: PgoProfile, out: str, extra_flags: list[str] | None = None) -> Built:
    """The TU compiled with the job's flags, the trained profile (read by the option of its kind), and
    `extra_flags` (e.g. -O3) after them."""
    pk = PGO_KINDS[profile.kind]
    flags = ["%s=%s" % (pk.use, profile.profdata), *PROFILE_QUIET, *(extra_flags or [])]
    label = " ".join([pk.label, *(extra_flags or [])])
    built = compile_with_flags(job, flags, out, label=label)
    return Built("pgo", label, built.object_path, built.recipe, profile.profdata, flags)
