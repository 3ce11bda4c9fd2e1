"""The second cache level: moving manifests and entries between the local store and remote stores.

Remote keys: `m/<direct key>` holds a packed manifest, `e/<key>` one packed entry (every file of the entry's
directory). Both containers are plain bytes of our own, so any store that keeps whole objects can hold them:

    coopt-remote-entry 1                      coopt-remote-manifest 1 <direct key>
    key <key>                                 <the manifest's text, as in cache/manifest.py>
    file <name> <size>                        sig <hex HMAC-SHA256 | none>
    <size bytes>
    ...
    end
    sig <hex HMAC-SHA256 | none>

The signature line is the last line; the HMAC (key from `COOPT_CACHE_HMAC_KEY`) covers every byte before it, the
key or direct key included, so a signed blob cannot be replayed under another key. What comes back from a server is
checked in full before anything is stored or served: the container's shape and sizes, the signature when this
client holds a team key (unsigned or wrongly signed blobs are refused), that the key material hashes to the key
asked for, the entry's checksums, its format. A blob that fails is a miss, counted (`remote_corrupt`,
`remote_bad_signature`), never served and never an error of the build.

A remote that fails (timeout, refused connection, server error) is marked down with a stamp file; every compile
skips it while the stamp is younger than `remote_retry_after`, so a dead server costs a build one timeout, not one
per compile. Imported only when remotes are configured, and kept as light as the miss path it sits on: no
dataclasses or typing, and hmac/hashlib (OpenSSL, ~15 ms cold) only when a team key is set.
"""

from __future__ import annotations

import os
import time

from coopt.cache import key as keymod
from coopt.cache import manifest, stats
from coopt.cache.hashing import short_hash
from coopt.cache.layout import CacheLayout
from coopt.cache.store import CHECKSUMS_NAME, KEY_NAME, REQUIRED, Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

