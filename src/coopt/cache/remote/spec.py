"""Parse a remote storage spec, ccache style: `URL|attribute|attribute=value`.

    redis://[[user:]password@]host[:port][/db]     (one part before "@" is the password, as in ccache)
    http://[user[:password]@]host[:port]/path/     (any server taking whole-object PUT/GET/HEAD/DELETE; no "@"
                                                    in the path)
    file:///absolute/dir                           (a shared directory, e.g. NFS)

Attributes, one table (ATTRIBUTES): read-only, connect-timeout=MS, timeout=MS (or ccache's operation-timeout=MS),
user-env=NAME, password-env=NAME.
The `-env` attributes take the credential from the environment at parse time, so a spec can be written in a config
file or CI variable without the secret; when the variable is unset or empty there is no credential (the server
decides what an anonymous client may do, typically read). The password is never part of `display`, `repr()` or an
error message.
"""

from __future__ import annotations

import os

from coopt.redact import mask_url

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing and collections cost coopt-cc milliseconds
    from collections.abc import Mapping

DEFAULT_PORTS = {"redis": 6379, "http": 80}
FORMS = {
    "redis": "redis://[[user:]password@]host[:port][/db]",
    "http": "http://[user[:password]@]host[:port]/path/",
    "file": "file:///absolute/dir",
}
EXPECTED = "expected redis://host[:port][/db], http://host[:port]/path/ or file:///dir, then |attribute=value..."
DEFAULT_CONNECT_TIMEOUT_MS = 100
DEFAULT_TIMEOUT_MS = 1000
MAX_TIMEOUT_MS = 600_000

# name: (takes a value, what the value is). One row per attribute; parse_spec applies them.
ATTRIBUTES: dict[str, tuple[bool, str]] = {
    "read-only": (False, ""),
    "connect-timeout": (True, "milliseconds to connect (default %d)" % DEFAULT_CONNECT_TIMEOUT_MS),
    "timeout": (True, "milliseconds for each operation (default %d)" % DEFAULT_TIMEOUT_MS),
    "operation-timeout": (True, "ccache's name for timeout"),
    "user-env": (True, "name of the environment variable holding the user"),
    "password-env": (True, "name of the environment variable holding the password"),
}


class SpecError(ValueError):
    """A remote storage spec that cannot be used; the message is one line and holds no credential."""


class RemoteSpec:
    """One parsed remote store. Timeouts are in seconds. `password` is kept out of repr() and display.

    A plain class rather than a dataclass: coopt-cc imports this on a local miss, and dataclasses costs ms."""

    __slots__ = ("scheme", "host", "port", "path", "db", "user", "password", "read_only", "connect_timeout",
                 "timeout")
    SHOWN = ("scheme", "host", "port", "path", "db", "user", "read_only", "connect_timeout", "timeout")

    def __init__(self, scheme: str, host: str = "", port: int = 0, path: str = "", db: int = 0, user: str = "",
                 password: str = "", read_only: bool = False,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_MS / 1000,
                 timeout: float = DEFAULT_TIMEOUT_MS / 1000) -> None:
        self.scheme = scheme  # "redis" | "http" | "file"
        self.host = host
        self.port = port
        self.path = path  # http: the base path, ending with "/"; file: the directory
        self.db = db
        self.user = user
        self.password = password
        self.read_only = read_only
        self.connect_timeout = connect_timeout
        self.timeout = timeout

    def __repr__(self) -> str:
        return "RemoteSpec(%s)" % ", ".join("%s=%r" % (name, getattr(self, name)) for name in self.SHOWN)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteSpec) and all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in self.__slots__))

    @property
    def display(self) -> str:
        """The URL with the password shown as `***`: what logs, stats and messages may show."""
        if self.scheme == "file":
            return "file://" + self.path
        auth = ""
        if self.user and self.password:
            auth = "%s:***@" % self.user
        elif self.password:
            auth = "***@"
        elif self.user:
            auth = "%s@" % self.user
        host = "[%s]" % self.host if ":" in self.host else self.host
        tail = ("/%d" % self.db) if self.scheme == "redis" else self.path
        return "%s://%s%s:%d%s" % (self.scheme, auth, host, self.port, tail)

    def __str__(self) -> str:
        return self.display


