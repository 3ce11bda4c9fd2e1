"""integration/ci: the GitHub Actions nightly workflow and the read-only day-build workflow.

tests/test_ci_workflows.py runs every step of both, in order, on a small project. Here, quickly: both files are
valid YAML of the expected shape; the cache is restored and saved under keys that work with actions/cache's
immutable entries, at the path COOPT_CACHE_DIR names; the exit codes the nightly job acts on are coopt nightly's
own; every `coopt` command in a `run:` script is a registered subcommand whose options parse; and the day build's
own build, test and variants steps, run with this working tree's coopt against a cache holding a variant, get the
variant served and write nothing.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import Coopt, require
from coopt.cli import COMMANDS
from coopt.nightly import steps as nightly_steps

CI = Path(__file__).resolve().parent.parent / "integration" / "ci" / "github"
NIGHTLY = CI / "coopt-nightly.yml"
DAY = CI / "coopt-build.yml"
SYSTEM_PYTHON = "/usr/bin/python3"


def load_yaml(path: Path) -> dict[str, Any]:
    """The workflow as data, with PyYAML (this interpreter's, else the system Python's)."""
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        yaml = None
    if yaml is not None:
        data = yaml.safe_load(path.read_text())
    else:
        probe = subprocess.run([SYSTEM_PYTHON, "-c", "import yaml"], capture_output=True) if os.path.exists(
            SYSTEM_PYTHON) else None
        if probe is None or probe.returncode != 0:
            pytest.skip("no YAML parser (pip install pyyaml, or apt-get install python3-yaml)")
        code = "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout, default=str)"
        out = subprocess.run([SYSTEM_PYTHON, "-c", code, str(path)], capture_output=True, text=True, check=True)
        data = json.loads(out.stdout)
    assert isinstance(data, dict)
    # YAML 1.1 reads the key `on` as true.
    if True in data:
        data["on"] = data.pop(True)
    elif "true" in data:
        data["on"] = data.pop("true")
    return data


def steps_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for job in data["jobs"].values() for s in job["steps"]]


SEPARATORS = {";", "&&", "||", "|", "&", "(", ")"}
KEYWORDS = {"if", "then", "elif", "else", "do", "while", "until", "!", "time"}


def coopt_commands(script: str) -> list[list[str]]:
    """Each `coopt ...` command of a shell script (one command line per script line, as workflows write them),
    as its words after `coopt`."""
    out: list[list[str]] = []
    for line in script.splitlines():
        lex = shlex.shlex(line, posix=True, punctuation_chars=True)
        lex.whitespace_split = True
        lex.commenters = "#"
        at_start, current = True, None
        for word in lex:
            if word in SEPARATORS:
                if current is not None:
                    out.append(current)
                at_start, current = True, None
            elif current is not None:
                current.append(word)
            elif at_start and (word in KEYWORDS or re.fullmatch(r"[A-Za-z_]\w*=.*", word)):
                continue  # still at the start of a command
            elif at_start and word == "coopt":
                current = []
            else:
                at_start = False
        if current is not None:
            out.append(current)
    return out


def test_both_workflows_parse_with_the_expected_shape() -> None:
    for path in (NIGHTLY, DAY):
        data = load_yaml(path)
        assert data["name"] and data["on"] and data["jobs"], path
        for step in steps_of(data):
            assert ("uses" in step) != ("run" in step), step
            if "uses" in step:
                assert re.fullmatch(r"[\w-]+/[\w/-]+@v\d+", step["uses"]), step["uses"]
    assert "schedule" in load_yaml(NIGHTLY)["on"]
    assert {"push", "pull_request"} <= set(load_yaml(DAY)["on"])


def _cache_steps(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for s in steps_of(data):
        if s.get("uses", "").startswith("actions/cache"):
            found.setdefault(s["uses"].split("@")[0], []).append(s)
    return found


def test_nightly_restores_and_saves_the_cache_where_coopt_keeps_it() -> None:
    data = load_yaml(NIGHTLY)
    assert data["env"]["COOPT_CACHE_DIR"] == "${{ github.workspace }}/.coopt-cache"
    caches = _cache_steps(data)
    assert set(caches) == {"actions/cache/restore", "actions/cache/save"}
    [restore], [save] = caches["actions/cache/restore"], caches["actions/cache/save"]
    assert restore["with"]["path"] == save["with"]["path"] == ".coopt-cache"
    # Entries are immutable: each run saves a new key; the newest is found by prefix.
    assert restore["with"]["key"] == save["with"]["key"] and "github.run_id" in save["with"]["key"]
    prefix = restore["with"]["restore-keys"].strip()
    assert save["with"]["key"].startswith(prefix)
    names = [s.get("id") or s.get("uses") or s.get("name") for s in steps_of(data)]
    assert names.index("actions/cache/restore@v4") < names.index("nightly") < names.index("actions/cache/save@v4")


def test_nightly_acts_on_coopt_nightlys_exit_codes() -> None:
    data = load_yaml(NIGHTLY)
    [run] = [s for s in steps_of(data) if s.get("id") == "nightly"]
    assert re.search(r"^\s*coopt nightly\s*$", run["run"], re.M)
    [save] = _cache_steps(data)["actions/cache/save"]
    saved_on = {int(c) for c in re.findall(r'"(\d+)"', save["if"])}
    assert "always()" in save["if"] and "steps.nightly.outputs.code" in save["if"]
    assert saved_on == {nightly_steps.EXIT_DONE, nightly_steps.EXIT_TESTS_FAILED, nightly_steps.EXIT_NOTHING_IMPROVED}
    passed = {int(c) for c in re.findall(r'"\$code" -eq (\d+)', run["run"])}
    assert passed == {nightly_steps.EXIT_NOTHING_IMPROVED}
    upload = [s for s in steps_of(data) if s.get("uses", "").startswith("actions/upload-artifact")]
    assert upload and upload[0]["with"]["path"].rstrip("/") == ".coopt-nightly"


def test_day_build_is_read_only_and_never_saves() -> None:
    data = load_yaml(DAY)
    assert data["env"]["COOPT_READONLY"] in ("1", "true", "yes", "on")
    assert data["env"]["COOPT_CACHE_DIR"] == load_yaml(NIGHTLY)["env"]["COOPT_CACHE_DIR"]
    caches = _cache_steps(data)
    assert set(caches) == {"actions/cache/restore"}  # actions/cache@ would save at the end of the job
    [restore] = caches["actions/cache/restore"]
    [nightly_restore] = _cache_steps(load_yaml(NIGHTLY))["actions/cache/restore"]
    assert restore["with"] == nightly_restore["with"]


@pytest.mark.parametrize("path", [NIGHTLY, DAY], ids=["nightly", "day-build"])
def test_every_coopt_command_in_the_workflows_exists(coopt: Coopt, path: Path) -> None:
    from coopt.cli.nightly_cmd import _parser as nightly_parser

    commands = [c for s in steps_of(load_yaml(path)) if "run" in s for c in coopt_commands(s["run"])]
    assert commands, "no coopt command found in %s" % path
    for words in commands:
        assert words and words[0] in COMMANDS, words
        proc = coopt.coopt(*words, "--help", check=False)
        assert proc.returncode == 0 and "usage" in proc.stdout.lower(), (words, proc.stderr)
        if words[0] == "nightly":
            nightly_parser().parse_args(words[1:])  # its options exist (SystemExit otherwise)
    scripts = " ".join(s["run"] for s in steps_of(load_yaml(path)) if "run" in s)
    if "coopt-cc" in scripts:
        pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
        assert '"scripts/coopt-cc"' in pyproject  # the name the workflow calls is what pip installs


def test_the_command_finder() -> None:
    script = 'set +e\ncoopt nightly --budget 3\ncode=$?  # coopt fake\nif true; then coopt doctor; fi\necho coopt\n'
    assert coopt_commands(script) == [["nightly", "--budget", "3"], ["doctor"]]
    assert coopt_commands("coopt cache ls && coopt report --format md") == [["cache", "ls"],
                                                                            ["report", "--format", "md"]]


APP = '#include <stdio.h>\nlong work(long n);\nint main(void) { printf("%ld\\n", work(1000)); return 0; }\n'
WORK = "long work(long n) { long s = 0; for (long i = 0; i < n; i++) s += i % 7; return s; }\n"
MARKER = "coopt-ci-day-build-variant"
MAKEFILE = """app: app.o work.o
\t$(CC) -o app app.o work.o
%.o: %.c
\t$(CC) -O2 -c $< -o $@
test: app
\ttest "$$(./app)" = 2997
clean:
\trm -f app *.o
"""


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
            if p.is_file()}


def test_day_build_steps_serve_the_nightly_variant_and_write_nothing(coopt: Coopt, tmp_path: Path) -> None:
    require("clang", "make")
    data = load_yaml(DAY)
    ws = tmp_path / "workspace"
    ws.mkdir()
    (ws / "app.c").write_text(APP)
    (ws / "work.c").write_text(WORK)
    (ws / "Makefile").write_text(MAKEFILE)
    env = dict(coopt.env)
    for k, v in data["env"].items():
        env[k] = str(v).replace("${{ github.workspace }}", str(ws))
    cache = Path(env["COOPT_CACHE_DIR"])
    assert cache.parent == ws

    # What the nightly job leaves: a cache holding a variant of work.c (written with the cache writable).
    writable = dict(env)
    writable.pop("COOPT_READONLY")
    subprocess.run(["make", "CC=coopt-cc"], cwd=ws, env=writable, check=True, capture_output=True)
    (tmp_path / "variant.c").write_text(WORK + '__attribute__((used)) static const char m[] = "%s";\n' % MARKER)
    subprocess.run([str(coopt.bin / "coopt"), "cache", "put", "--artifact", str(tmp_path / "variant.c"),
                    "--for-object", "work.o", "--unverified"], cwd=ws, env=writable, check=True, capture_output=True)
    subprocess.run(["make", "clean"], cwd=ws, env=writable, check=True, capture_output=True)
    [entry] = [p for p in (cache / "entries").rglob("object.o")]
    before = _snapshot(cache)

    outputs = {}
    for step in steps_of(data):
        if step.get("id") not in ("build", "test", "variants"):
            continue
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=ws,
                              env=env, capture_output=True, text=True)
        assert proc.returncode == 0, (step["run"], proc.stdout, proc.stderr)
        outputs[step["id"]] = proc.stdout
    assert set(outputs) == {"build", "test", "variants"}
    assert (ws / "work.o").read_bytes() == entry.read_bytes()  # served from the cache
    assert MARKER.encode() in (ws / "app").read_bytes()
    assert _snapshot(cache) == before  # read-only: no journal line, no statistics, no entry touched
    assert entry.parent.name in outputs["variants"]
