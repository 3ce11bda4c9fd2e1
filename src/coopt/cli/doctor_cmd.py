"""`coopt doctor`: what this machine and configuration can and cannot do, each problem with its fix."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

DESCRIPTION = """Check the parts coopt needs: the config, clang and LLVM tools of the same version, coopt-cc on
PATH and coopt-cc-fast (its C fast path) built for this version, perf and its permission (it records a tiny
workload), the cache directory (writable, size, free space), the LLM endpoint or local model. Each finding says
what to do about it.

Exit 0 when nothing required is missing (warnings allowed), 1 when something is, 2 on bad usage."""


def _parser() -> argparse.ArgumentParser:
    from coopt.doctor import CHECKS

    p = argparse.ArgumentParser(prog="coopt doctor", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="machine-readable findings")
    p.add_argument("--only", action="append", choices=[name for name, _ in CHECKS], metavar="AREA",
                   help="run only this check (repeatable): %s" % ", ".join(name for name, _ in CHECKS))
    return p


def run(_name: str, argv: list[str]) -> int:
    """Entry point of `coopt doctor`."""
    a = _parser().parse_args(argv)
    from coopt.doctor import run_checks
    from coopt.redact import mask, mask_data

    findings = run_checks(a.only)
    errors = [f for f in findings if f.level == "error"]
    warnings = [f for f in findings if f.level == "warn"]
    if a.json:
        json.dump(mask_data({"ok": not errors, "findings": [asdict(f) for f in findings]}), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 1 if errors else 0
    width = max((len(f.area) for f in findings), default=0)
    for f in findings:
        print(mask("%-5s  %-*s  %s" % (f.level.upper() if f.level in ("warn", "error") else f.level, width, f.area,
                                       f.message)))
        if f.fix:
            print(mask("%-5s  %-*s  fix: %s" % ("", width, "", f.fix)))
    if errors:
        print("%d problem(s) must be fixed, %d warning(s)" % (len(errors), len(warnings)))
        return 1
    print("ready%s" % (" (%d warning(s))" % len(warnings) if warnings else ""))
    return 0
