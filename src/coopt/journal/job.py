"""The description of one compile or link, as the wrapper saw it and as the journal keeps it.

Plain classes with __slots__ rather than dataclasses: these are built on every compile, and importing
`dataclasses` costs about 10 ms, more than the whole miss path is allowed.
"""

from __future__ import annotations

import os

# Environment that changes the object the compiler produces. Anything not listed here is assumed not to.
# Locale variables are deliberately absent: they change only diagnostics, which a hit re-prints by running the real
# compiler with -fsyntax-only, and build tools such as SCons strip them, which would make every key differ.
# The wrapper records these values in the journal, so a variant stored later is keyed with the build's values;
# cache/key.py hashes them (the journal sits below the cache, so the list lives here).
ENV_ALLOWLIST = (
    "CCC_OVERRIDE_OPTIONS",
    "CPATH",
    "C_INCLUDE_PATH",
    "COMPILER_PATH",
    "GCC_EXEC_PREFIX",
    "SOURCE_DATE_EPOCH",
    "SDKROOT",
)


class CompileJob:
    """A single-source C compile that coopt may serve from the cache.

    `key_args` are the arguments that affect the object: the original arguments less `-c`, the source, `-o FILE`,
    dependency-file options and diagnostics colouring. `[compiler, *key_args, "-c", source, "-o", out]` run in
    `cwd` builds the same object as the original command; the optimizer replays compiles that way.
    """

    __slots__ = (
        "cwd",
        "compiler",
        "args",
        "key_args",
        "source",
        "output",
        "dep_args",
        "language",
        "debug",
        "native",
        "env",
        "base_dir",
    )

    def __init__(
        self,
        cwd: str,
        compiler: str,
        args: list[str],
        key_args: list[str],
        source: str,
        output: str,
        dep_args: list[str],
        language: str = "c",
        debug: bool = False,
        native: bool = False,
        env: dict[str, str] | None = None,
        base_dir: str = "",
    ) -> None:
        self.cwd = cwd
        self.compiler = compiler
        self.args = args
        self.key_args = key_args
        self.source = source
        self.output = output
        self.dep_args = dep_args
        self.language = language
        self.debug = debug
        self.native = native
        # The build's values of the key's environment allowlist (ENV_ALLOWLIST).
        self.env = env or {}
        # The base_dir the wrapper keyed this compile with (cache/key.py): a variant stored later is keyed the same.
        self.base_dir = base_dir

    def abspath(self, path: str) -> str:
        """`path` resolved against the compile's working directory."""
        return path if os.path.isabs(path) else os.path.normpath(os.path.join(self.cwd, path))

    @property
    def source_path(self) -> str:
        return self.abspath(self.source)

    @property
    def output_path(self) -> str:
        return self.abspath(self.output)

    def subprocess_env(self) -> dict[str, str]:
        """This process's environment with the build's values of the key's variables, for replaying the job."""
        env = {k: v for k, v in os.environ.items() if k not in ENV_ALLOWLIST}
        env.update(self.env)
        return env

    def replay_command(self, source: str, output: str, extra: list[str] | None = None) -> list[str]:
        """The command that compiles `source` (the original or a variant) to `output` with the job's flags."""
        return [self.compiler, *self.key_args, *(extra or []), "-c", source, "-o", output]

    def to_record(self, key: str) -> dict:
        rec = {
            "type": "compile",
            "cwd": self.cwd,
            "compiler": self.compiler,
            "args": self.args,
            "key_args": self.key_args,
            "source": self.source,
            "output": self.output,
            "dep_args": self.dep_args,
            "language": self.language,
            "debug": self.debug,
            "native": self.native,
            "env": self.env,
            "key": key,
        }
        if self.base_dir:  # only then: records without one stay as they were
            rec = dict(rec, base_dir=self.base_dir)
            rec["key"] = rec.pop("key")  # the key stays last: coopt-cc-fast appends it (wrapper/fastpath.py)
        return rec

    @classmethod
    def from_record(cls, rec: dict) -> CompileJob:
        return cls(
            cwd=rec["cwd"],
            compiler=rec["compiler"],
            args=list(rec["args"]),
            key_args=list(rec["key_args"]),
            source=rec["source"],
            output=rec["output"],
            dep_args=list(rec.get("dep_args", [])),
            language=rec.get("language", "c"),
            debug=bool(rec.get("debug", False)),
            native=bool(rec.get("native", False)),
            env=dict(rec.get("env", {})),
            base_dir=str(rec.get("base_dir", "") or ""),
        )


class LinkJob:
    """A link: the output and its inputs (objects, archives, -l libraries), so a program can be relinked with one
    object replaced."""

    __slots__ = ("cwd", "compiler", "args", "output", "inputs")

    def __init__(self, cwd: str, compiler: str, args: list[str], output: str, inputs: list[str]) -> None:
        self.cwd = cwd
        self.compiler = compiler
        self.args = args
        self.output = output
        self.inputs = inputs

    def to_record(self) -> dict:
        return {
            "type": "link",
            "cwd": self.cwd,
            "compiler": self.compiler,
            "args": self.args,
            "output": self.output,
            "inputs": self.inputs,
        }
