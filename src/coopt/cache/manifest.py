"""Include manifests: for one direct key, which result keys exist and which files (with content hashes) each needs.

A manifest exists only for TUs that have a variant, so on the miss path its absence (one failed stat) is the whole
cost. Written at `put` time from one preprocessor run; read on the hit path, which is why it is plain text rather
than JSON (importing json costs a hit ~5 ms):

    coopt-manifest 3
    result <key>
    dep <xxh3-128> <path as the compiler named it; under base_dir `{cwd}/` and the path relative to the cwd>
    ...
    direct clean | direct check <why>
    absent <path> | isfile <path> | isdir <path> | dirstat <inode> <mtime_ns> <path>
    ...

`direct` says whether a hit may skip the compiler run (cache/header_search.py: the original compile printed nothing and
its header search is recorded); the lines after it are what must still hold for that, checked by
`lookups_hold` with a few stats. A version-2 manifest (no `direct` lines) is still read: its results keep the
compiler run.
"""

from __future__ import annotations

import os

from coopt.cache.hashing import hash_file
from coopt.cache.key import local_path

MANIFEST_FORMAT = 3
MAGIC = "coopt-manifest %d" % MANIFEST_FORMAT
READABLE = (MAGIC, "coopt-manifest 2")
_CHECK_KINDS = ("absent", "isfile", "isdir", "dirstat")
MAX_RESULTS = 8


class ManifestError(ValueError):
    """A dependency cannot be recorded (a path with a newline)."""


class ManifestMatch:
    """The result that matched: its key, its files, and whether (and under which checks) a hit may skip the
    compiler run."""

    __slots__ = ("key", "deps", "direct", "checks")

    def __init__(
        self, key: str, deps: list[tuple[str, str]], direct: str = "", checks: list[tuple[str, str]] | None = None
    ) -> None:
        self.key = key
        self.deps = deps
        self.direct = direct  # "clean", "check <why>", or "" (not recorded)
        self.checks = checks or []


def load(path: str) -> list[dict]:
    """The manifest's results as {"key", "deps": [[path, hash], ...], "direct", "checks"}, or [] when missing or
    unreadable.

    A line that does not parse ends the result it is in as damaged (never trusted); the next put rewrites it.
    """
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except OSError:
        return []
    return parse(text)


def parse(text: str) -> list[dict]:
    """The results of a manifest's text (as `load` returns them); [] when it is not a manifest."""
    lines = text.split("\n")
    if not lines or lines[0] not in READABLE:
        return []
    results: list[dict] = []
    current: dict | None = None
    for line in lines[1:]:
        if line.startswith("result "):
            current = {"key": line[7:], "deps": [], "direct": "", "checks": []}
            results.append(current)
        elif line.startswith("dep ") and current is not None and current.get("deps") is not None:
            digest, _, name = line[4:].partition(" ")
            if len(digest) != 32 or not name:
                current["deps"] = None  # damaged: _well_formed rejects it
            else:
                current["deps"].append([name, digest])
        elif line.startswith("direct ") and current is not None:
            current["direct"] = line[7:]
        elif current is not None and line.partition(" ")[0] in _CHECK_KINDS and current["direct"]:
            kind, _, arg = line.partition(" ")
            current["checks"].append((kind, arg))
        elif line and current is not None:
            current["deps"] = None
    return results


def _well_formed(res: object) -> bool:
    if not isinstance(res, dict) or not isinstance(res.get("key"), str):
        return False
    deps = res.get("deps")
    return isinstance(deps, list) and all(
        isinstance(d, list) and len(d) == 2 and isinstance(d[0], str) and isinstance(d[1], str) for d in deps
    )


