"""The local store of verified variants: one directory per key, written atomically, checked on every read.

An entry directory holds `object.o` (what a hit serves), the artifact it was built from (`artifact.c`, `.ll`,
`.s`), `key.txt` (the full key material, compared on lookup), `meta.json` (recipe, evidence, job) and
`checksums.txt` (a line `<xxh3-128> <file>` for each of the others). Writers stage the whole directory under tmp/
and rename it into place while holding the entry's lock; readers never lock and see either no entry or a complete
one. An entry whose checksums do not match is removed, never served.

The hit path (`lookup`) reads only checksums.txt, key.txt and the object: no json, no dataclasses, so a hit does
not pay for imports the miss path was kept free of.
"""

from __future__ import annotations

import os

from coopt.cache.hashing import hash_bytes, hash_file
from coopt.cache.layout import CacheLayout

ENTRY_FORMAT = 2
OBJECT_NAME = "object.o"
KEY_NAME = "key.txt"
META_NAME = "meta.json"
CHECKSUMS_NAME = "checksums.txt"
REQUIRED = (OBJECT_NAME, KEY_NAME, META_NAME)


# Seconds a staging directory whose writer has died is left alone: the pid in its name may be one of another
# machine sharing the cache directory, whose live put must not lose its staging at once.
DEAD_WRITER_GRACE = 60.0
KEEP_RUNS = 20  # optimize run directories `evict` keeps (reports and resumes read them)


def _unique() -> str:
    return "%d-%s" % (os.getpid(), os.urandom(6).hex())


def _listdir(path: str) -> list[str]:
    """The names in `path`; none when it is missing or unreadable."""
    try:
        return os.listdir(path)
    except OSError:
        return []


def _writer_alive(name: str) -> bool:
    """Whether the process named in a tmp/ entry (`<key>.<pid>-<hex>`, `trash-<pid>-<hex>`) still runs here; True
    when the name carries no pid (such an entry is left to the age limit)."""
    tail = name[len("trash-") :] if name.startswith("trash-") else name.rpartition(".")[2]
    pid, dash, rand = tail.partition("-")
    if not dash or not pid.isdigit() or len(rand) != 12:
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it runs, under another user
        return True
    return True


class Entry:
    """A verified variant in the store. `meta` (meta.json) is read on first use."""

    __slots__ = ("key", "path", "_meta", "inode")

    def __init__(self, key: str, path: str, meta: dict | None = None, inode: int | None = None) -> None:
        self.key = key
        self.path = path
        self._meta = meta
        self.inode = inode  # of the entry directory when it was read

    @property
    def meta(self) -> dict:
        if self._meta is None:
            import json

            try:
                with open(os.path.join(self.path, META_NAME), encoding="utf-8") as f:
                    loaded = json.load(f)
            except (OSError, ValueError):
                loaded = {}
            self._meta = loaded if isinstance(loaded, dict) else {}
        return self._meta

    @property
    def object_path(self) -> str:
        return os.path.join(self.path, OBJECT_NAME)

    @property
    def artifact_path(self) -> str:
        return os.path.join(self.path, self.meta.get("artifact", ""))

    @property
    def size(self) -> int:
        return int(self.meta.get("size", 0))

    @property
    def last_used(self) -> float:
        try:
            return os.stat(self.path).st_mtime
        except OSError:
            return 0.0


