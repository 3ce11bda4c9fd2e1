"""The test-generation agent: the model names inputs it thinks a rewrite of a function may get wrong, and the
verifier runs them next to its own.

The model sees the function, the declarations it uses, and per parameter the role the verifier gave it (scalar,
record, buffer, C string, length) with how to write its values in JSON: numbers, "nan"/"inf" for floats, strings,
lists, `{"repeat": ..., "count": n}` for long inputs and `{"alias": "other", "offset": k}` for overlapping
pointers. Each input it lists becomes an `InputCase`, goes through the verifier's own encoding and clamping
(`inputs.encode`/`decode`: counts, aliases and lengths made valid), and is served by `LLMInputSource`, the
verifier's `InputSource` plug-in. An answer that is not JSON, or values that do not fit a parameter, give no
inputs (the verifier's own inputs still run); they never fail a verification.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from coopt.agents.rewrite.context import FunctionSource, absolute_flags, clang_for
from coopt.agents.rewrite.prompts import (
    TESTGEN_CONTEXT,
    TESTGEN_ROLES,
    TESTGEN_SYSTEM,
    TESTGEN_USER,
    code_blocks,
)
from coopt.journal.job import CompileJob
from coopt.llm.types import ChatRequest, Model
from coopt.verify import inputs
from coopt.verify.inputs import Alias, Buffer, CallPlan, GeneratedInput, InputCase, Null, Role, Value
from coopt.verify.signatures import CType, FunctionSig, SignatureError, parse

SOURCE_NAME = "llm"
SPEED_NAME = "llm-speed"  # the inputs sized for the hot path: they also drive the micro-benchmark
# The longest buffer or string one input may ask for (the harness caps buffers at 4M elements anyway).
MAX_ELEMENTS = 1 << 20
CHARS_PER_TOKEN = 3


class BadValue(Exception):
    """A value the model wrote does not fit its parameter."""


@dataclass
class LLMInputSource:
    """The inputs the model proposed for one function, as a verifier input source."""

    function: str
    cases: list[list[Any]] = field(default_factory=list)  # the model's "args" lists, as JSON values
    notes: list[str] = field(default_factory=list)
    name: str = SOURCE_NAME
    speed: list[list[Any]] = field(default_factory=list)  # the "speed" lists: inputs sized for the hot path

    @property
    def count(self) -> int:
        return len(self.cases)

    def speed_source(self) -> LLMInputSource | None:
        """The speed inputs as their own source (the verifier times the sides on them), None when there are none."""
        return LLMInputSource(self.function, list(self.speed), self.notes, SPEED_NAME) if self.speed else None

    def generate(self, sig: FunctionSig, plan: CallPlan, budget: int, seed: int) -> Iterator[GeneratedInput]:
        """Up to `budget` inputs for `sig`; cases whose values do not fit the parameters are skipped."""
        if sig.name != self.function:
            return
        seen: set[bytes] = set()
        for args in self.cases:
            if len(seen) >= budget:
                return
            try:
                case = to_case(plan, args)
            except BadValue as exc:
                self.notes.append(str(exc))
                continue
            # Through the verifier's own encoding and back: NUL-terminated strings, aliases into real buffers,
            # lengths that fit. What the harness runs is exactly what the reproducer will say.
            normal = inputs.decode(plan, inputs.encode(plan, case))
            blob = inputs.encode(plan, normal)
            if blob in seen:
                continue
            seen.add(blob)
            yield GeneratedInput(blob, inputs.describe(plan, normal), self.name)


# ---- JSON values -> the verifier's values -----------------------------------------------------------------------


def _scalar(t: CType, v: Any) -> int | float:
    if t.kind == "float":
        if isinstance(v, str):
            word = v.strip().lower()
            special = {"nan": math.nan, "+nan": math.nan, "-nan": math.copysign(math.nan, -1.0), "inf": math.inf,
                       "+inf": math.inf, "infinity": math.inf, "-inf": -math.inf, "-infinity": -math.inf}
            if word in special:
                return special[word]
            try:
                return float(word)
            except ValueError:
                raise BadValue("%r is not a number" % v) from None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise BadValue("%r is not a number" % (v,))
        return float(v)
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        text = v.strip()
        if len(text) == 3 and text[0] == text[2] == "'":
            return ord(text[1])  # a character constant written as 'a'
        try:
            return int(text, 0)
        except ValueError:
            raise BadValue("%r is not an integer" % v) from None
    raise BadValue("%r is not an integer" % (v,))


def _value(t: CType, v: Any) -> Value:
    """A scalar, array or record value (pointer fields of records are NULL, as the verifier makes them)."""
    if t.kind == "record":
        if isinstance(v, dict):
            v = [v.get(f.name, 0) for f in t.fields]
        if not isinstance(v, list):
            raise BadValue("%r is not a list of field values for %s" % (v, t.spelling))
        vals = list(v) + [0] * (len(t.fields) - len(v))
        return tuple(None if f.type.kind == "pointer" else _value(f.type, vals[i]) for i, f in enumerate(t.fields))
    if t.kind == "array" and t.pointee is not None:
        items = v if isinstance(v, list) else [v]
        items = items + [0] * (t.count - len(items))
        return tuple(_value(t.pointee, x) for x in items[:t.count])
    return _scalar(t, v)


def _repeat(v: dict[str, Any]) -> list[Any] | str:
    count = v.get("count", 1)
    unit = v.get("repeat")
    if not isinstance(count, int) or count < 0 or unit is None:
        raise BadValue("bad repeat %r" % (v,))
    if isinstance(unit, str):
        return (unit * min(count, MAX_ELEMENTS))[:MAX_ELEMENTS]
    if isinstance(unit, list):
        return (unit * min(count, MAX_ELEMENTS))[:MAX_ELEMENTS]
    return [unit] * min(count, MAX_ELEMENTS)


def _pointer(plan: CallPlan, i: int, v: Any) -> Value:
    role = plan.roles[i]
    if v is None:
        return Null()
    if isinstance(v, dict) and "alias" in v:
        target = v.get("alias")
        if target not in plan.names or plan.names.index(target) == i:
            raise BadValue("alias %r names no other parameter" % (target,))
        offset = v.get("offset", 0)
        if not isinstance(offset, int) or offset < 0:
            raise BadValue("alias offset %r is not a byte count" % (offset,))
        return Alias(plan.names.index(target), offset)
    if isinstance(v, dict) and "repeat" in v:
        v = _repeat(v)
    elem = role.elem
    if isinstance(v, str):
        raw = v.encode("utf-8")[:MAX_ELEMENTS]
        if elem.size != 1 or elem.kind not in ("int", "bool"):
            raise BadValue("a string for %s, which points to %s" % (plan.names[i], elem.spelling))
        data = tuple(raw) + ((0,) if role.kind == "string" else ())
        return Buffer(tuple(b - 256 if elem.signed and b > 127 else b for b in data))
    if isinstance(v, list):
        if len(v) > MAX_ELEMENTS:
            raise BadValue("%s: more than %d elements" % (plan.names[i], MAX_ELEMENTS))
        return Buffer(tuple(_value(elem, x) for x in v))
    raise BadValue("%r is not a value for pointer %s" % (v, plan.names[i]))


def to_case(plan: CallPlan, args: Any) -> InputCase:
    """The model's argument list (or object by parameter name) as the verifier's InputCase."""
    if isinstance(args, dict):
        args = [args.get(n) for n in plan.names]
    if not isinstance(args, list) or len(args) != len(plan.roles):
        raise BadValue("%d arguments for %d parameters" % (len(args) if isinstance(args, list) else 0,
                                                           len(plan.roles)))
    out: list[Value] = []
    for i, (role, v) in enumerate(zip(plan.roles, args, strict=True)):
        if role.kind in ("buffer", "string"):
            out.append(_pointer(plan, i, v))
        elif role.kind == "record":
            out.append(_value(role.type, v))
        else:
            out.append(_scalar(role.type, v))
    return InputCase(tuple(out), "llm")


def json_values(text: str) -> Iterator[Any]:
    """The JSON value that starts each ```json (or unlabelled) block of an answer, or the answer's text itself
    when it has none: where models put the structured part of an answer."""
    for body in [b for lang, b in code_blocks(text) if lang in ("json", "")] or [text]:
        start = min((i for i in (body.find("{"), body.find("[")) if i >= 0), default=-1)
        if start < 0:
            continue
        try:
            data, _ = json.JSONDecoder().raw_decode(body[start:])
        except ValueError:
            continue
        yield data


def parse_answer(text: str, key: str = "inputs") -> list[Any]:
    """The "args" lists under `key` ("inputs", or "speed") of the answer's JSON (a ```json block, or the first
    JSON value in the text); a bare list counts as "inputs"."""
    for data in json_values(text):
        items = data.get(key, []) if isinstance(data, dict) else data if key == "inputs" else []
        if not isinstance(items, list):
            continue
        cases = []
        for item in items:
            if isinstance(item, dict) and "args" in item:
                cases.append(item["args"])
            elif isinstance(item, list):
                cases.append(item)
        return cases
    return []


# ---- asking --------------------------------------------------------------------------------------------------


def describe_roles(plan: CallPlan) -> tuple[str, str]:
    """Per parameter, how its values are written; and an example argument list."""
    lines, example = [], []
    for i, (name, role) in enumerate(zip(plan.names, plan.roles, strict=True)):
        what = _role_text(plan, role)
        lines.append("%d. %s (%s): %s" % (i + 1, name or "arg%d" % (i + 1), role.type.spelling, what))
        example.append(_example(role))
    return "\n".join(lines), ", ".join(example)


def _role_text(plan: CallPlan, role: Role) -> str:
    if role.kind == "scalar":
        return TESTGEN_ROLES["scalar-float" if role.type.kind == "float" else "scalar-int"]
    if role.kind == "record":
        return TESTGEN_ROLES["record"].format(fields=", ".join(f.name for f in role.type.fields))
    if role.kind == "string":
        return TESTGEN_ROLES["string"] + ', or {"alias": "<other parameter>", "offset": <bytes>}'
    if role.kind == "buffer":
        return TESTGEN_ROLES["buffer"].format(elem=role.elem.spelling)
    return TESTGEN_ROLES["length"].format(bound=", ".join(plan.names[b] for b in role.bound))


def _example(role: Role) -> str:
    if role.kind == "string":
        return '"abc"'
    if role.kind == "buffer":
        return "[1, 2, 3]"
    if role.kind == "record":
        return "[%s]" % ", ".join("0" for _ in role.type.fields)
    if role.kind == "length":
        return "3"
    return "1.5" if role.type.kind == "float" else "7"


class TestGenAgent:
    """Asks `model` for inputs that may break a rewrite of a function; one question per function."""

    __test__ = False  # not a pytest class, whatever its name says

    def __init__(self, model: Model, count: int = 8, max_tokens: int = 512, context_tokens: int = 4096,
                 speed: int = 3) -> None:
        self.model = model
        self.count = count
        self.speed = speed
        self.max_tokens = max_tokens
        self.context_tokens = context_tokens
        self.tokens = 0
        self.last_detail = ""

    def request(self, fs: FunctionSource, sig: FunctionSig) -> ChatRequest | None:
        """The question for `fs`, or None when it does not fit the model's context."""
        plan = inputs.plan(sig)
        params, example = describe_roles(plan)
        for context in (fs.context_text(), ""):
            user = TESTGEN_USER.format(function=fs.text.strip(),
                                       context=TESTGEN_CONTEXT.format(text=context) if context else "",
                                       params=params, count=self.count, example=example, speed=self.speed)
            size = (len(TESTGEN_SYSTEM) + len(user) + 32) // CHARS_PER_TOKEN + 1
            if size + self.max_tokens <= self.context_tokens:
                return ChatRequest.of(("system", TESTGEN_SYSTEM), ("user", user), max_tokens=self.max_tokens)
        return None

    def source_for(self, job: CompileJob, fs: FunctionSource) -> LLMInputSource:
        """Ask once and return the inputs as an input source (empty when the model gave nothing usable)."""
        source = LLMInputSource(fs.name)
        try:
            tu = parse(job.source_path, absolute_flags(job), clang_for(job))
        except SignatureError as exc:
            source.notes.append("no signature: %s" % exc)
            return source
        sig = tu.functions.get(fs.name)
        if sig is None or fs.name in tu.undrivable:
            source.notes.append("%s cannot be driven by the harness: %s" % (fs.name, tu.undrivable.get(fs.name, "")))
            return source
        request = self.request(fs, sig)
        if request is None:
            source.notes.append("the question does not fit the model's context")
            return source
        answer = self.model.query(request)
        self.tokens += answer.tokens_charged
        if not answer.ok:
            source.notes.append("no inputs: %s %s" % (answer.status.value, answer.detail))
            return source
        source.cases = parse_answer(answer.text)
        source.speed = parse_answer(answer.text, "speed")[:self.speed]
        if not source.cases:
            source.notes.append("the answer holds no JSON list of inputs")
        return source
