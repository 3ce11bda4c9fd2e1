"""How the LLM levels hand a candidate to the judge: one request per candidate through the run's behaviour check
(the original TU, the rewritten artifact, the function, the TU's flags and compiler, the test-generation agent's
inputs, the rest of the program when the TU calls into it), and which functions the harness cannot drive."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

from coopt.agents.levels import AgentContext, HotTU, LevelUnavailable
from coopt.agents.rewrite.context import absolute_flags, clang_for
from coopt.agents.testgen import LLMInputSource
from coopt.journal.job import CompileJob
from coopt.verify.behaviour import BehaviourRequest
from coopt.verify.evidence import Evidence
from coopt.verify.program_level.inputs import ProgramInput


class CandidateChecker:
    """Verifies candidates of one run; remembers per TU what the verifier must link with it."""

    def __init__(self, ctx: AgentContext, notes: list[str]) -> None:
        self.ctx = ctx
        self.notes = notes  # the agent's notes: where a TU's rest of the program could not be had
        self._rest: dict[str, list[str]] = {}  # TU object -> what the verifier links with it

    def verify(self, tu: HotTU, function: str, artifact: str, sources: Sequence[object] = (),
               program_inputs: Sequence[ProgramInput] = ()) -> Evidence:
        """The verifier's evidence on `artifact` (.c, .ll or .s) as a replacement of `function` in `tu`, through the
        run's `check` (the judge's settings are in it, not here). With a program-level judge, the request names the
        object the candidate replaces in the program, and the program runs to compare for what the harness cannot
        drive. A source with speed inputs (the test-generation agent's) also has the sides timed on them: the
        evidence's `micro`."""
        if self.ctx.check is None:
            raise LevelUnavailable("no behaviour check was given to the %s agent (AgentContext.check)" % tu.name)
        speed = [s.speed_source() for s in sources if isinstance(s, LLMInputSource)]
        return self.ctx.check(BehaviourRequest(tu.job.source_path, artifact, [function], absolute_flags(tu.job),
                                               clang_for(tu.job), self.rest_of_program(tu), tuple(sources),
                                               replaces=tu.object if self.ctx.program_level else "",
                                               program_inputs=tuple(program_inputs),
                                               speed_sources=tuple(s for s in speed if s is not None)))

    def rest_of_program(self, tu: HotTU) -> list[str]:
        """The program's other objects and libraries when the TU calls into them (the harness links them), else
        nothing (the harness then also runs MSan, which needs every linked object instrumented)."""
        if not self.ctx.link:  # an agent used without a program (its own tests): the TU alone
            return []
        if tu.object not in self._rest:
            from coopt.journal.relink import RelinkError, defines_what_obj_needs, rest_of_program

            work = os.path.join(self.ctx.workdir, "rest-of-program", "%d" % len(self._rest))
            try:
                rest = rest_of_program(self.ctx.link, tu.object, work)
                self._rest[tu.object] = rest if defines_what_obj_needs(tu.job.output_path, rest) else []
            except (RelinkError, OSError, subprocess.SubprocessError) as exc:
                self.notes.append("%s: the rest of the program cannot be linked into the verifier (%s)" % (
                    tu.name, exc))
                self._rest[tu.object] = []
        return self._rest[tu.object]


def undrivable(job: CompileJob, function: str) -> str:
    """Why the differential harness cannot call `function` ("" when it can): without a program-level judge,
    asking the model about such a function would only spend tokens."""
    from coopt.verify.signatures import SignatureError, parse

    if function == "main":
        return "it is the program's main: only a run of the whole program can judge it"

    try:
        tu = parse(job.source_path, absolute_flags(job), clang_for(job))
    except SignatureError as exc:
        return "the TU does not parse: %s" % exc
    if function not in tu.functions and function not in tu.undrivable:
        return ""  # extract() will say what is wrong with it
    why = tu.undrivable.get(function, "")
    if not why and tu.functions[function].static and not _emitted(job, function):
        # The harness calls a function through its symbol in the object built with the TU's own flags; a static
        # function inlined into every caller has none, in the original's object as in any rewrite's.
        why = "it is static and inlined into every caller: the TU's object has no symbol for it"
    return why


def _emitted(job: CompileJob, function: str) -> bool:
    """Whether the TU compiled with its own flags defines a symbol `function` (True when that cannot be told: the
    verifier then says what it finds)."""
    import tempfile

    from coopt.toolchain import ToolchainError, find_toolchain
    from coopt.verify.differential.build import symbols

    with tempfile.TemporaryDirectory(prefix="coopt-emitted-") as d:
        obj = os.path.join(d, "tu.o")
        try:
            tc = find_toolchain(clang_for(job))
            subprocess.run(job.replay_command(job.source_path, obj), cwd=job.cwd, env=job.subprocess_env(),
                           capture_output=True, check=True, timeout=300)
            return function in symbols(tc, obj)  # the verifier's own reading of the object
        except (OSError, subprocess.SubprocessError, ToolchainError):
            return True