HMAC_ENV = "COOPT_CACHE_HMAC_KEY"
ENTRY_MAGIC = b"coopt-remote-entry 1\n"
MANIFEST_MAGIC = b"coopt-remote-manifest 1 "
MAX_FILES = 16
MAX_BLOB = 1 << 30
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class BadBlob(Exception):
    """A blob from a remote that must not be used; `reason` is `corrupt` or `bad_signature`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def team_key(environ: dict[str, str] | os._Environ[str] | None = None) -> bytes | None:
    """The HMAC key from the environment, or None. Never stored, logged or shown."""
    value = (os.environ if environ is None else environ).get(HMAC_ENV, "")
    return value.encode("utf-8", "surrogateescape") if value else None


def _mac(sign_key: bytes, body: bytes) -> bytes:
    import hashlib
    import hmac

    return hmac.new(sign_key, body, hashlib.sha256).hexdigest().encode()


def _sign(body: bytes, sign_key: bytes | None) -> bytes:
    if sign_key is None:
        return body + b"sig none\n"
    return body + b"sig " + _mac(sign_key, body) + b"\n"


def _check_signature(blob: bytes, sign_key: bytes | None) -> bytes:
    """The signed body of `blob`; raises BadBlob when the signature line is missing or (with a key) wrong."""
    if not blob.endswith(b"\n"):
        raise BadBlob("corrupt", "no signature line")
    cut = blob.rfind(b"\n", 0, len(blob) - 1) + 1
    body, last = blob[:cut], blob[cut:-1]
    if not last.startswith(b"sig "):
        raise BadBlob("corrupt", "no signature line")
    if sign_key is not None:
        import hmac

        if not hmac.compare_digest(_mac(sign_key, body), last[4:]):
            raise BadBlob("bad_signature", "unsigned or signed with another key")
    return body


# --- containers ------------------------------------------------------------------------------------------------


def pack_entry(entry_dir: str, key: str, sign_key: bytes | None) -> bytes:
    """Every file of a local entry directory as one blob (names sorted)."""
    parts = [ENTRY_MAGIC, b"key %s\n" % key.encode()]
    for name in sorted(os.listdir(entry_dir)):
        with open(os.path.join(entry_dir, name), "rb") as f:
            data = f.read()
        parts.append(b"file %s %d\n" % (name.encode(), len(data)))
        parts.append(data)
        parts.append(b"\n")
    parts.append(b"end\n")
    return _sign(b"".join(parts), sign_key)


def unpack_entry(blob: bytes, key: str, sign_key: bytes | None) -> dict[str, bytes]:
    """The files of a packed entry for `key`, after checking shape, signature and key material. Raises BadBlob."""
    body = _check_signature(blob, sign_key)
    if not body.startswith(ENTRY_MAGIC):
        raise BadBlob("corrupt", "not a coopt entry")
    pos = len(ENTRY_MAGIC)
    header = b"key %s\n" % key.encode()
    if body[pos : pos + len(header)] != header:
        raise BadBlob("corrupt", "packed for another key")
    pos += len(header)
    files: dict[str, bytes] = {}
    while body[pos : pos + 5] == b"file ":
        nl = body.find(b"\n", pos)
        if nl < 0:
            raise BadBlob("corrupt", "truncated file header")
        fields = body[pos + 5 : nl].split(b" ")
        if len(fields) != 2 or not fields[1].isdigit():
            raise BadBlob("corrupt", "bad file header")
        name = fields[0].decode("ascii", "replace")
        size = int(fields[1])
        if not name or name.startswith(".") or not set(name) <= _NAME_CHARS or name in files:
            raise BadBlob("corrupt", "bad file name %r" % name)
        start = nl + 1
        if start + size + 1 > len(body) or body[start + size : start + size + 1] != b"\n":
            raise BadBlob("corrupt", "%s: size does not match" % name)
        files[name] = body[start : start + size]
        pos = start + size + 1
        if len(files) > MAX_FILES:
            raise BadBlob("corrupt", "too many files")
    if body[pos:] != b"end\n":
        raise BadBlob("corrupt", "trailing bytes")
    for name in (*REQUIRED, CHECKSUMS_NAME):
        if name not in files:
            raise BadBlob("corrupt", "%s missing" % name)
    material = files[KEY_NAME].decode("utf-8", "surrogateescape")
    if keymod.key_of(material) != key:
        raise BadBlob("corrupt", "key material does not hash to the key")
    listed = {line.partition(" ")[2] for line in files[CHECKSUMS_NAME].decode("utf-8", "replace").splitlines()}
    if set(files) - {CHECKSUMS_NAME} != listed:
        raise BadBlob("corrupt", "files and checksums.txt disagree")
    return files


def pack_manifest(direct_key: str, text: str, sign_key: bytes | None) -> bytes:
    return _sign(MANIFEST_MAGIC + direct_key.encode() + b"\n" + text.encode("utf-8", "surrogateescape"), sign_key)


def unpack_manifest(blob: bytes, direct_key: str, sign_key: bytes | None) -> list[dict]:
    """The well-formed results of a packed manifest for `direct_key`. Raises BadBlob."""
    body = _check_signature(blob, sign_key)
    header = MANIFEST_MAGIC + direct_key.encode() + b"\n"
    if not body.startswith(header):
        raise BadBlob("corrupt", "not the manifest of this direct key")
    text = body[len(header) :].decode("utf-8", "surrogateescape")
    if text.split("\n", 1)[0] not in manifest.READABLE:
        raise BadBlob("corrupt", "not a manifest")
    return manifest.well_formed(manifest.parse(text))


# --- remotes ---------------------------------------------------------------------------------------------------


class Remote:
    """One configured remote store, opened on first use."""

    __slots__ = ("text", "display", "writable", "spec", "_backend")

    def __init__(self, text: str, display: str, writable: bool, spec: Any) -> None:
        self.text = text
        self.display = display
        self.writable = writable
        self.spec = spec
        self._backend: Any = None

    @property
    def backend(self) -> Any:
        """The backend (cache/remote), connected lazily: a remote skipped while down costs nothing."""
        if self._backend is None:
            from coopt.cache.remote import open_backend

            self._backend = open_backend(self.spec)
        return self._backend


def parse_remotes(specs: tuple[str, ...] | list[str], all_read_only: bool) -> list[Remote]:
    """The configured remotes in order. Raises the backends' error for a bad spec."""
    from coopt.cache.remote import parse_spec

    out = []
    for text in specs:
        spec = parse_spec(text)
        out.append(Remote(text, str(spec.display), not (all_read_only or spec.read_only), spec))
    return out


