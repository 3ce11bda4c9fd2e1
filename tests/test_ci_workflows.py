"""integration/ci/github/*.yml, run: every step of every job, in order, on this machine (tests/support/actions.py).

The `run:` steps run for real with bash and the workflow's env; the `uses:` steps that need GitHub are emulated by
what they leave behind (a clone for actions/checkout, a fresh virtual environment for setup-python, directories for
the cache and the artifacts). coopt is installed the way the workflows install it: its repository (a commit of this
working tree's tracked files, tagged with the workflows' COOPT_REF) checked out into `.coopt-src` and built by
`pip install` in the job's fresh Python, with pip reading only a local wheelhouse of coopt's dependencies (filled
once from the package registry into ~/.cache/coopt-tests/wheels, or COOPT_TEST_WHEELS), so `pip install coopt-cc`
or any other name that is not built in the workflow fails here as it fails on GitHub. The user's repository is a
tiny Make project with a coopt.toml. apt-get and sysctl run for real as root (sudo is a shim; without root the steps
that use sudo are skipped, and say so).

The fast tests check the runner itself on synthetic workflows (a broken recipe fails) and the recipes' shape; the
slow ones run the three workflows and check what each promises: the day build serves a variant from the restored
cache and writes nothing, the nightly run ends "nothing improved" (exit 4, which passes) and saves the cache and its
report, the sharded run merges three shards' results into one report; and every job ends with coopt-cc-fast
installed in the Python it built.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from conftest import ROOT, Coopt, require
from support.actions import JobResult, Runner, condition, evaluate, substitute
from test_nightly_ci import CI, DAY, NIGHTLY, load_yaml

SHARDED = CI / "coopt-sharded.yml"
WORKFLOWS = {"day-build": DAY, "nightly": NIGHTLY, "sharded": SHARDED}
PARANOID = Path("/proc/sys/kernel/perf_event_paranoid")

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


# --- the user's repository: a tiny Make project with its coopt.toml ----------------------------------------------

APP = r"""#include <stdio.h>
#include <stdlib.h>
long work(long n);
int main(int argc, char **argv) {
    long n = 1000;
    if (argc > 1) { FILE *f = fopen(argv[1], "r"); if (!f || fscanf(f, "%ld", &n) != 1) return 2; fclose(f); }
    printf("sum %ld\n", work(n));
    return 0;
}
"""
WORK = "long work(long n) { long s = 0; for (long i = 0; i < n; i++) s += (i * 7) % 13; return s; }\n"
MAKEFILE = """app: app.o work.o
\t$(CC) -o app app.o work.o
%.o: %.c
\t$(CC) -O2 -c $< -o $@
test: app
\ttest "$$(./app)" = "sum 6000"
clean:
\trm -f app *.o
"""
# A small budget and a bar nothing clears: `coopt nightly` ends "nothing improved" (exit 4) whatever the timings.
CONFIG = """[hooks]
clean = "make clean"
build = "make"
test = "make test"
profile = "./app input.txt"

