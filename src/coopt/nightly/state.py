"""The state file of a nightly run: which steps are done, with what result, so a rerun resumes.

`<nightly dir>/state.json` is rewritten atomically after every step. A run whose last step failed (or that was
interrupted or killed) is resumed by the next `coopt nightly`: steps already done are skipped, as long as the files
they made are still there and the configuration is the same (its fingerprint). A finished run is not resumed; the
next invocation starts a new one. `NIGHTLY_VERSION` is bumped when a field changes meaning or disappears.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from coopt.config import Config, shown

NIGHTLY_FORMAT = "coopt-nightly"
NIGHTLY_VERSION = 1
STATE_NAME = "state.json"

# The steps, in order. Each one's result is a StepRecord under its name.
STEPS = ("clean", "build", "baseline-test", "profile", "optimize", "rebuild", "test", "report")
# A step's status. "done" and "skipped" count as finished when resuming.
STEP_STATUSES = ("pending", "running", "done", "skipped", "failed", "interrupted")
# A run's status: "running" is what a killed run leaves behind; "finished" runs are never resumed.
RUN_STATUSES = ("running", "failed", "interrupted", "finished")


class StateError(Exception):
    """The state file cannot be used (another format, a newer version, damaged); one line."""


@dataclass
class StepRecord:
    """One step's result."""

    name: str
    status: str = "pending"
    started: str = ""
    finished: str = ""
    seconds: float = 0.0
    detail: str = ""  # one line: what it did or why it failed
    log: str = ""  # the step's log file, if it ran a command
    files: list[str] = field(default_factory=list)  # what it made; a resumed run redoes the step when one is gone
    data: dict[str, Any] = field(default_factory=dict)  # step-specific results (counts, paths, intervals)

    @property
    def finished_ok(self) -> bool:
        return self.status in ("done", "skipped")


@dataclass
class NightlyState:
    """The whole run."""

    started: str
    project: str
    config_file: str
    fingerprint: str
    status: str = "running"
    exit_code: int | None = None
    outcome: str = ""  # one line: what the run came to
    updated: str = ""
    resumed: int = 0  # how many times a rerun picked this run up
    steps: dict[str, StepRecord] = field(default_factory=dict)
    version: int = NIGHTLY_VERSION

    def step(self, name: str) -> StepRecord:
        if name not in self.steps:
            self.steps[name] = StepRecord(name)
        return self.steps[name]


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def fingerprint(config: Config) -> str:
    """A digest of every effective setting: a changed configuration starts a new run instead of resuming."""
    text = "\n".join("%s=%s" % (s.dotted, shown(s)) for s in config.settings)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def new_state(config: Config) -> NightlyState:
    return NightlyState(started=now_utc(), project=config.project_dir, config_file=config.file,
                        fingerprint=fingerprint(config), steps={name: StepRecord(name) for name in STEPS})


def save(state: NightlyState, directory: str) -> str:
    """Write the state atomically; returns its path."""
    state.updated = now_utc()
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, STATE_NAME)
    data = asdict(state)
    data["format"] = NIGHTLY_FORMAT
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    return path


def load(directory: str) -> NightlyState | None:
    """The state in `directory`, or None when there is none. StateError for one that cannot be used."""
    path = os.path.join(directory, STATE_NAME)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError("cannot read %s: %s" % (path, exc.strerror or exc)) from exc
    except ValueError as exc:
        raise StateError("%s is not JSON (%s); remove it or run `coopt nightly --fresh`" % (path, exc)) from exc
    if not isinstance(data, dict) or data.get("format") != NIGHTLY_FORMAT:
        raise StateError("%s is not a coopt nightly state; remove it or use another --dir" % path)
    version = data.get("version")
    if not isinstance(version, int) or not 1 <= version <= NIGHTLY_VERSION:
        raise StateError("%s has nightly state version %r; this coopt reads 1 to %d: upgrade coopt or run "
                         "`coopt nightly --fresh`" % (path, version, NIGHTLY_VERSION))
    try:
        names = {f.name for f in fields(NightlyState)}
        step_names = {f.name for f in fields(StepRecord)}
        parts = {k: v for k, v in data.items() if k in names}
        parts["steps"] = {n: StepRecord(**{k: v for k, v in s.items() if k in step_names})
                          for n, s in (data.get("steps") or {}).items()}
        return NightlyState(**parts)
    except (TypeError, AttributeError) as exc:
        raise StateError("%s is damaged (%s); run `coopt nightly --fresh`" % (path, exc)) from exc


# A step that cannot be redone alone: a build is only a clean build after the clean step.
REDO_FROM = {"build": "clean"}


def resume_point(state: NightlyState) -> str | None:
    """The first step a resumed run must (re)do, or None when every step finished."""
    for name in STEPS:
        rec = state.steps.get(name)
        if rec is None or not rec.finished_ok or any(not os.path.exists(p) for p in rec.files):
            return REDO_FROM.get(name, name)
    return None
