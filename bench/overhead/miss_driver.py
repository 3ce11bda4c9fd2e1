"""Run the installed coopt-cc launcher's Python part in-process, with timers, up to the exec of the real compiler.

Not imported by the benchmark: breakdown.py runs this file with the installed venv's python under -I -S, exactly as
the launcher runs itself, and reads one record per run from the file named by BENCH_DRIVER_OUT.

    python -I -S miss_driver.py MODE LAUNCHER COMPILER-ARGS...

The launcher's own text is executed (everything before its `sys.exit(main(...))` line), so its path set-up and
import are what is timed. `os.execv` is replaced by a stub that takes the time and exits: the compile itself is not
part of coopt-cc's own cost. Modes:
    plain      time the launcher's import, then main() until exec; record the modules main() imports lazily
    preloaded  import those modules first (BENCH_DRIVER_LAZY, timed), then time main()'s steps one by one
Only the standard library's always-loaded modules are used here, so the driver adds no imports of its own.
"""

import time

T_START = time.perf_counter()

import os  # noqa: E402  (after the first timestamp on purpose)
import sys  # noqa: E402

# (label, module, attribute): the miss path's steps. A step whose module or attribute no longer exists is skipped
# and reported with zero calls, so a refactoring of coopt shows up in the results instead of breaking the driver.
STEPS = (
    ("settings", "coopt.wrapper.settings", "load"),
    ("resolve compiler", "coopt.wrapper.compiler", "resolve"),
    ("response files", "coopt.wrapper.classify", "expand_response_files"),
    ("classify argv", "coopt.wrapper.classify", "classify"),
    ("compiler identity", "coopt.cache.identity", "compiler_identity"),
    ("hash source", "coopt.cache.key", "source_digest"),
    ("key material", "coopt.cache.key", "direct_material"),
    ("key hash", "coopt.cache.key", "key_of"),
    ("journal record", "coopt.journal.job", "CompileJob.to_record"),
    ("journal append", "coopt.journal.log", "append"),
    ("stats", "coopt.cache.stats", "bump"),
)

RECORD: dict = {}
STEP_MS: dict = {}
STEP_CALLS: dict = {}


def write_record() -> None:
    fields = ["%s=%s" % (k, v) for k, v in RECORD.items()]
    for label, _m, _a in STEPS:
        fields.append("step:%s=%.6f/%d" % (label, STEP_MS.get(label, 0.0) * 1000.0, STEP_CALLS.get(label, 0)))
    with open(os.environ["BENCH_DRIVER_OUT"], "a") as f:
        f.write("\t".join(fields) + "\n")


def wrap_steps() -> None:
    for label, modname, attr in STEPS:
        owner = sys.modules.get(modname)
        names = attr.split(".")
        for name in names[:-1]:
            owner = getattr(owner, name, None)
        fn = getattr(owner, names[-1], None) if owner is not None else None
        if fn is None:
            continue
        STEP_MS[label] = 0.0
        STEP_CALLS[label] = 0

        def timed(*args, __fn=fn, __label=label, **kwargs):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return __fn(*args, **kwargs)
            finally:
                STEP_MS[__label] += time.perf_counter() - t
                STEP_CALLS[__label] += 1

        setattr(owner, names[-1], timed)


def launcher_code(path: str):  # type: ignore[no-untyped-def]
    with open(path) as f:
        lines = f.read().splitlines(keepends=True)
    ends = [i for i, line in enumerate(lines) if line.startswith("sys.exit(") and "main(" in line]
    if not ends:
        sys.stderr.write("miss_driver: %s has no `sys.exit(main(...))` line; the launcher changed shape\n" % path)
        raise SystemExit(2)
    return compile("".join(lines[: ends[-1]]), path, "exec")


def run() -> int:
    mode, launcher = sys.argv[1], sys.argv[2]
    code = launcher_code(launcher)
    sys.argv = [launcher, *sys.argv[3:]]
    namespace: dict = {"__name__": "__coopt_launcher__", "__file__": launcher}
    RECORD["mode"] = mode

    sys.stderr.write("coopt-bench-phase launcher\n")
    t = time.perf_counter()
    exec(code, namespace)
    RECORD["import_ms"] = "%.6f" % ((time.perf_counter() - t) * 1000.0)
    RECORD["site"] = int("site" in sys.modules)
    main = namespace["main"]

    if mode == "preloaded":
        lazy = [m for m in os.environ.get("BENCH_DRIVER_LAZY", "").split(",") if m]
        t = time.perf_counter()
        for name in lazy:
            __import__(name)
        RECORD["lazy_ms"] = "%.6f" % ((time.perf_counter() - t) * 1000.0)
        wrap_steps()
    before = set(sys.modules)

    def fake_execv(path, args):  # type: ignore[no-untyped-def]
        RECORD["main_ms"] = "%.6f" % ((time.perf_counter() - t_main) * 1000.0)
        RECORD["exec"] = os.path.basename(path)
        RECORD["lazy"] = ",".join(sorted(set(sys.modules) - before))
        write_record()
        os._exit(0)

    os.execv = fake_execv
    sys.stderr.write("coopt-bench-phase main\n")
    t_main = time.perf_counter()
    rc = main(sys.argv)
    # main() returned instead of exec'ing: a hit or an error. Recorded, and the benchmark refuses such a run.
    RECORD["main_ms"] = "%.6f" % ((time.perf_counter() - t_main) * 1000.0)
    RECORD["exec"] = ""
    RECORD["rc"] = rc
    write_record()
    return 3


if __name__ == "__main__":
    sys.exit(run())
