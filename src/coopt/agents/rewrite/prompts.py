"""The words the LLM agents say to a model, and how their answers are read, kept in one place.

Small models follow short, concrete instructions best: one job, the rules that matter for correctness spelled
out (aliasing, overflow, NaN), and exactly one output format. Changing a prompt changes the transcript cache's
key, so recorded answers then miss and are asked again.
"""

from __future__ import annotations

SOURCE_SYSTEM = (
    "You make C functions faster. You get one function from a C file and the declarations it uses. Write a "
    "faster version that behaves exactly the same for every input the original handles: the same return value, "
    "the same bytes written through every pointer and to every global, also when pointer arguments overlap "
    "(alias), on integer overflow and wraparound, and for NaN, infinities and signed zeros. Keep the function's "
    "name, parameter types and return type. Use only standard C: no compiler builtins, intrinsics, assembly or "
    "threads. Reply with only the rewritten function in one ```c block."
)

SOURCE_USER = """{includes}{context}Make this function faster:
```c
{function}
```"""

SOURCE_INCLUDES = "The file {file} has these includes:\n{lines}\n\n"
SOURCE_CONTEXT = "It declares, among others:\n```c\n{text}\n```\n\n"

SOURCE_FIX = """That does not compile:
```
{errors}
```
Reply with the corrected function only, in one ```c block."""

# An answer that cannot be faster because it is the given code, or one already judged: asked once more, in the same
# conversation (sampling.py), instead of ending the sample. Small models often copy the code back at first.
RETRY = {
    "unchanged": (
        "That is the code you were given, unchanged, so it cannot be any faster. Look at where the work goes: work "
        "repeated in every iteration or call that could be done once, a slow algorithm where a faster one gives the "
        "same result, memory touched more often or in a worse order than needed. Write a version that does less "
        "work and behaves exactly the same, and reply in the same format as before."
    ),
    "duplicate": (
        "That is the same code as an earlier answer, which was already judged. Write a different faster version "
        "that behaves exactly the same, and reply in the same format as before."
    ),
}

IR_SYSTEM = (
    "You make LLVM IR functions faster. You get one function's LLVM IR, {how}, and the declarations it uses. "
    "Write a faster version that behaves exactly the same for every input the original handles: the same "
    "return value, the same bytes written through every pointer and to every global, also when pointer "
    "arguments overlap (alias), on integer overflow and wraparound, and for NaN, infinities and signed zeros. "
    "Keep the function's name, parameter types and return type. Write LLVM {major} textual IR that llvm-as "
    "{major} accepts. Define no other function or global; you may add `declare` lines for LLVM intrinsics you "
    "call. Reply with only the `define` (and any `declare` lines) in one ```llvm block."
    "{tools}"
)
# How the function's IR was made: the job's optimized module, or (a function inlined into every caller there) the
# front end's module cleaned to SSA form, which the build then optimizes whole.
IR_OPTIMIZED = "as clang {version} optimized it"
IR_BEFORE_INLINING = ("as clang {version} wrote it before optimizing (the optimizer inlines it into its callers "
                      "after your rewrite)")
IR_TOOLS = (
    " Instead of writing IR you may call the tool `run_opt` with an LLVM {major} pass pipeline (new pass manager "
    "syntax) when you know which passes would make this function faster."
)

IR_USER = """{context}Make this function faster:
```llvm
{function}
```"""

IR_FIX = """The compiler does not accept that IR:
```
{errors}
```
Reply with the corrected `define` only (and any `declare` lines), in one ```llvm block."""

IR_CONTEXT = "The module declares, among others:\n```llvm\n{text}\n```\n\n"

