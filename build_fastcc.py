"""Build coopt-cc-fast, the C miss path (src/coopt/data/fastcc.c), next to the Python package.

Used by setup.py at install time and by the tests. Reads the version constants from the sources with regular
expressions, since nothing may be imported at build time (xxhash may not be installed yet); tests check they
equal the constants Python uses at run time (coopt.wrapper.fastpath.memo_dir_name).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "src", "coopt", "data", "fastcc.c")


def _constant(relpath: str, name: str) -> str:
    with open(os.path.join(HERE, "src", "coopt", relpath), encoding="utf-8") as f:
        m = re.search(r'^%s = "?([^"\n]+)"?$' % name, f.read(), re.M)
    if not m:
        raise RuntimeError("cannot find %s in %s" % (name, relpath))
    return m.group(1)


def memo_dir_name() -> str:
    return "fast-%s-k%s-j%s" % (
        _constant("__init__.py", "__version__"),
        _constant("cache/key.py", "KEY_VERSION"),
        _constant("journal/log.py", "JOURNAL_VERSION"),
    )


def build(out: str, cc: str | None = None) -> str | None:
    """Compile coopt-cc-fast into `out`. Returns an error message, or None on success.

    Needs a C compiler and xxhash.h (Debian: libxxhash-dev). Without them coopt works the same, only slower.
    """
    cc = cc or os.environ.get("CC") or shutil.which("cc") or shutil.which("clang") or shutil.which("gcc")
    if not cc:
        return "no C compiler"
    cmd = [cc, "-O2", "-Wall", '-DCOOPT_FAST_DIR="%s"' % memo_dir_name(), SOURCE, "-o", out]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    if proc.returncode != 0:
        return (proc.stderr.strip().splitlines() or ["failed"])[-1]
    return None
