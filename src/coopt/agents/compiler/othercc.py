"""Other installed compilers as lowering tools for a C TU: gcc, and clang releases other than the TU's own.

The `compilers` level compiles a hot TU's unchanged source with another compiler and offers the object. Whatever
made it, the object is judged like every candidate (the program's tests, then the A/B timing) and served in place
of the user's compile, so it must be a drop-in for that compile:

- the same target: the other compiler's `-dumpmachine` must name the same architecture and OS/ABI as the TU's;
- the same meaning of the user's flags. Another clang takes them as they are (an option it does not know fails the
  compile, and the candidate with it). For gcc each option goes through GCC_ARGS, one row per option or prefix:
  `keep` (gcc reads it the same way), `drop` (diagnostics only, no effect on the object) or `refuse` (no gcc
  equivalent with the same meaning, or an object clang's link cannot use: LTO bitcode, another sanitizer or
  OpenMP runtime, `-mllvm`). An option in no row is refused too: the TU then gets no gcc candidate, and the
  attempt says which option stopped it.
- gcc's GNU-mode default `-ffp-contract=fast` fuses multiplies and adds across statements, which clang never
  does; unless the user chose a mode, gcc gets `-ffp-contract=off`.

Each candidate's label names the compiler and its version (`gcc 12.2.0 -O3`) and its recipe the full command, so
the evidence says which compiler made the served object. Objects of a C TU only: C has one ABI per target
(the System V psABI here), which gcc and clang both follow.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from coopt.agents.compiler.tools import Built, ToolError, _run, check_target
from coopt.agents.feedback import Feedback
from coopt.agents.levels import (
    AgentContext,
    Candidate,
    HotTU,
    JudgedAttempt,
    LevelAgent,
    Node,
    parent_id,
    start_job,
)
from coopt.journal.job import CompileJob

# Extra flags of the level's candidates, after the TU's own (translated) flags: the other compiler at -O3 first
# (its strongest standard lowering, as the flags level starts with -O3: on a small budget the first proposal may be
# the only one), then at the user's own optimization level.
LOWERINGS: tuple[tuple[str, ...], ...] = (("-O3",), ())


@dataclass(frozen=True)
class ArgRule:
    """One row of GCC_ARGS: an option (`exact`) or a family of options (a prefix), and what gcc gets of it."""

    option: str
    action: str  # keep, drop, refuse
    prefix: bool = False
    takes_value: bool = False  # the value is the next argument (-I dir, -include file)
    why: str = ""  # for refuse: the reason the attempt reports


class Untranslatable(ToolError):
    """The TU's own options cannot be given to this compiler with the same meaning: no row of this compiler can
    make a candidate for the TU."""


KEEP, DROP, REFUSE = "keep", "drop", "refuse"
# How the clang options of a journaled compile translate to gcc, sorted by option; the first matching row wins,
# exact rows before prefixes of the same text. Anything else is refused.
GCC_ARGS: tuple[ArgRule, ...] = (
    ArgRule("--target", REFUSE, prefix=True, why="cross-compiles for another target"),
    ArgRule("-D", KEEP, prefix=True),
    ArgRule("-D", KEEP, takes_value=True),
    ArgRule("-I", KEEP, prefix=True),
    ArgRule("-I", KEEP, takes_value=True),
    ArgRule("-O", KEEP, prefix=True),
    ArgRule("-Qunused-arguments", DROP),
    ArgRule("-U", KEEP, prefix=True),
    ArgRule("-U", KEEP, takes_value=True),
    ArgRule("-W", DROP, prefix=True),  # warnings, -Werror: diagnostics only (-Wa, -Wp, are rows of their own)
    ArgRule("-Wa,", KEEP, prefix=True),
    ArgRule("-Wp,", KEEP, prefix=True),
    ArgRule("-Xclang", REFUSE, why="passes options to clang's front end"),
    ArgRule("-fPIC", KEEP), ArgRule("-fPIE", KEEP),
    ArgRule("-fasynchronous-unwind-tables", KEEP),
    ArgRule("-fcf-protection", KEEP, prefix=True),
    ArgRule("-fcolor-diagnostics", DROP),
    ArgRule("-fcommon", KEEP),
    ArgRule("-fcoverage", REFUSE, prefix=True, why="coverage instrumentation has another runtime"),
    ArgRule("-fdata-sections", KEEP),
    ArgRule("-fdebug-prefix-map=", KEEP, prefix=True),
    ArgRule("-fdiagnostics", DROP, prefix=True),
    ArgRule("-fembed-bitcode", REFUSE, prefix=True, why="embeds LLVM bitcode"),
    ArgRule("-ferror-limit", DROP, prefix=True),
    ArgRule("-ffile-prefix-map=", KEEP, prefix=True),
    ArgRule("-ffp-contract=", KEEP, prefix=True),
    ArgRule("-ffreestanding", KEEP),
    ArgRule("-ffunction-sections", KEEP),
    ArgRule("-flto", REFUSE, prefix=True, why="an LTO object is compiler-specific bitcode"),
    ArgRule("-fmacro-prefix-map=", KEEP, prefix=True),
    ArgRule("-fmath-errno", KEEP),
    ArgRule("-fmessage-length", DROP, prefix=True),
    ArgRule("-fno-asynchronous-unwind-tables", KEEP),
    ArgRule("-fno-builtin", KEEP, prefix=True),
    ArgRule("-fno-color-diagnostics", DROP),
    ArgRule("-fno-common", KEEP),
    ArgRule("-fno-delete-null-pointer-checks", KEEP),
    ArgRule("-fno-math-errno", KEEP),
    ArgRule("-fno-omit-frame-pointer", KEEP),
    ArgRule("-fno-plt", KEEP),
    ArgRule("-fno-stack-protector", KEEP),
    ArgRule("-fno-strict-aliasing", KEEP),
    ArgRule("-fno-strict-overflow", KEEP),
    ArgRule("-fno-unwind-tables", KEEP),
    ArgRule("-fomit-frame-pointer", KEEP),
    ArgRule("-fopenmp", REFUSE, prefix=True, why="gcc's OpenMP runtime is another library"),
    ArgRule("-fpic", KEEP), ArgRule("-fpie", KEEP),
    ArgRule("-fprofile", REFUSE, prefix=True, why="profile instrumentation or profiles are clang's format"),
    ArgRule("-fsanitize", REFUSE, prefix=True, why="sanitizer runtimes differ"),
    ArgRule("-fsigned-char", KEEP),
    ArgRule("-fstack-clash-protection", KEEP),
    ArgRule("-fstack-protector", KEEP, prefix=True),
    ArgRule("-fstrict-aliasing", KEEP),
    ArgRule("-funsigned-char", KEEP),
    ArgRule("-funwind-tables", KEEP),
    ArgRule("-fvisibility=", KEEP, prefix=True),
    ArgRule("-fwrapv", KEEP),
    ArgRule("-g", KEEP, prefix=True),
    ArgRule("-idirafter", KEEP, takes_value=True),
    ArgRule("-imacros", KEEP, takes_value=True),
    ArgRule("-include", KEEP, takes_value=True),
    ArgRule("-iquote", KEEP, takes_value=True),
    ArgRule("-isystem", KEEP, takes_value=True),
    ArgRule("-m32", KEEP), ArgRule("-m64", KEEP),
    ArgRule("-march=", KEEP, prefix=True),
    ArgRule("-mllvm", REFUSE, why="passes options to LLVM"),
    ArgRule("-mtune=", KEEP, prefix=True),
    ArgRule("-pedantic", DROP, prefix=True),
    ArgRule("-pipe", DROP),
    ArgRule("-pthread", KEEP),
    ArgRule("-std=", KEEP, prefix=True),
    ArgRule("-target", REFUSE, why="cross-compiles for another target"),
    ArgRule("-w", DROP),
    ArgRule("-x", KEEP, takes_value=True),
)


def _rule(arg: str) -> ArgRule | None:
    exact = [r for r in GCC_ARGS if not r.prefix and r.option == arg]
    if exact:
        return exact[0]
    prefixed = [r for r in GCC_ARGS if r.prefix and arg.startswith(r.option)]
    return max(prefixed, key=lambda r: len(r.option)) if prefixed else None


def gcc_args(key_args: list[str]) -> list[str]:
    """The TU's own clang options as gcc must see them (GCC_ARGS), with -ffp-contract=off unless the user chose a
    mode; Untranslatable naming the first option that has no faithful gcc form."""
    out: list[str] = []
    it = iter(key_args)
    for arg in it:
        if not arg.startswith("-") or arg == "-":
            raise Untranslatable("gcc: unexpected argument %r among the compile's options" % arg)
        rule = _rule(arg)
        if rule is None:
            raise Untranslatable("gcc: %s has no translation to gcc (agents/compiler/othercc.py GCC_ARGS); the TU gets "
                            "no gcc candidate" % arg)
        if rule.action == REFUSE:
            raise Untranslatable("gcc: %s %s; the TU gets no gcc candidate" % (arg, rule.why))
        value = [next(it, "")] if rule.takes_value else []
        if rule.option == "-x" and value != ["c"]:
            raise Untranslatable("gcc: -x %s: only C TUs are lowered by another compiler" % value[0])
        if rule.action == KEEP:
            out += [arg, *value]
    if not any(a.startswith("-ffp-contract=") for a in out):
        out.append("-ffp-contract=off")
    return out


@dataclass(frozen=True)
class OtherCompiler:
    """An installed compiler other than the TU's: its path, family (gcc or clang) and version."""

    path: str
    family: str
    version: str

    @property
    def name(self) -> str:
        """How labels name it: `gcc 12.2.0`, `clang 19.1.7`."""
        return "%s %s" % (self.family, self.version)


