"""What one `coopt optimize` run is asked to do: one dataclass, and `from_config`, the one mapping of the
configuration (coopt.toml, COOPT_* and flags, already merged) onto it, used by the CLI and the nightly."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from coopt.cache.publish import Remotes
from coopt.config import Config, environment
from coopt.optimize import shard as sharding


@dataclass
class OptimizeOptions:
    """What `coopt optimize` was asked to do."""

    cache_dir: str
    profile: str = "profile.json"
    program: str | None = None
    journal: str | None = None
    levels: list[str] = field(default_factory=lambda: ["flags", "pgo"])
    budget_evaluations: int = 0
    budget_seconds: float = 0.0
    budget_tokens: int = 0  # LLM tokens over the whole run (0: no limit)
    train: str | None = None
    bench: str | None = None
    tests: list[str] = field(default_factory=list)
    min_gain: float = 1.02
    pairs: int = 20
    measure: str = "cpu"  # what the A/B times: "cpu" (user+sys of the bench command) or "wall"
    llm: str = "none"
    run_dir: str | None = None
    max_tus: int = 8
    timeout_s: float = 600.0
    final: bool = True
    keep_work: bool = False
    remotes: Remotes | None = None  # [cache] remote: kept variants are uploaded there, withdrawn ones removed
    float_tolerance: float = 0.0  # floating-point numbers in test output within this compare equal (0: exact)
    fuzz_seconds: float = 0.0  # libFuzzer time per rewritten function of an LLM level's candidate (0: none)
    guide: str = "ucb"  # "ucb": the deterministic policy; "llm": the model picks among its live arms
    sweep: bool = True  # the compiler levels' rows on a node screened together as one evaluation (search/sweep.py)
    assume_cpu: bool = False  # compiler tools may target this machine's CPU (-march=native)
    llm_env: dict[str, str] | None = None  # the LLM settings as COOPT_* variables (None: this process's)
    resume: bool = False  # continue the unfinished run in run_dir: its judged attempts count and are not redone
    shard: sharding.ShardSpec | None = None  # work only on this share of the hot TUs (docs/optimize.md)

    @classmethod
    def from_config(cls, cfg: Config, **given: Any) -> OptimizeOptions:
        """The options `cfg` gives, with the run's own fields in `given` (profile, bench, run_dir, ...) on top."""
        o = cfg.optimize
        fields: dict[str, Any] = {
            "cache_dir": cfg.cache.dir, "levels": list(o.levels), "budget_evaluations": o.budget,
            "budget_seconds": o.budget_seconds, "budget_tokens": o.budget_tokens, "min_gain": o.min_gain,
            "pairs": o.pairs, "llm": cfg.llm.provider, "max_tus": o.max_tus, "final": o.final_check,
            "float_tolerance": o.float_tolerance, "fuzz_seconds": o.fuzz_seconds, "guide": o.guide, "sweep": o.sweep,
            "assume_cpu": o.assume_cpu, "llm_env": environment(cfg),
            "remotes": Remotes(cfg.cache.remote, cfg.cache.remote_read_only),
        }
        fields.update(given)
        return cls(**fields)
