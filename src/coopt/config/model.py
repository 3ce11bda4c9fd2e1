"""The effective configuration as typed, frozen data: one dataclass per section, field names = key names.

A test checks every section's fields against the key table in schema.py, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from coopt.config.schema import Command


@dataclass(frozen=True)
class CompilerConfig:
    path: str
    launcher: str


@dataclass(frozen=True)
class CacheConfig:
    dir: str
    max_size: int
    read_only: bool
    remote: tuple[str, ...]
    remote_read_only: bool
    remote_retry_after: float
    remote_recheck: float
    serve_unverified: bool
    base_dir: str


@dataclass(frozen=True)
class LlmConfig:
    provider: str
    model: str
    base_url: str
    api_key_env: str
    timeout: float
    max_tokens: int


@dataclass(frozen=True)
class OptimizeConfig:
    budget: int
    budget_seconds: float
    budget_tokens: int
    levels: tuple[str, ...]
    min_gain: float
    pairs: int
    max_tus: int
    final_check: bool
    float_tolerance: float
    fuzz_seconds: float
    guide: str
    sweep: bool
    assume_cpu: bool


@dataclass(frozen=True)
class HooksConfig:
    build: Command | None
    clean: Command | None
    test: Command | None
    bench: Command | None
    profile: Command | None
    timeout: float


@dataclass(frozen=True)
class VerifyConfig:
    allow_unsandboxed: bool


@dataclass(frozen=True)
class NightlyConfig:
    dir: str


@dataclass(frozen=True)
class Origin:
    """Where an effective value came from."""

    kind: str  # "default", "file", "env" or "flag"
    where: str = ""  # file:line, the variable's name, or the option

    def __str__(self) -> str:
        return self.kind if self.kind == "default" else "%s %s" % (self.kind, self.where)


@dataclass(frozen=True)
class Setting:
    """One key's effective value and its origin."""

    dotted: str
    value: object
    origin: Origin


@dataclass(frozen=True)
class Config:
    """The effective configuration for a project."""

    file: str  # the config file read ("" when none)
    project_dir: str  # the file's directory (hooks run there); the working directory when there is no file
    compiler: CompilerConfig
    cache: CacheConfig
    llm: LlmConfig
    optimize: OptimizeConfig
    hooks: HooksConfig
    verify: VerifyConfig
    nightly: NightlyConfig
    settings: tuple[Setting, ...] = field(default_factory=tuple)

    def setting(self, dotted: str) -> Setting:
        """The setting of `section.key`; KeyError for an unknown key."""
        for s in self.settings:
            if s.dotted == dotted:
                return s
        raise KeyError(dotted)
