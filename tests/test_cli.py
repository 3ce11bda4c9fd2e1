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
