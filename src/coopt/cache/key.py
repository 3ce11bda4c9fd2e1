"""The one place that builds cache keys.

A key is the xxh3-128 of a text of tagged lines, the *key material*. The material is stored with every entry and
compared in full on lookup, so a hash collision can never serve a wrong object. Two stages, as in ccache's direct
mode:

- the *direct* material: everything known without running the preprocessor (key version, compiler identity and
  name, language, code-affecting arguments, source path and content, cwd when debug info records it, the CPU when
  `-march=native` asks for it, the environment variables that change output);
- the *result* material: the direct material plus every file the preprocessor read (path and content hash), taken
  from the include manifest that was written when the variant was stored.

Bump KEY_VERSION whenever the inputs or their encoding change: old entries then simply stop matching.
`COOPT_DEBUG=1` makes the wrapper write the material next to the object as `<object>.coopt-key`.
"""

from __future__ import annotations

import os

from coopt.cache.hashing import hash_bytes, hash_text

# The environment that changes output: the journal records these values, the key hashes them (re-exported here).
from coopt.journal.job import ENV_ALLOWLIST as ENV_ALLOWLIST

KEY_VERSION = 2


def env_subset(environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """The allowlisted variables that are set in `environ`."""
    return {name: environ[name] for name in ENV_ALLOWLIST if name in environ}

TIME_MACROS = (b"__DATE__", b"__TIME__", b"__TIMESTAMP__")

_cpu_cache: list[str] = []


def cpu_identity() -> str:
    """Hash of the CPU model and feature flags: what `-march=native` resolves to on this machine."""
    if not _cpu_cache:
        wanted: list[str] = []
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                for line in f:
                    name = line.split(":", 1)[0].strip()
                    if name in ("vendor_id", "cpu family", "model", "model name", "flags"):
                        wanted.append(line.strip())
                    elif not line.strip() and wanted:
                        break  # the first processor block is enough
        except OSError:
            wanted.append("unknown-cpu")
        _cpu_cache.append(hash_text("\n".join(wanted)))
    return _cpu_cache[0]


def direct_material(
    *,
    compiler_id: str,
    compiler_name: str,
    language: str,
    key_args: list[str],
    source: str,
    source_hash: str,
    cwd: str,
    debug: bool,
    native: bool,
    env: dict[str, str],
) -> str:
    """The tagged text of everything that decides the object, short of the included files."""
    lines = [
        "version=%d" % KEY_VERSION,
        "compiler-id=" + compiler_id,
        "compiler-name=" + compiler_name,
        "language=" + language,
    ]
    for arg in key_args:
        lines.append("arg=" + arg)
    lines.append("source=" + source)
    lines.append("source-hash=" + source_hash)
    if debug:
        # Debug info records the working directory (DW_AT_comp_dir).
        lines.append("cwd=" + cwd)
    if native:
        lines.append("cpu=" + cpu_identity())
    for name in ENV_ALLOWLIST:
        value = env.get(name)
        if value is not None:
            lines.append("env:%s=%s" % (name, value))
    return "\n".join(lines) + "\n"


def result_material(direct: str, deps: list[tuple[str, str]]) -> str:
    """Direct material plus each file the preprocessor read, as (path, content hash), in the compiler's order."""
    return direct + "".join("dep=%s %s\n" % (h, p) for p, h in deps)


def key_of(material: str) -> str:
    """The cache key for a key material text."""
    return hash_text(material)


def has_time_macros(data: bytes) -> bool:
    """True when the bytes mention a macro whose value changes with every compile."""
    return any(m in data for m in TIME_MACROS)


def source_digest(data: bytes) -> str:
    return hash_bytes(data)
