"""`coopt compdb`: compile_commands.json from the journal (the newest compile of each object)."""

from __future__ import annotations

import argparse
import json
import os

from coopt.cache.layout import CacheLayout
from coopt.cli.common import load_settings
from coopt.journal import log as journal
from coopt.journal.job import CompileJob


def run(_name: str, argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="coopt compdb", description="Write compile_commands.json from the journal.")
    p.add_argument("-o", "--output", default="compile_commands.json", help="where to write ('-' for stdout)")
    p.add_argument("--under", default=None, help="only compiles whose directory is below this one (default: cwd)")
    p.add_argument("--all", action="store_true", help="every journaled compile, wherever it ran")
    a = p.parse_args(argv)
    layout = CacheLayout(load_settings().cache_dir)
    under = None if a.all else os.path.abspath(a.under or os.getcwd())
    db = []
    for rec in journal.latest_compiles(journal.read(layout.journal_path)):
        job = CompileJob.from_record(rec)
        if under and not (job.cwd == under or job.cwd.startswith(under.rstrip("/") + "/")):
            continue
        if not os.path.exists(job.source_path):
            continue  # a configure probe or a deleted file: nothing a tool could open
        db.append(
            {
                "directory": job.cwd,
                "arguments": [job.compiler, *job.args],
                "file": job.source_path,
                "output": job.output_path,
            }
        )
    db.sort(key=lambda d: (d["file"], d["output"]))
    text = json.dumps(db, indent=2)
    if a.output == "-":
        print(text)
    else:
        with open(a.output, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        print("wrote %d compile commands to %s" % (len(db), a.output))
    return 0
