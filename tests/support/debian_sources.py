"""Real C projects for tests, benchmarks and the demo: Debian source packages fetched with `apt-get source`.

Sources are fetched once into ~/.cache/coopt-tests/debsrc/<package>/ (override with COOPT_TEST_SOURCES) and
copied into each test's own directory, so builds never touch the cached tree. Fetching enables `deb-src` in
Debian's deb822 sources file when it is missing (needs root, as in CI and `make test`).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from filelock import FileLock

SOURCES_FILE = "/etc/apt/sources.list.d/debian.sources"

# package -> glob of the unpacked tree inside its cache directory
PACKAGES = {
    "lua5.4": "lua5.4-*",
    "zlib": "zlib-*",
    "bzip2": "bzip2-*",
    "lz4": "lz4-*",  # lib/Makefile compiles liblz4.a's sources in one -c call; tests/ links programs from sources
    "libyaml": "libyaml-*",  # autotools and libtool (tests/test_libtool.py); its tarball needs autoreconf
}


class SourceUnavailable(Exception):
    """apt-get source could not provide the package (no network, no deb-src, not root)."""


def cache_root() -> Path:
    return Path(os.environ.get("COOPT_TEST_SOURCES", os.path.expanduser("~/.cache/coopt-tests/debsrc")))


def _enable_deb_src() -> None:
    try:
        text = Path(SOURCES_FILE).read_text()
    except OSError:
        return
    if "deb-src" in text:
        return
    if os.geteuid() != 0:
        raise SourceUnavailable("deb-src is not enabled in %s and we are not root" % SOURCES_FILE)
    Path(SOURCES_FILE).write_text(text.replace("Types: deb\n", "Types: deb deb-src\n"))
    subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True, timeout=600)


def _apt_source(package: str, dest: Path) -> None:
    for spec in (package, package + "/bookworm"):
        proc = subprocess.run(
            ["apt-get", "source", "-qq", spec], cwd=dest, capture_output=True, text=True, timeout=900
        )
        if proc.returncode == 0:
            return
    raise SourceUnavailable("apt-get source %s failed: %s" % (package, proc.stderr.strip()[-300:]))


def fetch(package: str) -> Path:
    """The unpacked Debian source tree of `package` (cached; fetched on first use)."""
    pattern = PACKAGES.get(package, package + "-*")
    root = cache_root() / package
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root) + ".lock", timeout=1800):
        found = [p for p in glob.glob(str(root / pattern)) if os.path.isdir(p)]
        if found:
            return Path(sorted(found)[-1])
        _enable_deb_src()
        tmp = root / "incoming"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            _apt_source(package, tmp)
            for item in tmp.iterdir():
                shutil.move(str(item), str(root / item.name))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        found = [p for p in glob.glob(str(root / pattern)) if os.path.isdir(p)]
        if not found:
            raise SourceUnavailable("apt-get source %s produced no %s directory" % (package, pattern))
        return Path(sorted(found)[-1])


def upstream(package: str) -> Path:
    """The pristine upstream tree (the .orig tarball, without Debian's patches), unpacked once next to `fetch`'s.

    Debian patches some build systems (lua5.4's Makefile builds through libtool); tests and the demo that build a
    project the way its upstream users do want this tree.
    """
    import tarfile

    debian_tree = fetch(package)
    root = debian_tree.parent
    dest = root / "upstream"
    with FileLock(str(root) + ".upstream.lock", timeout=600):
        found = [p for p in dest.glob("*") if p.is_dir()] if dest.exists() else []
        if found:
            return found[0]
        tarballs = sorted(root.glob("*.orig.tar.*"))
        if not tarballs:
            raise SourceUnavailable("no .orig tarball for %s in %s" % (package, root))
        tmp = root / "upstream.incoming"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        with tarfile.open(tarballs[0]) as tar:
            tar.extractall(tmp, filter="data")
        os.replace(tmp, dest)
        found = [p for p in dest.glob("*") if p.is_dir()]
        return found[0]


def copy_tree(package: str, dest: Path, pristine: bool = False) -> Path:
    """A private, writable copy of the package's source tree at `dest` (upstream's own tree when `pristine`)."""
    src = upstream(package) if pristine else fetch(package)
    shutil.copytree(src, dest, symlinks=True)
    return dest
