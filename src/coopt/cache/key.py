"""The one place that builds cache keys.

A key is the xxh3-128 of a text of tagged lines, the *key material*. The material is stored with every entry and
compared in full on lookup, so a hash collision can never serve a wrong object. Two stages, as in ccache's direct
mode:

- the *direct* material: everything known without running the preprocessor (key version, compiler identity and
  name, language, code-affecting arguments, source path and content, cwd when debug info records it, the CPU when
  `-march=native` asks for it, the environment variables that change output);
- the *result* material: the direct material plus every file the preprocessor read (path and content hash), taken
  from the include manifest that was written when the variant was stored.

With a `base_dir` (as in ccache), every absolute path under it -- in an argument, the source, the cwd that debug
info records, a header the preprocessor read -- enters the material relative to the working directory, written
`{cwd}/REL` (see `rebase_path`), so two checkouts at different paths get the same key. The mark keeps a rewritten
path apart from one the build wrote relative: the object of one may name an absolute path (`__FILE__`, debug
info) where the other names a relative one, and a hit that crosses checkouts is rebuilt locally (cache/rebase.py).

Bump KEY_VERSION whenever the inputs or their encoding change: old entries then simply stop matching.
`COOPT_DEBUG=1` makes the wrapper write the material next to the object as `<object>.coopt-key`.
"""

from __future__ import annotations

import os

from coopt.cache.hashing import hash_bytes, hash_text

# The environment that changes output: the journal records these values, the key hashes them (re-exported here).
from coopt.journal.job import ENV_ALLOWLIST as ENV_ALLOWLIST

KEY_VERSION = 2

# How a path rewritten relative to the working directory is written in key material and manifests.
REL_MARK = "{cwd}"
_REL_PREFIX = REL_MARK + "/"


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


def normalize_base_dir(path: str) -> str:
    """A base_dir as the key uses it: absolute and normalized ("" for none). "/" rebases every path (ccache warns
    against it: system headers then enter the key relative to the build's directory)."""
    return os.path.normpath(path) if path and os.path.isabs(path) else ""


def rebase_path(path: str, cwd: str, base_dir: str) -> str:
    """`path` as the key names it: an absolute, normalized path at or under `base_dir` becomes `{cwd}/` and the path
    relative to `cwd`; any other path is left as it is (a path that is not normalized too: `..` through a symbolic
    link means another file than the lexical rewrite would)."""
    if not base_dir or not path.startswith("/") or os.path.normpath(path) != path:
        return path
    if path != base_dir and not path.startswith(base_dir if base_dir == "/" else base_dir + "/"):
        return path
    return _REL_PREFIX + os.path.relpath(path, cwd)


def rebase_arg(arg: str, cwd: str, base_dir: str) -> str:
    """An argument as the key names it: an absolute path under `base_dir` that is the whole argument or follows an
    option's name (`-I/x`, `--sysroot=/x`, `-Wl,-rpath,/x`) is rebased (rebase_path). A path inside a value
    (`-DDIR="/x"`) is not: it reaches the object as it is written, so it stays in the key."""
    if not base_dir:
        return arg
    if arg.startswith("/"):
        return rebase_path(arg, cwd, base_dir)
    if not arg.startswith("-"):
        return arg
    at = arg.find("/")
    if at <= 1 or not (arg[at - 1] in "=," or arg[at - 1].isalnum()) or '"' in arg[:at] or "'" in arg[:at]:
        return arg
    return arg[:at] + rebase_path(arg[at:], cwd, base_dir)


def local_path(name: str, cwd: str) -> str:
    """The file a manifest's path names for a compile in `cwd`: `{cwd}/REL` and relative paths join `cwd`."""
    if name.startswith(_REL_PREFIX):
        return os.path.normpath(os.path.join(cwd, name[len(_REL_PREFIX) :]))
    return name if os.path.isabs(name) else os.path.join(cwd, name)


def rebases_anything(args: list[str]) -> bool:
    """False when an argument already holds the mark: then no path is rebased, so no rewritten path can be taken
    for one the build wrote."""
    return not any(REL_MARK in a for a in args)


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
    base_dir: str = "",
) -> str:
    """The tagged text of everything that decides the object, short of the included files. With `base_dir`,
    absolute paths under it are rebased (rebase_path)."""
    if base_dir and (not rebases_anything(key_args) or REL_MARK in source):
        base_dir = ""
    lines = [
        "version=%d" % KEY_VERSION,
        "compiler-id=" + compiler_id,
        "compiler-name=" + compiler_name,
        "language=" + language,
    ]
    for arg in key_args:
        lines.append("arg=" + rebase_arg(arg, cwd, base_dir))
    lines.append("source=" + rebase_path(source, cwd, base_dir))
    lines.append("source-hash=" + source_hash)
    if debug:
        # Debug info records the working directory (DW_AT_comp_dir).
        # Under base_dir it is `{cwd}/.`: a hit from another checkout is then rebuilt here (cache/rebase.py).
        lines.append("cwd=" + rebase_path(cwd, cwd, base_dir))
    if native:
        lines.append("cpu=" + cpu_identity())
    for name in ENV_ALLOWLIST:
        value = env.get(name)
        if value is not None:
            lines.append("env:%s=%s" % (name, value))
    return "\n".join(lines) + "\n"


def result_material(direct: str, deps: list[tuple[str, str]]) -> str:
    """Direct material plus each file the preprocessor read, as (path, content hash), in the compiler's order; the
    paths as the manifest records them (rebased under base_dir at put time)."""
    return direct + "".join("dep=%s %s\n" % (h, p) for p, h in deps)


def key_of(material: str) -> str:
    """The cache key for a key material text."""
    return hash_text(material)


def has_time_macros(data: bytes) -> bool:
    """True when the bytes mention a macro whose value changes with every compile."""
    return any(m in data for m in TIME_MACROS)


def source_digest(data: bytes) -> str:
    return hash_bytes(data)
