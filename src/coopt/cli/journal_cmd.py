"""`coopt journal`: show or clear the journal."""

from __future__ import annotations

import argparse
import json
import os

from coopt.cache.layout import CacheLayout
from coopt.cli.common import load_settings
from coopt.journal import log as journal


def run(_name: str, argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="coopt journal", description="Show or clear the journal of compiles and links.")
    p.add_argument("action", nargs="?", default="show", choices=("show", "path", "clear"))
    p.add_argument("--json", action="store_true", help="one JSON record per line")
    a = p.parse_args(argv)
    layout = CacheLayout(load_settings().cache_dir)
    path = layout.journal_path
    if a.action == "path":
        print(path)
        return 0
    if a.action == "clear":
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        print("cleared %s" % path)
        return 0
    for rec in journal.read(path):
        if a.json:
            print(json.dumps(rec, sort_keys=True))
        elif rec["type"] == "compile":
            print("compile %s -> %s  (in %s)" % (rec["source"], rec["output"], rec["cwd"]))
        else:
            print("link    %s <- %s  (in %s)" % (rec["output"], " ".join(rec["inputs"]), rec["cwd"]))
    return 0
