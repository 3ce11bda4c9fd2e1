"""The test-generation agent for whole programs: when the hot code is `main` (or a function the differential harness
cannot call), the model proposes runs of the program (arguments, stdin, files) that a rewrite may get wrong; the
judge runs the original and the candidate program on each and compares what they print, return and write.

The model sees the function and the declarations it uses and answers with JSON:
`{"runs": [{"args": ["-n", "3"], "stdin": "1 2 3\\n", "files": {"in.txt": "..."}}]}`. Anything it writes that is
not such a run is dropped; an answer with no usable run gives no inputs (the project's tests and the stdin fuzzer
still run), and never fails a verification.
"""

from __future__ import annotations

from typing import Any

from coopt.agents.rewrite.context import FunctionSource
from coopt.agents.testgen import json_values
from coopt.llm.types import ChatRequest, Model
from coopt.verify.program_level.inputs import MAX_ARGS, MAX_FILE_BYTES, ProgramInput, safe_name

SOURCE_NAME = "llm"
CHARS_PER_TOKEN = 3

PROGRAM_TESTGEN_SYSTEM = (
    "You write test runs for C programs. You get the program's main function (or the function that does its work) "
    "and the declarations it uses. List runs of the program that a faster rewrite might get wrong: edge cases of "
    "its arguments and input (empty input, one item, sizes at and around every limit and buffer size, large "
    "values, negative numbers, malformed lines), and at least one ordinary run. Keep each run small: it must "
    "finish in well under a second. Reply with only JSON in one ```json block: "
    '{"runs": [{"args": [<strings>], "stdin": "<text>", "files": {"<name>": "<text>"}}]}. '
    "Omit what a run does not need."
)
PROGRAM_TESTGEN_USER = """{context}The program:
```c
{function}
```
List up to {count} runs."""
PROGRAM_TESTGEN_CONTEXT = "It uses these declarations:\n```c\n{text}\n```\n\n"


def _run(item: Any) -> ProgramInput | None:
    if not isinstance(item, dict):
        return None
    args = item.get("args", [])
    if isinstance(args, str):
        args = args.split()
    if not isinstance(args, list) or len(args) > MAX_ARGS:
        return None
    stdin = item.get("stdin", "")
    files = item.get("files", {})
    if not isinstance(stdin, str) or not isinstance(files, dict):
        return None
    kept = tuple((str(n), str(v).encode("utf-8")[:MAX_FILE_BYTES]) for n, v in files.items()
                 if safe_name(str(n)) and isinstance(v, (str, int, float)))
    return ProgramInput(tuple(str(a) for a in args), stdin.encode("utf-8")[:MAX_FILE_BYTES], kept, SOURCE_NAME)


def parse_runs(text: str) -> list[ProgramInput]:
    """The runs of the answer's JSON (a ```json block, or the first JSON value in the text), duplicates dropped."""
    for data in json_values(text):
        items = data.get("runs", data.get("inputs", [])) if isinstance(data, dict) else data
        if not isinstance(items, list):
            continue
        runs = [r for r in map(_run, items) if r is not None]
        return list(dict.fromkeys(runs))
    return []


class ProgramTestGen:
    """Asks `model` once per function for program runs that may break a rewrite of it."""

    def __init__(self, model: Model, count: int = 8, max_tokens: int = 768, context_tokens: int = 4096) -> None:
        self.model = model
        self.count = count
        self.max_tokens = max_tokens
        self.context_tokens = context_tokens
        self.tokens = 0
        self.notes: list[str] = []

    def request(self, fs: FunctionSource) -> ChatRequest | None:
        """The question for `fs`, or None when it does not fit the model's context even without declarations."""
        for context in (fs.context_text(), ""):
            user = PROGRAM_TESTGEN_USER.format(
                context=PROGRAM_TESTGEN_CONTEXT.format(text=context) if context else "",
                function=fs.text.strip(), count=self.count)
            size = (len(PROGRAM_TESTGEN_SYSTEM) + len(user) + 32) // CHARS_PER_TOKEN + 1
            if size + self.max_tokens <= self.context_tokens:
                return ChatRequest.of(("system", PROGRAM_TESTGEN_SYSTEM), ("user", user), max_tokens=self.max_tokens)
        return None

    def runs_for(self, fs: FunctionSource) -> list[ProgramInput]:
        """The model's runs for `fs` (empty, with a note, when it gave nothing usable)."""
        request = self.request(fs)
        if request is None:
            self.notes.append("%s: the program test question does not fit the model's context" % fs.name)
            return []
        answer = self.model.query(request)
        self.tokens += answer.tokens_charged
        if not answer.ok:
            self.notes.append("%s: no program runs: %s %s" % (fs.name, answer.status.value, answer.detail))
            return []
        runs = parse_runs(answer.text)[:self.count]
        if not runs:
            self.notes.append("%s: the answer holds no JSON list of program runs" % fs.name)
        return runs