class Tier:
    """The remotes behind one local cache directory, with their down stamps and counters."""

    def __init__(
        self,
        layout: CacheLayout,
        specs: tuple[str, ...] | list[str],
        *,
        remote_read_only: bool = False,
        retry_after: float = 60.0,
        local_read_only: bool = False,
        sign_key: bytes | None = None,
    ) -> None:
        self.layout = layout
        self.remotes = parse_remotes(specs, remote_read_only)
        self.retry_after = retry_after
        self.local_read_only = local_read_only
        self.sign_key = sign_key
        self.log: list[str] = []
        self._amounts: dict[str, int] = {}

    # -- bookkeeping -------------------------------------------------------------------------------------------

    def _stamp_path(self, remote: Remote) -> str:
        if self.local_read_only:  # a read-only cache is never written; the stamps go to this user's tmp
            import tempfile

            base = os.path.join(tempfile.gettempdir(), "coopt-remote-%d" % os.getuid())
        else:
            base = os.path.join(self.layout.root, "remote")
        return os.path.join(base, "down-" + short_hash(remote.display))

    def is_down(self, remote: Remote) -> bool:
        """True while the remote's down stamp is younger than retry_after."""
        try:
            return time.time() - os.stat(self._stamp_path(remote)).st_mtime < self.retry_after
        except OSError:
            return False

    def mark_down(self, remote: Remote, why: str) -> None:
        path = self._stamp_path(remote)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = "%s.%d.tmp" % (path, os.getpid())
            with open(tmp, "w", encoding="utf-8") as f:
                f.write("%s\n%s\n" % (remote.display, why))
            os.replace(tmp, path)
        except OSError:
            pass

    def count(self, remote: Remote | None, event: str, n: int = 1) -> None:
        name = event if remote is None else "remote:%s:%s" % (event, remote.display)
        self._amounts[name] = self._amounts.get(name, 0) + n

    def flush(self) -> None:
        """Write the counters gathered so far (one append); nothing in a read-only cache."""
        if self._amounts and not self.local_read_only:
            stats.add(self.layout.stats_dir, self._amounts)
        self._amounts = {}

    def _call(self, remote: Remote, op: str, rkey: str, data: bytes | None = None) -> bytes | None:
        """One timed request. RemoteError propagates (the caller decides whether the remote is down)."""
        t0 = time.perf_counter()
        try:
            if op == "get":
                out = remote.backend.get(rkey)
                if out is not None:
                    self.count(remote, "bytes_in", len(out))
                return out
            remote.backend.put(rkey, data)
            self.count(remote, "bytes_out", len(data or b""))
            return None
        finally:
            self.count(remote, "requests")
            self.count(remote, "us", int((time.perf_counter() - t0) * 1e6))

    def _failed(self, remote: Remote, exc: Exception, down: bool) -> None:
        self.count(remote, "error")
        why = "%s: %s" % (type(exc).__name__, exc)
        self.log.append("remote %s failed: %s%s" % (remote.display, why, "; skipped for %gs" % self.retry_after
                                                     if down else ""))
        if down:
            self.mark_down(remote, type(exc).__name__)

    def _bad(self, remote: Remote, what: str, exc: BadBlob) -> None:
        self.count(remote, exc.reason)
        self.count(None, "remote_" + exc.reason)
        self.log.append("remote %s: %s refused (%s): %s" % (remote.display, what, exc.reason, exc))

    # -- reading -----------------------------------------------------------------------------------------------

    def fetch(self, direct_key: str, cwd: str, not_after: float) -> CacheLayout | None:
        """Look `direct_key` up in the remotes, in order; on a hit store the manifest and the matching entry locally
        (or, with a read-only local cache, in a private temporary cache the caller removes) and return the layout
        that now holds them. None on a miss. Never raises for what a server does."""
        from coopt.cache.remote import RemoteError

        for remote in self.remotes:
            if self.is_down(remote):
                self.count(remote, "skipped")
                self.log.append("remote %s: skipped (marked down)" % remote.display)
                continue
            try:
                blob = self._call(remote, "get", "m/" + direct_key)
                if blob is None:
                    self.count(remote, "miss")
                    continue
                try:
                    results = unpack_manifest(blob, direct_key, self.sign_key)
                except BadBlob as exc:
                    self._bad(remote, "manifest", exc)
                    continue
                found, why = manifest.match(results, cwd, not_after)
                if found is None:
                    self.count(remote, "miss")
                    self.log.append("remote %s: manifest without a match here (%s)" % (remote.display, why))
                    continue
                blob = self._call(remote, "get", "e/" + found.key)
                if blob is None:
                    self.count(remote, "miss")
                    self.log.append("remote %s: entry %s missing" % (remote.display, found.key))
                    continue
                try:
                    files = unpack_entry(blob, found.key, self.sign_key)
                except BadBlob as exc:
                    self._bad(remote, "entry %s" % found.key, exc)
                    continue
            except RemoteError as exc:
                self._failed(remote, exc, down=True)
                continue
            target = self._target()
            if self._install(target, found.key, files):
                manifest.add(target.manifest_path(direct_key), target.lock_path("m-" + direct_key), found.key,
                             found.deps)
                self.count(remote, "hit")
                self.log.append("remote %s: fetched %s" % (remote.display, found.key))
                return target
            self._bad(remote, "entry %s" % found.key, BadBlob("corrupt", "checksums or format do not hold"))
        return None

    def _target(self) -> CacheLayout:
        if not self.local_read_only:
            return self.layout
        import tempfile

        return CacheLayout(tempfile.mkdtemp(prefix="coopt-remote-hit-"))

    def _install(self, target: CacheLayout, key: str, files: dict[str, bytes]) -> bool:
        store = Store(target.root)
        stage = store.staging_dir(key)
        for name, data in files.items():
            with open(os.path.join(stage, name), "wb") as f:
                f.write(data)
        return store.adopt(key, stage) is not None

    # -- writing -----------------------------------------------------------------------------------------------

    def upload(self, entry_dir: str, key: str, direct_key: str, deps: list[tuple[str, str]]) -> list[str]:
        """Send one local entry and its manifest line to every writable remote (entry first, then the manifest,
        merged with what the server holds). Returns one line per remote; never raises for what a server does."""
        from coopt.cache.remote import RemoteError

        lines: list[str] = []
        blob = pack_entry(entry_dir, key, self.sign_key)
        for remote in self.remotes:
            if not remote.writable:
                self.count(remote, "put_skipped_read_only")
                lines.append("%s: read-only, not written" % remote.display)
                continue
            try:
                self._call(remote, "put", "e/" + key, blob)
                old = self._call(remote, "get", "m/" + direct_key)
                results: list[dict] = []
                if old is not None:
                    try:
                        results = unpack_manifest(old, direct_key, self.sign_key)
                    except BadBlob as exc:
                        self._bad(remote, "manifest (replaced)", exc)
                results = [r for r in results if r["key"] != key]
                results.append({"key": key, "deps": [[p, h] for p, h in deps]})
                text = manifest.render(results[-manifest.MAX_RESULTS :])
                self._call(remote, "put", "m/" + direct_key, pack_manifest(direct_key, text, self.sign_key))
            except RemoteError as exc:
                self.count(remote, "put_refused")
                self.count(None, "remote_put_refused")
                self.log.append("remote %s: put of %s refused: %s" % (remote.display, key, exc))
                lines.append("%s: not written: %s" % (remote.display, exc))
                continue
            self.count(remote, "put")
            lines.append("%s: uploaded %s" % (remote.display, key))
        return lines


