"""Configuration: where values come from (default < file < environment < flag), where the file is found
(coopt.toml as coopt-cc finds it, else [tool.coopt] in pyproject.toml), that coopt-cc's own reader agrees on every
key both read, and `coopt config show|get|path` telling each value's origin with file and line."""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path

import pytest

from conftest import Coopt
from coopt.config import ConfigError, environment, load, schema, shown
from coopt.config.load import SECTION_TYPES
from coopt.config.source import index_lines
from coopt.wrapper import settings as wrapper_settings

FULL = """# a project's coopt.toml
[compiler]
path = "clang-14"

[cache]
dir = "var/cache"
max_size = "2G"
read_only = false

[llm]
provider = "openai"
model = "qwen"
base_url = "http://127.0.0.1:9/v1"

[optimize]
budget = 7
levels = [
  "pgo",
  "flags",
]
min_gain = 1.05
float_tolerance = 1e-9
assume_cpu = true

[hooks]
build = "make -j2 CC=coopt-cc"
test = ["make", "check"]
profile = "./app input"
timeout = 120

[nightly]
dir = "out/nightly"
"""


def _line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith(needle))


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOPT_")}
    env.update(extra)
    return env


def test_defaults_without_any_file(tmp_path: Path) -> None:
    cfg = load(str(tmp_path), environ=_clean_env(HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "xdg")))
    assert cfg.file == "" and cfg.project_dir == str(tmp_path)
    assert cfg.compiler.path == "clang"
    assert cfg.cache.dir == str(tmp_path / "xdg" / "coopt") and cfg.cache.max_size == 5 << 30
    assert cfg.cache.read_only is False
    assert cfg.llm.provider == "none" and cfg.optimize.levels == ("flags", "pgo") and cfg.optimize.min_gain == 1.02
    assert cfg.hooks.build is None and cfg.nightly.dir == str(tmp_path / ".coopt-nightly")
    assert {s.origin.kind for s in cfg.settings} == {"default"}


def test_file_values_and_their_lines(tmp_path: Path) -> None:
    (tmp_path / "coopt.toml").write_text(FULL)
    sub = tmp_path / "src" / "deep"
    sub.mkdir(parents=True)
    cfg = load(str(sub), environ=_clean_env())  # found from a subdirectory, as coopt-cc finds it
    path = str(tmp_path / "coopt.toml")
    assert cfg.file == path and cfg.project_dir == str(tmp_path)
    assert cfg.compiler.path == "clang-14"
    assert cfg.cache.dir == str(tmp_path / "var" / "cache")  # relative to the file, not to the working directory
    assert cfg.cache.max_size == 2 << 30
    assert cfg.optimize.levels == ("pgo", "flags") and cfg.optimize.budget == 7 and cfg.optimize.assume_cpu is True
    assert cfg.optimize.float_tolerance == 1e-9
    assert cfg.hooks.build == schema.Command(line="make -j2 CC=coopt-cc")
    assert cfg.hooks.test == schema.Command(argv=("make", "check")) and cfg.hooks.timeout == 120.0
    assert cfg.nightly.dir == str(tmp_path / "out" / "nightly")
    for dotted, needle in (("compiler.path", "path ="), ("cache.dir", "dir = \"var"), ("optimize.levels", "levels"),
                           ("hooks.test", "test ="), ("nightly.dir", "dir = \"out")):
        origin = cfg.setting(dotted).origin
        assert origin.kind == "file" and origin.where == "%s:%d" % (path, _line_of(FULL, needle)), dotted
    assert cfg.setting("optimize.pairs").origin.kind == "default"


def test_precedence_default_file_environment_flag(tmp_path: Path) -> None:
    (tmp_path / "coopt.toml").write_text("[optimize]\nbudget = 7\nmin_gain = 1.05\npairs = 9\n")
    env = _clean_env(COOPT_MIN_GAIN="1.1", COOPT_PAIRS="11", COOPT_LEVELS="flags")
    cfg = load(str(tmp_path), environ=env, flags={"optimize.pairs": (13, "--pairs")})
    assert cfg.optimize.max_tus == 8 and cfg.setting("optimize.max_tus").origin.kind == "default"
    assert cfg.optimize.budget == 7 and cfg.setting("optimize.budget").origin.where.endswith("coopt.toml:2")
    assert cfg.optimize.min_gain == 1.1 and str(cfg.setting("optimize.min_gain").origin) == "env COOPT_MIN_GAIN"
    assert cfg.optimize.levels == ("flags",)
    assert cfg.optimize.pairs == 13 and str(cfg.setting("optimize.pairs").origin) == "flag --pairs"


