"""Many compiles and puts at once through one cache, and puts killed mid-store: every compile succeeds with a right
object, and the cache never serves half an entry."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import Coopt, require
from coopt.cache import manifest

HEADER = "#define K 3\n"
TU = '#include "f.h"\nint f(int x) { return x * K; }\n'
VARIANT_A = '#include "f.h"\nint f(int x) { return (x << 1) + x; }\n'
VARIANT_B = '#include "f.h"\nint f(int x) { return x + x + x; }\nint variant_b_marker = 1;\n'
FLAGS = ["-O2"]
N = 16


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    require("clang")
    d = tmp_path / "p"
    d.mkdir()
    (d / "f.h").write_text(HEADER)
    (d / "f.c").write_text(TU)
    (d / "va.c").write_text(VARIANT_A)
    (d / "vb.c").write_text(VARIANT_B)
    subprocess.run(["clang", *FLAGS, "-c", "f.c", "-o", "plain.o"], cwd=d, check=True)
    return d


def _put_cmd(coopt: Coopt, artifact: str) -> list[str]:
    return [str(coopt.bin / "coopt"), "cache", "put", "--artifact", artifact, "--unverified", "--",
            "clang", *FLAGS, "-c", "f.c"]


def _compiles_at_once(coopt: Coopt, d: Path, outputs: list[str]) -> list[subprocess.CompletedProcess]:
    procs = [
        subprocess.Popen([coopt.cc, *FLAGS, "-c", "f.c", "-o", out], cwd=d, env=coopt.env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for out in outputs
    ]
    results = []
    for p in procs:
        out, err = p.communicate()
        results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return results


def _entries(coopt: Coopt) -> list[dict]:
    return json.loads(coopt.coopt("cache", "ls", "--json").stdout)


def _entry_object(coopt: Coopt, key: str) -> bytes:
    return (coopt.cache_dir / "entries" / key[:2] / key / "object.o").read_bytes()


@pytest.mark.parametrize("stored", [False, True], ids=["miss", "hit"])
@pytest.mark.parametrize("same_output", [False, True], ids=["own-outputs", "one-output"])
def test_many_identical_compiles_at_once(coopt: Coopt, proj: Path, stored: bool, same_output: bool) -> None:
    plain = (proj / "plain.o").read_bytes()
    expected = plain
    if stored:
        coopt.run(_put_cmd(coopt, "va.c"), cwd=proj)
        (entry,) = _entries(coopt)
        expected = _entry_object(coopt, entry["key"])
        assert expected != plain
    outputs = ["f.o"] * N if same_output else ["f%02d.o" % i for i in range(N)]
    results = _compiles_at_once(coopt, proj, outputs)
    assert [(r.returncode, r.stdout, r.stderr) for r in results] == [(0, b"", b"")] * N
    for out in set(outputs):
        assert (proj / out).read_bytes() == expected
    assert not list(proj.glob("*.tmp"))  # no temporary left beside the outputs
    assert coopt.stats() == ({"hit": N, "hit_direct": N} if stored else {"miss": N})
    records = coopt.journal()
    assert len(records) == N and {r["output"] for r in records} == set(outputs)


def test_puts_of_the_same_key_at_once(coopt: Coopt, proj: Path) -> None:
    # Four puts of one variant and two of another, all for the same key, while the build keeps compiling.
    puts = [subprocess.Popen(_put_cmd(coopt, a), cwd=proj, env=coopt.env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE) for a in ("va.c", "vb.c", "va.c", "va.c", "vb.c", "va.c")]
    compiled = []
    while any(p.poll() is None for p in puts):
        compiled += _compiles_at_once(coopt, proj, ["c%d.o" % len(compiled)])
    for p in puts:
        out, err = p.communicate()
        assert p.returncode == 0, err
    (entry,) = _entries(coopt)
    served = _entry_object(coopt, entry["key"])
    shown = json.loads(coopt.coopt("cache", "show", entry["key"]).stdout)
    assert shown["intact"] is True

    plain = (proj / "plain.o").read_bytes()
    variants = _variant_objects(proj, ["va.c", "vb.c"])
    assert served in variants
    for r in compiled:  # every compile during the puts got a right object: the original or a stored variant
        assert r.returncode == 0 and r.stderr == b""
    for i in range(len(compiled)):
        assert (proj / ("c%d.o" % i)).read_bytes() in variants | {plain}
    manifests = [p for p in (coopt.cache_dir / "manifests").rglob("*") if p.is_file()]
    assert len(manifests) == 1 and len(manifest.load(str(manifests[0]))) == 1
    assert _compiles_at_once(coopt, proj, ["after.o"])[0].returncode == 0
    assert (proj / "after.o").read_bytes() == served


def _check_consistent(coopt: Coopt, proj: Path, variants: set[bytes]) -> bytes:
    """After a killed put: every entry listed is intact, and a compile gets the original or a listed variant."""
    entries = _entries(coopt)
    for e in entries:
        assert json.loads(coopt.coopt("cache", "show", e["key"]).stdout)["intact"] is True
    (result,) = _compiles_at_once(coopt, proj, ["check.o"])
    assert (result.returncode, result.stderr) == (0, b"")
    got = (proj / "check.o").read_bytes()
    allowed = {(proj / "plain.o").read_bytes()} | {_entry_object(coopt, e["key"]) for e in entries}
    assert got in allowed and got in variants | {(proj / "plain.o").read_bytes()}
    assert "internal_error" not in coopt.stats()
    return got


def _variant_objects(proj: Path, names: list[str]) -> set[bytes]:
    out = set()
    for name in names:
        subprocess.run(["clang", *FLAGS, "-iquote", str(proj), "-c", str(proj / name), "-o", "x.o"], cwd=proj,
                       check=True)
        out.add((proj / "x.o").read_bytes())
    return out


def test_put_killed_while_staging_leaves_the_cache_consistent(coopt: Coopt, proj: Path) -> None:
    # A large artifact makes staging (copy + checksum) last long enough to kill the writer in the middle of it.
    big = proj / "big.c"
    with open(big, "w") as f:
        f.write(VARIANT_A)
        f.write("/*" + ("coopt " * 10_000 + "\n") * 600 + "*/\n")  # ~36 MB of comment
    variants = _variant_objects(proj, ["big.c", "va.c"])
    tmp = coopt.cache_dir / "tmp"
    killed_mid_stage = 0
    for _ in range(3):
        left_before = set(tmp.glob("*")) if tmp.exists() else set()
        proc = subprocess.Popen(_put_cmd(coopt, "big.c"), cwd=proj, env=coopt.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        while proc.poll() is None:
            staging = set(tmp.glob("*")) - left_before if tmp.exists() else set()
            if any(not p.name.startswith("trash-") for p in staging):
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0)  # poll hard: the window is a few tens of milliseconds
        if proc.wait() == -signal.SIGKILL:
            killed_mid_stage += 1
        assert _entries(coopt) == [] or proc.returncode == 0
        _check_consistent(coopt, proj, variants)
    assert killed_mid_stage > 0
    # What the dead writers left in tmp/ is never an entry, and a later put works and is served.
    coopt.run(_put_cmd(coopt, "va.c"), cwd=proj)
    assert _check_consistent(coopt, proj, variants) == _entry_object(coopt, _entries(coopt)[0]["key"])
    big.unlink()
    shutil.rmtree(tmp, ignore_errors=True)


def test_put_killed_at_many_points_leaves_the_cache_consistent(coopt: Coopt, proj: Path) -> None:
    variants = _variant_objects(proj, ["va.c", "vb.c"])
    outcomes = []
    for i in range(8):
        proc = subprocess.Popen(_put_cmd(coopt, "va.c" if i % 2 else "vb.c"), cwd=proj, env=coopt.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.08 * i)  # spread the kills over the put's whole run: start-up, keying, building, storing
        proc.send_signal(signal.SIGKILL)
        outcomes.append(proc.wait())
        _check_consistent(coopt, proj, variants)
    assert -signal.SIGKILL in outcomes
    coopt.run(_put_cmd(coopt, "va.c"), cwd=proj)
    (entry,) = _entries(coopt)
    assert _check_consistent(coopt, proj, variants) == _entry_object(coopt, entry["key"])


MARKER = "\nint coopt_variant_marker_%s = 1;\n"
BZIP2_CFLAGS = "CFLAGS=-Wall -Winline -O2 -D_FILE_OFFSET_BITS=64"


def _make_both(coopt: Coopt, dirs: list[Path], *targets: str) -> None:
    procs = [
        subprocess.Popen(["make", "-j2", "CC=coopt-cc", BZIP2_CFLAGS, *targets], cwd=d, env=coopt.env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for d in dirs
    ]
    for p in procs:
        out, _ = p.communicate()
        assert p.returncode == 0, out.decode(errors="replace")[-3000:]


@pytest.mark.slow
def test_two_concurrent_make_builds_share_one_cache(coopt: Coopt, debian_source, tmp_path: Path) -> None:
    require("clang", "make", "nm")
    first = debian_source("bzip2", pristine=True)
    dirs = [first, tmp_path / "bzip2-second"]
    shutil.copytree(first, dirs[1], symlinks=True)
    tus = sorted(p.name for p in first.glob("*.c") if p.name not in ("dlltest.c", "spewG.c", "unzcrash.c",
                                                                     "mk251.c"))

    _make_both(coopt, dirs, "all")  # builds, then runs the project's own test (compress, decompress, cmp)
    stats = coopt.stats()
    assert stats.get("miss") == 2 * len(tus) and "internal_error" not in stats
    for tu in tus:
        obj = tu[:-2] + ".o"
        assert (dirs[0] / obj).read_bytes() == (dirs[1] / obj).read_bytes()

    hot = ["compress.c", "blocksort.c"]
    for tu in hot:
        variant = tmp_path / ("variant-" + tu)
        variant.write_text((first / tu).read_text() + MARKER % tu[:-2])
        coopt.coopt("cache", "put", "--artifact", str(variant), "--for-object", tu[:-2] + ".o", "--unverified",
                    cwd=first)
    assert len(json.loads(coopt.coopt("cache", "ls", "--json").stdout)) == len(hot)

    before = coopt.stats()
    subprocess.run(["make", "clean"], cwd=dirs[0], env=coopt.env, check=True, capture_output=True)
    subprocess.run(["make", "clean"], cwd=dirs[1], env=coopt.env, check=True, capture_output=True)
    _make_both(coopt, dirs, "all")
    after = coopt.stats()
    assert after.get("hit", 0) - before.get("hit", 0) == 2 * len(hot)
    assert after.get("miss", 0) - before.get("miss", 0) == 2 * (len(tus) - len(hot))
    assert "internal_error" not in after
    for d in dirs:
        symbols = subprocess.run(["nm", "bzip2"], cwd=d, check=True, capture_output=True, text=True).stdout
        for tu in hot:
            assert "coopt_variant_marker_" + tu[:-2] in symbols
    records = coopt.journal()
    assert sum(r["type"] == "compile" for r in records) == 4 * len(tus)
