"""The closed set of verification outcomes, lit-style: each code knows whether it lets a candidate in.

"The harness could not decide" (UNSUPPORTED, INCONCLUSIVE, TIMEOUT) is kept apart from "the candidate is wrong"
(REJECTED): only REJECTED carries a reason and a reproducer, and only ACCEPTED may enter the cache.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Code(enum.Enum):
    """Verdict codes. `value` is the name written in reports and JSON."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    UNSUPPORTED = "unsupported"
    INCONCLUSIVE = "inconclusive"
    TIMEOUT = "timeout"

    @property
    def accepted(self) -> bool:
        return self is Code.ACCEPTED

    @property
    def is_failure(self) -> bool:
        """True when the candidate was shown to be wrong or not better (as opposed to: could not decide)."""
        return self is Code.REJECTED


class Reason(enum.Enum):
    """Why a candidate was rejected. The values are stable: the test corpus manifest names them."""

    COMPILE = "compile"  # the candidate does not compile with the original's flags
    WARNING = "warning"  # the candidate adds compiler warnings that matter (uninitialized, array bounds, ...)
    INTERFACE = "interface"  # a function's signature or an exported symbol changed or went missing
    RETURN_VALUE = "return-value"  # same input, different return value
    MEMORY = "memory"  # same input, different bytes reachable through a pointer argument
    GLOBAL = "global"  # same input, different bytes in a global the functions write
    CRASH = "crash"  # the candidate died on an input the original handles
    SANITIZER = "sanitizer"  # ASan or UBSan reported the candidate on an input the original handles cleanly
    HANG = "hang"  # the candidate ran past the per-input time limit where the original did not
    TEST_OUTPUT = "test-output"  # the project's test hook gave other output than with the original
    PROGRAM_OUTPUT = "program-output"  # the whole program differs on a generated run (arguments, stdin, files)
    NOT_FASTER = "not-faster"  # the speed-up's confidence interval lies below min_gain
    # The static screen (before anything runs): the candidate reaches what the original cannot.
    FORBIDDEN_CALL = "forbidden-call"  # an undefined symbol the original never references, not on the allowlist
    FORBIDDEN_INSTRUCTION = "forbidden-instruction"  # syscall/int 0x80/sysenter or inline asm the original lacks
    OUTPUT = "output"  # the candidate wrote to stdout/stderr (or the harness channel) what the original did not
    CONTAINMENT = "containment"  # the candidate tried to leave its sandbox (files, processes, network) and was stopped


@dataclass(frozen=True)
class Reproducer:
    """What showed the difference: the function, the input in words and as bytes, and how to run it again."""

    function: str
    input_text: str
    input_hex: str = ""
    command: str = ""
    directory: str = ""
    source: str = ""  # the input source that made the input ("edge", "libfuzzer", ...)
    index: int = -1  # the input's position in the run that showed it (inputs run before it, in that build)


@dataclass(frozen=True)
class Verdict:
    """One outcome. `reason` and `reproducer` are set for REJECTED; `detail` is one human-readable line."""

    code: Code
    detail: str = ""
    reason: Reason | None = None
    reproducer: Reproducer | None = None

    @classmethod
    def accepted(cls, detail: str = "") -> Verdict:
        return cls(Code.ACCEPTED, detail)

    @classmethod
    def rejected(cls, reason: Reason, detail: str, reproducer: Reproducer | None = None) -> Verdict:
        return cls(Code.REJECTED, detail, reason, reproducer)

    @classmethod
    def unsupported(cls, detail: str) -> Verdict:
        return cls(Code.UNSUPPORTED, detail)

    @classmethod
    def inconclusive(cls, detail: str) -> Verdict:
        return cls(Code.INCONCLUSIVE, detail)

    @classmethod
    def timeout(cls, detail: str) -> Verdict:
        return cls(Code.TIMEOUT, detail)

    def line(self) -> str:
        """One line for humans: `REJECTED (return-value): ...`."""
        head = self.code.name
        if self.reason is not None:
            head += " (%s)" % self.reason.value
        return "%s: %s" % (head, self.detail) if self.detail else head
