"""Storing a variant for one journaled compile: key it exactly as the wrapper will, build its object, write it.

The key is computed from the job's own compile (its source and every header the preprocessor reads now), so the
next build hits exactly when it would compile the same inputs with the same flags and compiler.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass

from coopt.cache import accept, manifest
from coopt.cache import header_search as lookups
from coopt.cache import key as keymod
from coopt.cache.deps import list_deps
from coopt.cache.hashing import hash_bytes, hash_file
from coopt.cache.identity import compiler_identity
from coopt.cache.layout import CacheLayout
from coopt.cache.store import Entry, Store
from coopt.journal.job import CompileJob
from coopt.redact import mask_data

# What kind of file a variant's artifact is, which says how it is compiled: C (replayed with the TU's own command),
# LLVM IR or assembly (the code generation flags only), or an object (copied). Who proposed it (the level) is
# provenance, recorded in the entry; storage does not know the levels (agents/registry.py maps them to these kinds).
ARTIFACT_KINDS = ("c", "ir", "asm", "object")
# The level an artifact is judged at when the caller names no proposer (`coopt cache put` of a file): what the
# evidence must cover (cache/accept.py).
KIND_LEVEL = {"c": "source", "ir": "ir", "asm": "asm", "object": "object"}


class PutError(Exception):
    """The variant cannot be stored; the message says why in one line."""


@dataclass(frozen=True)
class Remotes:
    """The remote stores a put also writes to (`[cache] remote`), and whether all of them are read-only."""

    specs: tuple[str, ...] = ()
    read_only: bool = False


@dataclass(frozen=True)
class TuKey:
    """The keys of one TU as it compiles now: direct key, include list with hashes, full result key."""

    direct_material: str
    direct_key: str
    deps: list[tuple[str, str]]
    material: str
    key: str


def direct_key_material(job: CompileJob, layout: CacheLayout, source_bytes: bytes) -> str:
    """The direct key material for `job`, computed exactly as the wrapper computes it."""
    real = os.path.realpath(job.compiler)
    return keymod.direct_material(
        compiler_id=compiler_identity(real, os.path.join(layout.root, "compilers")),
        compiler_name=os.path.basename(job.compiler),
        language=job.language,
        key_args=job.key_args,
        source=job.source,
        source_hash=keymod.source_digest(source_bytes),
        cwd=job.cwd,
        debug=job.debug,
        native=job.native,
        env=job.env,
        base_dir=job.base_dir,
    )


def tu_key(job: CompileJob, layout: CacheLayout) -> TuKey:
    """Key `job` as it stands on disk now. Raises PutError when it cannot be cached (time macros, races)."""
    started = time.time()
    try:
        with open(job.source_path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise PutError("cannot read %s: %s" % (job.source_path, exc.strerror)) from exc
    direct = direct_key_material(job, layout, data)
    # Headers under base_dir are keyed and recorded relative, as the arguments are (only when the direct material
    # rebased too: an argument holding the mark turns rebasing off for the whole compile).
    base_dir = job.base_dir if keymod.REL_MARK in direct else ""
    deps: list[tuple[str, str]] = []
    try:
        names = list_deps(job)
    except Exception as exc:  # DepsError, OSError, timeout
        raise PutError(str(exc)) from exc
    for name in names:
        if "\n" in name or "\r" in name:
            raise PutError("%r: a header path with a newline cannot be recorded in a manifest" % name)
        full = job.abspath(name)
        try:
            with open(full, "rb") as f:
                content = f.read()
            mtime = os.stat(full).st_mtime
        except OSError as exc:
            raise PutError("cannot read %s: %s" % (full, exc.strerror)) from exc
        if keymod.has_time_macros(content):
            raise PutError("%s uses __DATE__/__TIME__/__TIMESTAMP__; its object differs on every compile" % name)
        if mtime >= started:
            raise PutError("%s changed while it was being keyed; try again" % name)
        deps.append((keymod.rebase_path(name, job.cwd, base_dir), hash_bytes(content)))
    material = keymod.result_material(direct, deps)
    return TuKey(direct, keymod.key_of(direct), deps, material, keymod.key_of(material))


def _rebase_checks(checks: list[tuple[str, str]], cwd: str, base_dir: str) -> list[tuple[str, str]]:
    """The header search's recorded facts with their paths under base_dir rebased, as the manifest's deps are."""
    out: list[tuple[str, str]] = []
    for kind, arg in checks:
        if kind == "dirstat":
            ino, mtime, path = arg.split(" ", 2)
            out.append((kind, "%s %s %s" % (ino, mtime, keymod.rebase_path(path, cwd, base_dir))))
        else:
            out.append((kind, keymod.rebase_path(arg, cwd, base_dir)))
    return out


def check_original(job: CompileJob) -> bool:
    """The original compile must succeed, and everything it prints must come from the front end.

    A hit re-prints diagnostics by running the real compiler with -fsyntax-only, so a TU whose code generation
    prints (-Wframe-larger-than, inline-asm errors) or fails could make a build with coopt-cc differ from one with
    plain clang. Such TUs get no variant. Returns True when the compile printed nothing at all: only then may a
    hit skip the compiler run (cache/header_search.py).
    """
    env = job.subprocess_env()
    with tempfile.TemporaryDirectory(prefix="coopt-orig-") as tmp:
        full = subprocess.run(job.replay_command(job.source, os.path.join(tmp, "orig.o"), ["-fno-color-diagnostics"]),
                              cwd=job.cwd, capture_output=True, timeout=900, env=env)
    if full.returncode != 0:
        err = full.stderr.decode("utf-8", "replace").strip().splitlines()
        raise PutError("the original compile fails (exit %d): %s" % (full.returncode, err[-1] if err else ""))
    syntax = subprocess.run([job.compiler, *job.key_args, "-fno-color-diagnostics", "-fsyntax-only", job.source],
                            cwd=job.cwd, capture_output=True, timeout=900, env=env)
    if syntax.stderr != full.stderr:
        raise PutError("the original's code generation prints diagnostics a hit could not reproduce; not cached")
    return not full.stderr and not full.stdout and not syntax.stdout


def _changed(job: CompileJob, deps: list[tuple[str, str]]) -> bool:
    """True when a file no longer has the content it was keyed with."""
    for name, digest in deps:
        try:
            if hash_file(keymod.local_path(name, job.cwd)) != digest:
                return True
        except OSError:
            return True
    return False


def _run(cmd: list[str], cwd: str, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=600, env=env)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise PutError("building the variant failed (exit %d): %s" % (proc.returncode, err[0] if err else ""))


def build_object(
    job: CompileJob, artifact: str, kind: str, out: str, extra_flags: list[str] | None = None
) -> list[str]:
    """Compile `artifact`, a file of `kind` (one of ARTIFACT_KINDS), for `job` into `out`; returns the command used
    (the recipe)."""
    artifact = os.path.abspath(artifact)
    if kind == "object":
        import shutil

        shutil.copyfile(artifact, out)
        return []
    if kind == "c":
        # Quote includes resolve against the original source's directory, as they would in place.
        extra = ["-iquote", os.path.dirname(job.source_path), *(extra_flags or [])]
        cmd = job.replay_command(artifact, out, extra)
    elif kind in ("ir", "asm"):
        # Preprocessor flags and -x do not apply to IR or assembly; code generation flags do.
        args = codegen_args(job.key_args)
        cmd = [job.compiler, *args, *(extra_flags or []), "-c", artifact, "-o", out]
    else:
        raise PutError("unknown artifact kind %r (one of %s)" % (kind, ", ".join(ARTIFACT_KINDS)))
    _run(cmd, job.cwd, job.subprocess_env())
    return cmd


_PREPROCESSOR_WITH_ARG = frozenset(
    {"-I", "-D", "-U", "-include", "-imacros", "-isystem", "-iquote", "-idirafter", "-x"}
)
_PREPROCESSOR_PREFIXES = (
    "-I", "-D", "-U", "-include", "-imacros", "-isystem", "-iquote", "-idirafter", "-x", "-std=", "-Wp,"
)


def codegen_args(key_args: list[str]) -> list[str]:
    """The job's flags that apply to an IR or assembly input: `key_args` without the preprocessor's."""
    out: list[str] = []
    skip = False
    for arg in key_args:
        if skip:
            skip = False
            continue
        if arg in _PREPROCESSOR_WITH_ARG:
            skip = True
            continue
        if arg.startswith(_PREPROCESSOR_PREFIXES):
            continue
        out.append(arg)
    return out + ["-Wno-unused-command-line-argument"]


def put_variant(
    store: Store,
    job: CompileJob,
    artifact: str,
    kind: str,
    evidence: dict,
    extra_flags: list[str] | None = None,
    prebuilt_object: str | None = None,
    remotes: Remotes | None = None,
    report: list[str] | None = None,
    level: str = "",
    changed_functions: list[str] | None = None,
) -> Entry:
    """Build and store `artifact` (a file of `kind`, one of ARTIFACT_KINDS) as the variant for `job`'s TU, with
    `evidence`; `level` (who proposed it) is recorded as provenance, the kind when not given. Returns the new entry.

    With `prebuilt_object`, that object (the very bytes the verifier judged) is stored instead of a rebuild;
    the artifact and flags are then kept as the record of how it was made. With `remotes`, the stored entry and
    its manifest line then go to every writable remote; a remote that refuses or fails is logged, counted and
    reported (one line per remote appended to `report`), never a failed put.

    `evidence` must be an accepted verdict in a known format covering `level` and `changed_functions` (the
    functions the artifact changes, when the caller knows them: recorded in the entry and checked again on every
    lookup), or the explicit `--unverified` record; anything else is refused (cache/accept.py).
    """
    if kind not in ARTIFACT_KINDS:
        raise PutError("unknown artifact kind %r (one of %s)" % (kind, ", ".join(ARTIFACT_KINDS)))
    level = level or KIND_LEVEL[kind]
    why = accept.refusal(evidence, level, changed_functions)
    if why and why != accept.UNVERIFIED:
        raise PutError("evidence refused: %s" % why)
    if not os.path.isfile(artifact):
        raise PutError("no such artifact: %s" % artifact)
    layout = store.layout
    tk = tu_key(job, layout)
    quiet = check_original(job)
    state = lookups.analyse(job, [keymod.local_path(name, job.cwd) if name.startswith(keymod.REL_MARK) else name
                                  for name, _ in tk.deps]) if quiet else None
    if state is not None and keymod.REL_MARK in tk.direct_material:
        state.checks = _rebase_checks(state.checks, job.cwd, job.base_dir)
    direct = "check diagnostics" if state is None else "clean" if state.clean else "check " + state.reason
    if direct == "clean" and _changed(job, tk.deps):
        direct = "check race"  # the lookups were recorded for other contents than the key's
    with tempfile.TemporaryDirectory(prefix="coopt-put-") as tmp:
        obj = os.path.join(tmp, "variant.o")
        if prebuilt_object:
            obj = prebuilt_object
            recipe = ["(prebuilt)", *(extra_flags or [])]
        else:
            recipe = build_object(job, artifact, kind, obj, extra_flags)
        meta = {
            "level": level,
            "recipe": {"command": recipe, "cwd": job.cwd},
            # What a checkout at another path needs to rebuild the object with its own paths (cache/rebase.py).
            "extra_flags": list(extra_flags or []),
            "evidence": mask_data(evidence),  # a command line in it may hold a URL's password
            **({"changed_functions": sorted(changed_functions)} if changed_functions is not None else {}),
            "job": job.to_record(tk.direct_key),
            "direct_key": tk.direct_key,
            "source_hash": hash_file(job.source_path),
        }
        entry = store.put(tk.key, tk.material, obj, None if kind == "object" else artifact, meta)
    manifest.add(
        layout.manifest_path(tk.direct_key), layout.lock_path("m-" + tk.direct_key), tk.key, tk.deps,
        direct, state.checks if state is not None else None,
    )
    if remotes is not None and remotes.specs:
        lines = upload(layout, entry, tk.direct_key, tk.deps, remotes)
        if report is not None:
            report.extend(lines)
    return entry


def upload(layout: CacheLayout, entry: Entry, direct_key: str, deps: list[tuple[str, str]],
           remotes: Remotes) -> list[str]:
    """Send a stored entry to the remotes; one line per remote. Never raises: the local entry stands regardless."""
    try:
        from coopt.cache.remote.sync import upload_entry

        return upload_entry(layout, entry.path, entry.key, direct_key, deps, remotes.specs, remotes.read_only)
    except Exception as exc:  # a bad spec or a backend's bug: the local put already succeeded
        return ["remote upload failed: %s: %s" % (type(exc).__name__, exc)]


def withdraw(layout: CacheLayout, key: str, direct_key: str, remotes: Remotes) -> list[str]:
    """Remove a withdrawn variant from the writable remotes too (its entry and its manifest line)."""
    try:
        from coopt.cache.remote.sync import withdraw_entry

        return withdraw_entry(layout, key, direct_key, remotes.specs, remotes.read_only)
    except Exception as exc:
        return ["remote withdrawal failed: %s: %s" % (type(exc).__name__, exc)]
