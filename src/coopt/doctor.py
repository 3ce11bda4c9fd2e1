"""`coopt doctor`'s checks: is this machine and configuration able to build, profile and optimize?

One function per area, in the order a user needs them; each returns findings with a level and, when something is
wrong, the fix. `error` means a required part is missing or broken (doctor exits non-zero), `warn` that something
works less well than it could, `ok` and `info` report what is there. Checks use the real tools (perf records a
tiny workload, the LLM endpoint is asked for its models) rather than guessing from file names.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from coopt.config import Config, ConfigError, load, schema

LEVELS = ("ok", "info", "warn", "error")
MIN_FREE_BYTES = 1 << 30
PERF_TIMEOUT_S = 60.0
HTTP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Finding:
    area: str
    level: str  # ok, info, warn, error
    message: str
    fix: str = ""


@dataclass
class Checked:
    """The configuration the checks run against, and whether it could be read."""

    config: Config
    config_error: str = ""


def read_config() -> Checked:
    """The effective configuration; when it is broken, the defaults plus the environment (or the bare defaults)
    so the other checks still run."""
    try:
        return Checked(load())
    except ConfigError as exc:
        error = str(exc)
    for env in (dict(os.environ, COOPT_CONFIG=""), {"COOPT_CONFIG": ""}):
        try:
            return Checked(load(environ=env), error)
        except ConfigError:
            continue
    raise AssertionError("the built-in defaults do not load")  # a bug in schema.py, caught by the tests


def check_config(c: Checked) -> list[Finding]:
    if c.config_error:
        return [Finding("config", "error", c.config_error, "correct the value named above (docs/config.md lists "
                        "every key); `coopt config show` prints what is in effect")]
    cfg = c.config
    set_keys = [s for s in cfg.settings if s.origin.kind != "default"]
    where = cfg.file or "no config file (defaults and COOPT_* variables)"
    out = [Finding("config", "ok", "%s: %d key(s) set" % (where, len(set_keys)))]
    missing = [h for h in ("build", "profile") if getattr(cfg.hooks, h) is None]
    if missing:
        out.append(Finding("config", "warn", "no %s hook: `coopt nightly` cannot run" % " or ".join(missing),
                           "set [hooks] %s in coopt.toml (docs/nightly.md)" % " and ".join(missing)))
    elif cfg.hooks.test is None:
        out.append(Finding("config", "warn", "no test hook: nightly variants are judged by the bench output alone",
                           "set [hooks] test to the project's test command"))
    return out


def check_compiler(c: Checked) -> list[Finding]:
    from coopt.toolchain import TOOLS, ToolchainError, find_toolchain

    cfg = c.config
    name = cfg.compiler.path
    origin = cfg.setting("compiler.path").origin
    path = shutil.which(name)
    if not path:
        return [Finding("compiler", "error", "the real compiler %r (%s) is not found on PATH" % (name, origin),
                        "install clang (apt-get install clang) or set [compiler] path / COOPT_COMPILER")]
    try:
        tc = find_toolchain(path)
    except ToolchainError as exc:
        return [Finding("compiler", "error", str(exc), "point [compiler] path / COOPT_COMPILER at a clang")]
    out = [Finding("compiler", "ok", "%s (clang %s)" % (path, tc.version))]
    levels = set(cfg.optimize.levels)
    required = {"llvm-profdata"} if "pgo" in levels else set()
    if "ir" in levels:
        required |= {"llvm-as", "llvm-extract"}
    missing = [t for t in TOOLS if t not in tc.tools]
    for tool in missing:
        level = "error" if tool in required else "warn"
        why = "needed by level %s" % ",".join(sorted(lv for lv in levels if lv in ("pgo", "ir", "asm"))) \
            if tool in required else "used by some optimizer tools"
        out.append(Finding("llvm", level, "%s matching clang %s not found (%s)" % (tool, tc.version, why),
                           "apt-get install llvm-%d" % tc.major))
    if not missing:
        out.append(Finding("llvm", "ok", "%s, all version %d" % (", ".join(sorted(tc.tools)), tc.major)))
    if "pgo" in levels:
        from coopt.agents.compiler.tools import profile_runtime_missing

        why = profile_runtime_missing(path)
        out.append(Finding("pgo", "error", why, "apt-get install libclang-rt-%d-dev" % tc.major) if why
                   else Finding("pgo", "ok", "clang links instrumented programs (profile runtime present)"))
    return out


def check_wrapper(c: Checked) -> list[Finding]:
    candidates = [os.path.join(os.path.dirname(os.path.abspath(sys.argv[0] or ".")), "coopt-cc"),
                  os.path.join(os.path.dirname(sys.executable), "coopt-cc")]
    here = next((p for p in candidates if os.path.isfile(p) and os.access(p, os.X_OK)), "")
    on_path = shutil.which("coopt-cc") or ""
    if not on_path:
        fix = "add %s to PATH" % os.path.dirname(here) if here else "install coopt (pip install coopt-cc)"
        return [Finding("coopt-cc", "error", "coopt-cc is not on PATH: CC=coopt-cc builds cannot find it", fix)]
    return [Finding("coopt-cc", "ok", on_path), check_fast_path()]


def check_fast_path() -> Finding:
    """Whether the installed package has coopt-cc-fast, built for this version: without it every compiler call
    goes through Python (~9 ms) instead of ~1 ms for the calls it can decide."""
    import coopt
    from coopt.wrapper.fastpath import memo_dir_name

    package = os.path.dirname(os.path.abspath(coopt.__file__))
    binary = os.path.join(package, "data", "coopt-cc-fast")
    if not os.access(binary, os.X_OK):
        if not {"site-packages", "dist-packages"} & set(package.split(os.sep)):
            return Finding("coopt-cc", "info", "coopt runs from a source tree (%s): no coopt-cc-fast, every compiler "
                           "call goes through Python (~9 ms); an installed coopt has it" % package)
        return Finding("coopt-cc", "warn", "coopt-cc-fast, the C miss path, is not installed: every compiler call "
                       "costs ~9 ms of Python instead of ~1 ms",
                       "install a C compiler and libxxhash-dev (xxhash.h), then reinstall coopt")
    try:
        with open(binary, "rb") as f:
            built_for_this = memo_dir_name().encode() in f.read()
    except OSError as exc:
        return Finding("coopt-cc", "warn", "cannot read %s: %s" % (binary, exc.strerror), "reinstall coopt")
    if not built_for_this:
        return Finding("coopt-cc", "warn", "%s was built for another coopt version: it finds none of this version's "
                       "memos and hands every call to Python" % binary, "reinstall coopt")
    return Finding("coopt-cc", "ok", "coopt-cc-fast: calls decided before, and compiles with the flags of one decided "
                   "before, cost ~1 ms (%s)" % binary)


def check_launcher(c: Checked) -> list[Finding]:
    """The launcher coopt-cc runs real compiles through (ccache, sccache: docs/ccache.md): the configured one, or
    a launcher's symlink posing as the compiler on PATH; that it exists and answers --version."""
    from coopt.wrapper import launcher as launchmod
    from coopt.wrapper.compiler import find_compiler, is_coopt_launcher, which

    cfg = c.config.compiler
    fix_compiler = "set [compiler] launcher / COOPT_LAUNCHER to it and [compiler] path / COOPT_COMPILER to clang"
    if launchmod.is_launcher_name(cfg.path):
        return [Finding("launcher", "error", "the compiler %r (%s) is a launcher, not a compiler" % (
            cfg.path, c.config.setting("compiler.path").origin), fix_compiler)]
    real, _, posing = find_compiler(cfg.path)
    name = cfg.launcher
    if not name:
        if posing:
            return [Finding("launcher", "ok", "%s on PATH is a launcher's symlink to %s: coopt-cc runs compiles "
                            "through %s and keys them on %s" % (cfg.path, posing, posing, real or "?"))]
        have = [row.name for row in launchmod.LAUNCHERS if shutil.which(row.name)]
        extra = " (%s installed: COOPT_LAUNCHER=%s keeps its cache behind coopt-cc, docs/ccache.md)" % (
            have[0], have[0]) if have else ""
        return [Finding("launcher", "info", "none: coopt-cc runs the compiler directly%s" % extra)]
    origin = c.config.setting("compiler.launcher").origin
    path = which(name, "")
    if not path:
        return [Finding("launcher", "error", "the launcher %r (%s) is not found on PATH" % (name, origin),
                        "install it (apt-get install %s) or unset [compiler] launcher / COOPT_LAUNCHER"
                        % os.path.basename(name))]
    if is_coopt_launcher(path):
        return [Finding("launcher", "error", "the launcher %r (%s) is coopt-cc itself" % (name, origin),
                        "name ccache or sccache, or unset [compiler] launcher / COOPT_LAUNCHER")]
    row = launchmod.BY_NAME.get(os.path.basename(os.path.realpath(path)))
    version = ""
    try:
        proc = subprocess.run([path, *(row.version_args if row else ("--version",))], capture_output=True,
                              text=True, timeout=30)
        version = (proc.stdout or proc.stderr).strip().splitlines()[0] if proc.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired, IndexError):
        version = ""
    level = "ok" if version else "warn"
    what = version or "does not answer --version"
    known = "" if row else "; not a launcher coopt knows (%s): it must run `LAUNCHER COMPILER ARGS...`" % ", ".join(
        launchmod.BY_NAME)
    return [Finding("launcher", level, "%s (%s, %s): misses and pass-throughs run through it, variants are served "
                    "by coopt-cc%s" % (path, what, origin, known))]