[optimize]
levels = ["flags"]
budget = 1
pairs = 3
min_gain = 50
"""
MARKER = "coopt-ci-workflow-variant"
INSTALL = "COOPT_REQUIRE_FAST_PATH=1 pip install ./.coopt-src\ncoopt doctor --only coopt-cc\n"


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.name=coopt tests", "-c", "user.email=tests@coopt.invalid", *args], cwd=cwd,
                   check=True, capture_output=True)


def _commit(tree: Path, tag: str = "") -> Path:
    _git("init", "-q", "-b", "main", ".", cwd=tree)
    _git("add", "-A", cwd=tree)
    _git("commit", "-q", "-m", "state under test", cwd=tree)
    if tag:
        _git("tag", tag, cwd=tree)
    return tree


@pytest.fixture
def app_repo(tmp_path: Path) -> Path:
    d = tmp_path / "app-repo"
    d.mkdir()
    for name, text in (("app.c", APP), ("work.c", WORK), ("Makefile", MAKEFILE), ("coopt.toml", CONFIG),
                       ("input.txt", "30000000\n")):
        (d / name).write_text(text)
    return _commit(d)


# --- coopt's repository and the packages pip may read -----------------------------------------------------------


def _pinned() -> tuple[str, str]:
    """The COOPT_REPOSITORY and COOPT_REF that all three workflows name."""
    found = {(load_yaml(p)["env"]["COOPT_REPOSITORY"], load_yaml(p)["env"]["COOPT_REF"]) for p in WORKFLOWS.values()}
    assert len(found) == 1, found
    return found.pop()


@pytest.fixture(scope="session")
def coopt_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """coopt's repository as a team has it: this working tree's tracked files, committed, with the pinned tag."""
    tree = tmp_path_factory.mktemp("coopt-repo")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        src, dst = ROOT / name, tree / name
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst, follow_symlinks=False)
    return _commit(tree, tag=_pinned()[1])


def _requirements() -> list[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return sorted([*data["build-system"]["requires"], *data["project"]["dependencies"]])


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """Wheels of coopt's build requirements and dependencies (not of coopt), fetched once with pip's own
    configuration; the emulated runner's pip reads only this directory."""
    reqs = _requirements()
    tag = hashlib.sha256(json.dumps([reqs, sys.version_info[:2], sysconfig.get_platform()]).encode()).hexdigest()
    base = Path(os.environ.get("COOPT_TEST_WHEELS") or os.path.expanduser("~/.cache/coopt-tests/wheels"))
    d = base / tag[:16]
    base.mkdir(parents=True, exist_ok=True)
    with FileLock(str(d) + ".lock"):
        if not (d / ".complete").exists():
            shutil.rmtree(d, ignore_errors=True)
            proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "-w", str(d), *reqs],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                if os.environ.get("CI"):
                    raise AssertionError("cannot fetch coopt's dependencies:\n%s" % proc.stderr)
                pytest.skip("cannot fetch coopt's dependencies from the package registry: %s"
                            % proc.stderr.strip()[-300:])
            (d / ".complete").write_text("")
    return d


@pytest.fixture(scope="session")
def dependencies(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """coopt's dependencies installed once (`pip install --target`) from the wheelhouse, for setup-python's Python
    to start with: each job's `pip install` then builds and installs coopt itself (its build requirements still
    come from the wheelhouse) instead of unpacking the same wheels in every job."""
    d = tmp_path_factory.mktemp("dependencies")
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheelhouse),
                    "--target", str(d), *deps], check=True, capture_output=True)
    return d


@pytest.fixture
def runner(tmp_path: Path, app_repo: Path, coopt_repo: Path, wheelhouse: Path) -> Iterator[Runner]:
    repository, _ = _pinned()
    r = Runner(tmp_path / "runner", {repository: coopt_repo, "your-org/app": app_repo},
               env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse), "PIP_NO_COMPILE": "1"})
    before = PARANOID.read_text() if PARANOID.exists() else None
    try:
        yield r
    finally:  # the workflows' `sysctl -w kernel.perf_event_paranoid=1` is for their runner, not this machine
        if before is not None and os.geteuid() == 0 and PARANOID.read_text() != before:
            PARANOID.write_text(before)


def _all_ok(results: list[JobResult]) -> None:
    for r in results:
        assert r.ok, "job %s %s failed:\n%s" % (r.job, r.matrix, r.log())


# --- the runner on synthetic workflows ---------------------------------------------------------------------------


