"""Where coopt-cc's own time goes on a miss: interpreter start-up, the launcher's import, main() until exec.

Measured from outside (interleaved, medians):
    spawn            /bin/true: fork+exec+wait, what any process costs
    python start-up  the installed venv's python -I -S -c pass
    shell stage      the launcher's own sh lines, exec'ing python -I -S on an empty Python part
    coopt-cc→true    the installed coopt-cc on the TU's real compile command with COOPT_COMPILER=true: the whole
                     miss path (launcher, key, journal, stats) and an exec of a program that does nothing
and from inside (miss_driver.py, perf_counter around the launcher's own code):
    import           the launcher's path set-up and `from coopt.wrapper.main import main` (with `site` when the
                     launcher falls back to it)
    main()           from the call to the exec of the real compiler, and the same with the modules main() imports
                     lazily already imported: the difference is what those imports cost, the rest is split by step
plus one run under `python -X importtime` that names the modules each phase imports.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from overhead.install import Installed
from overhead.timing import BenchError, Case, Samples, clean_env, interleave
from overhead.workloads import Tu

DRIVER = Path(__file__).with_name("miss_driver.py")
TOP_IMPORTS = 8
STUB_CASE = "launcher shell stage + python -I -S"


def launcher_stub(installed: Installed) -> Path | None:
    """A copy of the installed launcher's shell stage with an empty Python part, next to it (so it finds the same
    python): timing it gives the sh stage plus interpreter start-up. None when the launcher has no such stage."""
    polyglot = "'" * 4  # the launcher's sh lines start with '''' (an empty string to sh, a string to Python)
    head = []
    for line in installed.coopt_cc.read_text().splitlines(keepends=True):
        if not line.startswith(("#", polyglot)):
            break
        head.append(line)
    if not any(line.startswith(polyglot) for line in head):
        return None
    stub = installed.coopt_cc.with_name("coopt-cc-shell-stage")
    stub.write_text("".join(head))
    stub.chmod(0o755)
    return stub


def _driver_argv(installed: Installed, mode: str, tu: Tu, importtime: bool = False) -> list[str]:
    x = ["-X", "importtime"] if importtime else []
    return [str(installed.python), *x, "-I", "-S", str(DRIVER), mode, str(installed.coopt_cc), *tu.compile_args]


def parse_records(path: Path) -> list[dict[str, str]]:
    """The driver's records: one dict per run, `step:LABEL` values as "ms/calls"."""
    out: list[dict[str, str]] = []
    try:
        text = path.read_text()
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        rec = dict(field.split("=", 1) for field in line.split("\t") if "=" in field)
        out.append(rec)
    return out


def parse_importtime(stderr: str) -> dict[str, dict[str, object]]:
    """`-X importtime` output split at the driver's phase markers: per phase, the total and the costliest modules."""
    phases: dict[str, list[tuple[str, int, float, float]]] = {"startup": []}
    phase = "startup"
    for line in stderr.splitlines():
        if line.startswith("coopt-bench-phase "):
            phase = line.split()[1]
            phases.setdefault(phase, [])
            continue
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:"):].split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        name = parts[2].rstrip()
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        phases[phase].append((name.strip(), depth, int(parts[0]) / 1000.0, int(parts[1].strip()) / 1000.0))
    out: dict[str, dict[str, object]] = {}
    for phase, mods in phases.items():
        top = sorted(mods, key=lambda m: -m[2])[:TOP_IMPORTS]
        out[phase] = {
            "total_ms": round(sum(m[3] for m in mods if m[1] == 0), 3),
            "modules": len(mods),
            "top_self_ms": [{"module": m[0], "self_ms": round(m[2], 3), "cumulative_ms": round(m[3], 3)} for m in top],
        }
    return out