class Store:
    """Front door of the local cache directory."""

    def __init__(self, root: str, read_only: bool = False) -> None:
        self.layout = CacheLayout(root)
        self.read_only = read_only
        self.refused = ""  # why the last lookup's entry was refused for its evidence

    # -- reading ---------------------------------------------------------------------------------------------

    def lookup(self, key: str, material: str, allow_unverified: bool = False) -> Entry | None:
        """The entry for `key` if its files are intact, its stored key material equals `material` and its evidence
        lets it be served (cache/accept.py; an `--unverified` entry only with `allow_unverified`). When an intact
        entry for these inputs is refused for its evidence, `refused` says why."""
        self.refused = ""
        path = self.layout.entry_dir(key)
        try:
            inode = os.stat(path).st_ino
        except OSError:
            return None
        entry = Entry(key=key, path=path, inode=inode)
        # Checksums first: a damaged key.txt is a corrupt entry to remove, not merely another key's material.
        if not self.verify(entry):
            self._discard_broken(key, path, inode)
            return None
        try:
            with open(os.path.join(path, KEY_NAME), encoding="utf-8", errors="surrogateescape") as f:
                stored = f.read()
        except OSError:
            return None
        if stored != material:
            return None  # same hash, different inputs: never serve
        why = _evidence_refusal(path, allow_unverified)
        if why:
            self.refused = why
            return None
        if not self.read_only:
            try:
                os.utime(path)  # LRU: the entry directory's mtime is its last use
            except OSError:
                pass
        return entry

    def get(self, key: str) -> Entry | None:
        """The entry for `key` without comparing key material (for `coopt cache show`)."""
        return self._load(key, self.layout.entry_dir(key))

    def verify(self, entry: Entry) -> bool:
        """True when the entry's checksums list its required files and every listed file has its content."""
        sums = read_checksums(entry.path)
        if sums is None or any(name not in sums for name in REQUIRED):
            return False
        for name, digest in sums.items():
            try:
                if hash_file(os.path.join(entry.path, name)) != digest:
                    return False
            except OSError:
                return False
        return True

    def entries(self) -> list[Entry]:
        """All readable entries (unverified; `verify` them where it matters)."""
        out: list[Entry] = []
        top = os.path.join(self.layout.root, "entries")
        try:
            shards = sorted(os.listdir(top))
        except OSError:
            return out
        for shard in shards:
            try:
                keys = sorted(os.listdir(os.path.join(top, shard)))
            except OSError:
                continue
            for key in keys:
                entry = self._load(key, os.path.join(top, shard, key))
                if entry is not None:
                    out.append(entry)
        return out

    def total_size(self) -> int:
        return sum(e.size for e in self.entries())

    def _load(self, key: str, path: str) -> Entry | None:
        import json

        try:
            inode = os.stat(path).st_ino
        except OSError:
            return None
        try:
            with open(os.path.join(path, META_NAME), encoding="utf-8") as f:
                meta = json.load(f)
        except (OSError, ValueError):
            # Entries arrive whole by rename, so a directory without a readable meta.json is damaged.
            self._discard_broken(key, path, inode)
            return None
        if not isinstance(meta, dict) or meta.get("format") != ENTRY_FORMAT or meta.get("key") != key:
            self._discard_broken(key, path, inode)
            return None
        return Entry(key=key, path=path, meta=meta, inode=inode)

    # -- writing ---------------------------------------------------------------------------------------------

    def put(self, key: str, material: str, object_path: str, artifact_path: str | None, meta: dict) -> Entry:
        """Store a variant atomically: stage a complete directory, then rename it into place under the lock."""
        if self.read_only:
            raise PermissionError("the cache is read-only")
        import json
        import shutil
        import time

        stage = self.staging_dir(key)
        try:
            _copy(object_path, os.path.join(stage, OBJECT_NAME))
            _write(os.path.join(stage, KEY_NAME), material.encode("utf-8", "surrogateescape"))
            sums = {
                OBJECT_NAME: hash_file(os.path.join(stage, OBJECT_NAME)),
                KEY_NAME: hash_bytes(material.encode("utf-8", "surrogateescape")),
            }
            artifact_name = ""
            if artifact_path:
                artifact_name = "artifact" + (os.path.splitext(artifact_path)[1] or ".txt")
                _copy(artifact_path, os.path.join(stage, artifact_name))
                sums[artifact_name] = hash_file(os.path.join(stage, artifact_name))
            size = sum(os.path.getsize(os.path.join(stage, n)) for n in os.listdir(stage))
            full_meta = dict(meta)
            full_meta.update(
                format=ENTRY_FORMAT,
                key=key,
                artifact=artifact_name,
                checksums=dict(sums),
                size=size,
                stored=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            )
            _write(os.path.join(stage, META_NAME), json.dumps(full_meta, indent=1, sort_keys=True).encode("utf-8"))
            sums[META_NAME] = hash_file(os.path.join(stage, META_NAME))
            _write(os.path.join(stage, CHECKSUMS_NAME),
                   "".join("%s %s\n" % (digest, name) for name, digest in sorted(sums.items())).encode("utf-8"))
            final = self._install(key, stage)
            return Entry(key=key, path=final, meta=full_meta)
        finally:
            if os.path.exists(stage):
                shutil.rmtree(stage, ignore_errors=True)

    def staging_dir(self, key: str) -> str:
        """A fresh directory under tmp/ (same file system as the entries) to assemble an entry for `adopt`."""
        os.makedirs(self.layout.tmp_dir, exist_ok=True)
        stage = os.path.join(self.layout.tmp_dir, "%s.%s" % (key, _unique()))
        os.makedirs(stage)
        return stage

    def adopt(self, key: str, stage: str) -> Entry | None:
        """Move a complete entry directory assembled in `staging_dir` into place, atomically, as `put` does.

        For entries that arrive whole (from a remote store): the directory is checked first (checksums, format and
        key in meta.json) and is removed instead when anything is off. Returns the entry, or None when refused.
        """
        if self.read_only:
            raise PermissionError("the cache is read-only")
        import shutil

        try:
            probe = Entry(key=key, path=stage)
            meta = probe.meta
            if not self.verify(probe) or meta.get("format") != ENTRY_FORMAT or meta.get("key") != key:
                return None
            final = self._install(key, stage)
            return Entry(key=key, path=final, meta=meta)
        finally:
            if os.path.exists(stage):
                shutil.rmtree(stage, ignore_errors=True)

    def _install(self, key: str, stage: str) -> str:
        from filelock import FileLock

        final = self.layout.entry_dir(key)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.makedirs(os.path.dirname(self.layout.lock_path(key)), exist_ok=True)
        with FileLock(self.layout.lock_path(key), timeout=120):
            if os.path.exists(final):
                self._discard(final)
            os.rename(stage, final)
        return final

    def remove(self, key: str) -> bool:
        """Remove one entry, and its line in the include manifest that leads to it. True when it existed."""
        path = self.layout.entry_dir(key)
        if not os.path.exists(path):
            return False
        entry = self.get(key)
        self._discard(path)
        if entry is not None:
            self._forget(entry)
        return True

    def clear(self) -> int:
        """Remove every entry and manifest, and coopt-cc-fast's memos. Returns how many entries there were."""
        import shutil

        count = len(self.entries())
        for top in [os.path.join(self.layout.root, sub) for sub in ("entries", "manifests")] + self.layout.memo_dirs():
            if os.path.exists(top):
                trash = os.path.join(self.layout.tmp_dir, "trash-" + _unique())
                os.makedirs(self.layout.tmp_dir, exist_ok=True)
                os.rename(top, trash)
                shutil.rmtree(trash, ignore_errors=True)
        return count

    def evict(self, max_size: int, older_than: float | None = None) -> list[str]:
        """Remove least recently used entries until the store fits in `max_size` bytes, and with `older_than`
        (seconds) every entry not used for that long. Returns removed keys."""
        import time

        entries = sorted(self.entries(), key=lambda e: e.last_used)
        total = sum(e.size for e in entries)
        removed: list[str] = []
        stale = time.time() - older_than if older_than is not None else None
        for entry in entries:
            if total <= max_size and (stale is None or entry.last_used >= stale):
                break
            self._discard(entry.path)
            self._forget(entry)
            total -= entry.size
            removed.append(entry.key)
        self.clean_tmp()
        self.drop_other_memos()
        return removed

    def trim_history(self, older_than: float | None = None, keep_runs: int = KEEP_RUNS) -> tuple[int, int, int]:
        """Bound what grows with every build and run: the journal keeps the newest record of each compile and link
        (journal/log.py trim), runs/ its newest `keep_runs` run directories and, with `older_than` (seconds), no
        older run except the newest, and no kept object of a compile-and-link call that no build wrote since (a
        rebuild writes each again; configure checks with a new name each run leave theirs behind). Returns
        (journal records dropped, run directories removed, kept objects removed)."""
        import shutil
        import time

        from coopt.journal.log import trim

        before, after = trim(self.layout.journal_path)
        runs_dir = self.layout.runs_dir
        try:
            runs = sorted((os.stat(os.path.join(runs_dir, n)).st_mtime, os.path.join(runs_dir, n))
                          for n in os.listdir(runs_dir) if os.path.isdir(os.path.join(runs_dir, n)))
        except OSError:
            runs = []
        stale = time.time() - older_than if older_than is not None else None
        gone = 0
        for i, (mtime, path) in enumerate(runs):
            newest = i == len(runs) - 1
            if not newest and (i < len(runs) - keep_runs or (stale is not None and mtime < stale)):
                shutil.rmtree(path, ignore_errors=True)
                gone += 1
        return before - after, gone, self._trim_linked_objects(stale) if stale is not None else 0

    def _trim_linked_objects(self, stale: float) -> int:
        """Remove the kept objects (one directory per program and source) last written before `stale`."""
        import shutil

        gone = 0
        top = self.layout.linked_objects_dir
        for sub in _listdir(top):
            for name in _listdir(os.path.join(top, sub)):
                d = os.path.join(top, sub, name)
                try:
                    newest = max((os.stat(os.path.join(d, f)).st_mtime for f in os.listdir(d)), default=0.0)
                except OSError:
                    continue
                if newest < stale:
                    shutil.rmtree(d, ignore_errors=True)
                    gone += 1
        return gone

    def drop_other_memos(self) -> int:
        """Remove the memo directories of other coopt versions: this version's coopt-cc-fast never reads them.
        Returns how many went."""
        import shutil

        from coopt.cache.layout import memo_dir_name

        keep = memo_dir_name()
        gone = 0
        for d in self.layout.memo_dirs():
            if os.path.basename(d) != keep:
                shutil.rmtree(d, ignore_errors=True)
                gone += 1
        return gone

    def clean_tmp(self, older_than: float = 3600.0, dead_after: float = DEAD_WRITER_GRACE) -> int:
        """Remove staging and trash left in tmp/ by writers that died (killed mid-put). Returns how many.

        A name carries its writer's pid (`_unique`): one whose writer is gone from this machine goes once it is
        `dead_after` seconds old; any other once it is `older_than` seconds old (a writer on another machine
        sharing the directory, or a pid reused since).
        """
        import shutil
        import time

        count = 0
        try:
            names = os.listdir(self.layout.tmp_dir)
        except OSError:
            return 0
        now = time.time()
        for name in names:
            path = os.path.join(self.layout.tmp_dir, name)
            try:
                age = now - os.lstat(path).st_mtime
            except OSError:
                continue
            if age < older_than and (age < dead_after or _writer_alive(name)):
                continue  # maybe a put still at work
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except OSError:
                    continue
            count += 1
        return count

    def _forget(self, entry: Entry) -> None:
        """Drop a removed entry's key from the manifest of its direct key, so no lookup is sent to it."""
        direct_key = entry.meta.get("direct_key")
        if self.read_only or not isinstance(direct_key, str) or not direct_key:
            return
        from coopt.cache import manifest

        try:
            manifest.remove_key(
                self.layout.manifest_path(direct_key), self.layout.lock_path("m-" + direct_key), entry.key
            )
        except OSError:
            pass

    def _discard_broken(self, key: str, path: str, inode: int | None) -> None:
        """Remove an entry found damaged, unless a writer replaced it meanwhile (then the damage was the swap).

        Readers hold no lock, so a reader can read an old meta.json and then files of the complete entry a writer
        just renamed into place. Under the entry's lock, writers are excluded, and the directory is removed only
        when it is still the one that was read.
        """
        if self.read_only:
            return
        from filelock import FileLock

        try:
            os.makedirs(os.path.dirname(self.layout.lock_path(key)), exist_ok=True)
            with FileLock(self.layout.lock_path(key), timeout=30):
                if inode is not None and os.stat(path).st_ino != inode:
                    return
                self._discard(path)
        except Exception:  # a removal that cannot happen now is retried by the next reader
            pass

    def _discard(self, path: str) -> None:
        """Remove an entry directory: rename it away first so readers never see it half-deleted."""
        if self.read_only:
            return
        import shutil

        try:
            os.makedirs(self.layout.tmp_dir, exist_ok=True)
            trash = os.path.join(self.layout.tmp_dir, "trash-" + _unique())
            os.rename(path, trash)
        except OSError:
            return
        shutil.rmtree(trash, ignore_errors=True)


