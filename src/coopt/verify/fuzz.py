"""A coverage-guided input source: libFuzzer (clang's `-fsanitize=fuzzer`), time-boxed per function.

Of the two ways to plug a fuzzer into the harness (a target that traps on a difference, or the fuzzer's corpus fed
to the differential run) this module uses both, each for what it is good at:

- The fuzz target is the differential harness itself, built with `-DCZ_FUZZ` (`c/cz_fuzz_main.h`): it
  decodes the fuzzer's bytes with the same encoding as every other input (any blob decodes to a valid call), runs
  the original and then the candidate in-process on separate copies, and stops at the first difference of their
  serialized results or candidate crash, saving that input. It is the only program that links both sides, and
  it decides nothing. Coverage and comparison tracing (`-fsanitize=fuzzer-no-link`) cover both
  sides, so a branch only the candidate has (a magic value, a new range check) is a coverage goal the fuzzer
  steers towards; a dictionary of the constants both sides compare with (read from their IR) and trace-cmp hand
  it the values those branches want. Argument buffers end at a guard page, so overruns fault in the side that
  made them.
- The fuzzer does not decide. Its finding, its other stop artifacts and the corpus it grew come back as
  `GeneratedInput`s, and the verifier runs them through the ordinary differential run (forked per input, the
  sanitizer builds first, the original alone re-run on every failure). Only that run can tell "outside the
  original's contract" from "the candidate's fault": in-process, a crash of the original can be jumped out of
  (the input is dropped), but heap damage or state left in globals cannot be undone, and ASan cannot resume at
  all. So the verdict, its reason and its reproducer come from the same code for fuzzed and generated inputs.

Cost per function: the time box (`-max_total_time`; a finding ends it early), plus one build of the fuzz target
per candidate and the replay of what it found. A stop before the time box that is not a finding (a timeout, a
crash the target's handler could not catch) restarts the fuzzer on its corpus for the time left, and so does a
finding the differential run dismisses. A toolchain without libFuzzer's runtime (Debian: libclang-rt-N-dev) makes
the run UNSUPPORTED, recorded in the evidence; the verdict then rests on the other sources.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence

from coopt.toolchain import Toolchain
from coopt.verify import sandbox
from coopt.verify.differential import build
from coopt.verify.evidence import FuzzRun
from coopt.verify.inputs import CallPlan, GeneratedInput, decode, describe
from coopt.verify.inputs.mined import ir_string
from coopt.verify.signatures import FunctionSig

SOURCE_NAME = "libfuzzer"
MAX_LEN = 4096  # bytes per fuzzed input: enough for buffers of a few hundred elements, small enough to mutate fast
MAX_RUNS = 8  # fuzzer starts per function (the first, and restarts after stops that were not findings)
# Signals the fuzz target handles itself (it must know which side was running); the rest stay libFuzzer's.
FUZZER_FLAGS = (
    "-handle_segv=0",
    "-handle_bus=0",
    "-handle_fpe=0",
    "-handle_ill=0",
    "-use_value_profile=1",
    "-close_fd_mask=1",  # what the functions print is noise here
    "-print_final_stats=1",
    "-rss_limit_mb=2048",
)


def runtime_missing(tc: Toolchain) -> str:
    """Why this toolchain cannot build a fuzz target ('' when it can)."""
    return build.runtime_missing(tc, build.FUZZ)


_STATUS = re.compile(r"^#(\d+)\s+\S+.*?\bcov: (\d+)")
_EXECUTED = re.compile(r"stat::number_of_executed_units:\s*(\d+)")


def parse_stats(stderr: str) -> tuple[int, int]:
    """(inputs executed, edges covered) from libFuzzer's log: final stats when it printed them, else the last
    status line (a target that stops at a finding ends without final stats)."""
    runs = cov = 0
    for line in stderr.splitlines():
        m = _STATUS.match(line)
        if m:
            runs, cov = max(runs, int(m.group(1))), max(cov, int(m.group(2)))
        m = _EXECUTED.search(line)
        if m:
            runs = max(runs, int(m.group(1)))
    return runs, cov


# Constants the code compares with, read from its LLVM IR: `icmp` operands, `switch` cases, string constants.
_ICMP = re.compile(r"\bicmp \w+ i(8|16|32|64) (\S+), (-?\d+)\b")
_CASE = re.compile(r"^\s*i(8|16|32|64) (-?\d+), label ")
_STRING = re.compile(r'\bc"([^"]*)"')
MAX_DICT = 256




def dictionary_words(ir: str) -> list[bytes]:
    """The byte strings a fuzzer should try: every constant a comparison or switch tests in `ir` (little- and
    big-endian, at its width), and the string constants. Coverage guidance finds a branch; these words let it
    take a branch on a magic number in a few thousand runs instead of hundreds of thousands (AFL's
    autodictionary does the same inside the compiler)."""
    words: list[bytes] = []
    for line in ir.splitlines():
        for bits, value in [(m.group(1), m.group(3)) for m in _ICMP.finditer(line)] + _CASE.findall(line):
            width = int(bits) // 8
            v = int(value) & ((1 << (8 * width)) - 1)
            if width > 1 and (v < 256 or v >= (1 << (8 * width)) - 256):
                continue  # small numbers: byte mutations and the edge values cover them
            words.append(v.to_bytes(width, "little"))
            if width > 1:
                words.append(v.to_bytes(width, "big"))
        for text in _STRING.findall(line):
            raw = ir_string(text).rstrip(b"\0")
            if 1 < len(raw) <= 64:
                words.append(raw)
    return list(dict.fromkeys(words))[:MAX_DICT]


def side_ir(tc: Toolchain, source: str, cflags: Sequence[str], out: str) -> str:
    """LLVM IR of one side for `dictionary_words` ('' for assembly, or when it cannot be had)."""
    lang = build.side_language(source)
    if lang == "ir":
        with open(source, encoding="utf-8", errors="replace") as f:
            return f.read()
    if lang != "c":
        return ""
    proc = subprocess.run(
        [tc.clang, *cflags, "-w", "-S", "-emit-llvm", source, "-o", out], capture_output=True, check=False
    )
    if proc.returncode != 0:
        return ""
    with open(out, encoding="utf-8", errors="replace") as f:
        return f.read()


def write_dictionary(path: str, words: Sequence[bytes]) -> None:
    """A libFuzzer/AFL dictionary file: one quoted, hex-escaped word per line."""
    with open(path, "w", encoding="ascii") as f:
        for w in words:
            f.write('"%s"\n' % "".join("\\x%02x" % b for b in w))


def _read_dir(path: str, prefix: str = "") -> list[bytes]:
    if not os.path.isdir(path):
        return []
    out = []
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if name.startswith(prefix) and os.path.isfile(full):
            with open(full, "rb") as f:
                out.append(f.read())
    return out


class LibFuzzerSource:
    """Input source backed by a built fuzz target. `runs` records, per function, what the fuzzer did."""

    name = SOURCE_NAME

    def __init__(
        self,
        target: str,
        index: Mapping[str, int],
        seconds: float,
        work: str,
        seeds: Mapping[str, Sequence[bytes]],
        input_timeout_s: int = 1,
        limits: sandbox.Limits | None = None,
        note: str = "",
        dictionary: str = "",
    ) -> None:
        self.target = target
        self.index = dict(index)
        self.seconds = seconds
        self.work = work
        self.seeds = seeds
        self.input_timeout_s = input_timeout_s
        self.limits = limits or sandbox.Limits()
        self.note = note
        self.dictionary = dictionary  # a dictionary file (write_dictionary), or ''
        self.runs: dict[str, FuzzRun] = {}
        self._yielded: dict[str, set[bytes]] = {}
        self._found: set[str] = set()  # functions whose last call stopped at a finding

    def generate(self, sig: FunctionSig, plan: CallPlan, budget: int, seed: int) -> Iterator[GeneratedInput]:
        """Fuzz `sig` for what is left of its time box; yield the finding (if any), other stop artifacts, then
        the corpus, each input once over all calls. After a finding the differential run did not confirm, call
        again (see `resumable`) to go on fuzzing from the same corpus."""
        k = self.index[sig.name]
        base = os.path.join(self.work, "fuzz-%d" % k)
        corpus, seed_dir, art, kept = (os.path.join(base, d) for d in ("corpus", "seeds", "artifacts", "findings"))
        record = self.runs.get(sig.name)
        if record is None:
            record = self.runs[sig.name] = FuzzRun(sig.name, "ran", note=self.note)
            for d in (corpus, seed_dir, art, kept):
                os.makedirs(d, exist_ok=True)
            for j, blob in enumerate(self.seeds.get(sig.name, ())):
                if len(blob) <= MAX_LEN:
                    with open(os.path.join(seed_dir, "seed-%05d" % j), "wb") as f:
                        f.write(blob)
        yielded = self._yielded.setdefault(sig.name, set())
        finding = os.path.join(base, "finding")
        start = time.monotonic()
        deadline = start + self.seconds - record.seconds
        stops: list[str] = []
        self._found.discard(sig.name)
        first = True
        while record.starts < MAX_RUNS:
            left = int(deadline - time.monotonic())
            if left < 1 and not (first and record.starts == 0):
                break
            first = False
            res = self._run_once(k, corpus, seed_dir, art, finding, max(1, left), seed + record.starts)
            record.starts += 1
            runs, cov = parse_stats(res.stderr)
            record.executions += runs
            record.edges = max(record.edges, cov)
            saved = [p for p in (finding, finding + ".harness") if os.path.exists(p)]
            if saved:
                for path in saved:  # out of the way of the next start, kept for the record
                    os.replace(path, os.path.join(kept, "%s-%d" % (os.path.basename(path), record.starts)))
                record.findings += 1
                self._found.add(sig.name)
                break
            if res.returncode == 0 and not res.timed_out:
                break  # the time box ran out
            stops.append(_stop_reason(res))
        record.seconds = round(record.seconds + time.monotonic() - start, 3)
        if stops:
            record.note = "; ".join(filter(None, [record.note, "restarted after: " + ", ".join(stops)]))
        new = sorted(_read_dir(corpus), key=lambda b: (len(b), b))
        record.corpus = len(new)
        ordered = [(b, True) for b in _read_dir(kept) + _read_dir(art)] + [(b, False) for b in new]
        count = 0
        for blob, stop in ordered:
            if blob in yielded:
                continue
            if not stop and count >= budget:
                break
            yielded.add(blob)
            count += 1
            yield GeneratedInput(blob, describe(plan, decode(plan, blob)), SOURCE_NAME)

    def resumable(self, function: str) -> bool:
        """Whether the last call stopped at a finding with time and starts left in the function's box."""
        record = self.runs.get(function)
        return (
            record is not None
            and function in self._found
            and record.starts < MAX_RUNS
            and self.seconds - record.seconds >= 1.0
        )

    def _run_once(
        self, k: int, corpus: str, seed_dir: str, art: str, finding: str, seconds: int, seed: int
    ) -> sandbox.Result:
        argv = [
            self.target,
            *FUZZER_FLAGS,
            "-max_total_time=%d" % seconds,
            "-timeout=%d" % (self.input_timeout_s + 1),
            "-max_len=%d" % MAX_LEN,
            "-seed=%d" % ((seed & 0x7FFFFFFF) or 1),  # 0 would mean "pick one": runs must repeat
            "-artifact_prefix=%s/" % art,
            *(["-dict=%s" % self.dictionary] if self.dictionary else []),
            corpus,
            seed_dir,
        ]
        env = sandbox.scrubbed_env(
            os.path.dirname(corpus), {"COOPT_FUZZ_FUNCTION": str(k), "COOPT_FUZZ_FINDING": finding}
        )
        limits = sandbox.Limits(
            cpu_s=seconds + 20,
            address_space_mb=0,  # libFuzzer enforces -rss_limit_mb itself
            file_size_mb=self.limits.file_size_mb,
            processes=self.limits.processes,
            wall_s=seconds + 20,  # a target wedged in a crash handler is killed; the fuzzer restarts
            network=self.limits.network,
        )
        return sandbox.run(argv, os.path.dirname(corpus), limits, env)


def _stop_reason(res: sandbox.Result) -> str:
    if res.timed_out:
        return "wall-clock limit"
    for line in res.stderr.splitlines():
        if "ERROR: libFuzzer:" in line:
            return line.split("ERROR: libFuzzer:", 1)[1].strip().split(" ")[0]
    return "exit %d" % res.returncode


def summary(runs: Sequence[FuzzRun]) -> str:
    """One line for the check list: per function, time, executions, new inputs, findings."""
    parts = []
    for r in runs:
        if r.status != "ran":
            parts.append("%s: %s" % (r.function, r.status))
            continue
        found = "no finding" if not r.findings else "%d finding(s)" % r.findings
        if r.dismissed:
            found += ", %d not confirmed by the differential run" % r.dismissed
        parts.append(
            "%s: %.1f s, %d executions, %d edges, %d new inputs, %s"
            % (r.function, r.seconds, r.executions, r.edges, r.corpus, found)
        )
    return "; ".join(parts)
