"""The option table and the reasons: sorted, unique, no contradictory flag pairs, every reason described."""

from __future__ import annotations

import pytest

from coopt.wrapper import options as opt
from coopt.wrapper.reasons import DESCRIPTIONS, Reason

ROWS = opt.OPTIONS
ALL_REASONS = {v for k, v in vars(Reason).items() if k.isupper()}

# Flag pairs that can never hold together on one row, and why.
FORBIDDEN_PAIRS = [
    (opt.DEP, opt.OUTPUT, "a dependency option is not the object output"),
    (opt.NOT_IN_KEY, opt.NATIVE, "-march=native decides the code; it must be keyed"),
    (opt.NOT_IN_KEY, opt.DEBUG, "debug info changes the object"),
    (opt.NOT_IN_KEY, opt.LANGUAGE, "-x decides how the source compiles"),
    (opt.OUTPUT, opt.LANGUAGE, "-o is not -x"),
    (opt.COMPILE_ONLY, opt.TAKES_ARG, "-c takes no argument"),
]
# Flags that only mean something for an option the wrapper handles itself, never on a pass-through row.
HANDLED_ONLY = opt.NOT_IN_KEY | opt.DEP | opt.OUTPUT | opt.LANGUAGE | opt.COMPILE_ONLY | opt.NATIVE
HANDLED_ONLY |= opt.DEBUG


def test_rows_are_sorted_and_unique() -> None:
    names = [row[0] for row in ROWS]
    assert names == sorted(names), [a for a, b in zip(names, sorted(names), strict=True) if a != b][:3]
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})


@pytest.mark.parametrize("row", ROWS, ids=[row[0] for row in ROWS])
def test_row_is_well_formed(row: tuple[str, int, str | None]) -> None:
    name, flags, reason = row
    assert name.startswith("-") and name.strip() == name
    assert flags & ~(opt.TAKES_ARG | opt.JOINED | HANDLED_ONLY) == 0, "unknown flag bits"
    for a, b, why in FORBIDDEN_PAIRS:
        assert not (flags & a and flags & b), why
    if reason is not None:
        assert reason in ALL_REASONS, f"reason {reason!r} is not a Reason"
        assert not flags & HANDLED_ONLY, f"a pass-through row cannot also be handled ({reason})"
    if flags & opt.DEP:
        assert flags & opt.NOT_IN_KEY, "dependency-file options never change the object"
    if flags & opt.OUTPUT:
        assert flags & opt.NOT_IN_KEY and flags & opt.TAKES_ARG
    if name.endswith("="):
        assert flags & opt.JOINED and not flags & opt.TAKES_ARG, "NAME= only exists joined"


def test_every_reason_has_a_description_and_names_are_counter_safe() -> None:
    assert set(DESCRIPTIONS) == ALL_REASONS
    for reason, text in DESCRIPTIONS.items():
        assert text.strip() and "\n" not in text
        # Reasons are stats counter names: one token, lower case, no prefix that stats reads as hit or miss.
        assert reason.replace("_", "").isalnum() and reason.islower()
        assert not reason.startswith(("hit", "miss"))
    assert len(set(ALL_REASONS)) == len([k for k in vars(Reason) if k.isupper()]), "two Reasons share a name"


def test_table_reasons_are_all_reachable_from_lookup() -> None:
    # A row shadowed by a longer joined prefix, or by an exact row, would never be used.
    for name, flags, _reason in ROWS:
        row, value = opt.lookup(name)
        assert row is not None and row[0] == name
        if flags & opt.JOINED:
            row, value = opt.lookup(name + "x")
            assert row is not None and row[0] == name and value == "x"


@pytest.mark.parametrize(
    "arg, name, value",
    [
        ("-fprofile-instr-use=a.prof", "-fprofile-instr-use", "a.prof"),
        ("-fprofile-use", "-fprofile-use", None),
        ("-Iinclude", "-I", "include"),
        ("--sysroot=/opt/sys", "--sysroot", "/opt/sys"),
        ("-fdiagnostics-color=always", "-fdiagnostics-color", "always"),
        ("-gsplit-dwarf", "-gsplit-dwarf", None),
        ("-g3", "-g", "3"),
        ("-MMD", "-MMD", None),
        ("-MFdeps.d", "-MF", "deps.d"),
        ("-Wp,-MD,x.d", "-Wp,", "-MD,x.d"),
        ("-O2", None, None),
    ],
)
def test_lookup_picks_the_longest_matching_row(arg: str, name: str | None, value: str | None) -> None:
    row, got = opt.lookup(arg)
    assert (row[0] if row else None) == name
    assert got == value
