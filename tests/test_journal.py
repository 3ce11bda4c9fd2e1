"""The journal: the hand-written encoder round-trips through json for any argv, torn lines are skipped without
losing the records after them, and many processes appending at once leave only whole records."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SRC, Coopt, require
from coopt.journal import log as journal

NASTY = [
    "",
    'say "hi"',
    "back\\slash\\",
    "new\nline",
    "cr\r lf\r\n tab\t",
    "bell\x07 esc\x1b del\x7f nul\x00",
    "é ü 中文 \U0001f600",
    "line\u2028sep\u2029para",
    "-DX={\"v\":1}",
    "\\u0041 not an escape",
    os.fsdecode(b"latin1-\xe9-\xff"),  # non-UTF-8 argv bytes, as Python decodes them (surrogateescape)
    os.fsdecode(b"\x80\x81 invalid start"),
]


def test_encoder_round_trips_through_json() -> None:
    values: list[object] = [
        *NASTY,
        NASTY,
        {"nested": {"list": [1, -2, 3.5, True, False, None, NASTY]}, "k\"ey": "v"},
        [[], {}, [[]]],
    ]
    for value in values:
        assert json.loads(journal.encode(value)) == value


def test_encoder_round_trips_random_strings() -> None:
    rng = random.Random(1234)
    alphabet = [chr(c) for c in range(0, 0x250)] + ["\udc80", "\udcff", "\u2028", "\U0001f600", '"', "\\"]
    for _ in range(2000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        assert json.loads(journal.encode(s)) == s


def test_append_and_read_round_trip(tmp_path: Path) -> None:
    path = str(tmp_path / "sub" / "journal.jsonl")  # the directory is created on first use
    recs = [
        {"type": "compile", "cwd": "/w", "args": NASTY, "source": NASTY[10], "output": "o.o", "debug": True},
        {"type": "link", "cwd": "/w", "args": ["-o", "app"], "output": "app", "inputs": ["a.o", NASTY[11]]},
    ]
    for rec in recs:
        assert journal.append(path, rec)
    got = journal.read(path)
    assert [{k: v for k, v in r.items() if k not in ("v", "time")} for r in got] == recs
    assert all(r["v"] == journal.JOURNAL_VERSION and isinstance(r["time"], float) for r in got)
    # Records other than compile and link are not the reader's business.
    with open(path, "a") as f:
        f.write('{"v":1,"type":"future-kind"}\n[1,2]\n')
    assert len(journal.read(path)) == 2


def test_torn_last_line_is_skipped_and_the_next_record_kept(tmp_path: Path) -> None:
    path = str(tmp_path / "journal.jsonl")
    journal.append(path, {"type": "compile", "cwd": "/a", "output": "a.o", "args": ["-c", "a.c"]})
    journal.append(path, {"type": "compile", "cwd": "/b", "output": "b.o", "args": ["-c", "b.c", NASTY[3]]})
    data = Path(path).read_bytes()
    for cut in (2, 7, len(data) // 3, 40):
        Path(path).write_bytes(data[: len(data) - cut])  # the writer of the last record died mid-write
        assert [r["output"] for r in journal.read(path)] == ["a.o"]
    journal.append(path, {"type": "link", "cwd": "/c", "output": "app", "args": [], "inputs": ["a.o"]})
    assert [r["output"] for r in journal.read(path)] == ["a.o", "app"]
    # A torn multi-byte character at the very end is skipped too.
    with open(path, "ab") as f:
        f.write('{"v":1,"type":"compile","cwd":"é'.encode()[:-1])
    assert [r["output"] for r in journal.read(path)] == ["a.o", "app"]


def test_trim_keeps_the_newest_record_of_each_output_byte_for_byte(tmp_path: Path) -> None:
    path = str(tmp_path / "journal.jsonl")
    for i in range(3):
        journal.append(path, {"type": "compile", "cwd": "/w", "output": "a.o", "args": ["-c", "a.c", str(i)]})
        journal.append(path, {"type": "compile", "cwd": "/w", "output": NASTY[11], "args": NASTY + [str(i)]})
    journal.append(path, {"type": "link", "cwd": "/w", "output": "a.o", "args": [], "inputs": ["a.o"]})
    with open(path, "ab") as f:
        f.write(b'{"v":1,"type":"compile","cwd":"/torn')  # a writer died mid-record: not a record
    newest = journal.read(path)[-3:]
    assert journal.trim(path) == (7, 3)
    assert journal.read(path) == newest
    assert journal.trim(path) == (3, 3)


WRITER = """
import sys
sys.path.insert(0, sys.argv[1])
from coopt.journal import log as journal
n, who = int(sys.argv[3]), sys.argv[4]
for i in range(n):
    args = ["-DWHO=" + who, "-DI=%d" % i, "x" * (1000 + 97 * i % 3000), "\\n\\"\\\\"]
    assert journal.append(sys.argv[2], {"type": "compile", "cwd": who, "output": "%s-%d.o" % (who, i), "args": args})
"""


def test_concurrent_appends_from_many_processes_all_parse(tmp_path: Path) -> None:
    path = str(tmp_path / "journal.jsonl")
    writers, per_writer = 16, 60
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(SRC), path, str(per_writer), "w%02d" % w])
        for w in range(writers)
    ]
    assert [p.wait() for p in procs] == [0] * writers
    lines = Path(path).read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == writers * per_writer + 1
    recs = journal.read(path)
    assert len(recs) == writers * per_writer
    seen = {(r["cwd"], r["output"]) for r in recs}
    assert seen == {("w%02d" % w, "w%02d-%d.o" % (w, i)) for w in range(writers) for i in range(per_writer)}
    assert all(r["args"][3] == '\n"\\' for r in recs)


def test_non_utf8_argv_and_paths_through_coopt_cc(coopt: Coopt, tmp_path: Path) -> None:
    require("clang")
    d = tmp_path / "p"
    d.mkdir()
    src_name = b"f\xff.c"
    (d / os.fsdecode(src_name)).write_text("int f(void) { return NAME[0]; }\n")
    argv = [b"-O2", b'-DNAME="\xe9t\xe9\\n"', b"-c", src_name, b"-o", b"out\xfe.o"]
    env = {k.encode(): v.encode() for k, v in coopt.env.items()}
    subprocess.run([b"clang", *argv[:-1], b"plain.o"], cwd=d, check=True)
    subprocess.run([os.fsencode(coopt.cc), *argv], cwd=d, env=env, check=True)
    assert (d / os.fsdecode(b"out\xfe.o")).read_bytes() == (d / "plain.o").read_bytes()
    (rec,) = coopt.journal()
    assert [os.fsencode(a) for a in rec["args"]] == argv  # the exact bytes, for an exact replay
    assert os.fsencode(rec["source"]) == src_name

    # The compile can be replayed from the journal, and a variant stored and served for it.
    (d / "v.c").write_text("int f(void) { return NAME[1]; }\n")
    if sys.platform.startswith("linux"):
        proc = subprocess.run([os.fsencode(str(coopt.bin / "coopt")), b"cache", b"put", b"--artifact", b"v.c",
                               b"--for-object", b"out\xfe.o", b"--unverified"], cwd=d, env=env, capture_output=True)
        assert proc.returncode == 0, proc.stderr
        subprocess.run([os.fsencode(coopt.cc), *argv], cwd=d, env=env, check=True)
        assert coopt.stats().get("hit") == 1
        assert (d / os.fsdecode(b"out\xfe.o")).read_bytes() != (d / "plain.o").read_bytes()
    compdb = coopt.coopt("compdb", "-o", "-", cwd=d)
    (entry,) = json.loads(compdb.stdout)
    assert [os.fsencode(a) for a in entry["arguments"][1:]] == argv


@pytest.mark.parametrize("full", [False, True])
def test_unwritable_journal_never_fails_the_compile(coopt: Coopt, tmp_path: Path, full: bool) -> None:
    require("clang")
    d = tmp_path / "p"
    d.mkdir()
    (d / "f.c").write_text("int f(void) { return 1; }\n")
    # COOPT_JOURNAL is a directory (cannot be opened for append), or /dev/full (every write fails).
    target = "/dev/full" if full else str(tmp_path)
    if full and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    env = dict(coopt.env, COOPT_JOURNAL=target)
    proc = subprocess.run([coopt.cc, "-c", "f.c"], cwd=d, env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == ""
    assert (d / "f.o").exists()
    assert coopt.stats() == {"miss": 1}