def withdraw_entry(layout: CacheLayout, key: str, direct_key: str, specs: tuple[str, ...] | list[str],
                   remote_read_only: bool) -> list[str]:
    """Delete `e/<key>` and drop `key` from `m/<direct_key>` on every writable remote. One line per remote."""
    from coopt.cache.remote import RemoteError

    tier = Tier(layout, specs, remote_read_only=remote_read_only, sign_key=team_key())
    lines: list[str] = []
    try:
        for remote in tier.remotes:
            if not remote.writable:
                continue
            try:
                old = tier._call(remote, "get", "m/" + direct_key)
                if old is not None:
                    try:
                        results = [r for r in unpack_manifest(old, direct_key, tier.sign_key) if r["key"] != key]
                    except BadBlob:
                        results = []
                    if results:
                        text = manifest.render(results)
                        tier._call(remote, "put", "m/" + direct_key, pack_manifest(direct_key, text, tier.sign_key))
                    else:
                        remote.backend.delete("m/" + direct_key)
                remote.backend.delete("e/" + key)
            except RemoteError as exc:
                tier.count(remote, "error")
                lines.append("%s: not withdrawn: %s" % (remote.display, exc))
                continue
            lines.append("%s: withdrew %s" % (remote.display, key))
    finally:
        tier.flush()
        layout.append_log(tier.log + lines)
    return lines


def upload_entry(layout: CacheLayout, entry_dir: str, key: str, direct_key: str, deps: list[tuple[str, str]],
                 specs: tuple[str, ...] | list[str], remote_read_only: bool) -> list[str]:
    """`coopt cache put` and the optimizer: upload a stored entry to the configured remotes (see Tier.upload)."""
    tier = Tier(layout, specs, remote_read_only=remote_read_only, sign_key=team_key())
    try:
        return tier.upload(entry_dir, key, direct_key, deps)
    finally:
        tier.flush()
        layout.append_log(tier.log)


def backend_counters(counts: dict[str, int]) -> dict[str, dict[str, int]]:
    """Per-remote counters from `stats.read`: {display URL: {event: n}} (`remote:<event>:<display>` names)."""
    out: dict[str, dict[str, int]] = {}
    for name, n in counts.items():
        if name.startswith("remote:"):
            event, _, display = name[7:].partition(":")
            out.setdefault(display, {})[event] = out.get(display, {}).get(event, 0) + n
    return out