def test_expressions_and_conditions_as_actions_reads_them() -> None:
    ctx: dict[str, Any] = {"github": {"workspace": "/w", "run_id": "7"}, "runner": {"os": "Linux"},
                           "steps": {"nightly": {"outputs": {"code": "3"}}}, "matrix": {"shard": 2}, "env": {}}
    assert substitute("${{ github.workspace }}/.c coopt-${{ runner.os }}-${{ github.run_id }}", ctx) == \
        "/w/.c coopt-Linux-7"
    assert substitute("--shard ${{ matrix.shard }}/3 ${{ secrets.NONE }}.", dict(ctx, secrets={})) == "--shard 2/3 ."
    save_if = load_yaml(NIGHTLY)["jobs"]["nightly"]["steps"]
    [save] = [s for s in save_if if s.get("uses", "").startswith("actions/cache/save")]
    saved = {code for code in ("0", "1", "2", "3", "4", "130")
             if condition(save["if"], dict(ctx, steps={"nightly": {"outputs": {"code": code}}}),
                          {"success": code in ("0", "4"), "failure": code not in ("0", "4")})}
    assert saved == {"0", "3", "4"}
    assert condition(None, ctx, {"success": False, "failure": True}) is False  # default: success()
    assert condition("steps.nightly.outputs.code == '3'", ctx, {"success": False, "failure": True}) is False
    assert condition("always() && steps.nightly.outputs.code == '3'", ctx, {"success": False, "failure": True})
    assert evaluate("contains(fromJSON('[\"a\", \"b\"]'), 'b') && !false", ctx) is True


def test_steps_run_in_order_with_outputs_env_and_a_failure_stops_the_job(tmp_path: Path) -> None:
    workflow = {"env": {"WHERE": "${{ github.workspace }}/x"}, "jobs": {"one": {"steps": [
        {"id": "a", "run": 'echo "v=$WHERE" >> "$GITHUB_OUTPUT"; echo "LATER=set" >> "$GITHUB_ENV"'},
        {"id": "b", "run": 'test "${{ steps.a.outputs.v }}" = "$GITHUB_WORKSPACE/x" && test "$LATER" = set'},
        {"id": "c", "run": "false\necho reached-$((1 + 1))"},
        {"id": "d", "run": "echo skipped"},
        {"id": "e", "if": "always()", "run": "echo ran after the failure"},
    ]}}}
    [job] = Runner(tmp_path / "r", {}).run(workflow)
    assert [s.outcome for s in job.steps] == ["success", "success", "failure", "skipped", "success"], job.log()
    assert "reached-2" not in job.step("c").output and not job.ok


@pytest.mark.parametrize("install, fails", [("pip install coopt-cc", True),
                                            pytest.param("pip install ./.coopt-src", False, marks=pytest.mark.slow)])
def test_a_recipe_that_installs_coopt_by_name_fails(runner: Runner, install: str, fails: bool,
                                                    request: pytest.FixtureRequest) -> None:
    """coopt is not published: the old recipe (`pip install coopt-cc`) fails here as on GitHub; the recipe that
    builds the checked-out coopt gets a working coopt-cc-fast."""
    if not fails:
        runner.preinstalled = request.getfixturevalue("dependencies")
    repository, ref = _pinned()
    workflow = {"jobs": {"build": {"steps": [
        {"uses": "actions/checkout@v4", "with": {"repository": repository, "ref": ref, "path": ".coopt-src"}},
        {"uses": "actions/setup-python@v5", "with": {"python-version": "3.11"}},
        {"id": "install", "run": install},
        {"id": "use", "run": "coopt-cc --coopt-version"},
    ]}}}
    [job] = runner.run(workflow)
    assert job.ok is not fails, job.log()
    assert job.step("install").outcome == ("failure" if fails else "success"), job.log()
    assert job.fast_path is not fails


def test_a_checkout_of_a_tag_the_repository_lacks_fails(runner: Runner) -> None:
    repository, _ = _pinned()
    workflow = {"jobs": {"j": {"steps": [
        {"uses": "actions/checkout@v4", "with": {"repository": repository, "ref": "v0.0.0-missing", "path": "c"}},
        {"uses": "actions/checkout@v4", "with": {"repository": "someone/else", "path": "d"}},
    ]}}}
    [job] = runner.run(workflow)
    assert [s.outcome for s in job.steps] == ["failure", "skipped"], job.log()


