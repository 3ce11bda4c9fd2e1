"""The size of the parts (STYLE.md: split a folder before it passes ~15 modules, a file before ~600 lines), so the
layout stays one a reader can find their way in. The check runs on a synthetic tree first: a check that finds
nothing cannot pass silently."""

from __future__ import annotations

import pathlib

SRC = pathlib.Path(__file__).resolve().parent.parent / "src" / "coopt"
MAX_MODULES = 15  # per folder, __init__.py not counted
MAX_LINES = 600  # per module


def oversized(root: pathlib.Path) -> list[str]:
    """Every folder under `root` with more than MAX_MODULES modules and every module longer than MAX_LINES."""
    found = []
    for folder in sorted(p for p in [root, *root.rglob("*")] if p.is_dir() and p.name != "__pycache__"):
        modules = [m for m in folder.glob("*.py") if m.name != "__init__.py"]
        if len(modules) > MAX_MODULES:
            found.append("%s: %d modules" % (folder.relative_to(root), len(modules)))
        for m in modules:
            lines = len(m.read_text().splitlines())
            if lines > MAX_LINES:
                found.append("%s: %d lines" % (m.relative_to(root), lines))
    return found


def test_the_check_finds_a_crowded_folder_and_a_long_module(tmp_path: pathlib.Path) -> None:
    crowded = tmp_path / "crowded"
    crowded.mkdir()
    for i in range(MAX_MODULES + 1):
        (crowded / ("m%d.py" % i)).write_text("x = 1\n")
    (tmp_path / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    (tmp_path / "fine.py").write_text("x = 1\n" * MAX_LINES)
    assert sorted(oversized(tmp_path)) == ["crowded: %d modules" % (MAX_MODULES + 1),
                                           "long.py: %d lines" % (MAX_LINES + 1)]


def test_no_folder_or_module_of_coopt_is_oversized() -> None:
    assert oversized(SRC) == []
