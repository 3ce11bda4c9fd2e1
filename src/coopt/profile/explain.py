"""Why a profile has nothing to attribute, in one line that says what to do.

Most of these cases are about the build or the journal: no compiles, objects deleted, the program rebuilt without
coopt-cc, a stripped binary. One is about the recording: a program whose time is in a shared library called from
its own code (a `strlen` re-measured in a loop condition, `memcpy` or `qsort` in a hot function) has no sample in
journaled code at all, and only a call chain that names the library function's caller can credit that time to
journaled code (`library_share`). Which option gets such a chain depends on how the samples were recorded:

- no chains (`--call-graph none`): record them, which `coopt profile -- CMD` does by default (dwarf);
- frame-pointer chains: they skip the caller of a library leaf that sets up no frame (libc's string functions
  are hand-written assembly without one) and break inside libraries built without frame pointers (Debian's libc),
  so no build flag of the program fixes them: use dwarf;
- dwarf chains that stop inside the library before reaching the program: the 8 KB of stack perf copies by default
  did not hold the library's frames; record more with `--call-graph dwarf,65528`;
- dwarf chains of one frame: this perf did not unwind at all (built without libdw or libunwind).
"""

from __future__ import annotations

import os
import re
from collections import Counter

from coopt.profile.model import Profile
from coopt.profile.script import Sample
from coopt.profile.tus import JournalIndex

_SHARED_LIBRARY = re.compile(r"\.so(\.\d+)*$")
# The functions at the bottom of every complete user-space stack: a chain that ends in one of them was unwound to
# its root, so whatever it does not name was not on the stack.
_STACK_ROOTS = frozenset(
    {"_start", "__libc_start_main", "__libc_start_call_main", "start_thread", "clone", "clone3", "__clone",
     "__clone3", "thread_start"}
)
MAX_DWARF_STACK = 65528  # the largest user stack dump perf accepts (a multiple of 8 below 64 KB)
# Below this share of samples in or credited to journaled code, with most of the time in libraries, a profile
# ranks whatever stray samples a loop's own overhead got: it is refused like an empty one, with the option to fix.
TOO_FEW_JOURNALED = 0.01


def is_shared_library(dso: str) -> bool:
    """Whether `dso` (perf's name of a binary) is a shared library rather than a program or the kernel."""
    return not dso.startswith("[") and _SHARED_LIBRARY.search(os.path.basename(dso)) is not None


def _mode(profile: Profile) -> str:
    return (profile.call_graph or "").split(",")[0].split("@")[0]


def _library_share(profile: Profile) -> float:
    n = sum(o.samples for o in profile.outside if o.reason == "not-journaled" and is_shared_library(o.dso))
    return n / profile.samples if profile.samples else 0.0


def nothing_to_rank(profile: Profile) -> bool:
    """Whether the profile gives the optimizer nothing to work with: no sample in journaled code nor credited to
    it, or, its time being in libraries that no chain credited, only stray samples (a loop's own overhead)."""
    credited = sum(t.library_samples or 0 for t in profile.tus)
    if profile.journaled_samples == 0 and credited == 0:
        return True
    return (
        profile.journaled_samples + credited < TOO_FEW_JOURNALED * profile.samples
        and _library_share(profile) > 0.5
    )


