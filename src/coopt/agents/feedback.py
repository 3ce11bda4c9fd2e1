"""What the judge tells an LLM level agent about its candidate, and how that reads to the model.

A `Feedback` is made in two places: by the level itself when the verifier rejects a rewrite inside a proposal
(`from_evidence`: which check, the reproducer's input, what the original and the candidate did), and by the
optimizer after the whole program judged a handed-over candidate (a project test that failed, the measured
speed-up with its interval, the micro-benchmark on the test-generation agent's speed inputs, or a proposal that
came to nothing). The agent puts `text()` into the function's conversation as the next user turn, so the next
answer is written knowing what went wrong or how much the last one paid. Everything is trimmed: a reproducer of
a megabyte input must not eat the model's context.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from coopt.verify.evidence import Evidence, Interval
from coopt.verify.verdict import Reason

# Characters of one field (an input, an output) the model is shown; the rest is cut with a note.
FIELD_CHARS = 400


class Kind(str, enum.Enum):
    """What the judgment was about."""

    REJECTED = "rejected"  # a check showed the candidate wrong (or producing the same object as before)
    TIMED = "timed"  # the candidate was measured: a speed-up with its interval
    NO_CANDIDATE = "no_candidate"  # the proposal yielded nothing the judge could look at


# Which check caught it, by the verifier's reason; the differential harness unless named here.
CHECK_OF_REASON: dict[Reason, str] = {
    Reason.COMPILE: "compiler",
    Reason.WARNING: "compiler warnings",
    Reason.INTERFACE: "interface check",
    Reason.SANITIZER: "sanitizer",
    Reason.TEST_OUTPUT: "project test",
    Reason.NOT_FASTER: "benchmark",
    Reason.FORBIDDEN_CALL: "screen",
    Reason.FORBIDDEN_INSTRUCTION: "screen",
    Reason.OUTPUT: "screen",
    Reason.CONTAINMENT: "sandbox",
}
FUZZ_SOURCES = ("libfuzzer", "fuzz")


def trim(text: str, limit: int = FIELD_CHARS) -> str:
    """`text` cut to `limit` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return "%s... (%d more characters)" % (text[:limit], len(text) - limit)


@dataclass(frozen=True)
class Feedback:
    """One judgment of one candidate, as the agent that proposed it learns of it."""

    kind: Kind
    label: str = ""  # which candidate ("count_upper sample 1"), as Candidate.built.label says
    check: str = ""  # which check decided: harness, sanitizer, fuzzer, project test, screen, compiler, benchmark
    detail: str = ""  # one line: the verdict's own words
    inputs: str = ""  # the reproducer's input, in words
    source: str = ""  # the input source that made it (edge, llm, libfuzzer)
    speedup: Interval | None = None  # whole-program A/B: ratio with its interval
    micro: Interval | None = None  # the function's micro-benchmark on the speed inputs
    min_gain: float = 0.0
    profile: str = ""  # where the candidate spends its time (per-line or per-instruction samples), if known

    @classmethod
    def from_evidence(cls, ev: Evidence, label: str = "") -> Feedback:
        """The verifier's evidence on a rejected (or undecided) rewrite as feedback."""
        v = ev.verdict
        repro = v.reproducer
        source = repro.source if repro else ""
        if v.reason is None:
            check = "verifier"
        elif source in FUZZ_SOURCES and v.reason not in CHECK_OF_REASON:
            check = "fuzzer"
        else:
            check = CHECK_OF_REASON.get(v.reason, "harness")
        return cls(Kind.REJECTED, label, check, v.line(), repro.input_text if repro else "", source,
                   micro=ev.micro)

    def text(self) -> str:
        """The user turn that tells the model, in a few lines."""
        if self.kind is Kind.TIMED and self.speedup is not None:
            iv = self.speedup
            lines = ["Your last version (%s) behaves like the original. Measured on the whole program it ran "
                     "%.3fx as fast as the original (95%% interval %.3f to %.3f; kept only when the interval's "
                     "lower end reaches %.2f)." % (self.label or "the candidate", iv.ratio, iv.low, iv.high,
                                                    self.min_gain)]
            if self.micro is not None:
                lines.append("On the speed inputs alone, the function itself ran %.3fx as fast (%.3f to %.3f)."
                             % (self.micro.ratio, self.micro.low, self.micro.high))
            if self.profile:
                lines.append("Where it now spends its time:\n```\n%s\n```" % trim(self.profile, 4 * FIELD_CHARS))
            lines.append("Write a faster version still, or the same idea done better. Reply in the same format.")
            return "\n".join(lines)
        if self.kind is Kind.NO_CANDIDATE:
            return ("That gave no candidate: %s\nReply with a complete rewrite in the format asked for."
                    % trim(self.detail))
        if self.check == "verifier":  # no reason: the verifier could not decide (timeout, inputs, harness)
            head = "Your last version (%s) could not be shown to behave like the original." % (
                self.label or "the candidate")
        else:
            head = "Your last version (%s) is wrong: the %s rejected it." % (self.label or "the candidate",
                                                                            self.check or "judge")
        lines = [head, trim(self.detail)]
        if self.inputs:
            lines.append("The input that shows it%s: %s" % (" (found by %s)" % self.source if self.source else "",
                                                            trim(self.inputs)))
        lines.append("Fix it so it behaves exactly like the original on every input; reply in the same format.")
        return "\n".join(lines)

    def line(self) -> str:
        """One line for logs and notes."""
        if self.kind is Kind.TIMED and self.speedup is not None:
            return "timed: %.3fx [%.3f, %.3f]" % (self.speedup.ratio, self.speedup.low, self.speedup.high)
        return "%s: %s%s" % (self.kind.value, "%s: " % self.check if self.check else "", trim(self.detail, 200))
