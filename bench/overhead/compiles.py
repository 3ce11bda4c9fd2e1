"""Per-compile latency: the same call through plain clang, coopt-cc and ccache, on each TU.

Calls: `-E` (a pass-through), a link (journaled, then passed through), a compile that misses (coopt-cc: no variant
stored, so key + journal + exec; ccache: a fresh cache directory every time) and a compile that hits (coopt-cc: a
variant stored with `coopt cache put --unverified`; ccache: a direct-mode hit). Plain clang's compile is the
baseline for both miss and hit. After timing, the caches' own counters must show that every hit run hit and every
miss run missed; otherwise the numbers would describe something else and the benchmark stops.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from overhead.install import Installed
from overhead.timing import BenchError, Case, Samples, clean_env, interleave
from overhead.workloads import Tu

# (call, which arguments, which tools run it); the clang compile is the baseline of both miss and hit.
CALLS = (
    ("preprocess", "preprocess_args", ("clang", "coopt-cc", "ccache")),
    ("link", "link_args", ("clang", "coopt-cc", "ccache")),
    ("compile", "compile_args", ("clang",)),
    ("miss", "compile_args", ("coopt-cc", "ccache")),
    ("hit", "compile_args", ("coopt-cc", "ccache")),
    ("hit-checked", "compile_args", ("coopt-cc",)),
)
BASELINE = {
    "preprocess": "preprocess", "link": "link", "miss": "compile", "hit": "compile", "hit-checked": "compile"
}
DESCRIBE = {
    "preprocess": "-E (pass-through)",
    "link": "link (journaled)",
    "miss": "compile, miss",
    "hit": "compile, hit",
    "hit-checked": "compile, hit, compiler run kept",
}


@dataclass
class CompileSetup:
    """The cases to time and what their caches must count afterwards."""

    cases: list[Case] = field(default_factory=list)
    coopt_counts: list[tuple[str, Path, str]] = field(default_factory=list)  # case, its cache dir, its counter
    ccache_hits: list[tuple[str, Path]] = field(default_factory=list)


def case_name(tu: str, call: str, tool: str) -> str:
    return "%s/%s/%s" % (tu, call, tool)


def coopt_stats(installed: Installed, cache_dir: Path) -> dict[str, int]:
    """`coopt cache stats --json` for `cache_dir`: hits, misses and every counter."""
    proc = subprocess.run(
        [str(installed.coopt), "cache", "stats", "--json"], env=clean_env({"COOPT_CACHE_DIR": str(cache_dir)}),
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise BenchError("coopt cache stats failed for %s: %s" % (cache_dir, proc.stderr.strip()[-300:]))
    data = json.loads(proc.stdout)
    counts = {str(k): int(v) for k, v in data.get("counters", {}).items()}
    counts["hits"] = int(data.get("hits", 0))
    counts["misses"] = int(data.get("misses", 0))
    return counts


def ccache_stats(cache_dir: Path, config: Path) -> dict[str, int]:
    """ccache's counters for `cache_dir` (`ccache --print-stats`)."""
    env = clean_env({"CCACHE_DIR": str(cache_dir), "CCACHE_CONFIGPATH": str(config)})
    proc = subprocess.run(["ccache", "--print-stats"], env=env, capture_output=True, text=True)
    counts: dict[str, int] = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