def match(results: list[dict], cwd: str, not_after: float) -> tuple[ManifestMatch | None, str]:
    """The first result whose files all still have their recorded content, and why none did otherwise.

    Files modified at or after `not_after` (the compile's start) never match: they may be mid-write (race guard).
    """
    hashes: dict[str, str | None] = {}
    why = "manifest_mismatch"
    for res in results:
        if not _well_formed(res):
            continue  # a damaged manifest never matches; the next put rewrites it
        deps = res["deps"]
        key = res["key"]
        ok = True
        for path, digest in deps:
            full = local_path(path, cwd)  # `{cwd}/...`: a path keyed relative under base_dir (cache/key.py)
            if full not in hashes:
                try:
                    if os.stat(full).st_mtime >= not_after:
                        hashes[full] = None
                        why = "too_new"
                    else:
                        hashes[full] = hash_file(full)
                except OSError:
                    hashes[full] = None
            if hashes[full] != digest:
                ok = False
                break
        if ok:
            return ManifestMatch(key, [(p, h) for p, h in deps], res.get("direct") or "", res.get("checks")), ""
    return None, why


def lookups_hold(checks: list[tuple[str, str]], cwd: str) -> bool:
    """True when every recorded fact about the header search still holds (see cache/header_search.py): a few stats."""
    from stat import S_ISDIR, S_ISREG

    for kind, arg in checks:
        ino = mtime = ""
        path = arg
        if kind == "dirstat":
            fields = arg.split(" ", 2)
            if len(fields) != 3:
                return False
            ino, mtime, path = fields
        full = local_path(path, cwd)
        try:
            st = os.stat(full)
        except (FileNotFoundError, NotADirectoryError):
            if kind == "absent":
                continue
            return False
        except OSError:
            return False
        if kind == "isfile" and S_ISREG(st.st_mode):
            continue
        if kind == "isdir" and S_ISDIR(st.st_mode):
            continue
        if kind == "dirstat" and str(st.st_ino) == ino and str(st.st_mtime_ns) == mtime:
            continue
        return False
    return True


def add(
    path: str,
    lock_path: str,
    key: str,
    deps: list[tuple[str, str]],
    direct: str = "",
    checks: list[tuple[str, str]] | None = None,
) -> None:
    """Record that `key` serves this manifest's direct key when `deps` have these hashes; `direct` ("clean" with
    its `checks`, or "check <why>") says whether a hit may skip the compiler run.

    Atomic (temp file + rename) and under the manifest's lock, so concurrent puts never lose each other's results.
    """
    from filelock import FileLock

    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.makedirs(os.path.dirname(lock_path), exist_ok=True)
    with FileLock(lock_path, timeout=60):
        results = [r for r in load(path) if _well_formed(r) and r["key"] != key]
        results.append({"key": key, "deps": [[p, h] for p, h in deps], "direct": direct, "checks": checks or []})
        _write(path, results[-MAX_RESULTS:])


def remove_key(path: str, lock_path: str, key: str) -> None:
    """Forget `key` in one manifest (after its entry was removed)."""
    from filelock import FileLock

    if not os.path.exists(path):
        return
    with FileLock(lock_path, timeout=60):
        results = [r for r in load(path) if _well_formed(r) and r["key"] != key]
        if not results:
            try:
                os.unlink(path)
            except OSError:
                pass
            return
        _write(path, results)


def well_formed(results: list[dict]) -> list[dict]:
    """The results that are intact (a damaged one is dropped, never trusted)."""
    return [r for r in results if _well_formed(r)]


def render(results: list[dict]) -> str:
    """The manifest text of `results` (well-formed ones). Raises ManifestError for a path with a newline."""
    parts = [MAGIC + "\n"]
    for res in results:
        parts.append("result %s\n" % res["key"])
        for name, digest in res["deps"]:
            if "\n" in name or "\r" in name:
                raise ManifestError("cannot record a dependency whose path holds a newline: %r" % name)
            parts.append("dep %s %s\n" % (digest, name))
        direct = res.get("direct") or ""
        if direct:
            parts.append("direct %s\n" % direct)
            checks = (res.get("checks") or []) if direct == "clean" else []
            for kind, arg in checks:
                if "\n" in arg or "\r" in arg:
                    raise ManifestError("cannot record a path that holds a newline: %r" % arg)
                parts.append("%s %s\n" % (kind, arg))
    return "".join(parts)


def _write(path: str, results: list[dict]) -> None:
    from coopt.cache.files import replace_atomic

    replace_atomic(path, render(results).encode("utf-8", "surrogateescape"))