def _perf_fix(text: str) -> str:
    low = text.lower()
    if "not found for kernel" in low:
        return "install perf for this kernel: apt-get install linux-perf (Ubuntu: linux-tools-$(uname -r))"
    if "paranoid" in low or "permission" in low or "not permitted" in low:
        return "run as root, or allow it: sysctl -w kernel.perf_event_paranoid=1"
    return "run `perf record -e cpu-clock -- true` to see perf's own message"


def check_perf(c: Checked) -> list[Finding]:
    from coopt.profile.errors import ProfileError
    from coopt.profile.perf import DEFAULT_EVENT, INSTALL_HINT, find_perf, paranoid_level

    try:
        perf = find_perf()
    except ProfileError:
        return [Finding("perf", "error", "perf is not installed: `coopt profile` and `coopt nightly` need it",
                        INSTALL_HINT)]
    paranoid = paranoid_level()
    who = "root" if os.geteuid() == 0 else "uid %d" % os.geteuid()
    with tempfile.TemporaryDirectory(prefix="coopt-doctor-") as tmp:
        try:
            proc = subprocess.run([perf, "record", "-q", "-e", DEFAULT_EVENT, "-o", os.path.join(tmp, "perf.data"),
                                   "--", "true"], capture_output=True, text=True, timeout=PERF_TIMEOUT_S)
            text, code = (proc.stderr + proc.stdout).strip(), proc.returncode
        except (OSError, subprocess.TimeoutExpired) as exc:
            text, code = str(exc), -1
    if code != 0:
        last = text.splitlines()[-1] if text else "exit %d" % code
        return [Finding("perf", "error", "%s cannot record %s (kernel.perf_event_paranoid=%s, %s): %s"
                        % (perf, DEFAULT_EVENT, paranoid, who, last[:200]), _perf_fix(text))]
    return [Finding("perf", "ok", "%s records %s (kernel.perf_event_paranoid=%s, %s)" % (
        perf, DEFAULT_EVENT, paranoid, who))]