@pytest.mark.slow
def test_without_xxhash_the_install_fails_instead_of_leaving_coopt_slow(runner: Runner, dependencies: Path) -> None:
    """What a runner without libxxhash-dev gets (a compiler that cannot build coopt-cc-fast stands in for it): the
    workflows' install step fails with the reason; without COOPT_REQUIRE_FAST_PATH the same install succeeds with
    no fast path, the silent 9 ms per compile the workflows must not ship."""
    install = INSTALL
    no_xxhash = runner.root / "cc-without-xxhash"
    no_xxhash.write_text("#!/bin/sh\necho 'fastcc.c:1:10: fatal error: xxhash.h: No such file or directory' >&2\n"
                         "exit 1\n")
    no_xxhash.chmod(0o755)
    runner.preinstalled = dependencies
    repository, ref = _pinned()
    for recipe, ok in ((install, False), (install.replace("COOPT_REQUIRE_FAST_PATH=1 ", ""), True)):
        workflow = {"env": {"CC": str(no_xxhash)}, "jobs": {"j": {"steps": [
            {"uses": "actions/checkout@v4", "with": {"repository": repository, "ref": ref, "path": ".coopt-src"}},
            {"uses": "actions/setup-python@v5", "with": {"python-version": "3.11"}},
            {"name": "Install coopt", "run": recipe},
        ]}}}
        [job] = runner.run(workflow)
        assert job.ok is ok and not job.fast_path, job.log()
        if not ok:
            assert "cannot build coopt-cc-fast (fastcc.c:1:10: fatal error: xxhash.h" in job.log()


# --- the recipes' shape ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(WORKFLOWS))
def test_every_job_builds_coopt_from_the_pinned_checkout_with_the_fast_path(name: str) -> None:
    data = load_yaml(WORKFLOWS[name])
    repository, ref = _pinned()
    assert re.fullmatch(r"v\d+\.\d+\.\d+", ref) and re.fullmatch(r"[\w.-]+/[\w.-]+", repository)
    for job, spec in data["jobs"].items():
        steps = spec["steps"]
        runs = "\n".join(s.get("run", "") for s in steps)
        assert "pip install coopt" not in runs, job
        [checkout] = [s for s in steps if s.get("with", {}).get("repository")]
        assert checkout["with"] == {"repository": "${{ env.COOPT_REPOSITORY }}", "ref": "${{ env.COOPT_REF }}",
                                    "path": ".coopt-src"}, job
        [install] = [i for i, s in enumerate(steps) if s.get("name") == "Install coopt"]
        assert steps[install]["run"] == INSTALL, job  # one recipe everywhere
        apt = [i for i, s in enumerate(steps) if "libxxhash-dev" in s.get("run", "")]
        python = [i for i, s in enumerate(steps) if s.get("uses", "").startswith("actions/setup-python")]
        assert apt and apt[0] < install and python and python[0] < install, job
        assert steps.index(checkout) < install, job


# --- the three workflows, run -----------------------------------------------------------------------------------


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
            if p.is_file()}


def _perf_permitted() -> None:
    """The workflows' sysctl (run with sudo) lets perf record; without root it is skipped and perf may refuse."""
    if os.geteuid() != 0 and PARANOID.exists() and int(PARANOID.read_text()) > 1:
        pytest.skip("not root: the workflows' sudo steps are skipped, and kernel.perf_event_paranoid=%s keeps perf "
                    "from recording" % PARANOID.read_text().strip())


def _doctor_says_fast_path_ok(output: str) -> bool:
    return any(re.match(r"ok\s+coopt-cc\s+coopt-cc-fast: ", ln) for ln in output.splitlines())


