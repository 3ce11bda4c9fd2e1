"""Compiler identity: a content hash of the real compiler, memoized by path, size and mtime.

Hashing the driver binary on every compile would cost milliseconds; the memo costs one stat and one small read.
The identity also covers `--version` output (computed on a memo miss only), because Debian's `clang` driver is a
small binary and most of the compiler lives in shared libraries that share its version.
"""

from __future__ import annotations

import os

from coopt.cache.hashing import hash_file, hash_text, short_hash


def _version_text(path: str) -> str:
    import subprocess

    try:
        proc = subprocess.run([path, "--version"], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return proc.stdout.decode("utf-8", "replace")


def compiler_identity(real_path: str, memo_dir: str | None, write: bool = True) -> str:
    """Stable identity of the compiler binary at `real_path` (a resolved path).

    The memo in `memo_dir` is read when present and, when `write`, refreshed; a read-only cache still reads it.
    """
    st = os.stat(real_path)
    stamp = "%d %d" % (st.st_size, st.st_mtime_ns)
    memo = os.path.join(memo_dir, short_hash(real_path)) if memo_dir else None
    if memo:
        try:
            with open(memo, encoding="utf-8") as f:
                line = f.read()
            recorded_path, recorded_stamp, ident = line.rstrip("\n").rsplit("\t", 2)
            if recorded_path == real_path and recorded_stamp == stamp:
                return ident
        except (OSError, ValueError):
            pass
    ident = hash_text(hash_file(real_path) + "\n" + _version_text(real_path))
    if memo and write:
        from coopt.cache.files import replace_atomic

        try:
            os.makedirs(memo_dir or ".", exist_ok=True)
            replace_atomic(memo, ("%s\t%s\t%s\n" % (real_path, stamp, ident)).encode("utf-8", "surrogateescape"))
        except OSError:  # only a memo: the next compile hashes the compiler again
            pass
    return ident
