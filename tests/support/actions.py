"""Run a GitHub Actions workflow's jobs on this machine, step by step, the way a runner would.

Every `run:` step runs for real, with bash as Actions starts it (`bash -e {0}`, or `bash --noprofile --norc -eo
pipefail {0}` for `shell: bash`), the workflow's, job's and step's env, the runner's variables (GITHUB_WORKSPACE,
GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH, GITHUB_STEP_SUMMARY, RUNNER_TEMP, ...) and `${{ }}` expressions substituted
first. Only the `uses:` steps are emulated, each by what it leaves on the machine:

- actions/checkout: a git clone of the named repository (the user's own when none is named) at `ref`, into `path`;
  the test says which local repository stands for which name, and a ref the repository lacks fails the step.
- actions/setup-python: a fresh virtual environment (with this interpreter's pip) first on PATH; with `preinstalled`,
  holding (hard links to) those packages from the start, as a runner image or a warm pip cache would, so that a
  `pip install` of coopt builds and installs coopt itself and finds its dependencies satisfied.
- actions/cache/restore and /save: a directory per key in a store kept by the Runner; restore takes the exact key,
  else the newest entry whose key starts with one of `restore-keys`; saving an existing key fails (entries are
  immutable).
- actions/upload-artifact and download-artifact: a directory per artifact name in a store kept by the Runner.

Any other action fails its step. Jobs run one at a time in `needs` order, each matrix entry as its own job, each on a
"fresh machine": the workspace, the runner's temp directory and the Python are removed before every job, at the
same paths (hosted runners share the workspace path, which the sharded workflow relies on). `sudo` is a shim that
runs the command as root; when this process is not root, the steps that use sudo are skipped and say so.
"""

from __future__ import annotations

import fnmatch
import glob
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STEP_TIMEOUT_S = 1200
SUDO_SHIM = """#!/bin/sh
# sudo on the emulated runner: this test runs as root, so run the command (options before it are dropped).
while [ $# -gt 0 ]; do case "$1" in -*) shift ;; *) break ;; esac; done
exec "$@"
"""


class ExpressionError(Exception):
    pass


class StepError(Exception):
    """An emulated action cannot do what its inputs ask."""


