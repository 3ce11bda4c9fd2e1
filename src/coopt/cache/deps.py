"""Which files a compile reads: make-style dependency files, parsed, and the compiler run that lists them."""

from __future__ import annotations

import os

from coopt.journal.job import CompileJob


def parse_depfile(text: str) -> list[str]:
    """Prerequisites of the first rule in a make dependency file, unescaped, in order."""
    # Join continuation lines; keep escaped spaces and dollar signs apart from separators.
    body = text.replace("\\\r\n", " ").replace("\\\n", " ")
    first = body.split("\n", 1)[0]
    colon = _rule_colon(first)
    if colon < 0:
        return []
    rest = first[colon + 1 :]
    out: list[str] = []
    cur: list[str] = []
    i = 0
    n = len(rest)
    while i < n:
        ch = rest[i]
        if ch == "\\" and i + 1 < n and rest[i + 1] in " #\\":
            cur.append(rest[i + 1])
            i += 2
            continue
        if ch == "$" and i + 1 < n and rest[i + 1] == "$":
            cur.append("$")
            i += 2
            continue
        if ch in " \t":
            if cur:
                out.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
        i += 1
    if cur:
        out.append("".join(cur))
    return out


def _rule_colon(line: str) -> int:
    """Index of the colon that ends the targets (skipping escaped colons and Windows drive letters)."""
    i = 0
    while True:
        i = line.find(":", i)
        if i < 0:
            return -1
        if i > 0 and line[i - 1] == "\\":
            i += 1
            continue
        if i == 1 and line[0].isalpha() and len(line) > 2 and line[2] in "\\/":
            i += 1
            continue
        return i


class DepsError(Exception):
    """The compiler could not list the dependencies (the source does not preprocess)."""


def list_deps(job: CompileJob, source: str | None = None, timeout: float = 300) -> list[str]:
    """Every file the preprocessor reads for `job` (the source first), as the compiler names them."""
    import subprocess
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix="coopt-deps-", suffix=".d")
    os.close(fd)
    try:
        cmd = [job.compiler, *job.key_args, "-M", "-MF", tmp, "-MT", "coopt-target", source or job.source]
        proc = subprocess.run(
            cmd, cwd=job.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout,
            env=job.subprocess_env(),
        )
        if proc.returncode != 0:
            tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            raise DepsError("listing dependencies failed (exit %d): %s" % (proc.returncode, tail[0]))
        with open(tmp, encoding="utf-8", errors="surrogateescape") as f:
            return parse_depfile(f.read())
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
