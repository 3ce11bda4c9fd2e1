"""An LLM level's candidate function through the verifier, the same way for the source, IR and assembly levels:
the TU's own flags and compiler, the run's float tolerance and time limit, the inputs of the test-generation agent
next to the built-in generators, and the rest of the program linked in when the TU calls into it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

from coopt.agents.optimize_levels import AgentContext, HotTU
from coopt.agents.source_context import absolute_flags, clang_for
from coopt.verify.evidence import Evidence


class CandidateChecker:
    """Verifies candidates of one run; remembers per TU what the verifier must link with it."""

    def __init__(self, ctx: AgentContext, notes: list[str]) -> None:
        self.ctx = ctx
        self.notes = notes  # the agent's notes: where a TU's rest of the program could not be had
        self._rest: dict[str, list[str]] = {}  # TU object -> what the verifier links with it

    def verify(self, tu: HotTU, function: str, artifact: str, sources: Sequence[object] = ()) -> Evidence:
        """The verifier's evidence on `artifact` (.c, .ll or .s) as a replacement of `function` in `tu`."""
        from coopt.verify.api import VerifyInputError, VerifyOptions, verify
        from coopt.verify.verdict import Verdict

        base = VerifyOptions()
        # The built-in generator keeps its full share: merged() splits max_inputs evenly between the sources.
        options = VerifyOptions(max_inputs=base.max_inputs * (1 + len(sources)),
                                total_timeout_s=min(base.total_timeout_s, self.ctx.timeout_s),
                                input_sources=tuple(sources), clang=clang_for(tu.job),  # type: ignore[arg-type]
                                fp_tolerance=self.ctx.float_tolerance, fuzz_seconds=self.ctx.fuzz_seconds)
        try:
            return verify(tu.job.source_path, artifact, [function], absolute_flags(tu.job), options=options,
                          link_with=self.rest_of_program(tu))
        except VerifyInputError as exc:
            return Evidence(tu.job.source_path, artifact, Verdict.unsupported(str(exc)))

    def rest_of_program(self, tu: HotTU) -> list[str]:
        """The program's other objects and libraries when the TU calls into them (the harness links them), else
        nothing (the harness then also runs MSan, which needs every linked object instrumented)."""
        if not self.ctx.link:  # an agent used without a program (its own tests): the TU alone
            return []
        if tu.object not in self._rest:
            from coopt.agents.relink import RelinkError, defines_what_obj_needs, rest_of_program

            work = os.path.join(self.ctx.workdir, "rest-of-program", "%d" % len(self._rest))
            try:
                rest = rest_of_program(self.ctx.link, tu.object, work)
                self._rest[tu.object] = rest if defines_what_obj_needs(tu.job.output_path, rest) else []
            except (RelinkError, OSError, subprocess.SubprocessError) as exc:
                self.notes.append("%s: the rest of the program cannot be linked into the verifier (%s)" % (
                    tu.name, exc))
                self._rest[tu.object] = []
        return self._rest[tu.object]
