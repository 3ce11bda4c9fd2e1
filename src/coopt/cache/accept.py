"""Serve only what was accepted: the rule an entry's evidence must meet, at put time and on every lookup.

An entry's meta.json carries the evidence it was stored with. It is servable when that evidence is

- in a known format: the verifier's evidence record (coopt.verify.evidence, `version` in KNOWN_EVIDENCE_VERSIONS,
  as `coopt verify --json` prints it and the optimizer stores it), and
- an ACCEPTED verdict (`verdict.code == "accepted"`, and not marked `"verified": false`), that
- covers the entry's level (the optimizer's `proposer.level`, else the level the candidate's file type is judged
  at: a .c candidate covers source, flags and pgo; .ll ir; .s asm), and
- covers the functions the entry changed, where the entry records them (`changed_functions`, written by
  `coopt cache put` from the artifact and the original): each must be one the verifier drove, or one it could not
  drive when a test command was run and passed.

`coopt cache put --unverified` stores `{"verified": false, ...}`: UNVERIFIED, served only when the user opts in
(`[cache] serve_unverified`, COOPT_SERVE_UNVERIFIED=1). Anything else (a rejection, an undecided verdict, an
unknown format, a record for another level) is refused at put time and never served, wherever the entry came from
(written by hand into the store, fetched from a remote).

The lookup parses meta.json with CPython's C JSON scanner (`_json`, ~0.3 ms to import) rather than `json`, whose
import pulls in `re` (~10 ms): a hit stays cheap. The verify package keeps the format's version (a test checks
that KNOWN_EVIDENCE_VERSIONS holds it); cache/ imports nothing above it.
"""

from __future__ import annotations

KNOWN_EVIDENCE_VERSIONS = (1, 2, 3)
ACCEPTED = "accepted"
UNVERIFIED = "unverified"
# The levels a candidate of each file type is judged at by `coopt verify` (the original compiled with other flags
# or a profile is still a .c candidate).
CANDIDATE_LEVELS = {".c": ("source", "flags", "pgo"), ".ll": ("ir",), ".s": ("asm",), ".S": ("asm",)}


def refusal(evidence: object, level: str, changed: object = None) -> str:
    """Why an entry with this evidence, level and recorded changed functions must not be served: "" when it may,
    UNVERIFIED for an explicit `--unverified` record, else one line saying what is wrong."""
    if not isinstance(evidence, dict):
        return "no evidence record"
    if "verdict" not in evidence:
        if evidence.get("verified") is False:
            return UNVERIFIED
        return "evidence in an unknown format (no verdict)"
    version = evidence.get("version")
    if isinstance(version, bool) or version not in KNOWN_EVIDENCE_VERSIONS:
        return "evidence in an unknown format (version %r; known: %s)" % (
            version, ", ".join(str(v) for v in KNOWN_EVIDENCE_VERSIONS))
    verdict = evidence.get("verdict")
    code = verdict.get("code") if isinstance(verdict, dict) else None
    if code != ACCEPTED:
        reason = verdict.get("reason") if isinstance(verdict, dict) else None
        return "the verdict is %s%s, not accepted" % (code if isinstance(code, str) else "missing",
                                                        " (%s)" % reason if isinstance(reason, str) else "")
    if evidence.get("verified", True) is not True:
        return "the evidence says both accepted and not verified"
    covered = _levels(evidence)
    if level not in covered:
        return "the evidence is for the %s level, the entry is %s" % (" or ".join(covered) or "unknown", level)
    if changed is not None:
        missing = _uncovered(evidence, changed)
        if missing:
            return "the evidence does not cover changed function%s %s" % ("s" if len(missing) > 1 else "",
                                                                          ", ".join(missing))
    return ""


def _levels(evidence: dict) -> tuple[str, ...]:
    proposer = evidence.get("proposer")
    if isinstance(proposer, dict) and isinstance(proposer.get("level"), str):
        return (proposer["level"],)
    candidate = evidence.get("candidate")
    if not isinstance(candidate, str):
        return ()
    dot = candidate.rfind(".")
    return CANDIDATE_LEVELS.get(candidate[dot:], ()) if dot >= 0 and "/" not in candidate[dot:] else ()


def _uncovered(evidence: dict, changed: object) -> list[str]:
    """Changed functions the evidence does not vouch for (all of them when the record is malformed)."""
    if not isinstance(changed, list) or not all(isinstance(f, str) for f in changed):
        return ["(a malformed list)"]
    driven = evidence.get("functions")
    covered = set(driven) if isinstance(driven, list) else set()
    checks = evidence.get("checks")
    tested = isinstance(checks, list) and any(
        isinstance(c, dict) and c.get("name") == "test" and c.get("ok") is True for c in checks)
    undrivable = evidence.get("unsupported_functions")
    if tested and isinstance(undrivable, dict):
        covered |= set(undrivable)  # the verifier accepts those only on a passing test command
    return sorted(f for f in set(changed) if f not in covered)


def servable(meta: object, allow_unverified: bool) -> str:
    """"" when an entry with this meta.json content may be served; else why not (UNVERIFIED without the opt-in)."""
    if not isinstance(meta, dict):
        return "meta.json is not an object"
    level = meta.get("level")
    why = refusal(meta.get("evidence"), level if isinstance(level, str) else "", meta.get("changed_functions"))
    return "" if why == UNVERIFIED and allow_unverified else why


class _ScanContext:
    """The attributes `_json.make_scanner` reads from a JSONDecoder, with json.loads' defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict = {}  # noqa: RUF012 (the C scanner keeps its own memo; the attribute only has to exist)

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}[name]


def loads(text: str) -> object:
    """json.loads for one JSON document, without importing json (and re). Raises ValueError when malformed."""
    try:
        from _json import make_scanner
    except ImportError:  # not CPython: the pure json module
        import json

        return json.loads(text)
    scan = make_scanner(_ScanContext())  # type: ignore[arg-type]  # duck-typed: it reads the attributes only
    start = len(text) - len(text.lstrip(" \t\n\r"))
    try:
        value, end = scan(text, start)
    except StopIteration:
        raise ValueError("not JSON") from None
    if text[end:].strip(" \t\n\r"):
        raise ValueError("extra data after the JSON document")
    return value