def _existing_parent(path: str) -> str:
    d = os.path.abspath(path)
    while not os.path.exists(d):
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    return d


def _can_write(directory: str) -> str:
    """"" when a file can be created in `directory`, else why not."""
    try:
        fd, name = tempfile.mkstemp(prefix=".coopt-doctor-", dir=directory)
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    os.unlink(name)
    return ""


def check_cache(c: Checked) -> list[Finding]:
    from coopt.cache.store import Store

    cfg = c.config.cache
    origin = c.config.setting("cache.dir").origin
    d = cfg.dir
    top = _existing_parent(d)
    if not os.path.isdir(top):
        return [Finding("cache", "error", "cache directory %s (%s) cannot be created: %s is not a directory"
                        % (d, origin, top), "set [cache] dir / COOPT_CACHE_DIR to a directory you can write")]
    if cfg.read_only:
        ro = c.config.setting("cache.read_only").origin
        out = [Finding("cache", "info", "%s is read-only (%s): builds get its variants, nothing is stored" % (d, ro))]
    else:
        why = _can_write(top)
        if why:
            what = "cannot be written" if top == os.path.abspath(d) else "cannot be created in %s" % top
            return [Finding("cache", "error", "cache directory %s (%s) %s: %s" % (d, origin, what, why),
                            "make it writable for this user, or set [cache] dir / COOPT_CACHE_DIR elsewhere")]
        out = [Finding("cache", "ok", "%s writable%s" % (d, "" if os.path.isdir(d) else " (created at first use)"))]
    if os.path.isdir(d):
        store = Store(d, read_only=True)
        size, entries = store.total_size(), len(store.entries())
        level, fix = "ok", ""
        if size > cfg.max_size:
            level, fix = "warn", "coopt cache evict (or raise [cache] max_size)"
        out.append(Finding("cache", level, "%d entr%s, %s of %s" % (
            entries, "y" if entries == 1 else "ies", _mb(size), schema.BY_DOTTED["cache.max_size"].kind.show(
                cfg.max_size)), fix))
    free = shutil.disk_usage(top).free
    if free < MIN_FREE_BYTES:
        out.append(Finding("cache", "warn", "only %s free on the cache's file system" % _mb(free),
                           "free some space or move [cache] dir"))
    return out


