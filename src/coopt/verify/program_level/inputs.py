"""Inputs of a whole program: command-line arguments, standard input, files in its working directory.

When the code a rewrite changed is `main` (or a function the differential harness cannot call), the judge runs the
program itself: on the project's tests, on the runs the test-generation agent proposes (`ProgramInput`), and, when
the program reads standard input, on mutations of the stdin it was given (`stdin_mutations`, a small deterministic
fuzzer: the bytes of a run's stdin flipped, cut, repeated, numbers swapped for boundary values).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

# Undefined symbols by which an object reads its standard input.
STDIN_READERS = frozenset({
    "stdin", "getchar", "getchar_unlocked", "scanf", "__isoc99_scanf", "__isoc23_scanf", "gets", "read", "getline",
    "vscanf", "__isoc99_vscanf",
})
MAX_FILE_BYTES = 1 << 20
MAX_ARGS = 64
# Numbers a mutation may put in place of one in the input: the edges where rewrites of parsing and loops break.
BOUNDARY_NUMBERS = (b"0", b"1", b"-1", b"2", b"7", b"255", b"256", b"65536", b"2147483647", b"-2147483648",
                    b"4294967296", b"1000000")
_NUMBER = re.compile(rb"-?\d+")


@dataclass(frozen=True)
class ProgramInput:
    """One run of the program: its arguments (after the program's name), its stdin, and files it may read, written
    into its working directory first (name -> content; plain names, no directories)."""

    args: tuple[str, ...] = ()
    stdin: bytes = b""
    files: tuple[tuple[str, bytes], ...] = ()
    origin: str = ""  # who proposed it: "llm", "fuzz", ...

    def describe(self, limit: int = 160) -> str:
        """`args ['-n', '3'], stdin b'1 2\\n'` for a reproducer line."""
        parts = ["args %r" % list(self.args)]
        if self.stdin:
            parts.append("stdin %r" % self.stdin[:limit])
        if self.files:
            parts.append("files %s" % ", ".join("%s (%d bytes)" % (n, len(b)) for n, b in self.files))
        return ", ".join(parts)


def safe_name(name: str) -> bool:
    """A file name a run may write into its own directory: one plain component."""
    return bool(name) and "/" not in name and name not in (".", "..") and "\0" not in name and len(name) < 128


def reads_stdin(undefined: Sequence[str]) -> bool:
    """Whether an object with these undefined symbols reads standard input."""
    return any(s in STDIN_READERS for s in undefined)


def _mutate(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return rng.choice(BOUNDARY_NUMBERS) + b"\n"
    how = rng.randrange(6)
    i = rng.randrange(len(data))
    if how == 0:  # one bit
        return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]
    if how == 1:  # cut the tail: inputs that end early
        return data[:i]
    if how == 2:  # a chunk repeated: longer inputs, runs of the same token
        j = min(len(data), i + rng.randrange(1, 32))
        return data[:j] + data[i:j] * rng.randrange(1, 4) + data[j:]
    if how == 3:  # a chunk dropped
        return data[:i] + data[min(len(data), i + rng.randrange(1, 16)):]
    numbers = list(_NUMBER.finditer(data))
    if how == 4 and numbers:  # a number swapped for a boundary value
        m = rng.choice(numbers)
        return data[:m.start()] + rng.choice(BOUNDARY_NUMBERS) + data[m.end():]
    return data[:i] + bytes([rng.choice(b" \n\t0-9azAZ\xff\x00")]) + data[i:]  # one byte inserted


def stdin_mutations(seeds: Sequence[ProgramInput], count: int, seed: int = 0) -> list[ProgramInput]:
    """Up to `count` runs whose stdin is a mutation (one to three steps) of a seed's stdin, arguments and files
    kept; deterministic for a given `seed`, no duplicates of each other or of the seeds."""
    if not seeds or count <= 0:
        return []
    rng = random.Random(seed)
    seen = {s.stdin for s in seeds}
    out: list[ProgramInput] = []
    for _ in range(count * 8):
        if len(out) >= count:
            break
        base = rng.choice(list(seeds))
        data = base.stdin
        for _ in range(rng.randrange(1, 4)):
            data = _mutate(data, rng)
        if data in seen:
            continue
        seen.add(data)
        out.append(ProgramInput(base.args, data, base.files, "fuzz"))
    return out
