"""Replay memos for coopt-cc-fast, the C miss path (src/coopt/data/fastcc.c).

After the Python wrapper decides a call is a plain miss, it writes a memo keyed by a fingerprint of everything that
decision depended on. The next identical call is handled by coopt-cc-fast in about a millisecond instead of
Python's ten: it re-checks what could have changed (compiler binary, PATH lookup, a variant appearing), hashes the
source, completes the key, journals and execs the real compiler. All knowledge of options and key layout stays
here, in Python; the C side only fills in the source hash.

Memo format: NFIELDS fields, each `<decimal byte length>\\n<bytes>\\n`, in the order of FIELDS below.
"""

from __future__ import annotations

import os

from coopt import __version__
from coopt.cache.journal import JOURNAL_VERSION, encode
from coopt.cache.key import ENV_ALLOWLIST, KEY_VERSION
from coopt.cache.layout import CacheLayout

MEMO_MAGIC = "coopt-fast-2"
FIELDS = (
    "magic", "exec", "real", "stamp", "lookup_name", "path_index", "skip_dir", "source",
    "material_head", "material_tail", "journal_body", "journal_path", "stats_dir", "manifests_dir", "drop_args",
    "expires",
)
# Settings read from the environment that change the decision a memo replays: part of the fingerprint.
FINGERPRINT_ENV = ("PATH", "COOPT_COMPILER", "COOPT_REMOTE_STORAGE", "COOPT_REMOTE_RECHECK")
# Environment that makes the wrapper behave differently; coopt-cc-fast hands such calls to Python (fastcc.c).
DEFER_ENV = ("COOPT_DISABLE", "COOPT_DEBUG", "COOPT_READONLY", "COOPT_CONFIG", "COOPT_JOURNAL")


def memo_dir_name() -> str:
    """The memo directory of this coopt version and key format; coopt-cc-fast is built with the same name."""
    return "fast-%s-k%d-j%d" % (__version__, KEY_VERSION, JOURNAL_VERSION)


def fingerprint(self_path: str, args: list[str], cwd: str, environ: dict[str, str] | os._Environ[str]) -> str:
    """The text coopt-cc-fast hashes to find a memo; fastcc.c builds it byte for byte the same."""
    parts = ["v=1\n", "cwd=%s\n" % cwd, "self=%s\n" % self_path]
    parts.extend("arg=%s\n" % a for a in args)
    for name in FINGERPRINT_ENV:
        if name in environ:
            parts.append("env:%s=%s\n" % (name, environ[name]))
    for name in ENV_ALLOWLIST:
        if name in environ:
            parts.append("env:%s=%s\n" % (name, environ[name]))
    return "".join(parts)


def memo_path(layout: CacheLayout, fp_text: str) -> str:
    from coopt.cache.hashing import short_hash

    h = short_hash(fp_text)
    return os.path.join(layout.root, memo_dir_name(), h[:2], h)


def eligible(self_path: str, args: list[str], cwd: str, config_path: str) -> bool:
    """Calls the C side could replay: no config file, no response files, nothing that needs Python to decide."""
    if config_path or "PATH" not in os.environ or any(v in os.environ for v in DEFER_ENV):
        return False
    if "\n" in cwd or "\n" in self_path:
        return False
    return not any(a.startswith("@") or "\n" in a for a in args)


def _path_index(name: str, found: str) -> int:
    """Index of the PATH entry `found` came from, as fastcc.c walks PATH (an empty entry is ".")."""
    for i, d in enumerate(os.environ.get("PATH", "").split(os.pathsep)):
        if os.path.join(d or ".", name) == found:
            return i
    return -1


def write_memo(
    layout: CacheLayout,
    fp_text: str,
    exec_path: str,
    lookup_name: str,
    skip_dir: str,
    source_path: str,
    direct: str,
    source_hash: str,
    record: dict,
    key: str,
    drop_args: int = 0,
    expires: int = 0,
) -> bool:
    """Leave (or refresh) the replay memo for this call. False when the call cannot be replayed in C.

    `drop_args` is how many of coopt-cc's own arguments are not the compiler's (1 in the prefix form).
    `expires` (Unix seconds, 0: never) is when coopt-cc-fast stops replaying it and hands the call to Python again:
    with remote stores configured a local miss may turn into a remote hit.
    """
    real = os.path.realpath(exec_path)
    try:
        st = os.stat(real)
    except OSError:
        return False
    index = -1
    if lookup_name and "/" not in lookup_name:
        index = _path_index(lookup_name, exec_path)
        if index < 0:
            return False
    else:
        lookup_name = ""
    marker = "source-hash=%s\n" % source_hash
    cut = direct.find(marker)
    if cut < 0:
        return False
    head = direct[: cut + len("source-hash=")]
    tail = direct[cut + len(marker) - 1 :]
    encoded = encode(record)
    suffix = '%s"}' % key
    if not encoded.startswith("{") or not encoded.endswith(suffix):
        return False
    body = encoded[1 : -len(suffix)]
    values = (
        MEMO_MAGIC, exec_path, real, "%d %d" % (st.st_size, st.st_mtime_ns), lookup_name, str(max(index, 0)),
        skip_dir, source_path, head, tail, body, layout.journal_path, layout.stats_dir,
        os.path.join(layout.root, "manifests"), str(drop_args), str(expires),
    )
    blob = b"".join(b"%d\n%s\n" % (len(v), v) for v in (x.encode("utf-8", "surrogateescape") for x in values))
    path = memo_path(layout, fp_text)
    try:
        with open(path, "rb") as f:
            if f.read() == blob:
                return True
    except OSError:
        pass
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = "%s.%d.tmp" % (path, os.getpid())
        with open(tmp, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)
    except OSError:
        return False
    return True