@pytest.mark.slow
def test_the_day_build_workflow_serves_the_nightly_variant_and_writes_nothing(
        runner: Runner, coopt: Coopt, app_repo: Path, dependencies: Path) -> None:
    require("clang", "make", "git")
    runner.preinstalled = dependencies
    data = load_yaml(DAY)
    # What last night's job saved: a cache holding a variant of work.c, built at the runner's workspace path.
    ws = runner.workspace
    ws.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "-q", str(app_repo), str(ws)], check=True)
    cache = ws / ".coopt-cache"
    coopt.env["COOPT_CACHE_DIR"] = str(cache)
    coopt.run(["make", "CC=coopt-cc"], cwd=ws)
    (ws / "variant.c").write_text(WORK + '__attribute__((used)) static const char m[] = "%s";\n' % MARKER)
    # An accepted verdict, as `coopt verify --json` records it: a day build serves nothing else.
    evidence = ws.parent / "evidence.json"
    evidence.write_text(json.dumps({
        "version": 2, "original": "work.c", "candidate": "variant.c", "functions": ["work"],
        "unsupported_functions": {}, "checks": [], "verdict": {"code": "accepted", "detail": "", "reason": None}}))
    coopt.coopt("cache", "put", "--artifact", str(ws / "variant.c"), "--for-object", "work.o", "--evidence",
                str(evidence), cwd=ws)
    runner.save_cache("coopt-Linux-900", cache)
    [(_, saved)] = runner.caches

    [job] = runner.run(data)
    _all_ok([job])
    assert job.fast_path and _doctor_says_fast_path_ok(job.step("Install coopt").output), job.log()
    [entry] = list((ws / ".coopt-cache" / "entries").rglob("object.o"))
    assert (ws / "work.o").read_bytes() == entry.read_bytes()  # served from the restored cache
    assert MARKER.encode() in (ws / "app").read_bytes()
    assert _snapshot(ws / ".coopt-cache") == _snapshot(saved)  # read-only: nothing written, not even statistics
    assert [k for k, _ in runner.caches] == ["coopt-Linux-900"]  # a day build never saves the cache
    assert entry.parent.name in job.step("variants").output


@pytest.mark.slow
def test_the_nightly_workflow_runs_coopt_nightly_and_saves_the_cache_and_the_report(runner: Runner,
                                                                                    dependencies: Path) -> None:
    require("clang", "make", "git", "perf")
    _perf_permitted()
    runner.preinstalled = dependencies
    [job] = runner.run(load_yaml(NIGHTLY))
    _all_ok([job])
    assert job.fast_path, job.log()
    assert _doctor_says_fast_path_ok(job.step("Check the machine and the configuration").output), job.log()
    nightly = job.step("nightly")
    assert nightly.outputs == {"code": "4"}, job.log()  # nothing cleared min_gain 50: a pass
    assert "::notice::coopt nightly: nothing improved tonight" in nightly.output
    [(key, saved)] = runner.caches
    assert key == "coopt-Linux-%d" % runner.run_id and (saved / "journal.jsonl").is_file()
    report = runner.artifacts["coopt-nightly"]
    assert (report / "report.md").is_file() and json.loads((report / "state.json").read_text())["exit_code"] == 4


@pytest.mark.slow
def test_the_sharded_workflow_optimizes_in_three_jobs_and_merges_one_report(runner: Runner,
                                                                            dependencies: Path) -> None:
    require("clang", "make", "git", "perf")
    _perf_permitted()
    runner.preinstalled = dependencies
    results = runner.run(load_yaml(SHARDED))
    _all_ok(results)
    assert [(r.job, r.matrix) for r in results] == [("profile", {}), *[("optimize", {"shard": k}) for k in (1, 2, 3)],
                                                    ("report", {})]
    assert all(r.fast_path for r in results), [(r.job, r.matrix, r.fast_path) for r in results]
    assert {"coopt-profiled", "coopt-report"} <= set(runner.artifacts)
    with tarfile.open(runner.artifacts["coopt-profiled"] / "coopt-profiled.tgz") as packed:
        names = packed.getnames()
    assert "./profile.json" in names and "./app" in names and not [n for n in names if ".coopt-src" in n]
    shards = sorted(n for n in runner.artifacts if n.startswith("coopt-shard-"))
    assert shards == ["coopt-shard-%d" % k for k in (1, 2, 3)]
    report = json.loads((runner.artifacts["coopt-report"] / "coopt-report.json").read_text())
    assert report["shards"]["count"] == 3 and report["shards"]["missing"] == []
    assert "Merged from 3 of 3 shard result(s)" in results[-1].summary
