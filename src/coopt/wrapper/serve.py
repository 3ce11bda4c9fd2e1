"""Serving a hit: only reached for a TU that has a manifest, i.e. a verified variant was stored for it.

Order of checks, each falling back to the real compiler when it fails:
1. the manifest names a result whose headers all still have their recorded content (and are not newer than
   the compile's start);
2. the entry exists, its key material equals ours, its checksums hold;
3. the preprocessor, run now, reads exactly the files the manifest names (no new header shadows an old one);
4. the real compiler, run with `-fsyntax-only` and the original arguments, succeeds: that prints the same
   diagnostics a real compile would and writes the same dependency file;
then the variant's object is copied into place atomically.
"""

from __future__ import annotations

import os
from stat import S_ISREG

from coopt.cache import key as keymod
from coopt.cache import manifest, stats
from coopt.cache.deps import list_deps
from coopt.cache.job import CompileJob
from coopt.cache.layout import CacheLayout
from coopt.cache.store import Store


def _count(layout: CacheLayout, read_only: bool, counter: str) -> None:
    if not read_only:  # a read-only cache is never written, not even its counters
        stats.bump(layout.stats_dir, counter)


def try_hit(
    layout: CacheLayout,
    job: CompileJob,
    args: list[str],
    direct: str,
    direct_key: str,
    started: float,
    read_only: bool,
    debug_log: list[str],
    debug: bool = False,
) -> int | None:
    """Serve the variant; returns the exit code, or None to fall back to a real compile."""
    try:
        special = not S_ISREG(os.stat(job.output_path).st_mode)
    except OSError:
        special = False  # not there yet: the usual case
    if special:
        # `-o /dev/null`: the compiler writes through a device; os.replace would put a file in its place.
        debug_log.append("miss: %s is not a regular file" % job.output_path)
        _count(layout, read_only, "miss_special_output")
        return None
    results = manifest.load(layout.manifest_path(direct_key))
    found, why = manifest.match(results, job.cwd, started)
    if found is None:
        debug_log.append("miss: " + why)
        _count(layout, read_only, "miss_" + why)
        return None
    material = keymod.result_material(direct, found.deps)
    if debug:
        try:
            with open(job.output_path + ".coopt-key", "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write(material)  # the full material: direct part plus every header and its hash
        except OSError:
            pass
    store = Store(layout.root, read_only=read_only)
    entry = store.lookup(found.key, material)
    if entry is None:
        debug_log.append("miss: entry %s missing, corrupt or for other inputs" % found.key)
        _count(layout, read_only, "miss_entry")
        return None
    try:
        actual = list_deps(job)
    except Exception as exc:
        debug_log.append("miss: dependency listing failed: %s" % exc)
        _count(layout, read_only, "miss_deps_failed")
        return None
    if actual != [p for p, _ in found.deps]:
        debug_log.append("miss: the preprocessor now reads other files than the manifest names")
        _count(layout, read_only, "miss_deps_changed")
        return None

    import subprocess

    check = [job.compiler] + [a for a in args if a != "-c"] + ["-fsyntax-only"]
    rc = subprocess.call(check, cwd=job.cwd)
    if rc != 0:
        # The real compile would have failed the same way (it printed its diagnostics); keep its exit code.
        _count(layout, read_only, "hit_check_failed")
        return rc
    out = job.output_path
    tmp = "%s.coopt-%d.tmp" % (out, os.getpid())
    try:
        with open(entry.object_path, "rb") as src:
            data = src.read()
        with open(tmp, "wb") as dst:
            dst.write(data)
        os.replace(tmp, out)
    except OSError as exc:
        debug_log.append("miss: cannot write %s: %s" % (out, exc))
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return None
    debug_log.append("hit: %s (level %s)" % (found.key, entry.meta.get("level", "?")))
    _count(layout, read_only, "hit")
    return 0
