"""Shared fixtures: a coopt-cc launcher that runs this working tree, private cache directories, helpers to run
compilers and the `coopt` command, and real Debian source trees."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"

# `make test` runs this suite under make: without this, every make a test runs is a sub-make (it prints "Entering
# directory" lines and joins the outer jobserver), so a test's output would depend on how the suite was started.
for _var in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS"):
    os.environ.pop(_var, None)
sys.path[:0] = [str(SRC), str(ROOT / "tests")]

# A test run started in the background by a non-interactive shell (`make test &`, nohup) inherits SIGINT ignored,
# and so would every process the tests start: the tests that interrupt a child (Ctrl-C handling) would hang.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)



@pytest.fixture
def tmp_path(tmp_path: Path) -> Path:
    """pytest's tmp_path, readable by others: as root, contained commands run as uid 65534 (verify/sandbox/bwrap.py) and
    can only enter a project directory that others may, which pytest's private (0700) directories are not."""
    tmp_path.chmod(0o755)
    return tmp_path


# The same shell/Python polyglot as scripts/coopt-cc, but importing coopt from this working tree, so tests always
# exercise the code being changed (no reinstall, no races between concurrent test runs).
LAUNCHER = """#!/bin/sh
'''':; exec "{python}" -I -S "$0" "$@" # '''
import sys
sys.path[:0] = [{src!r}, {purelib!r}, {platlib!r}]
from coopt.wrapper.main import main
sys.exit(main(sys.argv))
"""

# The production launcher's structure (scripts/coopt-cc): sh tries coopt-cc-fast, which defers to this same file
# run by Python; the Python part imports this working tree.
FAST_LAUNCHER = """#!/bin/sh
'''':; [ -x "{fast}" ] && exec "{fast}" "{python}" "$0" "$@"; exec "{python}" -I -S "$0" "$@" # '''
import sys
sys.path[:0] = [{src!r}, {purelib!r}, {platlib!r}]
from coopt.wrapper.main import main
sys.exit(main(sys.argv))
"""

CLI = """#!/bin/sh
'''':; exec "{python}" -I "$0" "$@" # '''
import sys
sys.path[:0] = [{src!r}, {purelib!r}, {platlib!r}]
from coopt.cli import main
sys.exit(main())
"""


@pytest.fixture(scope="session")
def launcher_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding `coopt-cc` and `coopt` that run this working tree."""
    d = tmp_path_factory.mktemp("coopt-bin")
    fmt = dict(
        python=sys.executable,
        src=str(SRC),
        purelib=sysconfig.get_paths()["purelib"],
        platlib=sysconfig.get_paths()["platlib"],
    )
    for name, text in (("coopt-cc", LAUNCHER), ("coopt", CLI)):
        p = d / name
        p.write_text(text.format(**fmt))
        p.chmod(0o755)
    return d


@pytest.fixture(scope="session")
def fast_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """coopt-cc-fast (src/coopt/data/fastcc.c) built from this working tree."""
    require("cc")
    if not os.path.exists("/usr/include/xxhash.h"):
        pytest.skip("xxhash.h missing (libxxhash-dev; make test installs it)")
    sys.path.insert(0, str(ROOT))
    import build_fastcc

    out = tmp_path_factory.mktemp("fastcc") / "coopt-cc-fast"
    error = build_fastcc.build(str(out))
    assert error is None, error
    return out


def write_fast_launcher(bindir: Path, fast_binary: Path) -> Path:
    """Write into `bindir` a coopt-cc that goes through coopt-cc-fast first, as installed ones do."""
    paths = sysconfig.get_paths()
    launcher = bindir / "coopt-cc"
    launcher.write_text(FAST_LAUNCHER.format(fast=fast_binary, python=sys.executable, src=str(SRC),
                                             purelib=paths["purelib"], platlib=paths["platlib"]))
    launcher.chmod(0o755)
    return launcher


@pytest.fixture
def fast(coopt: Coopt, fast_binary: Path, tmp_path: Path) -> Coopt:
    """The `coopt` set-up, with coopt-cc going through coopt-cc-fast first (a launcher of its own: some tests
    rewrite it)."""
    bindir = tmp_path / "fastbin"
    bindir.mkdir()
    write_fast_launcher(bindir, fast_binary)
    env = dict(coopt.env, PATH="%s:%s" % (bindir, coopt.env["PATH"]))
    return Coopt(bin=coopt.bin, cache_dir=coopt.cache_dir, env=env)


@pytest.fixture(scope="session")
def fast_launcher_bin(launcher_bin: Path, fast_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Like `launcher_bin`, with the coopt-cc users get: coopt-cc-fast first, Python for what it cannot decide."""
    d = tmp_path_factory.mktemp("coopt-fast-bin")
    write_fast_launcher(d, fast_binary)
    shutil.copy2(launcher_bin / "coopt", d / "coopt")
    return d


@dataclass
class Coopt:
    """A private coopt set-up: its own cache directory and an environment with coopt-cc first on PATH."""

    bin: Path
    cache_dir: Path
    env: dict

    @property
    def cc(self) -> str:
        return str(self.bin / "coopt-cc")

    def run(
        self, args: list[str], cwd: Path | str | None = None, check: bool = True, **kw
    ) -> subprocess.CompletedProcess:
        """Run a command in this environment, capturing text output."""
        proc = subprocess.run(args, cwd=cwd, env=self.env, capture_output=True, text=True, **kw)
        if check and proc.returncode != 0:
            raise AssertionError(
                "%s failed (%d):\n%s\n%s" % (" ".join(map(str, args)), proc.returncode, proc.stdout, proc.stderr)
            )
        return proc

    def coopt(self, *args: str, cwd: Path | str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return self.run([str(self.bin / "coopt"), *args], cwd=cwd, check=check)

    def journal(self) -> list[dict]:
        from coopt.journal import log as journal

        return journal.read(str(self.cache_dir / "journal.jsonl"))

    def stats(self) -> dict:
        from coopt.cache import stats

        return stats.read(str(self.cache_dir / "stats"))


@pytest.fixture
def coopt(launcher_bin: Path, tmp_path: Path) -> Coopt:
    cache = tmp_path / "coopt-cache"
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("COOPT_"):
            del env[k]
    env["PATH"] = "%s%s%s" % (launcher_bin, os.pathsep, env.get("PATH", ""))
    env["COOPT_CACHE_DIR"] = str(cache)
    env["LC_ALL"] = "C"
    # Most tests store variants with `coopt cache put --unverified` to test serving; they opt in to serving them,
    # as a user experimenting would. tests/test_accept.py tests the default (never served) without it.
    env["COOPT_SERVE_UNVERIFIED"] = "1"
    return Coopt(bin=launcher_bin, cache_dir=cache, env=env)


def require(*tools: str) -> None:
    """Skip the test when a tool it needs is not installed (make test installs them all)."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip("missing tools: %s (run `make test`, which installs them)" % ", ".join(missing))


@pytest.fixture
def debian_source(tmp_path: Path):
    """Factory: a private copy of a Debian source package's tree, e.g. debian_source("lua5.4").

    `pristine=True` gives upstream's tree from the .orig tarball, without Debian's patches (Debian's lua5.4 builds
    through libtool; upstream's Makefile is what Lua users run)."""
    from support.debian_sources import SourceUnavailable, copy_tree

    def make(package: str, pristine: bool = False) -> Path:
        try:
            return copy_tree(package, tmp_path / package, pristine=pristine)
        except SourceUnavailable as exc:
            if os.environ.get("CI"):
                raise
            pytest.skip(str(exc))

    return make
