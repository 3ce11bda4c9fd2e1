"""Where things live inside a cache directory.

    <root>/entries/<k[:2]>/<key>/    one verified variant: object.o, artifact.*, key.txt, meta.json
    <root>/manifests/<d[:2]>/<d>     include manifests by direct key (which headers, which result key)
    <root>/journal.jsonl             one record per journaled compile or link
    <root>/stats/<n>                 per-shard counter logs, appended without a lock
    <root>/compilers/<h>             compiler identity memo (size, mtime, content hash)
    <root>/locks/<name>.lock         writer locks, one per entry or manifest
    <root>/tmp/                      staging for atomic writes (same file system as the entries)
    <root>/remote/down-<h>           a remote store that failed, skipped while the stamp is young (cache/remote/sync.py)
    <root>/linked-objects/<h[:2]>/<h>/<stem>.o
                                     objects of a compile and link in one call, kept to relink (wrapper/compile_link.py)
"""

from __future__ import annotations

import os


def default_cache_dir() -> str:
    """`$COOPT_CACHE_DIR`, else `$XDG_CACHE_HOME/coopt`, else `~/.cache/coopt`."""
    env = os.environ.get("COOPT_CACHE_DIR")
    if env:
        return env
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return os.path.join(xdg, "coopt")
    return os.path.join(os.path.expanduser("~"), ".cache", "coopt")


MEMO_PREFIX = "fast-"
LINKED_OBJECTS = "linked-objects"


def memo_dir_name() -> str:
    """coopt-cc-fast's memo directory for this coopt version and key format (build_fastcc.py builds the same
    name into the binary; a test checks)."""
    from coopt import __version__
    from coopt.cache.key import KEY_VERSION
    from coopt.journal.log import JOURNAL_VERSION

    return "%s%s-k%d-j%d" % (MEMO_PREFIX, __version__, KEY_VERSION, JOURNAL_VERSION)


class CacheLayout:
    """Paths of one cache directory. Creates nothing by itself."""

    __slots__ = ("root",)

    def __init__(self, root: str) -> None:
        self.root = root

    def entry_dir(self, key: str) -> str:
        return os.path.join(self.root, "entries", key[:2], key)

    def manifest_path(self, direct_key: str) -> str:
        return os.path.join(self.root, "manifests", direct_key[:2], direct_key)

    @property
    def journal_path(self) -> str:
        return os.environ.get("COOPT_JOURNAL") or os.path.join(self.root, "journal.jsonl")

    @property
    def stats_dir(self) -> str:
        return os.path.join(self.root, "stats")

    @property
    def stats_zeroed_path(self) -> str:
        """When the counters were last zeroed (an ISO time), beside the counters so reading them never sees it."""
        return os.path.join(self.root, "stats-zeroed")

    @property
    def runs_dir(self) -> str:
        """Where optimize runs keep their state, logs and candidates by default."""
        return os.path.join(self.root, "runs")

    @property
    def linked_objects_dir(self) -> str:
        """The objects of compile-and-link calls that coopt-cc keeps (one directory per program and source)."""
        return os.path.join(self.root, LINKED_OBJECTS)

    def compiler_memo(self, name: str) -> str:
        return os.path.join(self.root, "compilers", name)

    def lock_path(self, name: str) -> str:
        return os.path.join(self.root, "locks", name + ".lock")

    @property
    def tmp_dir(self) -> str:
        return os.path.join(self.root, "tmp")

    def memo_dirs(self) -> list[str]:
        """coopt-cc-fast's replay memo directories, one per coopt version (`memo_dir_name`): only accelerators,
        safe to remove at any time."""
        try:
            names = os.listdir(self.root)
        except OSError:
            return []
        return [os.path.join(self.root, n) for n in sorted(names) if n.startswith(MEMO_PREFIX)]

    @property
    def log_path(self) -> str:
        return os.path.join(self.root, "coopt-cc.log")

    def append_log(self, lines: list[str]) -> None:
        """Add `lines` to coopt-cc's log, stamped with the time and this process, secrets masked; never raises."""
        if not lines:
            return
        import time

        from coopt.redact import mask

        try:
            os.makedirs(self.root, exist_ok=True)
            with open(self.log_path, "a", encoding="utf-8", errors="replace") as f:
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
                for line in lines:
                    f.write("%s [%d] %s\n" % (stamp, os.getpid(), mask(line)))
        except OSError:  # a full or read-only cache: the line is lost, nothing else is
            pass