def check_remotes(c: Checked) -> list[Finding]:
    """Each configured remote store asked once: reachable, and writable or read-only as configured (a probe key is
    written and deleted), so "ready" never hides a dead or refusing team cache."""
    import uuid

    from coopt.cache.remote import RemoteError, SpecError, open_backend, parse_spec

    cfg = c.config.cache
    out: list[Finding] = []
    for text in cfg.remote:
        try:
            spec = parse_spec(text)
        except SpecError as exc:
            out.append(Finding("remote", "error", str(exc), "fix [cache] remote / COOPT_REMOTE_STORAGE"))
            continue
        shown = spec.display
        read_only = spec.read_only or cfg.remote_read_only
        backend = open_backend(spec)
        probe = "doctor/%s" % uuid.uuid4().hex
        reached = False
        try:
            backend.exists(probe)
            reached = True
            if not read_only:
                backend.put(probe, b"coopt doctor probe\n")
                backend.delete(probe)
        except RemoteError as exc:
            if reached:
                out.append(Finding("remote", "error", "%s is reachable but refuses writes: %s" % (shown, exc),
                                   "give this machine write credentials, or mark the remote `|read-only` "
                                   "(or COOPT_REMOTE_READ_ONLY=1) for builds that only read"))
            else:
                out.append(Finding("remote", "error", "%s cannot be reached: %s" % (shown, exc),
                                   "check that the server runs and the URL and credentials are right "
                                   "(docs/remote.md); builds meanwhile skip it after one timeout"))
            continue
        finally:
            backend.close()
        out.append(Finding("remote", "ok", "%s reachable, %s" % (
            shown, "read-only as configured" if read_only else "writable (a probe entry was written and removed)")))
    return out


def _mb(n: int) -> str:
    return "%.1f MB" % (n / (1 << 20))


def check_llm(c: Checked) -> list[Finding]:
    llm = c.config.llm
    if llm.provider == "none":
        return [Finding("llm", "ok", "provider none: the compiler tools work alone (levels flags, pgo)")]
    if llm.provider == "local":
        return _check_local()
    return _check_openai(c)


def _check_local() -> list[Finding]:
    from coopt.llm.local_server import LocalModelError, resolve_model_path

    out = []
    try:
        import xllamacpp  # noqa: F401
    except ImportError:
        out.append(Finding("llm", "error", "provider local: xllamacpp (llama.cpp's server) is not installed",
                           "pip install 'coopt-cc[local]'"))
    try:
        path = resolve_model_path()
        out.append(Finding("llm", "ok", "provider local: model %s (%d MB)" % (path, os.path.getsize(path) >> 20)))
    except LocalModelError as exc:
        out.append(Finding("llm", "error", "provider local: %s" % exc, "coopt model fetch"))
    return out