def _evidence_refusal(entry_path: str, allow_unverified: bool) -> str:
    """Why the entry's evidence (its meta.json, checked by the checksums just read) does not let it be served; ""
    when it does."""
    from coopt.cache import accept

    try:
        with open(os.path.join(entry_path, META_NAME), encoding="utf-8") as f:
            meta = accept.loads(f.read())
    except (OSError, ValueError) as exc:
        return "meta.json unreadable: %s" % exc
    return accept.servable(meta, allow_unverified)


def _write(path: str, data: bytes) -> None:
    """Write a staged file; an error names `path` (a failed write or close names no file by itself)."""
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as exc:
        if exc.filename is None:
            exc.filename = path
        raise


def _copy(src: str, dst: str) -> None:
    """Copy a file into a staging directory; an error names the side that failed (shutil.copyfile names the
    source even when the cache's file system is the one that is full)."""
    with open(src, "rb") as f:
        data = f.read()
    _write(dst, data)


def read_checksums(entry_path: str) -> dict[str, str] | None:
    """{file name: xxh3-128} from an entry's checksums.txt, or None when it is missing or malformed."""
    try:
        with open(os.path.join(entry_path, CHECKSUMS_NAME), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, ValueError):
        return None
    sums: dict[str, str] = {}
    for line in lines:
        digest, sep, name = line.partition(" ")
        if not sep or len(digest) != 32 or not name or "/" in name:
            return None
        sums[name] = digest
    return sums


def parse_size(text: str) -> int:
    """'5G', '500M', '100k' or a byte count -> bytes. Raises ValueError with a readable message."""
    t = text.strip().upper().rstrip("B").rstrip("I")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    if t and t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    if t.isdigit():
        return int(t)
    raise ValueError("not a size: %r (use e.g. 500M or 5G)" % text)
