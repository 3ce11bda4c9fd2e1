"""xxh3-128 hashing helpers shared by keys, checksums and the compiler identity."""

from __future__ import annotations

import xxhash

_CHUNK = 1 << 20


def hash_bytes(data: bytes) -> str:
    """Hex xxh3-128 digest of `data`."""
    return xxhash.xxh3_128_hexdigest(data)


def hash_file(path: str) -> str:
    """Hex xxh3-128 digest of a file's content, read in chunks so large files do not sit in memory."""
    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while True:
            block = f.read(_CHUNK)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def hash_text(text: str) -> str:
    """Hex xxh3-128 digest of a str, encoded as UTF-8 with surrogates kept (argv may hold undecodable bytes)."""
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogateescape"))


def short_hash(text: str) -> str:
    """A 64-bit hex digest for naming files (memo files, locks), not for identity."""
    return xxhash.xxh3_64_hexdigest(text.encode("utf-8", "surrogateescape"))