def parse_spec(text: str, environ: Mapping[str, str] | None = None) -> RemoteSpec:
    """Parse `URL|attr|attr=value` into a RemoteSpec; SpecError (a ValueError) with one clear line otherwise.
    `environ` (default os.environ) is where the `-env` attributes look."""
    env = os.environ if environ is None else environ
    url, *attrs = [part.strip() for part in text.strip().split("|")]
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise SpecError("remote storage %r: not a URL; %s" % (mask_url(url), EXPECTED))
    if scheme not in FORMS:
        why = "https is not supported (plain HTTP only: put a TLS proxy on loopback)" if scheme == "https" else (
            "unknown scheme %r" % scheme)
        raise SpecError("remote storage %r: %s; %s" % (mask_url(url), why, EXPECTED))
    fields = _parse_file(url, rest) if scheme == "file" else _parse_net(scheme, url, rest)
    user_env = password_env = ""
    for attr in attrs:
        name, has_value, value = attr.partition("=")
        name = name.strip()
        value = value.strip()
        row = ATTRIBUTES.get(name)
        if row is None:
            raise SpecError("remote storage %r: unknown attribute %r; known: %s"
                            % (mask_url(url), name, ", ".join(sorted(ATTRIBUTES))))
        if row[0] != bool(has_value) or (row[0] and not value):
            form = "%s=VALUE (%s)" % (name, row[1]) if row[0] else name
            raise SpecError("remote storage %r: attribute %r; expected %s" % (mask_url(url), attr, form))
        if name == "read-only":
            fields["read_only"] = True
        elif name == "connect-timeout":
            fields["connect_timeout"] = _milliseconds(url, name, value)
        elif name in ("timeout", "operation-timeout"):
            fields["timeout"] = _milliseconds(url, name, value)
        elif name == "user-env":
            user_env = value
        else:
            password_env = value
    if (user_env or password_env) and scheme == "file":
        raise SpecError("remote storage %r: file:// takes no credentials" % mask_url(url))
    if user_env:
        if fields.get("user"):
            raise SpecError("remote storage %r: a user in the URL and user-env; give one" % mask_url(url))
        fields["user"] = env.get(user_env, "")
    if password_env:
        if fields.get("password"):
            raise SpecError("remote storage %r: a password in the URL and password-env; give one" % mask_url(url))
        fields["password"] = env.get(password_env, "")
    return RemoteSpec(**fields)  # type: ignore[arg-type]  # built from the checked parts above


def _milliseconds(url: str, name: str, value: str) -> float:
    if not value.isdigit() or not 1 <= int(value) <= MAX_TIMEOUT_MS:
        raise SpecError("remote storage %r: %s=%s; expected a whole number of milliseconds, 1 to %d"
                        % (mask_url(url), name, value, MAX_TIMEOUT_MS))
    return int(value) / 1000


def _unquote(s: str) -> str:
    """Percent-decoding of a URL's user or password (urllib.parse is too heavy for coopt-cc's path)."""
    if "%" not in s:
        return s
    out = bytearray()
    i = 0
    raw = s.encode("utf-8")
    while i < len(raw):
        if raw[i] == 0x25 and i + 2 < len(raw) and _is_hex(raw[i + 1 : i + 3]):
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", "replace")


def _is_hex(b: bytes) -> bool:
    return len(b) == 2 and all(c in b"0123456789abcdefABCDEF" for c in b)


def _parse_file(url: str, rest: str) -> dict[str, object]:
    if rest.startswith("localhost/"):
        rest = rest[len("localhost") :]
    if not rest.startswith("/") or "?" in rest or "#" in rest:
        raise SpecError("remote storage %r: not an absolute directory; expected %s" % (mask_url(url), FORMS["file"]))
    path = _unquote(rest).rstrip("/") or "/"
    return {"scheme": "file", "path": path}


def _parse_net(scheme: str, url: str, rest: str) -> dict[str, object]:
    form = FORMS[scheme]
    if "?" in rest or "#" in rest:
        raise SpecError("remote storage %r: no query or fragment allowed; expected %s" % (mask_url(url), form))
    userinfo, at, rest = rest.rpartition("@")  # the last "@": "@" in a password need not be encoded
    hostport, slash, path = rest.partition("/")
    user = password = ""
    if at:
        first, colon, second = userinfo.partition(":")
        if scheme == "redis" and not colon:
            password = _unquote(first)  # ccache: redis://PASSWORD@host
        else:
            user, password = _unquote(first), _unquote(second)
    host, port = _host_port(url, hostport, scheme)
    out: dict[str, object] = {"scheme": scheme, "host": host, "port": port, "user": user, "password": password}
    if scheme == "redis":
        if path and not path.isdigit():
            raise SpecError("remote storage %r: the database must be a number; expected %s" % (mask_url(url), form))
        out["db"] = int(path) if path else 0
    else:
        out["path"] = "/" + path if path.endswith("/") or not path else "/" + path + "/"
        if any(c in path for c in " \t\r\n") or "//" in out["path"]:  # type: ignore[operator]
            raise SpecError("remote storage %r: the path has spaces or empty segments; expected %s"
                            % (mask_url(url), form))
    return out


def _host_port(url: str, hostport: str, scheme: str) -> tuple[str, int]:
    form = FORMS[scheme]
    if hostport.startswith("["):
        host, close, tail = hostport[1:].partition("]")
        if not close or (tail and not tail.startswith(":")):
            raise SpecError("remote storage %r: bad IPv6 host; expected %s" % (mask_url(url), form))
        port_text = tail[1:]
    else:
        host, _, port_text = hostport.partition(":")
    if not host or any(c in host for c in " \t\r\n/@"):
        raise SpecError("remote storage %r: no host; expected %s" % (mask_url(url), form))
    if not port_text:
        return host, DEFAULT_PORTS[scheme]
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise SpecError("remote storage %r: bad port %r; expected %s" % (mask_url(url), port_text, form))
    return host, int(port_text)
