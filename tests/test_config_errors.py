"""Every kind of broken configuration is one line — file:line (or the variable), the key, what was expected — with
exit status 2 and no traceback, from `coopt config show` and from `coopt nightly` before it runs anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Coopt

# (id, file name, file content (str or bytes), environment, expected line number or None, parts of the message)
CASES = [
    ("toml-syntax", "coopt.toml", '[hooks]\nbuild = "make"\nclean make clean\n', {}, 3,
     ["not valid TOML"]),
    ("not-utf8", "coopt.toml", b'[hooks]\nbuild = "make \xff"\n', {}, 2, ["not UTF-8"]),
    ("unknown-table", "coopt.toml", '[hoks]\nbuild = "make"\n', {}, 1,
     ["[hoks]: unknown table", "did you mean hooks?"]),
    ("unknown-key", "coopt.toml", '[hooks]\nbuild = "make"\nbiuld = "make"\n', {}, 3,
     ["[hooks] biuld: unknown key", "did you mean build?"]),
    ("key-outside-table", "coopt.toml", "min_gain = 1.1\n", {}, 1, ["min_gain", "under [optimize]"]),
    ("table-not-table", "coopt.toml", 'hooks = "make"\n', {}, 1, ["hooks: expected a table"]),
    ("number-as-text", "coopt.toml", '[optimize]\n\nmin_gain = "fast"\n', {}, 3,
     ["[optimize] min_gain", "expected a number greater than 0, got 'fast'"]),
    ("number-out-of-range", "coopt.toml", "[optimize]\npairs = 1\n", {}, 2,
     ["[optimize] pairs", "expected a whole number of at least 3, got 1"]),
    ("fraction-for-count", "coopt.toml", "[optimize]\nbudget = 2.5\n", {}, 2,
     ["[optimize] budget", "expected a whole number of at least 1, got 2.5"]),
    ("bool-for-count", "coopt.toml", "[optimize]\nbudget = true\n", {}, 2,
     ["[optimize] budget", "expected a whole number"]),
    ("text-for-switch", "coopt.toml", '[cache]\nread_only = "yes"\n', {}, 2,
     ["[cache] read_only", "expected true or false, got 'yes'"]),
    ("bad-size", "coopt.toml", '[cache]\nmax_size = "lots"\n', {}, 2,
     ["[cache] max_size", "expected a size such as 500M or 5G"]),
    ("bad-choice", "coopt.toml", '[llm]\nprovider = "gpt"\n', {}, 2,
     ["[llm] provider", "expected one of none, local, openai, got 'gpt'"]),
    ("unknown-level", "coopt.toml", '[optimize]\nlevels = ["flags", "turbo"]\n', {}, 2,
     ["[optimize] levels", "expected a non-empty list of levels from flags, pgo, compilers, source, ir, asm"]),
    ("repeated-level", "coopt.toml", '[optimize]\nlevels = ["pgo", "pgo"]\n', {}, 2,
     ["[optimize] levels", "without repeats"]),
    ("llm-level-without-llm", "coopt.toml", '[optimize]\nlevels = ["flags", "source"]\n', {}, 2,
     ["[optimize] levels", "level source needs an LLM", "[llm] provider"]),
    ("hook-number", "coopt.toml", "[hooks]\nbuild = 3\n", {}, 2,
     ["[hooks] build", "expected a shell command line (a string) or an argv list of strings, got 3"]),
    ("hook-argv-not-strings", "coopt.toml", '[hooks]\ntest = [\n  "make",\n  2,\n]\n', {}, 2,
     ["[hooks] test", "expected a shell command line"]),
    ("empty-compiler", "coopt.toml", '[compiler]\npath = ""\n', {}, 2,
     ["[compiler] path", "expected a non-empty string, got ''"]),
    ("broken-key-under-env-override", "coopt.toml", '[optimize]\nmin_gain = "x"\n', {"COOPT_MIN_GAIN": "1.1"}, 2,
     ["[optimize] min_gain", "expected a number"]),
    ("pyproject-wrapper-key", "pyproject.toml", '[project]\nname = "x"\n[tool.coopt.compiler]\npath = "clang"\n', {},
     4, ["[compiler] path", "coopt-cc reads this key from coopt.toml only"]),
    ("pyproject-tool-coopt-not-table", "pyproject.toml", '[tool]\ncoopt = 1\n', {}, 2,
     ["tool.coopt: expected a table"]),
    ("env-count", None, "", {"COOPT_PAIRS": "abc"}, None,
     ["COOPT_PAIRS (environment): expected a whole number of at least 3, got 'abc'"]),
    ("env-switch", None, "", {"COOPT_READONLY": "maybe"}, None,
     ["COOPT_READONLY (environment): expected 1/true/yes/on or 0/false/no/off, got 'maybe'"]),
    ("env-levels", None, "", {"COOPT_LEVELS": "flags,warp"}, None,
     ["COOPT_LEVELS (environment): expected a non-empty list of levels"]),
    ("env-llm-level", None, "", {"COOPT_LEVELS": "asm"}, None,
     ["COOPT_LEVELS (environment): level asm needs an LLM"]),
    ("env-size", None, "", {"COOPT_CACHE_MAX_SIZE": "huge"}, None,
     ["COOPT_CACHE_MAX_SIZE (environment): expected a size"]),
    ("missing-named-file", None, "", {"COOPT_CONFIG": "/nonexistent/coopt.toml"}, None,
     ["/nonexistent/coopt.toml: cannot read: No such file or directory"]),
]


@pytest.mark.parametrize("name, fname, content, env, line, parts", CASES, ids=[c[0] for c in CASES])
def test_bad_config_is_one_line(coopt: Coopt, tmp_path: Path, name: str, fname: str | None, content: str | bytes,
                                env: dict[str, str], line: int | None, parts: list[str]) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    where = ""
    if fname:
        path = proj / fname
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        where = "%s:%d: " % (path, line)
    coopt.env.update(env)
    for command in (["config", "show"], ["nightly"]):
        proc = coopt.coopt(*command, cwd=proj, check=False)
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
        msg = proc.stderr.strip()
        assert msg.startswith("coopt %s: error: bad config: %s" % (command[0], where)), msg
        for part in parts:
            assert part in msg, (part, msg)
    assert not (proj / ".coopt-nightly").exists()  # nightly ran nothing