def test_empty_variables_are_unset_but_an_empty_switch_is_off(tmp_path: Path) -> None:
    (tmp_path / "coopt.toml").write_text('[compiler]\npath = "clang-14"\n[cache]\nread_only = true\n')
    cfg = load(str(tmp_path), environ=_clean_env(COOPT_COMPILER="", COOPT_READONLY=""))
    assert cfg.compiler.path == "clang-14" and cfg.setting("compiler.path").origin.kind == "file"
    assert cfg.cache.read_only is False and cfg.setting("cache.read_only").origin.kind == "env"


def test_pyproject_tool_coopt(tmp_path: Path) -> None:
    text = '[project]\nname = "x"\n\n[tool.coopt.optimize]\nbudget = 3\n\n[tool.coopt.hooks]\nbuild = "make"\n'
    (tmp_path / "pyproject.toml").write_text(text)
    cfg = load(str(tmp_path), environ=_clean_env())
    assert cfg.file == str(tmp_path / "pyproject.toml") and cfg.optimize.budget == 3
    assert cfg.hooks.build == schema.Command(line="make")
    assert cfg.setting("hooks.build").origin.where == "%s:8" % (tmp_path / "pyproject.toml")
    # A pyproject.toml without [tool.coopt] is not a config: the search goes on upwards.
    inner = tmp_path / "pkg"
    inner.mkdir()
    (inner / "pyproject.toml").write_text('[project]\nname = "y"\n')
    assert load(str(inner), environ=_clean_env()).file == str(tmp_path / "pyproject.toml")
    # coopt.toml wins wherever it is: coopt-cc reads only coopt.toml, and both must read the same file.
    (tmp_path.parent / "coopt.toml").write_text("[optimize]\nbudget = 4\n")
    try:
        assert load(str(tmp_path), environ=_clean_env()).optimize.budget == 4
    finally:
        (tmp_path.parent / "coopt.toml").unlink()


def test_coopt_config_variable_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "coopt.toml").write_text("[optimize]\nbudget = 7\n")
    other = tmp_path / "elsewhere.toml"
    other.write_text("[optimize]\nbudget = 9\n")
    assert load(str(tmp_path), environ=_clean_env(COOPT_CONFIG=str(other))).optimize.budget == 9
    none = load(str(tmp_path), environ=_clean_env(COOPT_CONFIG=""))  # set but empty: no file, as for coopt-cc
    assert none.file == "" and none.optimize.budget == 20


def test_environment_carries_the_whole_configuration(tmp_path: Path) -> None:
    (tmp_path / "coopt.toml").write_text(FULL)
    cfg = load(str(tmp_path), environ=_clean_env())
    again = load(str(tmp_path), environ=_clean_env(COOPT_CONFIG="", **environment(cfg)))
    for a, b in zip(cfg.settings, again.settings, strict=True):
        if a.dotted == "hooks.test":  # an argv list travels as its shell line
            assert b.value == schema.Command(line="make check")
            continue
        assert (a.dotted, a.value) == (b.dotted, b.value)
        assert b.origin.kind in ("env", "default")


def test_an_unset_llm_timeout_leaves_the_local_providers_own(tmp_path: Path) -> None:
    """The schema's timeout is the openai provider's default; exported as a value it cut the local model's requests
    at 120 s on a loaded machine. Only a timeout the user set travels to the LLM client."""
    from coopt.llm.client import LLMConfig
    from coopt.llm.providers import LOCAL_TIMEOUT

    unset = environment(load(str(tmp_path), environ=_clean_env()))
    assert "COOPT_LLM_TIMEOUT" not in unset
    local = LLMConfig.from_env({**unset, "COOPT_LLM_BASE_URL": "http://127.0.0.1/v1", "COOPT_LLM_MODEL": "m",
                                "COOPT_LLM_API_KEY_ENV": ""}, str(tmp_path),
                               defaults={"COOPT_LLM_TIMEOUT": str(LOCAL_TIMEOUT)})
    assert local.timeout == LOCAL_TIMEOUT
    (tmp_path / "coopt.toml").write_text("[llm]\ntimeout = 30\n")
    assert environment(load(str(tmp_path), environ=_clean_env()))["COOPT_LLM_TIMEOUT"] == "30.0"