ASM_SYSTEM = (
    "You make assembly functions faster. You get one function's {arch} assembly (GNU assembler syntax), "
    "{how}. Write a faster version that behaves exactly the same for every input the original handles: the "
    "same return value, the same bytes written through every pointer and to every global, also when pointer "
    "arguments overlap (alias), and for NaN, infinities and signed zeros. Keep the calling convention: the "
    "same argument and return registers, callee-saved registers preserved, the stack balanced, the CFI "
    "directives matching what the code pushes and pops. Start with the function's label, use only local labels "
    "that begin with .L inside it, define no other symbol and do not switch sections. Reply with only the "
    "function in one ```asm block."
)

ASM_COMPILED = "as clang {version} compiled it"
ASM_OUT_OF_LINE = ("as clang {version} compiled it when kept out of line (the build inlines it into its callers; "
                   "they will call your version instead, so it must be faster than the inlined original by more "
                   "than the cost of a call)")

ASM_USER = """Make this function faster:
```asm
{function}
```"""

ASM_FIX = """That does not assemble:
```
{errors}
```
Reply with the corrected function only, in one ```asm block."""

TESTGEN_SYSTEM = (
    "You write test inputs for C functions. Someone will rewrite the function below to make it faster; list the "
    "inputs most likely to show a behaviour difference between the original and a rewrite: empty and one-element "
    "inputs, boundaries, overlapping pointer arguments, integer overflow, negative numbers, NaN and infinities, "
    "long inputs. Every input must be valid for the original function (no NULL where it reads through a "
    "pointer, lengths that fit the buffers). Reply with only a JSON object in one ```json block."
)

TESTGEN_USER = """Function:
```c
{function}
```
{context}Parameters and how to write their values:
{params}

Reply with up to {count} inputs as
```json
{{"inputs": [{{"args": [{example}], "why": "what it tests"}}],
 "speed": [{{"args": [{example}], "why": "what work it makes"}}]}}
```
with one value in "args" per parameter, in order. Under "speed", give up to {speed} inputs of the size and shape
the program typically calls it with, large enough that the function does real work (long buffers and strings
written with "repeat"): they time the rewrite against the original."""

TESTGEN_CONTEXT = "Declarations it uses:\n```c\n{text}\n```\n"

# How each parameter role's values are written in the JSON the test-generation agent asks for.
TESTGEN_ROLES = {
    "scalar-int": "an integer",
    "scalar-float": 'a number, or "nan", "-nan", "inf", "-inf", "-0.0"',
    "record": "a list with one value per field, in order ({fields})",
    "string": 'a C string as a JSON string, or {"repeat": "ab", "count": 1000} for a long one',
    "buffer": 'a list of {elem} values, or {{"repeat": [1, 2], "count": 1000}}, or '
              '{{"alias": "<other parameter>", "offset": <bytes>}} to point into another argument',
    "length": "an integer: how many elements of {bound} the function may use",
}


def code_blocks(text: str) -> list[tuple[str, str]]:
    """Fenced blocks of a Markdown answer as (language, body); an unclosed fence (a cut answer) yields nothing."""
    blocks: list[tuple[str, str]] = []
    lang, inside = "", False
    body: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            if inside:
                blocks.append((lang, "\n".join(body) + "\n"))
                inside, body = False, []
            else:
                inside, lang = True, stripped[3:].strip().lower()
            continue
        if inside:
            body.append(line)
    return blocks

# The program's main: what counts as its behaviour is everything the program prints, returns and writes.
SOURCE_MAIN = ("This is the program's main function: the rewrite must print, write and return exactly the same for "
               "every input the program accepts (arguments, standard input, files). Reply with the whole main "
               "function.\n\n")

# A function too long for one answer: only its hot region goes to the model (region.py).
SOURCE_REGION = """{includes}{context}The function `{name}` is too long to rewrite whole. This region of it ({where})
is where its time goes:
```c
{head}
    /* ... */
{locals}    /* REGION START */
{region}
    /* REGION END */
    /* ... */
}}
```
Make the region faster. It may use the parameters, the declarations shown and everything declared before it;
what it leaves in every variable and writes to memory must stay the same. Reply with only the rewritten region
(the statements between REGION START and REGION END, not the whole function) in one ```c block."""