# --- expressions ------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>&&|\|\||==|!=|<=|>=|[!<>(),])
                         |(?P<name>[A-Za-z_][\w.\-*]*))""", re.X)
_FUNCTIONS = {"always", "success", "failure", "cancelled", "contains", "fromjson", "tojson", "startswith",
              "endswith", "format", "join", "hashfiles"}
_STATUS = ("always(", "success(", "failure(", "cancelled(")


class _Ctx:
    """Dotted lookups into the contexts; a missing value is '' (Actions' null prints as the empty string)."""

    def __init__(self, contexts: dict[str, Any]):
        self.contexts = contexts

    def get(self, dotted: str) -> Any:
        parts = dotted.split(".")
        value: Any = self.contexts
        for p in parts:
            if isinstance(value, dict):
                lowered = {str(k).lower(): v for k, v in value.items()}
                value = lowered.get(p.lower())
            else:
                return ""
            if value is None:
                return ""
        return value


def evaluate(expr: str, contexts: dict[str, Any], status: dict[str, bool] | None = None) -> Any:
    """Evaluate an Actions expression (without the `${{ }}`), translated token by token into Python."""
    status = status or {"success": True, "failure": False}
    ctx = _Ctx(contexts)
    out: list[str] = []
    pos = 0
    text = expr.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ExpressionError("cannot read %r at %r" % (expr, text[pos:]))
        pos = m.end()
        if m.group("str") is not None:
            out.append(repr(m.group("str")[1:-1].replace("''", "'")))
        elif m.group("num") is not None:
            out.append(m.group("num"))
        elif m.group("op") is not None:
            out.append({"&&": " and ", "||": " or ", "!": " not "}.get(m.group("op"), m.group("op")))
        else:
            name = m.group("name")
            rest = text[pos:].lstrip()
            if rest.startswith("(") and name.lower() in _FUNCTIONS:
                out.append("_f_%s" % name.lower())
            elif name in ("true", "false", "null"):
                out.append({"true": "True", "false": "False", "null": "''"}[name])
            else:
                out.append("_get(%r)" % name)

    def contains(haystack: Any, needle: Any) -> bool:
        if isinstance(haystack, list):
            return any(str(x) == str(needle) for x in haystack)
        return str(needle).lower() in str(haystack).lower()

    names = {
        "_get": ctx.get,
        "_f_always": lambda: True,
        "_f_success": lambda: status["success"],
        "_f_failure": lambda: status["failure"],
        "_f_cancelled": lambda: False,
        "_f_contains": contains,
        "_f_fromjson": json.loads,
        "_f_tojson": lambda v: json.dumps(v, indent=2),
        "_f_startswith": lambda a, b: str(a).lower().startswith(str(b).lower()),
        "_f_endswith": lambda a, b: str(a).lower().endswith(str(b).lower()),
        "_f_format": lambda f, *a: re.sub(r"\{(\d+)\}", lambda g: str(a[int(g.group(1))]), f),
        "_f_join": lambda a, sep=",": sep.join(map(str, a)) if isinstance(a, list) else str(a),
    }
    try:
        return eval("".join(out), {"__builtins__": {}}, names)  # noqa: S307 - our own translation, no builtins
    except Exception as exc:
        raise ExpressionError("cannot evaluate %r: %s" % (expr, exc)) from None


def _text(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return "" if value is None else str(value)


def substitute(text: str, contexts: dict[str, Any]) -> str:
    """Replace each `${{ expr }}` in a string, as Actions does before a step runs."""
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: _text(evaluate(m.group(1), contexts)), text, flags=re.S)


def condition(text: Any, contexts: dict[str, Any], status: dict[str, bool]) -> bool:
    """An `if:`: without a status function it means `success() && (...)`."""
    if text is None or text == "":
        return status["success"]
    if isinstance(text, bool):
        return status["success"] and text
    expr = str(text).strip()
    if expr.startswith("${{") and expr.endswith("}}"):
        expr = expr[3:-2]
    value = evaluate(expr, contexts, status)
    if not any(s in expr.replace(" ", "") for s in _STATUS):
        return status["success"] and bool(value)
    return bool(value)


# --- results ----------------------------------------------------------------------------------------------------


@dataclass
class StepResult:
    name: str
    outcome: str  # success, failure, skipped
    output: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    id: str = ""
    seconds: float = 0.0


@dataclass
class JobResult:
    job: str
    matrix: dict[str, Any]
    steps: list[StepResult] = field(default_factory=list)
    python: Path | None = None  # the environment setup-python made
    fast_path: bool = False  # coopt-cc-fast installed in that environment at the end of the job
    skipped: bool = False
    summary: str = ""  # what the steps wrote to GITHUB_STEP_SUMMARY

    @property
    def ok(self) -> bool:
        return not self.skipped and all(s.outcome != "failure" for s in self.steps)

    def step(self, key: str) -> StepResult:
        found = [s for s in self.steps if key in (s.id, s.name)]
        assert len(found) == 1, (key, [s.name for s in self.steps])
        return found[0]

    def log(self) -> str:
        return "\n".join("--- %s: %s (%.1f s)\n%s" % (s.name, s.outcome, s.seconds, s.output[-6000:])
                         for s in self.steps)


# --- the runner -------------------------------------------------------------------------------------------------


@dataclass
class Runner:
    root: Path  # everything of the emulated runner lives here
    repositories: dict[str, Path]  # repository name (owner/name) -> a local git repository standing for it
    repository: str = "your-org/app"  # the workflow's own repository (github.repository)
    env: dict[str, str] = field(default_factory=dict)  # the machine's extra environment (pip's index, ...)
    secrets: dict[str, str] = field(default_factory=dict)
    vars: dict[str, str] = field(default_factory=dict)
    run_id: int = 1000
    preinstalled: Path | None = None  # a `pip install --target` directory that setup-python's Python starts with
    caches: list[tuple[str, Path]] = field(default_factory=list)  # (key, saved directory), oldest first
    artifacts: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.workspace = self.root / "work" / "app" / "app"
        self.temp = self.root / "temp"
        self.toolcache = self.root / "toolcache"
        self.shims = self.root / "shims"
        self.shims.mkdir(exist_ok=True)
        self.is_root = os.geteuid() == 0
        if self.is_root:
            (self.shims / "sudo").write_text(SUDO_SHIM)
            (self.shims / "sudo").chmod(0o755)
        # One runner, one user: wait for apt's lock rather than fail while another apt-get on the machine holds it.
        (self.root / "apt.conf").write_text('DPkg::Lock::Timeout "300";\n')
        self._store = self.root / "store"

    # The cache store, shared between runs of this Runner (one repository's Actions cache).

    def save_cache(self, key: str, source: Path) -> None:
        if any(k == key for k, _ in self.caches):
            raise FileExistsError("cache entry %s exists (entries are immutable)" % key)
        dest = self._store / "caches" / str(len(self.caches))
        shutil.copytree(source, dest, symlinks=True)
        self.caches.append((key, dest))

    def find_cache(self, key: str, restore_keys: list[str]) -> tuple[str, Path] | None:
        for k, d in self.caches:
            if k == key:
                return k, d
        for prefix in restore_keys:
            for k, d in reversed(self.caches):
                if k.startswith(prefix):
                    return k, d
        return None

    # Running.

    def run(self, workflow: dict[str, Any], jobs: list[str] | None = None) -> list[JobResult]:
        """Run the workflow's jobs (or those named) in `needs` order; a job whose needs failed runs only when its
        `if:` says so (always())."""
        self.run_id += 1
        order = _job_order(workflow["jobs"])
        results: list[JobResult] = []
        by_job: dict[str, list[JobResult]] = {}
        for name in order:
            if jobs is not None and name not in jobs:
                continue
            spec = workflow["jobs"][name]
            needs = spec.get("needs", [])
            needs = [needs] if isinstance(needs, str) else list(needs)
            needed = [r for n in needs for r in by_job.get(n, [])]
            status = {"success": all(r.ok for r in needed), "failure": any(not r.ok for r in needed)}
            needs_ctx = {n: {"result": "success" if all(r.ok for r in by_job.get(n, [])) else "failure"}
                         for n in needs}
            contexts = self._contexts(workflow, {}, {"needs": needs_ctx})
            for matrix in _matrix_entries(spec):
                if not condition(spec.get("if"), dict(contexts, matrix=matrix), status):
                    r = JobResult(name, matrix, skipped=True)
                else:
                    r = self._run_job(workflow, name, spec, matrix, needs_ctx)
                results.append(r)
                by_job.setdefault(name, []).append(r)
        return results

    def _contexts(self, workflow: dict[str, Any], env: dict[str, str], extra: dict[str, Any]) -> dict[str, Any]:
        return dict({
            "github": {"workspace": str(self.workspace), "run_id": str(self.run_id), "run_attempt": "1",
                       "repository": self.repository, "event_name": "workflow_dispatch", "ref": "refs/heads/main",
                       "ref_name": "main"},
            "runner": {"os": "Linux", "arch": "X64", "temp": str(self.temp), "tool_cache": str(self.toolcache)},
            "env": env, "secrets": self.secrets, "vars": self.vars, "matrix": {}, "steps": {}, "needs": {},
        }, **extra)

    def _fresh_machine(self) -> None:
        for d in (self.workspace, self.temp, self.toolcache):
            if d.exists():
                shutil.rmtree(d)
            d.mkdir(parents=True)

    def _run_job(self, workflow: dict[str, Any], name: str, spec: dict[str, Any], matrix: dict[str, Any],
                 needs_ctx: dict[str, Any]) -> JobResult:
        self._fresh_machine()
        result = JobResult(name, matrix)
        files = {k: self.temp / ("_%s" % k) for k in ("output", "env", "path", "summary")}
        for f in files.values():
            f.write_text("")
        machine = {
            "PATH": "%s:%s" % (self.shims, SYSTEM_PATH), "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8", "CI": "true", "GITHUB_ACTIONS": "true", "RUNNER_OS": "Linux",
            "RUNNER_TEMP": str(self.temp), "RUNNER_TOOL_CACHE": str(self.toolcache),
            "GITHUB_WORKSPACE": str(self.workspace), "GITHUB_RUN_ID": str(self.run_id),
            "GITHUB_REPOSITORY": self.repository, "GITHUB_OUTPUT": str(files["output"]),
            "GITHUB_ENV": str(files["env"]), "GITHUB_PATH": str(files["path"]),
            "GITHUB_STEP_SUMMARY": str(files["summary"]), "APT_CONFIG": str(self.root / "apt.conf"),
            "DEBIAN_FRONTEND": "noninteractive",
        }
        machine.update(self.env)
        steps_ctx: dict[str, Any] = {}
        extra = {"matrix": matrix, "needs": needs_ctx, "steps": steps_ctx}
        env: dict[str, str] = {}
        for level in (workflow.get("env") or {}, spec.get("env") or {}):
            for k, v in level.items():
                env[k] = substitute(_text(v), self._contexts(workflow, env, extra))
        path_extra: list[str] = []
        failed = False
        for step in spec["steps"]:
            step_env = dict(env)
            for k, v in (step.get("env") or {}).items():
                step_env[k] = substitute(_text(v), self._contexts(workflow, step_env, extra))
            contexts = self._contexts(workflow, step_env, extra)
            label = step.get("name") or step.get("uses") or step.get("run", "").splitlines()[0]
            sr = StepResult(str(label), "skipped", id=str(step.get("id", "")))
            result.steps.append(sr)
            if not condition(step.get("if"), contexts, {"success": not failed, "failure": failed}):
                sr.output = "skipped by if: %s" % step.get("if")
                continue
            full_env = dict(machine, **step_env)
            full_env["PATH"] = ":".join([*reversed(path_extra), full_env["PATH"]])
            files["output"].write_text("")
            started = time.monotonic()
            try:
                if "run" in step:
                    ok, sr.output = self._run_script(step, contexts, full_env)
                else:
                    ok, sr.output = self._use(step, contexts, result)
                    if ok and result.python is not None and str(result.python / "bin") not in path_extra:
                        path_extra.append(str(result.python / "bin"))
            except (ExpressionError, StepError) as exc:
                ok, sr.output = False, str(exc)
            sr.seconds = time.monotonic() - started
            sr.outputs = _read_outputs(files["output"])
            sr.outcome = "success" if ok else "failure"
            if sr.output.startswith("skipped:"):
                sr.outcome = "skipped"
            if not ok and not step.get("continue-on-error"):
                failed = True
            if sr.id:
                steps_ctx[sr.id] = {"outputs": sr.outputs, "outcome": sr.outcome, "conclusion": sr.outcome}
            env.update(_read_outputs(files["env"]))
            files["env"].write_text("")
            path_extra += [p for p in files["path"].read_text().splitlines() if p.strip()]
            files["path"].write_text("")
        result.fast_path = self._fast_path_installed(result.python)
        result.summary = files["summary"].read_text()
        return result

    def _run_script(self, step: dict[str, Any], contexts: dict[str, Any], env: dict[str, str]) -> tuple[bool, str]:
        script = substitute(step["run"], contexts)
        if not self.is_root and re.search(r"(^|[\s;&|(])sudo\s", script):
            return True, "skipped: this test is not root, and the step runs sudo"
        shell = step.get("shell")
        path = self.temp / "_step.sh"
        path.write_text(script)
        if shell in (None, ""):
            argv = ["bash", "-e", str(path)]
        elif shell == "bash":
            argv = ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(path)]
        elif shell == "sh":
            argv = ["sh", "-e", str(path)]
        else:
            return False, "no emulation for shell %r" % shell
        cwd = self.workspace / substitute(step.get("working-directory", "."), contexts)
        # Its own session, so that a step that hangs is stopped with everything it started.
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=STEP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            return False, "$ %s\n%s[timed out after %d s]" % (script.strip(), out, STEP_TIMEOUT_S)
        return proc.returncode == 0, "$ %s\n%s[exit %d]" % (script.strip(), out, proc.returncode)

    def _use(self, step: dict[str, Any], contexts: dict[str, Any], job: JobResult) -> tuple[bool, str]:
        action, _, version = step["uses"].partition("@")
        w = {k: substitute(_text(v), contexts) for k, v in (step.get("with") or {}).items()}
        handler = {
            "actions/checkout": self._checkout,
            "actions/setup-python": self._setup_python,
            "actions/cache/restore": self._cache_restore,
            "actions/cache/save": self._cache_save,
            "actions/upload-artifact": self._upload,
            "actions/download-artifact": self._download,
        }.get(action)
        if handler is None or not version:
            return False, "no emulation for %s" % step["uses"]
        return handler(w, job)

    def _inside(self, rel: str) -> Path:
        """A path of the workspace (checkout and the caches take only those)."""
        p = (self.workspace / rel).resolve()
        if p != self.workspace.resolve() and self.workspace.resolve() not in p.parents:
            raise StepError("path %s is outside the workspace" % rel)
        return p

    def _path(self, text: str) -> Path:
        """A path as the artifact actions take it: absolute, or relative to the workspace."""
        return Path(text) if os.path.isabs(text) else self.workspace / text

    def _checkout(self, w: dict[str, str], job: JobResult) -> tuple[bool, str]:
        repo = w.get("repository") or self.repository
        source = self.repositories.get(repo)
        if source is None:
            return False, "repository %r not found" % repo
        dest = self._inside(w.get("path") or ".")
        if dest.exists() and any(dest.iterdir()):
            if dest == self.workspace.resolve():
                for child in dest.iterdir():  # checkout cleans the directory it checks out into
                    shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
            else:
                shutil.rmtree(dest)
        argv = ["git", "clone", "-q", "--depth", "1"]
        if w.get("ref"):
            argv += ["--branch", w["ref"]]
        proc = subprocess.run([*argv, "file://%s" % source, str(dest)], capture_output=True, text=True)
        return proc.returncode == 0, "checkout %s@%s into %s\n%s" % (repo, w.get("ref") or "default", dest,
                                                                     proc.stderr)

    def _setup_python(self, w: dict[str, str], job: JobResult) -> tuple[bool, str]:
        want = w.get("python-version", "")
        have = "%d.%d" % sys.version_info[:2]
        base = getattr(sys, "_base_executable", sys.executable)
        venv = self.toolcache / "Python" / (want or have)
        subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
        # pip as setup-python provides it: this interpreter's own copy, much faster than ensurepip.
        site = venv / "lib" / ("python%s" % have) / "site-packages"
        dist = metadata.distribution("pip")
        info = next(f.parts[0] for f in dist.files or [] if f.parts[0].endswith(".dist-info"))
        for top in ("pip", info):
            shutil.copytree(Path(str(dist.locate_file(top))), site / top, symlinks=True)
        if self.preinstalled is not None:
            for entry in self.preinstalled.iterdir():
                if entry.name != "bin" and not (site / entry.name).exists():
                    if entry.is_dir():
                        shutil.copytree(entry, site / entry.name, symlinks=True, copy_function=_link_or_copy)
                    else:
                        _link_or_copy(str(entry), str(site / entry.name))
        for name in ("pip", "pip3", "pip%s" % have):
            p = venv / "bin" / name
            p.write_text('#!/bin/sh\nexec "%s" -m pip "$@"\n' % (venv / "bin" / "python"))
            p.chmod(0o755)
        job.python = venv
        note = "" if want in ("", have) else " (asked for %s; this machine has %s)" % (want, have)
        return True, "python %s at %s%s" % (have, venv, note)

    def _cache_restore(self, w: dict[str, str], job: JobResult) -> tuple[bool, str]:
        found = self.find_cache(w["key"], [k.strip() for k in w.get("restore-keys", "").splitlines() if k.strip()])
        if found is None:
            return True, "cache not found for %s" % w["key"]
        dest = self._inside(w["path"])
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(found[1], dest, symlinks=True)
        return True, "restored %s into %s" % (found[0], dest)

    def _cache_save(self, w: dict[str, str], job: JobResult) -> tuple[bool, str]:
        source = self._inside(w["path"])
        if not source.is_dir():
            return False, "nothing to save at %s" % source
        try:
            self.save_cache(w["key"], source)
        except FileExistsError as exc:
            return False, str(exc)
        return True, "saved %s as %s" % (source, w["key"])

    def _upload(self, w: dict[str, str], job: JobResult) -> tuple[bool, str]:
        name = w.get("name") or "artifact"
        if name in self.artifacts:
            return False, "an artifact named %s exists" % name
        specs = [s.strip() for s in w["path"].splitlines() if s.strip()]
        files: list[tuple[Path, Path]] = []
        roots = []
        for spec in specs:
            pattern = str(self._path(spec.rstrip("/")))
            static = Path(re.split(r"[*?\[]", pattern)[0])
            roots.append(static if spec.endswith("/") or Path(pattern).is_dir() else static.parent)
            for hit in sorted(glob.glob(pattern)):
                p = Path(hit)
                files += [(f, f) for f in sorted(p.rglob("*")) if f.is_file()] if p.is_dir() else [(p, p)]
        if not files:
            how = w.get("if-no-files-found", "warn")
            return how != "error", "no files found for %s (if-no-files-found: %s)" % (specs, how)
        root = Path(os.path.commonpath([str(r) for r in roots]))
        dest = self._store / "artifacts" / name
        for f, _ in files:
            target = dest / f.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
        self.artifacts[name] = dest
        return True, "uploaded %d file(s) as %s" % (len(files), name)

    def _download(self, w: dict[str, str], job: JobResult) -> tuple[bool, str]:
        dest = self._path(w.get("path") or ".")
        if w.get("name"):
            if w["name"] not in self.artifacts:
                return False, "artifact %s not found" % w["name"]
            shutil.copytree(self.artifacts[w["name"]], dest, dirs_exist_ok=True)
            return True, "downloaded %s into %s" % (w["name"], dest)
        names = [n for n in self.artifacts if fnmatch.fnmatch(n, w.get("pattern") or "*")]
        for n in names:
            into = dest if w.get("merge-multiple") in ("true", True) else dest / n
            shutil.copytree(self.artifacts[n], into, dirs_exist_ok=True)
        return True, "downloaded %s into %s" % (", ".join(names) or "nothing", dest)

    @staticmethod
    def _fast_path_installed(venv: Path | None) -> bool:
        if venv is None:
            return False
        return any(os.access(p, os.X_OK) for p in venv.glob("lib/python3*/site-packages/coopt/data/coopt-cc-fast"))


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _job_order(jobs: dict[str, Any]) -> list[str]:
    done: list[str] = []
    pending = list(jobs)
    while pending:
        for name in pending:
            needs = jobs[name].get("needs", [])
            needs = [needs] if isinstance(needs, str) else needs
            if all(n in done for n in needs):
                done.append(name)
                pending.remove(name)
                break
        else:
            raise ValueError("jobs need each other in a cycle: %s" % pending)
    return done


def _matrix_entries(spec: dict[str, Any]) -> list[dict[str, Any]]:
    matrix = (spec.get("strategy") or {}).get("matrix") or {}
    axes = {k: v for k, v in matrix.items() if isinstance(v, list)}
    if not axes:
        return [{}]
    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]


def _read_outputs(path: Path) -> dict[str, str]:
    """name=value lines and name<<DELIMITER blocks, as Actions reads GITHUB_OUTPUT and GITHUB_ENV."""
    out: dict[str, str] = {}
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delim = line.split("<<", 1)
            body = []
            while i < len(lines) and lines[i] != delim:
                body.append(lines[i])
                i += 1
            i += 1
            out[key] = "\n".join(body)
        elif "=" in line:
            key, value = line.split("=", 1)
            out[key] = value
    return out
