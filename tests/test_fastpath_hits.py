"""coopt-cc-fast serves a direct hit again only while every fact Python decided it on still holds: the same key,
the same headers and header search, the same manifest and entry (evidence, key material, object), the same judging
code. Each test changes one of them and checks that the call then goes to Python (the C side alone cannot do it),
and that what the build gets is right."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Coopt, require
from coopt.wrapper import fastpath

ARGS = ["-O2", "-Iearly", "-Ilate", "-c", "f.c", "-o", "f.o"]


def _cc(c: Coopt) -> str:
    return str(c.env["PATH"].split(":", 1)[0]) + "/coopt-cc"


def _alone(fast: Coopt, cwd: Path) -> bool:
    """Compile ARGS with coopt-cc's Python part replaced by /bin/false (the launcher's path, which every memo is keyed
    on, stays): True when coopt-cc-fast decided the call by itself."""
    launcher = Path(_cc(fast))
    text = launcher.read_text()
    launcher.write_text(text.replace('"%s"' % sys.executable, '"/bin/false"'))
    try:
        return fast.run([str(launcher), *ARGS], cwd=cwd, check=False).returncode == 0
    finally:
        launcher.write_text(text)


def _compile(fast: Coopt, cwd: Path) -> None:
    fast.run([_cc(fast), *ARGS], cwd=cwd)


def _plain(cwd: Path, source: str) -> bytes:
    subprocess.run(["clang", "-O2", "-Iearly", "-Ilate", "-c", source, "-o", "plain.o"], cwd=cwd, check=True)
    return (cwd / "plain.o").read_bytes()


@pytest.fixture
def served(fast: Coopt, tmp_path: Path) -> Path:
    """f.c (including f.h beside it and <g.h> from late/, after an empty early/) with a variant v.c stored, served
    once by Python: the memo now holds the direct hit."""
    require("clang")
    (tmp_path / "early").mkdir()
    (tmp_path / "late").mkdir()
    (tmp_path / "f.h").write_text("#define K 3\n")
    (tmp_path / "f.c").write_text('#include "f.h"\n#include <g.h>\nint f(int x) { return x * K + G; }\n')
    (tmp_path / "late" / "g.h").write_text("#define G 1\n")
    (tmp_path / "v.c").write_text('#include "f.h"\n#include <g.h>\nint f(int x) { return K * x + G + 0; }\n')
    _compile(fast, tmp_path)
    fast.coopt("cache", "put", "--artifact", "v.c", "--for-object", "f.o", "--unverified", cwd=tmp_path)
    _compile(fast, tmp_path)
    assert fast.stats() == {"miss": 1, "hit": 1, "hit_direct": 1}
    return tmp_path


def _entry(fast: Coopt) -> Path:
    (entry,) = list((fast.cache_dir / "entries").glob("*/*"))
    return entry


def test_a_direct_hit_is_served_again_by_coopt_cc_fast_alone(fast: Coopt, served: Path) -> None:
    by_python = (served / "f.o").read_bytes()
    assert by_python == (_entry(fast) / "object.o").read_bytes() != _plain(served, "f.c")
    (served / "f.o").unlink()
    assert _alone(fast, served)
    assert (served / "f.o").read_bytes() == by_python
    assert fast.stats() == {"miss": 1, "hit": 2, "hit_direct": 2, "hit_fast": 1}
    python_rec, c_rec = [{k: v for k, v in r.items() if k != "time"} for r in fast.journal()[-2:]]
    assert python_rec == c_rec  # the hit is journaled as Python journals it
    out = fast.coopt("cache", "stats").stdout
    assert "hits              2 (2 without a compiler run, 1 served by coopt-cc-fast)" in out


def test_a_changed_header_goes_to_python_which_compiles(fast: Coopt, served: Path) -> None:
    (served / "late" / "g.h").write_text("#define G 2\n")
    assert not _alone(fast, served)
    _compile(fast, served)
    assert (served / "f.o").read_bytes() == _plain(served, "f.c")
    assert "hit_fast" not in fast.stats()


def test_a_header_that_would_shadow_a_recorded_one_goes_to_python(fast: Coopt, served: Path) -> None:
    (served / "early" / "g.h").write_text("#define G 5\n")  # searched before late/
    assert not _alone(fast, served)
    _compile(fast, served)
    assert (served / "f.o").read_bytes() == _plain(served, "f.c")
    assert "hit_fast" not in fast.stats()


def test_forged_evidence_is_not_served_from_c(fast: Coopt, served: Path) -> None:
    meta_path = _entry(fast) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["forged"] = True  # any edit: the checksums no longer hold
    meta_path.write_text(json.dumps(meta))
    assert not _alone(fast, served)
    _compile(fast, served)  # Python finds the entry corrupt and compiles
    assert (served / "f.o").read_bytes() == _plain(served, "f.c")
    assert "hit_fast" not in fast.stats()


def test_an_object_swapped_in_the_store_is_not_served_from_c(fast: Coopt, served: Path) -> None:
    obj = _entry(fast) / "object.o"
    obj.write_bytes(obj.read_bytes() + b"\0")
    assert not _alone(fast, served)
    assert "hit_fast" not in fast.stats()


def test_a_removed_entry_is_not_served_from_c(fast: Coopt, served: Path) -> None:
    shutil.rmtree(_entry(fast))
    assert not _alone(fast, served)
    _compile(fast, served)
    assert (served / "f.o").read_bytes() == _plain(served, "f.c")


def test_a_newer_variant_is_served_by_python_first_then_by_c(fast: Coopt, served: Path) -> None:
    (served / "v2.c").write_text('#include "f.h"\n#include <g.h>\nint f(int x) { return (x << 1) + x + G; }\n')
    fast.coopt("cache", "put", "--artifact", "v2.c", "--for-object", "f.o", "--unverified", cwd=served)
    assert not _alone(fast, served)  # the manifest or the entry changed
    _compile(fast, served)
    newer = (served / "f.o").read_bytes()
    assert newer == (_entry(fast) / "object.o").read_bytes()
    (served / "f.o").unlink()
    assert _alone(fast, served)
    assert (served / "f.o").read_bytes() == newer


def test_a_changed_source_is_a_miss_in_c_and_the_old_source_a_hit_again(fast: Coopt, served: Path) -> None:
    original = (served / "f.c").read_text()
    (served / "f.c").write_text(original.replace("x * K", "x * K + 1"))
    assert _alone(fast, served)  # another key, no manifest for it: replayed as a miss
    assert (served / "f.o").read_bytes() == _plain(served, "f.c")
    assert fast.stats()["miss_fast"] == 1
    (served / "f.c").write_text(original)
    os.utime(served / "f.c", (time.time() - 5, time.time() - 5))
    assert _alone(fast, served)
    assert (served / "f.o").read_bytes() == (_entry(fast) / "object.o").read_bytes()
    assert fast.stats()["hit_fast"] == 1


def test_a_header_written_during_the_call_is_not_trusted(fast: Coopt, served: Path) -> None:
    future = time.time() + 3600
    os.utime(served / "f.h", (future, future))  # the race guard: modified at or after the call's start
    assert not _alone(fast, served)


def test_unverified_entries_replay_only_with_the_opt_in(fast: Coopt, served: Path) -> None:
    env = {k: v for k, v in fast.env.items() if k != "COOPT_SERVE_UNVERIFIED"}
    without = Coopt(bin=fast.bin, cache_dir=fast.cache_dir, env=env)
    assert not _alone(without, served)  # another fingerprint: no memo
    _compile(without, served)
    assert (served / "f.o").read_bytes() == _plain(served, "f.c")


def test_the_memo_names_the_code_that_judged_the_hit(fast: Coopt, served: Path) -> None:
    memos = [p.read_bytes() for p in (fast.cache_dir / fastpath.memo_dir_name()).glob("*/*")]
    with_hit = [m for m in memos if b"\nhit\nhit_direct\nhit_fast\n" in m]
    assert len(with_hit) == 1
    for module in ("cache/accept.py", "cache/store.py", "cache/manifest.py", "wrapper/serve.py"):
        assert ("coopt/%s\n" % module).encode() in with_hit[0]
