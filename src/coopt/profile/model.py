"""The profile file: what ran, how many samples, and where they fell (TUs, functions, and outside journaled code).

The JSON form is versioned (`PROFILE_VERSION`) and documented field by field in docs/profile.md. Writers emit
sorted keys and rankings sorted by share, so two runs of the same workload differ only in their numbers.
Readers accept any file whose version they know and say clearly when they do not.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from coopt.profile.errors import ProfileError

PROFILE_FORMAT = "coopt-profile"
# Bump when a field changes meaning or disappears; adding an optional field does not need a bump.
PROFILE_VERSION = 1

# Why samples are outside journaled code. The keys are the values of `OutsideEntry.reason`.
OUTSIDE_REASONS: dict[str, str] = {
    "kernel": "in the kernel (system calls, page faults, interrupts)",
    "not-journaled": "in a function no journaled object defines (libc, other libraries, start-up code)",
    "different-build": "a journaled object defines the name, but the code that ran differs (rebuilt since, "
    "or another copy of the library was loaded)",
    "unresolved": "perf could not name the function (stripped binary, JIT code)",
    "ambiguous": "several journaled TUs define this function and nothing in the binary tells them apart",
}

# How a function was tied to its TU; the keys are the values of `FunctionEntry.how`.
HOW: dict[str, str] = {
    "symbol": "the only journaled definition of the name, same size as the symbol in the binary",
    "size": "several TUs define the name; only one definition has the size of the symbol that ran",
    "link": "several TUs define the name; only one was an input of the journaled link of the binary",
    "dwarf": "several TUs define the name; the binary's DWARF compile unit at that address names the source",
    "file-symbol": "several TUs define the name; the binary's STT_FILE symbol before it names the source",
    "name": "the binary was not readable here: matched by name alone",
}
MAX_LINES = 200  # per-line samples kept per function (the hottest lines)


@dataclass
class Workload:
    """Where the samples came from: a recorded command, a perf.data file, perf script text, or a merge."""

    kind: str  # "record", "perf-data", "perf-script" or "merge"
    command: list[str] | None = None
    cwd: str | None = None
    exit_code: int | None = None
    input: str | None = None  # the perf.data or perf script file that was read
    seconds: float | None = None  # wall time of the recorded command


@dataclass
class TUEntry:
    """One translation unit: a journaled compile, identified by the object it wrote."""

    object: str
    source: str
    compile: dict[str, Any]
    samples: int
    share: float
    children_samples: int | None = None
    children_share: float | None = None
    library_samples: int | None = None
    library_share: float | None = None

    @property
    def weight(self) -> float:
        """The share a rewrite of this TU can act on: its own code plus the library calls it makes directly."""
        return self.share + (self.library_share or 0.0)


@dataclass
class FunctionEntry:
    """One function of a journaled TU. `samples` are self samples (the function was the leaf); `children_*`
    count samples spent in its callees, known only when call graphs were recorded. `library_*` count samples
    in code outside journaled TUs (libc's strlen, another library) that this function called directly: known
    only with dwarf or lbr call graphs, which name the immediate caller of a library leaf.

    `inlined_into` names the symbol that ran when the debug info's inlining records place the samples in another
    source function of the TU (a loop of `work()` inlined into `main`): `name` is then the source function, the
    one to rewrite. `lines` counts self samples per source line of `name` ("line": samples, the hottest
    MAX_LINES), known only with debug info."""

    name: str
    object: str
    source: str
    dso: str
    how: str
    samples: int
    share: float
    children_samples: int | None = None
    children_share: float | None = None
    library_samples: int | None = None
    library_share: float | None = None
    inlined_into: str | None = None
    lines: dict[str, int] | None = None

    @property
    def label(self) -> str:
        """`work (inlined into main)`, or the plain name."""
        return "%s (inlined into %s)" % (self.name, self.inlined_into) if self.inlined_into else self.name

    @property
    def weight(self) -> float:
        """Self share plus the share of the library calls this function makes directly."""
        return self.share + (self.library_share or 0.0)


@dataclass
class OutsideEntry:
    """Samples that fell outside journaled code, per binary and reason, with the hottest symbols."""

    dso: str
    reason: str
    samples: int
    share: float
    symbols: list[dict[str, Any]] = field(default_factory=list)  # [{"name": ..., "samples": ...}]


@dataclass
class MergeInput:
    """One input of a merged profile."""

    file: str
    weight: float
    samples: int


@dataclass
class Profile:
    """A whole profile. Shares are fractions of `samples` (0..1)."""

    workload: Workload
    event: str
    call_graph: str | None
    journal: str
    samples: int
    journaled_samples: int
    tus: list[TUEntry]
    functions: list[FunctionEntry]
    outside: list[OutsideEntry]
    created: str = ""
    merged_from: list[MergeInput] = field(default_factory=list)
    version: int = PROFILE_VERSION

    @property
    def journaled_share(self) -> float:
        """The share of all samples that fell in journaled TUs (after weighting, for a merge)."""
        return sum(t.share for t in self.tus)

    def sort(self) -> None:
        """Rank TUs, functions and outside entries by share, ties by name, so files are stable."""
        self.tus.sort(key=lambda t: (-t.share, t.source, t.object))
        self.functions.sort(key=lambda f: (-f.share, f.name, f.inlined_into or "", f.object))
        self.outside.sort(key=lambda o: (-o.share, o.dso, o.reason))


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def to_dict(profile: Profile) -> dict[str, Any]:
    """The JSON form of a profile (see docs/profile.md)."""
    d = asdict(profile)
    d["format"] = PROFILE_FORMAT
    return d


def save(profile: Profile, path: str) -> None:
    """Write `profile` as JSON to `path` atomically (a temp file, then rename)."""
    if not profile.created:
        profile.created = now_utc()
    profile.sort()
    text = json.dumps(to_dict(profile), indent=1, sort_keys=True) + "\n"
    tmp = "%s.tmp.%d" % (path, os.getpid())
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise ProfileError("cannot write the profile to %s: %s" % (path, exc.strerror or exc)) from exc


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError("%s is not an object" % where)
    names = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in names})
    except TypeError as exc:
        raise ValueError("%s: %s" % (where, exc)) from exc


def from_dict(data: Any, where: str = "profile") -> Profile:
    """A Profile from its JSON form. Raises ProfileError for another format or a version this coopt cannot read."""
    if not isinstance(data, dict) or data.get("format") != PROFILE_FORMAT:
        raise ProfileError("%s is not a coopt profile (no \"format\": %r field)" % (where, PROFILE_FORMAT))
    version = data.get("version")
    if not isinstance(version, int) or version > PROFILE_VERSION or version < 1:
        raise ProfileError(
            "%s has profile version %r; this coopt reads versions 1 to %d: upgrade coopt or re-run "
            "`coopt profile`" % (where, version, PROFILE_VERSION)
        )
    try:
        parts = dict(data)
        parts["workload"] = _build(Workload, data.get("workload"), "workload")
        parts["tus"] = [_build(TUEntry, t, "tus[%d]" % i) for i, t in enumerate(data.get("tus") or [])]
        parts["functions"] = [
            _build(FunctionEntry, f, "functions[%d]" % i) for i, f in enumerate(data.get("functions") or [])
        ]
        parts["outside"] = [
            _build(OutsideEntry, o, "outside[%d]" % i) for i, o in enumerate(data.get("outside") or [])
        ]
        parts["merged_from"] = [
            _build(MergeInput, m, "merged_from[%d]" % i) for i, m in enumerate(data.get("merged_from") or [])
        ]
        profile: Profile = _build(Profile, parts, "profile")
        return profile
    except ValueError as exc:
        raise ProfileError("%s is a damaged coopt profile: %s" % (where, exc)) from exc


def load(path: str) -> Profile:
    """Read a profile file. Raises ProfileError with one line for a missing, unreadable or foreign file."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError as exc:
        raise ProfileError("profile %s not found" % path) from exc
    except OSError as exc:
        raise ProfileError("cannot read profile %s: %s" % (path, exc.strerror or exc)) from exc
    except ValueError as exc:
        raise ProfileError("%s is not JSON (%s); is it a coopt profile?" % (path, exc)) from exc
    return from_dict(data, path)
