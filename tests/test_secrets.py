"""Secrets are never printed: a remote URL's password, the team's HMAC key, an API key from the environment.

Through the real `coopt` commands (config get/show/show --json, doctor, journal show, cache show of a stored
entry) and coopt-cc's log; and the one masking function, coopt.redact.mask, on its own.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from conftest import Coopt, require
from coopt.redact import mask, mask_url

PASSWORDS = ("hunter2pw", "s3cretpw", "llmpass1", "envpass99")
CONFIG = """[cache]
remote = ["redis://:hunter2pw@127.0.0.1:1", "http://bob:s3cretpw@127.0.0.1:1/c/", "http://127.0.0.1:1/d/|password-env=XPW"]
[llm]
provider = "openai"
base_url = "http://u:llmpass1@127.0.0.1:1/v1"
"""


def _clean(text: str) -> None:
    for secret in PASSWORDS:
        assert secret not in text, "%s printed in:\n%s" % (secret, text)


@pytest.fixture
def configured(coopt: Coopt, tmp_path: Path) -> tuple[Coopt, Path]:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "coopt.toml").write_text(CONFIG)
    return dataclasses.replace(coopt, env=dict(coopt.env, XPW="envpass99")), proj


@pytest.mark.parametrize("args", [
    ("config", "get", "cache.remote"),
    ("config", "get", "llm.base_url"),
    ("config", "show"),
    ("config", "show", "--json"),
])
def test_config_never_prints_a_password(configured: tuple[Coopt, Path], args: tuple[str, ...]) -> None:
    co, proj = configured
    out = co.coopt(*args, cwd=proj).stdout
    assert "***" in out and "127.0.0.1" in out
    _clean(out)
    if args[-1] == "--json":
        remote = json.loads(out)["settings"]["cache.remote"]["value"]
        assert remote[2] == "http://127.0.0.1:1/d/|password-env=XPW"  # the variable's name is no secret


def test_doctor_never_prints_a_password(configured: tuple[Coopt, Path]) -> None:
    co, proj = configured
    for extra in ((), ("--json",)):
        proc = co.coopt("doctor", "--only", "llm", *extra, cwd=proj, check=False)
        assert "127.0.0.1:1" in proc.stdout, proc.stdout
        _clean(proc.stdout + proc.stderr)


def test_journal_show_masks_what_the_journal_keeps(coopt: Coopt, tmp_path: Path) -> None:
    """The journal keeps the exact arguments (the optimizer replays them); `coopt journal show` masks them."""
    require("clang")
    (tmp_path / "f.c").write_text("const char *u = URL;\n")
    coopt.run([coopt.cc, "-c", "f.c", '-DURL="http://bob:s3cretpw@h.example/"'], cwd=tmp_path)
    assert any("s3cretpw" in " ".join(r["args"]) for r in coopt.journal())
    for extra in ((), ("--json",)):
        out = coopt.coopt("journal", "show", *extra, cwd=tmp_path).stdout
        assert "f.c" in out
        _clean(out)


def test_log_lines_are_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from coopt.cache.layout import CacheLayout

    monkeypatch.setenv("COOPT_CACHE_HMAC_KEY", "envpass99")
    layout = CacheLayout(str(tmp_path / "cache"))
    layout.append_log(["remote redis://:hunter2pw@h:6379 failed", "signing with envpass99"])
    text = Path(layout.log_path).read_text()
    assert "redis://***@h:6379" in text and "signing with ***" in text
    _clean(text)


def test_evidence_is_stored_and_shown_masked(coopt: Coopt, tmp_path: Path) -> None:
    """A command line in the evidence (a bench that downloads its input) keeps no password in the entry."""
    require("clang")
    (tmp_path / "f.c").write_text("int f(int x) { return x + 1; }\n")
    (tmp_path / "v.c").write_text("int f(int x) { return 1 + x; }\n")
    evidence = {"version": 2, "verdict": {"code": "accepted"}, "original": "f.c", "candidate": "v.c",
                "functions": ["f"], "bench": {"command": "curl http://bob:s3cretpw@h.example/in | ./bench"}}
    (tmp_path / "ev.json").write_text(json.dumps(evidence))
    coopt.coopt("cache", "put", "--artifact", "v.c", "--evidence", "ev.json", "--", "clang", "-O2", "-c", "f.c",
                cwd=tmp_path)
    (meta,) = list(coopt.cache_dir.glob("entries/*/*/meta.json"))
    _clean(meta.read_text())
    key = meta.parent.name
    shown = coopt.coopt("cache", "show", key).stdout
    assert "curl http://bob:***@h.example/in" in shown
    _clean(shown)


# --- the masking function ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("url, shown", [
    ("redis://hunter2pw@h:6379", "redis://***@h:6379"),
    ("redis://user:hunter2pw@h", "redis://user:***@h"),
    ("http://bob:s3cretpw@h/c/", "http://bob:***@h/c/"),
    ("http://bob:s3c/ret@pw@h/c/", "http://bob:***@h/c/"),
    ("http://h/c/", "http://h/c/"),
    ("file:///srv/cache", "file:///srv/cache"),
])
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_mask_finds_urls_and_secret_values_in_text() -> None:
    env = {"COOPT_CACHE_HMAC_KEY": "teamkey123", "COOPT_LLM_API_KEY_ENV": "MY_KEY", "MY_KEY": "sk-abcdef",
           "GITHUB_TOKEN": "ghp_12345", "XPW": "envpass99", "SHORT_TOKEN": "1", "HOME": "/root"}
    text = ("fetch 'http://bob:s3cretpw@h/c/' and redis://:hunter2pw@r:1|read-only; key teamkey123, sk-abcdef, "
            "ghp_12345; spec http://h/d/|password-env=XPW with envpass99; SHORT_TOKEN=1 in /root")
    out = mask(text, env)
    assert out == ("fetch 'http://bob:***@h/c/' and redis://***@r:1|read-only; key ***, ***, ***; spec "
                   "http://h/d/|password-env=XPW with ***; SHORT_TOKEN=1 in /root")
