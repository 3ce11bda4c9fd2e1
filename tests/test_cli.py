"""The `coopt` command itself: every registered subcommand loads and tells the truth about its usage."""

from __future__ import annotations

import importlib

import pytest

from conftest import Coopt
from coopt.cli import COMMANDS


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(coopt: Coopt, name: str) -> None:
    module = importlib.import_module(COMMANDS[name][0])
    assert callable(module.run)
    proc = coopt.coopt(name, "--help")
    assert proc.returncode == 0 and "usage" in proc.stdout.lower()


def test_top_level_help_lists_every_command(coopt: Coopt) -> None:
    out = coopt.coopt("--help").stdout
    for name in COMMANDS:
        assert name in out


def test_unknown_command_is_one_line(coopt: Coopt) -> None:
    proc = coopt.coopt("no-such-command", check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "coopt --help" in proc.stderr and "Traceback" not in proc.stderr


def test_versions_are_documented_where_users_look(coopt: Coopt) -> None:
    """coopt-cc --version is the real compiler's; coopt's own version flags are in --help and the README."""
    import subprocess
    from pathlib import Path

    from coopt import __version__

    assert coopt.coopt("--version").stdout.strip() == "coopt %s" % __version__
    own = subprocess.run([str(coopt.bin / "coopt-cc"), "--coopt-version"], env=coopt.env, capture_output=True,
                         text=True, check=True)
    assert __version__ in own.stdout
    real = subprocess.run([str(coopt.bin / "coopt-cc"), "--version"], env=coopt.env, capture_output=True, text=True)
    assert "clang" in real.stdout and "coopt" not in real.stdout
    helptext = " ".join(coopt.coopt("--help").stdout.split())
    readme = " ".join((Path(__file__).resolve().parent.parent / "README.md").read_text().split())
    for text in (helptext, readme):
        assert "coopt --version" in text and "coopt-cc --coopt-version" in text