_NAME = re.compile(r"(gcc|clang)(-\d+(\.\d+)*)?")
_VERSION = re.compile(r"(\d+\.\d+(\.\d+)?)")


def _output(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _target(machine: str) -> tuple[str, str]:
    """(architecture, OS-ABI) of a target triple: x86_64-pc-linux-gnu and x86_64-linux-gnu are the same target."""
    parts = machine.split("-")
    return parts[0], "-".join(parts[-2:]) if len(parts) >= 3 else parts[-1]


def identify(path: str) -> OtherCompiler | None:
    """The compiler at `path`, or None when it is neither gcc nor clang (a wrapper, a cross compiler's alias)."""
    text = _output([path, "--version"])
    first = text.splitlines()[0] if text else ""
    if "clang version" in first:
        m = re.search(r"clang version (\d+\.\d+\.\d+)", first)
        return OtherCompiler(path, "clang", m.group(1)) if m else None
    if "Free Software Foundation" in text:
        version = _output([path, "-dumpfullversion"]) or _output([path, "-dumpversion"])
        return OtherCompiler(path, "gcc", version) if _VERSION.fullmatch(version) else None
    return None


def find_compilers(own: str) -> tuple[list[OtherCompiler], list[str]]:
    """Installed compilers that can lower a TU built by `own`, one per binary, and one line per compiler skipped
    and why. Candidates are `gcc`, `gcc-N`, `clang`, `clang-N` on PATH; `own` itself and anything resolving to the
    same binary or release are not others; one for another target is skipped."""
    own_path = shutil.which(own) if "/" not in own else own
    own_real = os.path.realpath(own_path) if own_path else ""
    own_target = _target(_output([own, "-dumpmachine"]))
    own_cc = identify(own_path or own)
    seen = {own_real}
    found: list[OtherCompiler] = []
    skipped: list[str] = []
    names: set[str] = set()
    for d in os.environ.get("PATH", "").split(os.pathsep):
        try:
            names.update(n for n in os.listdir(d or ".") if _NAME.fullmatch(n))
        except OSError:
            continue
    for name in sorted(names):
        path = shutil.which(name)
        real = os.path.realpath(path) if path else ""
        if not real or real in seen:
            continue
        seen.add(real)
        cc = identify(path or name)
        if cc is None:
            skipped.append("%s: not a gcc or clang this level knows" % name)
        elif own_cc is not None and (cc.family, cc.version) == (own_cc.family, own_cc.version):
            skipped.append("%s: the same release as %s (%s)" % (name, own, cc.name))
        elif _target(_output([real, "-dumpmachine"])) != own_target:
            skipped.append("%s: targets another machine than %s" % (name, own))
        else:
            found.append(cc)
    found.sort(key=lambda c: (c.family != "gcc", c.version))
    return found, skipped


def lower(job: CompileJob, cc: OtherCompiler, extra: list[str], out: str, assume_cpu: bool = False) -> Built:
    """The TU's unchanged source compiled by `cc` with the job's own options (translated for gcc) and `extra` after
    them; ToolError when they cannot be given to it faithfully or the compile fails."""
    if job.language != "c":
        raise Untranslatable("%s: only C TUs are lowered by another compiler (this one is %s)"
                             % (cc.name, job.language))
    check_target(extra, assume_cpu)
    args = gcc_args(job.key_args) if cc.family == "gcc" else list(job.key_args)
    cmd = [cc.path, *args, *extra, "-c", job.source, "-o", os.path.abspath(out)]
    _run(cmd, job.cwd, job.subprocess_env())
    label = " ".join([cc.name, *extra])
    return Built("compilers", label, os.path.abspath(out), [cmd], os.path.abspath(out), list(extra))


class CompilersAgent:
    """Each other installed compiler (gcc first) on each hot TU, at -O3 and at the TU's own flags (LOWERINGS)."""

    level = "compilers"
    proposer = "compiler-tools/compilers"

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.compilers: list[OtherCompiler] | None = None
        self.skipped: list[str] = []
        self.done: dict[tuple[str, int], set[str]] = {}  # (TU, lineage node) -> labels tried
        # (TU, lineage node, compiler) -> why its flags cannot be given to it
        self.refused: dict[tuple[str, int, str], str] = {}

    def _found(self) -> list[OtherCompiler]:
        if self.compilers is None:
            own = self.ctx.hot[0].job.compiler if self.ctx.hot else "clang"
            self.compilers, self.skipped = find_compilers(own)
        return self.compilers

    def _pending(self, tu: HotTU, parent: Node | None) -> list[tuple[OtherCompiler, tuple[str, ...]]]:
        if parent is not None and parent.job is None:
            return []
        own = set(start_job(tu, parent).key_args)
        done = self.done.get((tu.object, parent_id(parent)), set())
        return [(cc, extra) for cc in self._found() for extra in LOWERINGS
                if (not extra or not set(extra) <= own) and " ".join([cc.name, *extra]) not in done
                and (tu.object, parent_id(parent), cc.path) not in self.refused]

    def unavailable(self) -> str:
        if self.ctx.hot and all(h.job.language != "c" for h in self.ctx.hot):
            return "the hot TUs are not C; only C TUs are lowered by another compiler"
        if not self._found():
            return "no other compiler installed (gcc, clang-N)%s; install one, e.g. apt-get install gcc" % (
                ": " + "; ".join(self.skipped) if self.skipped else "")
        return ""

    def has_more(self, tu: HotTU, parent: Node | None = None) -> bool:
        return tu.job.language == "c" and bool(self._pending(tu, parent))

    def skip(self, tu: HotTU, attempt: JudgedAttempt) -> None:
        """A resumed run: `attempt` (an AttemptRecord of the earlier run) was judged; do not propose it again."""
        self.done.setdefault((tu.object, attempt.parent), set()).add(attempt.label)

    def learn(self, tu: HotTU, feedback: Feedback) -> None:
        """The compilers and their rows are a fixed table: nothing to learn."""

    def propose(self, tu: HotTU, out_dir: str, parent: Node | None = None) -> Candidate:
        """The next other compiler's lowering of `parent`'s C code (None: the TU's journaled source)."""
        cc, extra = self._pending(tu, parent)[0]
        label = " ".join([cc.name, *extra])
        key = (tu.object, parent_id(parent))
        done = self.done.setdefault(key, set())
        done.add(label)
        stem = os.path.splitext(tu.name)[0]
        out = os.path.join(out_dir, "%s-n%d-%s%d.o" % (stem, key[1], cc.family, len(done)))
        try:
            built = lower(start_job(tu, parent), cc, list(extra), out, assume_cpu=self.ctx.settings.assume_cpu)
        except Untranslatable as exc:  # no other row of this compiler can do better for this code
            self.refused[(tu.object, key[1], cc.path)] = str(exc)
            raise
        return Candidate(built, self.proposer)


def make_agent(level: str, llm: str, ctx: AgentContext) -> LevelAgent:
    """The factory of the `compilers` level (agents/registry.py): no LLM."""
    return CompilersAgent(ctx)