def _library_hint(profile: Profile, samples: list[Sample]) -> str | None:
    """What to do when most samples are in shared libraries and no chain credited them to journaled code."""
    recorded_here = profile.workload.kind == "record"
    mode = _mode(profile)
    if not mode:
        if recorded_here:
            return ("record call chains so that library time counts for the journaled code that called it: drop "
                    "--call-graph none (or --no-call-graph); dwarf chains are the default")
        return ("the recording has no call chains to credit library time to the journaled code that called it: "
                "record it with `perf record --call-graph dwarf`, or let `coopt profile -- COMMAND` record it")
    if mode == "fp":
        return ("frame-pointer call chains skip the caller of a library function that sets up no frame (libc's "
                "string functions) and break inside libraries built without frame pointers, so they cannot credit "
                "library time to its journaled caller: use --call-graph dwarf%s"
                % (" (the default)" if recorded_here else " (`perf record --call-graph dwarf`)"))
    if mode == "recorded":
        return ("the call chains of perf script text do not say how they were recorded: if `perf record` used "
                "--call-graph dwarf (or lbr), pass --call-graph dwarf so library time counts for its journaled caller")
    chains = [s.frames for s in samples if s.frames and is_shared_library(s.frames[0].dso)]
    if not chains:
        return None
    if sum(len(c) == 1 for c in chains) > len(chains) / 2:
        return ("perf unwound no call chain out of the libraries: this perf lacks DWARF unwinding (built without "
                "libdw or libunwind); install a perf that has it (Debian's linux-perf does)")
    if sum(c[-1].sym not in _STACK_ROOTS for c in chains) > len(chains) / 2:
        return ("the call chains stop inside the libraries before reaching the program (perf copied too little of "
                "the stack to unwind them): record deeper stacks with --call-graph dwarf,%d" % MAX_DWARF_STACK)
    return None  # complete chains with no journaled frame: the program itself is not journaled code


def explain_nothing_journaled(profile: Profile, index: JournalIndex, samples: list[Sample] | None = None) -> str:
    """One line saying why no sample fell in journaled code (or was credited to it), and what to do."""
    if profile.samples == 0:
        return (
            "perf recorded no samples: the workload ran too briefly or perf could not sample it; profile a longer "
            "run (or raise --freq)"
        )
    if not index.tus and not index.missing:
        return (
            "the journal %s has no compiles: build the program with CC=coopt-cc and the same cache (COOPT_CACHE_DIR), "
            "or pass --journal" % index.journal
        )
    if not index.tus:
        return (
            "none of the %d objects the journal %s names exists any more (cleaned, or built on another machine): "
            "rebuild with CC=coopt-cc" % (len(index.missing), index.journal)
        )
    by_reason: Counter[str] = Counter()
    by_dso: Counter[str] = Counter()
    library = 0
    library_syms: Counter[str] = Counter()
    for o in profile.outside:
        by_reason[o.reason] += o.samples
        by_dso[o.dso] += o.samples
        if o.reason == "not-journaled" and is_shared_library(o.dso):
            library += o.samples
            for s in o.symbols[:2]:
                library_syms["%s in %s" % (s["name"], os.path.basename(o.dso))] += int(s["samples"])
    hottest = ", ".join("%s %.0f%%" % (d, 100.0 * n / profile.samples) for d, n in by_dso.most_common(3))
    credited = sum(t.library_samples or 0 for t in profile.tus)
    useful = profile.journaled_samples + credited
    how_many, credit = "none of the %d samples" % profile.samples, ""
    if useful:
        how_many = "only %d of the %d samples (%.2f%%)" % (useful, profile.samples, 100.0 * useful / profile.samples)
        credit = " or were credited to it by call chains" if credited else ""
    head = "%s fell in code built with coopt-cc%s (journal %s, %d TUs; samples in: %s)" % (
        how_many,
        credit,
        index.journal,
        len(index.tus),
        hottest,
    )
    hint = _library_hint(profile, samples or []) if library > profile.samples / 2 else None
    if by_reason["different-build"] and not (hint and useful):
        why = (
            "functions the journal's objects define ran with different code: the program was rebuilt without "
            "coopt-cc since, or another copy of a library was loaded (check LD_LIBRARY_PATH and rpath)"
        )
    elif hint is not None:
        top = ", ".join(name for name, _ in library_syms.most_common(2))
        why = "%.0f%% of the samples are in shared libraries (%s); %s" % (100.0 * library / profile.samples, top, hint)
    elif by_reason["unresolved"] > profile.samples / 2:
        why = "perf could not name most functions: the binary is probably stripped; profile an unstripped build"
    elif by_reason["ambiguous"]:
        why = (
            "the functions that ran are defined by several journaled TUs: rebuild with -g so DWARF can tell them "
            "apart"
        )
    else:
        why = (
            "usually the binary was not built with CC=coopt-cc, is stripped, or belongs to another journal "
            "(set COOPT_CACHE_DIR or pass --journal)"
        )
    return "%s: %s" % (head, why)