# --- coopt-cc's reader (wrapper/settings.py) and this one agree on the keys both read --------------------------

AGREEMENT = [
    # (coopt.toml text or None, environment, working directory below the file)
    (None, {}, ""),
    ('[compiler]\npath = "clang-14"\n[cache]\ndir = "c"\nread_only = true\n', {}, ""),
    ('[compiler]\npath = "clang-14"\n[cache]\ndir = "c"\nread_only = true\n',
     {"COOPT_COMPILER": "clang", "COOPT_CACHE_DIR": "/tmp/abs-cache", "COOPT_READONLY": "0"}, ""),
    ('[cache]\nread_only = true\n', {"COOPT_READONLY": ""}, ""),
    ('[cache]\nread_only = false\n', {"COOPT_READONLY": "yes"}, ""),
    ('[cache]\nread_only = true\n', {"COOPT_READONLY": "off"}, ""),
    ("", {"COOPT_READONLY": "TRUE"}, ""),
    ('[compiler]\npath = "clang-14"\n', {"COOPT_COMPILER": ""}, ""),
    ('[compiler]\nlauncher = "ccache"\n', {}, ""),
    ('[compiler]\nlauncher = "ccache"\n', {"COOPT_LAUNCHER": "sccache"}, ""),
    ('[compiler]\nlauncher = "ccache"\n', {"COOPT_LAUNCHER": ""}, ""),
    ('[cache]\ndir = "../shared-cache"\n', {}, "src/lib"),
    ('[cache]\ndir = "~/coopt-test-cache"\n', {}, "src"),
    ("", {"XDG_CACHE_HOME": "/tmp/xdg-somewhere"}, ""),
    ('[cache]\ndir = "c"\n', {"COOPT_CONFIG": ""}, ""),
    ('[cache]\ndir = "c"\n', {"COOPT_CONFIG": "OTHER"}, "src"),
    ('[cache]\ndir = "c"\n', {"COOPT_CACHE_DIR": "rel-cache"}, "src"),
    ('[cache]\nremote = ["file:///tmp/coopt-r1", "file:///tmp/coopt-r2|read-only"]\nremote_retry_after = 5\n', {}, ""),
    ('[cache]\nremote = "file:///tmp/coopt-r1"\nremote_read_only = true\nremote_recheck = 0\n', {}, ""),
    ('[cache]\nremote = ["file:///tmp/coopt-r1"]\nremote_read_only = true\n',
     {"COOPT_REMOTE_STORAGE": "file:///tmp/a file:///tmp/b", "COOPT_REMOTE_READ_ONLY": "0",
      "COOPT_REMOTE_RETRY_AFTER": "2.5", "COOPT_REMOTE_RECHECK": "10"}, ""),
    ('[cache]\nremote = ["file:///tmp/coopt-r1"]\n', {"COOPT_REMOTE_STORAGE": ""}, ""),
    ('[cache]\nbase_dir = "."\n', {}, "src/lib"),  # the checkout holding coopt.toml, from any subdirectory
    ('[cache]\nbase_dir = "/srv/checkouts/"\n', {}, ""),
    ('[cache]\nbase_dir = "."\n', {"COOPT_BASE_DIR": "/home/dev/"}, "src"),
    ('[cache]\nbase_dir = "."\n', {"COOPT_BASE_DIR": ""}, "src"),
]