def _run(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> str:
    proc = subprocess.run(list(argv), cwd=cwd, env=dict(env), capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError("`%s` failed (exit %d): %s" % (" ".join(argv), proc.returncode, proc.stderr.strip()[-300:]))
    return proc.stdout


def _store_variant(installed: Installed, tu: Tu, env: Mapping[str, str], variants: Path) -> None:
    """Journal one compile of `tu`, then store a copy of its own source as its variant (unverified)."""
    _run([str(installed.coopt_cc), *tu.compile_args], tu.cwd, env)
    artifact = variants / tu.label / tu.source
    artifact.parent.mkdir(parents=True)
    shutil.copyfile(tu.cwd / tu.source, artifact)
    _run(
        [str(installed.coopt), "cache", "put", "--artifact", str(artifact), "--for-object", tu.object_name,
         "--unverified"],
        tu.cwd, env,
    )


def _keep_compiler_run(cache: Path) -> None:
    """Make every stored result of `cache` keep the -fsyntax-only run, as a TU that prints a warning would."""
    for manifest in (cache / "manifests").glob("*/*"):
        manifest.write_text(manifest.read_text().replace("\ndirect clean\n", "\ndirect check bench\n"))


def setup(installed: Installed, tus: Sequence[Tu], workdir: Path, with_ccache: bool) -> CompileSetup:
    """Prepare caches (a stored variant for each TU, a primed ccache) and return the cases to time."""
    out = CompileSetup()
    caches = workdir / "caches"
    ccache_conf = workdir / "ccache.conf"
    ccache_conf.write_text("")  # keep the user's own ccache settings out of the measurement
    fresh_root = workdir / "fresh-ccache"
    fresh_root.mkdir()

    def fresh_ccache() -> dict[str, str]:
        return {"CCACHE_DIR": tempfile.mkdtemp(dir=fresh_root)}

    for tu in tus:
        for call, attr, tools in CALLS:
            args: tuple[str, ...] = getattr(tu, attr)
            for tool in tools:
                name = case_name(tu.label, call, tool)
                if tool == "clang":
                    out.cases.append(Case(name, ["clang", *args], str(tu.cwd), clean_env()))
                elif tool == "coopt-cc":
                    cache = caches / ("%s-%s" % (tu.label, "pass" if call in ("preprocess", "link") else call))
                    env = clean_env({"COOPT_CACHE_DIR": str(cache)})
                    if call in ("hit", "hit-checked"):
                        _store_variant(installed, tu, env, workdir / call / "variants")
                        if call == "hit-checked":
                            _keep_compiler_run(cache)
                        out.coopt_counts.append((name, cache, "hits"))
                    elif call == "miss":
                        out.coopt_counts.append((name, cache, "misses"))
                    out.cases.append(Case(name, [str(installed.coopt_cc), *args], str(tu.cwd), env))
                elif with_ccache:
                    base = {"CCACHE_CONFIGPATH": str(ccache_conf)}
                    argv = ["ccache", "clang", *args]
                    if call == "miss":
                        out.cases.append(Case(name, argv, str(tu.cwd), clean_env(base), prepare=fresh_ccache))
                        continue
                    cache = caches / ("%s-ccache-%s" % (tu.label, call))
                    env = clean_env({**base, "CCACHE_DIR": str(cache)})
                    if call == "hit":
                        _run(argv, tu.cwd, env)  # the first compile stores the result; later ones hit
                        out.ccache_hits.append((name, cache))
                    out.cases.append(Case(name, argv, str(tu.cwd), env))
    return out


def measure(
    installed: Installed, tus: Sequence[Tu], workdir: Path, with_ccache: bool, reps: int, warmup: int, seed: int
) -> tuple[dict[str, Samples], dict[str, dict[str, object]]]:
    """Time every case; check the caches counted what the cases claim. Returns samples and the checks made."""
    s = setup(installed, tus, workdir, with_ccache)
    samples = interleave(s.cases, reps, warmup, seed, "per-compile latency")
    checks: dict[str, dict[str, object]] = {}
    runs = warmup + reps
    for name, cache, counter in s.coopt_counts:
        counts = coopt_stats(installed, cache)
        counted = counts.get(counter, 0)
        checks[name] = {"counter": counter, "expected": runs, "counted": counted}
        if counter == "hits":
            checks[name]["direct"] = counts.get("hit_direct", 0)  # hits served without a compiler run
            if name.endswith("hit-checked/coopt-cc") and checks[name]["direct"]:
                raise BenchError("%s: a hit meant to keep the compiler run was served directly" % name)
        if counted != runs:
            raise BenchError(
                "%s: coopt counted %d %s for %d runs; the case does not measure what it claims (rerun with "
                "--keep and look at %s with COOPT_DEBUG=1)" % (name, counted, counter, runs, cache)
            )
    for name, cache in s.ccache_hits:
        counted = ccache_stats(cache, workdir / "ccache.conf").get("direct_cache_hit", 0)
        checks[name] = {"counter": "direct_cache_hit", "expected": runs, "counted": counted}
        if counted < runs:
            raise BenchError("%s: ccache counted %d direct hits for %d runs" % (name, counted, runs))
    return samples, checks


def rows(samples: Mapping[str, Samples], tus: Sequence[Tu]) -> list[dict[str, object]]:
    """One row per (TU, call): clang's median and each wrapper's median, added ms and ratio against it."""
    out: list[dict[str, object]] = []
    for tu in tus:
        for call in ("preprocess", "link", "miss", "hit", "hit-checked"):
            base = samples[case_name(tu.label, BASELINE[call], "clang")]
            row: dict[str, object] = {
                "tu": tu.label,
                "call": call,
                "description": DESCRIBE[call],
                "clang": base.as_dict(),
            }
            for tool in ("coopt-cc", "ccache"):
                got = samples.get(case_name(tu.label, call, tool))
                if got is None:
                    row[tool] = None
                    continue
                row[tool] = {
                    **got.as_dict(),
                    "added_ms": round(got.median - base.median, 3),
                    "ratio": round(got.median / base.median, 4),
                }
            out.append(row)
    return out
