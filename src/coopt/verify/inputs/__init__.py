"""Inputs for the differential harness: the role of each parameter, value generators, and the byte encoding
the harness decodes.

A call plan gives every parameter a role: a scalar, a record passed by value, a buffer (pointer to elements),
a C string, or a length bound to buffers. Generators produce `InputCase`s (edge values first, then buffers of
many sizes, overlapping pointers, NULLs, large sizes, then random ones); `encode` turns a case into the blob the
harness reads. Any blob decodes to a valid call (counts, lengths and alias offsets are clamped by the harness and
by `decode` alike), so coverage-guided fuzzers and other input sources can hand the harness raw bytes.

Input sources are pluggable (`InputSource`): the built-in generator here, libFuzzer (`fuzz.py`), and the LLM
test-generation agent, which lives with the agents and only implements the protocol.

The package, split by job: `plan` (roles and values), `values` (scalar edge and random values), `encoding` (the
blob the harness reads, and back), `edge` (the built-in source), `mined` (constants mined from both sides' IR and
values drawn from buffer contents). Every name other modules use is importable from `coopt.verify.inputs`.
"""

from __future__ import annotations

from coopt.verify.inputs.edge import LARGE_SIZES, SIZES, STRINGS, EdgeValueSource, merged
from coopt.verify.inputs.encoding import decode, describe, encode, may_alias, pack_value
from coopt.verify.inputs.mined import Constants, Mined, mine
from coopt.verify.inputs.plan import (
    MAX_ELEMS,
    Alias,
    Buffer,
    CallPlan,
    GeneratedInput,
    InputCase,
    InputSource,
    Null,
    RecordPlan,
    Role,
    Value,
    field_elem,
    int_max,
    int_range,
    plan,
    record_plan,
)
from coopt.verify.inputs.values import edges, float_edges, int_edges, pair_edges, random_scalar, random_value

__all__ = [
    "LARGE_SIZES",
    "MAX_ELEMS",
    "SIZES",
    "STRINGS",
    "Alias",
    "Buffer",
    "Constants",
    "CallPlan",
    "EdgeValueSource",
    "GeneratedInput",
    "InputCase",
    "InputSource",
    "Mined",
    "Null",
    "RecordPlan",
    "Role",
    "Value",
    "decode",
    "describe",
    "edges",
    "encode",
    "field_elem",
    "float_edges",
    "int_edges",
    "int_max",
    "int_range",
    "may_alias",
    "merged",
    "mine",
    "pack_value",
    "pair_edges",
    "plan",
    "random_scalar",
    "random_value",
    "record_plan",
]