@pytest.mark.parametrize("text, env, sub", AGREEMENT)
def test_both_readers_agree_on_shared_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str | None,
                                           env: dict[str, str], sub: str) -> None:
    for k in list(os.environ):
        if k.startswith("COOPT_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    project = tmp_path / "project"
    cwd = project / sub
    cwd.mkdir(parents=True)
    if text is not None:
        (project / "coopt.toml").write_text(text)
    other = tmp_path / "other" / "coopt.toml"
    other.parent.mkdir()
    other.write_text('[compiler]\npath = "clang-other"\n[cache]\ndir = "other-cache"\nread_only = true\n')
    for k, v in env.items():
        monkeypatch.setenv(k, str(other) if v == "OTHER" else v)
    monkeypatch.chdir(cwd)
    wrapper = wrapper_settings.load(str(cwd))
    ours = load(str(cwd))
    shared = [k for k in schema.KEYS if k.wrapper]
    assert {k.dotted for k in shared} == {"compiler.path", "compiler.launcher", "cache.dir", "cache.read_only",
                                          "cache.remote",
                                          "cache.remote_read_only", "cache.remote_retry_after", "cache.remote_recheck",
                                          "cache.serve_unverified", "cache.base_dir"}
    assert ours.compiler.path == wrapper.compiler
    assert ours.compiler.launcher == wrapper.launcher
    # coopt-cc keeps a relative COOPT_CACHE_DIR as given (relative to the compile's directory); we resolve it there.
    assert ours.cache.dir == os.path.normpath(os.path.join(str(cwd), wrapper.cache_dir))
    assert ours.cache.read_only == wrapper.read_only
    assert ours.cache.remote == wrapper.remote
    assert ours.cache.remote_read_only == wrapper.remote_read_only
    assert ours.cache.remote_retry_after == wrapper.remote_retry_after
    assert ours.cache.remote_recheck == wrapper.remote_recheck
    assert ours.cache.serve_unverified == wrapper.serve_unverified
    assert ours.cache.base_dir == wrapper.base_dir
    assert ours.file == wrapper.config_path


def test_coopt_cc_keys_are_refused_in_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.coopt.cache]\nmax_size = "1G"\ndir = "c"\n')
    with pytest.raises(ConfigError) as err:
        load(str(tmp_path), environ=_clean_env())
    assert str(err.value).startswith("%s:3: [cache] dir: coopt-cc reads this key from coopt.toml only" % (
        tmp_path / "pyproject.toml"))


# --- the key table, the dataclasses and the optimizer agree ----------------------------------------------------

def test_every_section_dataclass_has_exactly_its_keys() -> None:
    assert list(SECTION_TYPES) == list(schema.SECTIONS)
    for section, cls in SECTION_TYPES.items():
        assert [f.name for f in fields(cls)] == [k.name for k in schema.keys_of(section)], section
    envs = [k.env for k in schema.KEYS]
    assert len(set(envs)) == len(envs) and all(e.startswith("COOPT_") for e in envs)


def test_levels_providers_and_guides_match_the_optimizer() -> None:
    from coopt.agents import levels, registry
    from coopt.llm.providers import PROVIDERS
    from coopt.optimize.search.llm_guide import GUIDES

    # One table of levels: config offers exactly its rows, compiler levels first, and every row's factory exists.
    assert tuple(lv.name for lv in registry.LEVELS) == registry.COMPILER_LEVELS + registry.LLM_LEVELS
    assert schema.BY_DOTTED["optimize.levels"].default == registry.DEFAULT_LEVELS == ("flags", "pgo")
    for row in registry.LEVELS:
        levels.check_levels([row.name], "local")  # imports the row's factory; LevelUnavailable if it is missing
    assert set(schema.LLM_PROVIDERS) == set(PROVIDERS)
    assert schema.GUIDES == GUIDES


def test_docs_list_every_key() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "config.md").read_text()
    for key in schema.KEYS:
        assert "`%s`" % key.env in doc and "| `%s` |" % key.name in doc, key.dotted


def test_line_index_on_tricky_toml() -> None:
    text = (
        '# comment [not] a = 1\n'  # 1
        'top = 1\n'  # 2
        '[hooks]\n'  # 3
        'profile = """\n'  # 4
        '[fake]\n'  # 5
        'build = "inside a string"\n'  # 6
        '"""\n'  # 7
        'build = ["make", # a comment with ] in it\n'  # 8
        '  "x = 1",\n'  # 9
        ']\n'  # 10
        'test = {cmd = "x"}\n'  # 11
        '[ tool . "coopt" . optimize ]\n'  # 12
        'min_gain = 1.1  # comment\n'  # 13
        'nested.key = 2\n'  # 14
    )
    lines = index_lines(text)
    assert lines[("top",)] == 2 and lines[("hooks",)] == 3 and lines[("hooks", "profile")] == 4
    assert ("fake",) not in lines and lines[("hooks", "build")] == 8 and ("hooks", "x") not in lines
    assert lines[("hooks", "test")] == 11 and lines[("tool", "coopt", "optimize")] == 12
    assert lines[("tool", "coopt", "optimize", "min_gain")] == 13
    assert lines[("tool", "coopt", "optimize", "nested", "key")] == 14


