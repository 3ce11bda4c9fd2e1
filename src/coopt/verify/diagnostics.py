"""New compiler warnings that matter: a candidate may not add any.

Both sides compile with the same warning flags; the warnings are counted per `-W` flag and the candidate is
rejected when it has more of a flag in MATTERS than the original (uninitialized reads, bounds, lost returns,
conversions that change values). Style warnings never count.
"""

from __future__ import annotations

from collections import Counter

WARNING_FLAGS = ("-Wall", "-Wextra", "-Wconditional-uninitialized", "-Warray-bounds-pointer-arithmetic")

MATTERS = frozenset(
    {
        "-Wuninitialized",
        "-Wsometimes-uninitialized",
        "-Wconditional-uninitialized",
        "-Warray-bounds",
        "-Warray-bounds-pointer-arithmetic",
        "-Wreturn-type",
        "-Wimplicit-function-declaration",
        "-Wint-conversion",
        "-Wincompatible-pointer-types",
        "-Wshift-count-overflow",
        "-Wshift-count-negative",
        "-Wshift-negative-value",
        "-Winteger-overflow",
        "-Wreturn-stack-address",
        "-Wdivision-by-zero",
        "-Wformat",
        "-Wformat-security",
        "-Wsizeof-pointer-memaccess",
        "-Wstring-plus-int",
        "-Wtautological-compare",
        "-Wtautological-constant-out-of-range-compare",
        "-Wconstant-conversion",
        "-Wvarargs",
        "-Wimplicit-int",
        "-Wstatic-in-inline",
    }
)


def warning_counts(stderr: str) -> Counter[str]:
    """`-Wflag` -> number of warnings in clang's diagnostics."""
    counts: Counter[str] = Counter()
    for line in stderr.splitlines():
        if ": warning: " not in line or not line.rstrip().endswith("]"):
            continue
        flag = line.rstrip()[line.rstrip().rfind("[") + 1 : -1].split(",")[0]
        counts[flag] += 1
    return counts


def new_warnings(original: str, candidate: str) -> list[str]:
    """The candidate's diagnostics lines for flags that matter and that it has more of than the original."""
    before, after = warning_counts(original), warning_counts(candidate)
    worse = {f for f in MATTERS if after[f] > before[f]}
    return [ln.strip() for ln in candidate.splitlines() if ": warning: " in ln and any("[%s" % f in ln for f in worse)]
