"""The transcript cache: every answered request and its raw response, keyed by the request, so reruns cost nothing.

    <dir>/<k[:2]>/<k>.json   {"format", "key", "request", "response", "usage", "seconds", "created"}

The key is sha256 over the canonical JSON of the request payload: model, messages, tools and sampling parameters
(`ChatRequest.payload`). Nothing else goes in: not the endpoint's URL (a local server listens on a new port every
run), not headers, and never the API key, which is also never written into a record. Records are written to a
temporary file and renamed into place, so concurrent runs never read half a record; a record that does not read
back as the expected format is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from typing import Any

from coopt.llm.types import TRANSCRIPT_FORMAT


def request_key(payload: dict[str, Any]) -> str:
    canonical = json.dumps({"format": TRANSCRIPT_FORMAT, "request": payload}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class TranscriptCache:
    """Records of answered requests under one directory. Creates the directory on the first write."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def path(self, key: str) -> str:
        return os.path.join(self.directory, key[:2], key + ".json")

    def get(self, key: str) -> dict[str, Any] | None:
        """The record for `key`, or None when there is none or it cannot be read back."""
        try:
            with open(self.path(key), encoding="utf-8") as f:
                record = json.load(f)
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("format") != TRANSCRIPT_FORMAT or record.get("key") != key:
            return None
        if not isinstance(record.get("response"), str):
            return None
        return record

    def put(self, key: str, payload: dict[str, Any], response: str, seconds: float,
            usage: dict[str, int] | None) -> str:
        """Store the raw response body for a request. Returns the record's path."""
        record = {"format": TRANSCRIPT_FORMAT, "key": key, "request": payload, "response": response,
                  "usage": usage, "seconds": round(seconds, 3), "created": time.time()}
        final = self.path(key)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(final))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(record, f, sort_keys=True, ensure_ascii=False, indent=1)
            os.replace(tmp, final)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return final