# --- coopt config ------------------------------------------------------------------------------------------------

def test_config_show_names_each_origin(coopt: Coopt, tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "coopt.toml").write_text(FULL)
    coopt.env["COOPT_MIN_GAIN"] = "1.2"
    out = coopt.coopt("config", "show", cwd=proj).stdout
    path = proj / "coopt.toml"
    assert out.splitlines()[0] == "config file: %s" % path
    rows = {ln.split("=")[0].strip(): ln for ln in out.splitlines() if ln.startswith("  ")}
    assert rows["min_gain"].endswith("# env COOPT_MIN_GAIN") and "1.2" in rows["min_gain"]
    assert rows["budget"].endswith("# file %s:%d" % (path, _line_of(FULL, "budget")))
    assert '["make", "check"]' in rows["test"] and rows["pairs"].endswith("# default")
    # The cache directory comes from the environment the coopt fixture sets.
    assert rows["dir"].startswith("  dir") and str(coopt.cache_dir) in out
    data = json.loads(coopt.coopt("config", "show", "--json", cwd=proj).stdout)
    assert data["file"] == str(path)
    assert data["settings"]["optimize.min_gain"] == {"value": 1.2, "origin": "env", "where": "COOPT_MIN_GAIN"}
    assert data["settings"]["hooks.test"]["value"] == "make check"
    assert data["settings"]["optimize.levels"]["value"] == ["pgo", "flags"]
    assert set(data["settings"]) == {k.dotted for k in schema.KEYS}


def test_config_get_and_path(coopt: Coopt, tmp_path: Path) -> None:
    (tmp_path / "coopt.toml").write_text(FULL)
    assert coopt.coopt("config", "get", "cache.dir", cwd=tmp_path).stdout == "%s\n" % coopt.cache_dir
    assert coopt.coopt("config", "get", "hooks.build", cwd=tmp_path).stdout == "make -j2 CC=coopt-cc\n"
    assert coopt.coopt("config", "get", "optimize.assume_cpu", cwd=tmp_path).stdout == "true\n"
    assert coopt.coopt("config", "get", "optimize.levels", cwd=tmp_path).stdout == "pgo,flags\n"
    assert coopt.coopt("config", "path", cwd=tmp_path).stdout == "%s\n" % (tmp_path / "coopt.toml")
    bad = coopt.coopt("config", "get", "cache.size", cwd=tmp_path, check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown key 'cache.size'" in bad.stderr


def test_shown_values_read_back_as_toml(tmp_path: Path) -> None:
    """What `config show` prints for each value is valid TOML for that key (a user may paste it into the file)."""
    import tomllib

    (tmp_path / "coopt.toml").write_text(FULL + '\n')
    cfg = load(str(tmp_path), environ=_clean_env(COOPT_HOOK_BENCH='./app "quoted\\path"\tx'))
    for s in cfg.settings:
        if s.value is None:
            continue
        key = schema.BY_DOTTED[s.dotted]
        parsed = tomllib.loads("v = %s\n" % shown(s))["v"]
        assert key.kind.from_toml(parsed) == s.value, s.dotted


def test_optimize_options_come_from_the_config_once(tmp_path: Path) -> None:
    # The one mapping of config onto a run (CLI and nightly both use it): the file's values arrive, `given` wins.
    from coopt.optimize.options import OptimizeOptions

    (tmp_path / "coopt.toml").write_text('[optimize]\nlevels = ["pgo"]\nmin_gain = 1.1\npairs = 7\n'
                                         'budget_seconds = 30\nguide = "ucb"\nassume_cpu = true\n')
    cfg = load(str(tmp_path), environ=_clean_env(HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "xdg")))
    opts = OptimizeOptions.from_config(cfg, profile="p.json", pairs=9)
    assert (opts.levels, opts.min_gain, opts.budget_seconds, opts.assume_cpu) == (["pgo"], 1.1, 30.0, True)
    assert opts.pairs == 9 and opts.profile == "p.json" and opts.cache_dir == str(tmp_path / "xdg" / "coopt")
    assert opts.llm == "none" and opts.remotes is not None and opts.remotes.specs == ()
