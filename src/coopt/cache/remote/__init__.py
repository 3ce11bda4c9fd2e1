"""Remote storage backends of the shared variant cache: bytes by key on redis, an HTTP/WebDAV server or a shared
directory. Import-light (coopt-cc imports this on a local miss): the backend modules, and `socket`, are imported
only by open_backend.

    spec = parse_spec("redis://127.0.0.1:6379/0|read-only|timeout=200")
    backend = open_backend(spec)
    backend.get("m/abc")  -> bytes | None; put/exists/delete; every failure is a RemoteError
"""

from __future__ import annotations

from coopt.cache.remote.base import Backend, RemoteError, check_key
from coopt.cache.remote.spec import RemoteSpec, SpecError, parse_spec

__all__ = ["Backend", "RemoteError", "RemoteSpec", "SpecError", "check_key", "open_backend", "parse_spec"]

# scheme -> (module, class): imported on first use only.
BACKENDS = {
    "file": ("coopt.cache.remote.file_backend", "FileBackend"),
    "redis": ("coopt.cache.remote.redis_backend", "RedisBackend"),
    "http": ("coopt.cache.remote.http_backend", "HttpBackend"),
}


def open_backend(spec: RemoteSpec) -> Backend:
    """The backend for `spec`. Nothing is contacted yet: network backends connect on their first call."""
    module, name = BACKENDS[spec.scheme]
    backend: Backend = getattr(__import__(module, fromlist=[name]), name)(spec)
    return backend
