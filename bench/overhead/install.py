"""coopt installed the way users get it: a private virtual environment and a real (non-editable) pip install.

What is measured is then the installed `coopt-cc` launcher (sh re-executing the venv's python with -I -S) and its
byte-compiled modules, not the test suite's launcher that imports the working tree. The sources are copied first,
so the install writes no build/ or egg-info/ into the checkout other engineers are working in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from overhead.timing import BenchError, progress

# What `pip install .` needs from a checkout; everything else (tests, .venv, build outputs) stays behind.
SOURCE_PARTS = ("pyproject.toml", "setup.py", "build_fastcc.py", "README.md", "scripts", "src")
IGNORE = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")


@dataclass(frozen=True)
class Installed:
    """A private venv with coopt installed: its python, `coopt-cc` and `coopt`."""

    venv: Path
    python: Path
    coopt_cc: Path
    coopt: Path


def _pip(python: Path, args: list[str]) -> None:
    cmd = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-build-isolation", *args]
    # pip prints warnings about unreachable index locations on some machines; only a failure matters.
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-2:]
        raise BenchError("`%s` failed (exit %d): %s" % (" ".join(cmd), proc.returncode, " | ".join(tail)))


def install_coopt(checkout: Path, workdir: Path) -> Installed:
    """Create `workdir`/venv and pip-install a copy of `checkout` into it."""
    if not (checkout / "pyproject.toml").is_file():
        raise BenchError("%s is not a coopt checkout (no pyproject.toml)" % checkout)
    src = workdir / "coopt-src"
    src.mkdir(parents=True)
    for part in SOURCE_PARTS:
        path = checkout / part
        if path.is_dir():
            shutil.copytree(path, src / part, ignore=IGNORE)
        elif path.is_file():
            shutil.copy2(path, src / part)
    venv = workdir / "venv"
    progress("creating a private venv in %s" % venv)
    proc = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError("python -m venv failed: %s" % proc.stderr.strip()[-300:])
    python = venv / "bin" / "python"
    _pip(python, ["setuptools", "wheel"])
    progress("pip install %s (a copy of %s)" % (src, checkout))
    _pip(python, [str(src)])
    installed = Installed(venv, python, venv / "bin" / "coopt-cc", venv / "bin" / "coopt")
    for exe in (installed.coopt_cc, installed.coopt):
        if not os.access(exe, os.X_OK):
            raise BenchError("the install did not create %s" % exe)
    return installed