def measure(
    installed: Installed, tus: Sequence[Tu], hot: Tu, workdir: Path, reps: int, warmup: int, seed: int
) -> dict[str, object]:
    """The miss breakdown for `hot` (and coopt-cc→true for every TU in `tus`)."""
    true = shutil.which("true")
    if true is None:
        raise BenchError("no `true` program on PATH")
    caches = workdir / "caches"
    out_dir = workdir / "driver"
    out_dir.mkdir()
    driver_env = clean_env({"COOPT_CACHE_DIR": str(caches / "breakdown-driver")})

    # Untimed runs learn which modules main() imports lazily, for the preloaded mode to import up front. The
    # second run's list counts: the first one also fills the cache's compiler identity memo (a `--version` run).
    learn = out_dir / "learn"
    for _ in range(2):
        run = subprocess.run(
            _driver_argv(installed, "plain", hot), cwd=hot.cwd, env={**driver_env, "BENCH_DRIVER_OUT": str(learn)},
            capture_output=True, text=True,
        )
        if run.returncode != 0:
            raise BenchError("the miss driver failed (exit %d): %s" % (run.returncode, run.stderr.strip()[-300:]))
    learned = parse_records(learn)
    if len(learned) != 2 or not learned[-1].get("exec"):
        raise BenchError("the miss driver did not reach the exec of the compiler (see %s)" % learn)
    lazy = learned[-1].get("lazy", "")
    timed_import = subprocess.run(
        _driver_argv(installed, "plain", hot, importtime=True), cwd=hot.cwd,
        env={**driver_env, "BENCH_DRIVER_OUT": str(out_dir / "importtime")}, capture_output=True, text=True,
    )
    imports = parse_importtime(timed_import.stderr)

    plain_out, pre_out = out_dir / "plain", out_dir / "preloaded"
    cases = [
        Case("spawn /bin/true", [true], str(hot.cwd), clean_env()),
        Case("python -I -S -c pass", [str(installed.python), "-I", "-S", "-c", "pass"], str(hot.cwd), clean_env()),
        Case("driver plain", _driver_argv(installed, "plain", hot), str(hot.cwd),
             {**driver_env, "BENCH_DRIVER_OUT": str(plain_out)}),
        Case("driver preloaded", _driver_argv(installed, "preloaded", hot), str(hot.cwd),
             {**driver_env, "BENCH_DRIVER_OUT": str(pre_out), "BENCH_DRIVER_LAZY": lazy}),
    ]
    stub = launcher_stub(installed)
    if stub is not None:
        cases.append(Case(STUB_CASE, [str(stub), *hot.compile_args], str(hot.cwd), clean_env()))
    true_env = clean_env({"COOPT_CACHE_DIR": str(caches / "breakdown-true"), "COOPT_COMPILER": true})
    for tu in tus:
        cases.append(Case("coopt-cc→true %s" % tu.label, [str(installed.coopt_cc), *tu.compile_args], str(tu.cwd),
                          true_env))
    samples = interleave(cases, reps, warmup, seed, "miss breakdown")

    plain = parse_records(plain_out)[warmup:]
    pre = parse_records(pre_out)[warmup:]
    if len(plain) != reps or len(pre) != reps:
        raise BenchError("the miss driver wrote %d and %d records for %d runs" % (len(plain), len(pre), reps))
    return summarize(samples, plain, pre, hot, [tu.label for tu in tus], imports, lazy)


def _parts(
    samples: Mapping[str, Samples],
    plain: Sequence[Mapping[str, str]],
    pre: Sequence[Mapping[str, str]],
    hot: Tu,
    labels: Sequence[str],
    pick: Callable[[list[float]], float],
) -> dict[str, Any]:
    """The breakdown with one statistic (median or minimum) taken of every measured part."""

    def ext(name: str) -> float:
        return pick(samples[name].ms)

    def inner(records: Sequence[Mapping[str, str]], key: str) -> float:
        return pick([float(r[key]) for r in records])

    spawn = ext("spawn /bin/true")
    python = ext("python -I -S -c pass") - spawn
    own = {label: ext("coopt-cc→true %s" % label) - spawn for label in labels}
    # The sh stage as the launcher's own first lines run it (None when the launcher has none).
    shell = ext(STUB_CASE) - spawn - python if STUB_CASE in samples else None
    import_ms, main_ms = inner(plain, "import_ms"), inner(plain, "main_ms")
    work_ms = inner(pre, "main_ms")
    steps: dict[str, dict[str, float]] = {}
    for key in pre[0]:
        if key.startswith("step:"):
            values = [r[key].split("/") for r in pre]
            steps[key[len("step:"):]] = {"ms": round(pick([float(v[0]) for v in values]), 4),
                                         "calls": int(values[0][1])}
    return {
        "spawn_ms": round(spawn, 3),
        "own_ms": {label: round(v, 3) for label, v in own.items()},
        "python_startup_ms": round(python, 3),
        "shell_stage_ms": None if shell is None else round(shell, 3),
        "launcher_import_ms": round(import_ms, 3),
        "main_until_exec_ms": round(main_ms, 3),
        "lazy_import_ms": round(inner(pre, "lazy_ms"), 3),
        "main_work_ms": round(work_ms, 3),
        "steps": steps,
        "other_work_ms": round(work_ms - sum(s["ms"] for s in steps.values()), 3),
        "rest_ms": round(own[hot.label] - python - (shell or 0.0) - import_ms - main_ms, 3),
    }


def summarize(
    samples: Mapping[str, Samples],
    plain: Sequence[Mapping[str, str]],
    pre: Sequence[Mapping[str, str]],
    hot: Tu,
    labels: Sequence[str],
    imports: dict[str, dict[str, object]],
    lazy: str,
) -> dict[str, object]:
    """Medians of every part (and, under "min", minimums: on a busy machine the better estimate of the cost)."""
    return {
        "tu": hot.label,
        "command": ["coopt-cc", *hot.compile_args],
        "external": {name: s.as_dict() for name, s in sorted(samples.items())},
        **_parts(samples, plain, pre, hot, labels, statistics.median),
        "min": _parts(samples, plain, pre, hot, labels, min),
        "site_imported": any(r.get("site") == "1" for r in plain),
        "lazy_imports": [m for m in lazy.split(",") if m],
        "importtime": imports,
    }
