"""Helpers shared by the `coopt` subcommands: settings, the store, finding a compile in the journal."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from coopt.cache.layout import CacheLayout
from coopt.cache.store import Store
from coopt.cli import UsageError
from coopt.journal import log as journal
from coopt.journal.job import CompileJob
from coopt.wrapper import settings as settingsmod

if TYPE_CHECKING:
    from coopt.config import Config


def load_settings() -> settingsmod.Settings:
    try:
        return settingsmod.load(os.getcwd())
    except settingsmod.ConfigError as exc:
        raise UsageError("bad config %s" % exc) from exc


def open_store(read_only: bool | None = None) -> Store:
    s = load_settings()
    return Store(s.cache_dir, read_only=s.read_only if read_only is None else read_only)


def load_config(flags: Mapping[str, tuple[Any, str]] | None = None) -> Config:
    """The effective configuration for the working directory (coopt.toml or [tool.coopt], then COOPT_*, then
    `flags`: {"section.key": (value, "--option")}), as `coopt config show` reports it."""
    from coopt.config import ConfigError, load

    try:
        return load(os.getcwd(), flags=flags)
    except ConfigError as exc:
        raise UsageError("bad config %s" % exc) from exc


def sandbox_gate(allowed: bool, llm_candidates: bool) -> None:
    """Before candidates run (sandbox.gate): refuse LLM candidates where bubblewrap cannot contain them unless
    `allowed` (UsageError: one line, exit 2); otherwise print the warning, on every run."""
    import sys

    from coopt.verify import sandbox

    try:
        warning = sandbox.gate(allowed, llm_candidates)
    except sandbox.SandboxUnavailable as exc:
        raise UsageError(str(exc)) from exc
    if warning:
        print("coopt: " + warning, file=sys.stderr)


def max_cache_size() -> int:
    """The cache's size limit: [cache] max_size, overridden by COOPT_CACHE_MAX_SIZE (default 5G)."""
    return load_config().cache.max_size


def job_for_object(layout: CacheLayout, obj: str) -> CompileJob:
    """The newest journaled compile that wrote `obj`."""
    target = os.path.abspath(obj)
    found = None
    for rec in journal.read(layout.journal_path):
        if rec.get("type") != "compile":
            continue
        job = CompileJob.from_record(rec)
        if job.output_path == target:
            found = job
    if found is None:
        raise UsageError(
            "no journaled compile wrote %s; build it with CC=coopt-cc first (journal: %s)"
            % (target, layout.journal_path)
        )
    return found


def job_for_command(cmd: list[str], cwd: str) -> CompileJob:
    """A CompileJob for an explicit compile command such as `clang -O2 -c foo.c -o foo.o`."""
    from coopt.wrapper.classify import ResponseFileError, classify, expand_response_files
    from coopt.wrapper.compiler import which

    if not cmd:
        raise UsageError("no compile command given after --")
    compiler = which(cmd[0], "") or ""
    if not compiler:
        raise UsageError("compiler %r not found on PATH" % cmd[0])
    try:
        args = expand_response_files(cmd[1:], cwd)
    except ResponseFileError as exc:
        raise UsageError("cannot read response file: %s" % exc) from exc
    c = classify(args)
    if c.kind != "compile":
        raise UsageError("not a cacheable compile (%s): %s" % (c.reason, " ".join(cmd)))
    from coopt.cache.key import env_subset

    return CompileJob(
        cwd, compiler, args, c.key_args, c.source, c.output, c.dep_args, "c", c.debug, c.native, env_subset(os.environ)
    )