def _check_openai(c: Checked) -> list[Finding]:
    import json
    import urllib.error
    import urllib.request

    llm = c.config.llm
    if not llm.base_url.startswith(("http://", "https://")):
        return [Finding("llm", "error", "provider openai needs an http(s) base URL, got %r" % llm.base_url,
                        "set [llm] base_url / COOPT_LLM_BASE_URL, e.g. http://127.0.0.1:8000/v1")]
    out = []
    if not llm.model:
        out.append(Finding("llm", "error", "provider openai needs a model name", "set [llm] model / COOPT_LLM_MODEL"))
    key = os.environ.get(llm.api_key_env, "") if llm.api_key_env else ""
    if llm.api_key_env and not key:
        out.append(Finding("llm", "warn", "$%s is empty: an endpoint that needs a key will refuse" % llm.api_key_env,
                           "export %s=... (never in a file), or set [llm] api_key_env" % llm.api_key_env))
    req = urllib.request.Request(llm.base_url.rstrip("/") + "/models")
    if key:
        req.add_header("Authorization", "Bearer " + key)
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
            body = json.loads(resp.read().decode("utf-8", "replace") or "{}")
    except urllib.error.HTTPError as exc:
        out.append(Finding("llm", "error", "%s answered HTTP %d to GET /models" % (llm.base_url, exc.code),
                           "check the key ($%s) and [llm] base_url" % llm.api_key_env))
        return out
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        out.append(Finding("llm", "error", "cannot reach %s: %s" % (llm.base_url, reason),
                           "start the server or correct [llm] base_url / COOPT_LLM_BASE_URL"))
        return out
    ids = [m.get("id") for m in body.get("data", []) if isinstance(m, dict)] if isinstance(body, dict) else []
    if llm.model and ids and llm.model not in ids:
        out.append(Finding("llm", "warn", "%s does not list model %r (it lists %s)" % (
            llm.base_url, llm.model, ", ".join(map(str, ids[:5]))), "set [llm] model to one it serves"))
    else:
        out.append(Finding("llm", "ok", "%s answers; model %s" % (llm.base_url, llm.model or "-")))
    return out


def check_sandbox(c: Checked) -> list[Finding]:
    """Whether candidates can run under bubblewrap, and which limits hold (docs/verify.md, "Threat model")."""
    from coopt.verify import sandbox
    from coopt.verify.sandbox.cgroup import Cgroup

    why = sandbox.unavailable()
    if why:
        llm = c.config.llm.provider != "none"
        if c.config.verify.allow_unsandboxed:
            return [Finding("sandbox", "warn", "%s; [verify] allow_unsandboxed is set: candidates run with rlimits "
                            "only" % why, "apt-get install bubblewrap")]
        return [Finding("sandbox", "error" if llm else "warn",
                        "%s; %s" % (why, "coopt optimize and coopt verify refuse LLM candidates" if llm else
                                    "compiler-tool candidates run with rlimits only, LLM candidates are refused"),
                        "apt-get install bubblewrap (or, knowing the risk, [verify] allow_unsandboxed = true)")]
    group = Cgroup.create(64, 64)
    if group is not None:
        group.close()
        return [Finding("sandbox", "ok", "bubblewrap works; memory and process limits by cgroup")]
    return [Finding("sandbox", "info", "bubblewrap works; no cgroup here (not root, or no writable memory/pids "
                    "hierarchy): processes limited by RLIMIT_NPROC, memory by RLIMIT_AS and the sanitizers' RSS "
                    "limits")]


CHECKS: tuple[tuple[str, Callable[[Checked], list[Finding]]], ...] = (
    ("config", check_config),
    ("compiler", check_compiler),
    ("coopt-cc", check_wrapper),
    ("launcher", check_launcher),
    ("perf", check_perf),
    ("cache", check_cache),
    ("remote", check_remotes),
    ("llm", check_llm),
    ("sandbox", check_sandbox),
)


def run_checks(only: list[str] | None = None) -> list[Finding]:
    """Every check (or those named in `only`), in order. A check that crashes is itself an error finding."""
    checked = read_config()
    findings: list[Finding] = []
    for name, check in CHECKS:
        if only and name not in only:
            continue
        try:
            findings.extend(check(checked))
        except Exception as exc:  # doctor must report, not crash, whatever state the machine is in
            findings.append(Finding(name, "error", "the check itself failed: %s: %s" % (type(exc).__name__, exc),
                                    "please report this"))
    return findings
