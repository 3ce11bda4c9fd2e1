"""`coopt cache`: stats, ls, show, rm, clear, evict, put."""

from __future__ import annotations

import argparse
import json
import os
import sys

from coopt.cache import stats as statsmod
from coopt.cache.store import Store, parse_size
from coopt.cli import UsageError
from coopt.cli.common import (
    job_for_command,
    job_for_object,
    load_config,
    load_settings,
    max_cache_size,
    open_store,
)
from coopt.wrapper.reasons import DESCRIPTIONS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coopt cache", description="Inspect and manage the variant cache.")
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    s = sub.add_parser("stats", help="hits, misses and pass-through reasons")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--zero", action="store_true", help="reset the counters")
    ls = sub.add_parser("ls", help="list entries")
    ls.add_argument("--json", action="store_true")
    sh = sub.add_parser("show", help="show one entry: job, recipe, evidence")
    sh.add_argument("key")
    rm = sub.add_parser("rm", help="remove one entry")
    rm.add_argument("key")
    sub.add_parser("clear", help="remove every entry, manifest and coopt-cc-fast memo (journal and stats stay)")
    ev = sub.add_parser("evict", help="remove least recently used entries above the size limit, and the "
                        "coopt-cc-fast memos of other coopt versions")
    ev.add_argument("--max-size", help="size limit (e.g. 500M); default [cache] max_size of coopt.toml, "
                    "COOPT_CACHE_MAX_SIZE overriding it, else 5G")
    put = sub.add_parser(
        "put",
        help="store an artifact as the variant for one compile",
        description="Store ARTIFACT as the variant for the TU of one compile: the newest journaled compile that "
        "wrote --for-object, or the compile command given after --. The variant is keyed on the TU's current "
        "source, headers, flags and compiler, built with the compile's flags, and served by the next build.",
    )
    put.add_argument("--artifact", required=True, help="the variant: .c (source), .ll (ir), .s (asm) or .o")
    put.add_argument("--level", default="", help="source, ir, asm, flags, pgo or object (default: by extension)")
    put.add_argument("--for-object", help="the object file of a journaled compile")
    put.add_argument("--cwd", default=".", help="working directory of the command after --")
    put.add_argument("--evidence", help="JSON file with the verification evidence")
    put.add_argument(
        "--unverified",
        action="store_true",
        help="store without evidence (for tests and experiments; recorded as unverified)",
    )
    put.add_argument("command", nargs=argparse.REMAINDER, help="-- COMPILER ARGS... (instead of --for-object)")
    sub.add_parser("push", help="upload every local entry to the writable remotes ([cache] remote)")
    return p


def run(_name: str, argv: list[str]) -> int:
    p = _parser()
    a = p.parse_args(argv)
    if a.action is None:
        p.print_help()
        return 0
    handler = {
        "stats": _stats,
        "ls": _ls,
        "show": _show,
        "rm": _rm,
        "clear": _clear,
        "evict": _evict,
        "put": _put,
        "push": _push,
    }[a.action]
    return handler(a)


def _stats(a: argparse.Namespace) -> int:
    store = open_store()
    if a.zero:
        statsmod.clear(store.layout.stats_dir)
        print("statistics zeroed")
        return 0
    counts = statsmod.read(store.layout.stats_dir)
    entries = store.entries()
    size = sum(e.size for e in entries)
    hits = counts.get("hit", 0)
    misses = sum(v for k, v in counts.items() if k.startswith("miss"))
    remotes = _remote_rows(counts)
    if a.json:
        summary = {
            "cache_dir": store.layout.root,
            "entries": len(entries),
            "size_bytes": size,
            "hits": hits,
            "misses": misses,
            "counters": dict(sorted((k, v) for k, v in counts.items() if not k.startswith("remote:"))),
            "remotes": remotes,
        }
        print(json.dumps(summary, indent=1, sort_keys=True))
        return 0
    print("cache directory   %s" % store.layout.root)
    print("entries           %d (%.1f MiB)" % (len(entries), size / (1 << 20)))
    print("hits              %d (%d without a compiler run)" % (hits, counts.get("hit_direct", 0)))
    print("misses            %d" % misses)
    for display, row in remotes.items():
        print("remote %s" % display)
        print("  hits %d, misses %d, errors %d, skipped while down %d; refused: %d corrupt, %d bad signature"
              % (row["hit"], row["miss"], row["error"], row["skipped"], row["corrupt"], row["bad_signature"]))
        print("  %d requests, mean %.1f ms; %.1f KiB in, %.1f KiB out; puts %d, refused %d, not written "
              "(read-only) %d" % (row["requests"], row["mean_ms"], row["bytes_in"] / 1024, row["bytes_out"] / 1024,
                                  row["put"], row["put_refused"], row["put_skipped_read_only"]))
    passes = {k: v for k, v in counts.items() if not k.startswith(("hit", "miss", "remote"))}
    if passes:
        print("passed through:")
        for name, n in sorted(passes.items(), key=lambda kv: -kv[1]):
            print("  %-22s %6d  %s" % (name, n, DESCRIPTIONS.get(name, "")))
    return 0


REMOTE_EVENTS = ("hit", "miss", "error", "skipped", "corrupt", "bad_signature", "requests", "us", "bytes_in",
                 "bytes_out", "put", "put_refused", "put_skipped_read_only")


def _remote_rows(counts: dict[str, int]) -> dict[str, dict]:
    """Per remote (by display URL, which holds no credentials): its counters and mean request latency."""
    from coopt.cache.remote.sync import backend_counters

    rows: dict[str, dict] = {}
    for display, events in sorted(backend_counters(counts).items()):
        row: dict = {e: events.get(e, 0) for e in REMOTE_EVENTS}
        row["mean_ms"] = round(row["us"] / row["requests"] / 1000, 3) if row["requests"] else 0.0
        rows[display] = row
    return rows


def _push(a: argparse.Namespace) -> int:
    """Upload every intact local entry that a local manifest leads to (the same upload as `put`'s)."""
    from coopt.cache import manifest
    from coopt.cache.publish import Remotes, upload

    settings = load_settings()
    if not settings.remote:
        raise UsageError("no remote configured ([cache] remote or COOPT_REMOTE_STORAGE)")
    store = open_store()
    remotes = Remotes(settings.remote, settings.remote_read_only)
    pushed = 0
    for entry in store.entries():
        direct_key = entry.meta.get("direct_key")
        if not isinstance(direct_key, str) or not store.verify(entry):
            continue
        found = [r for r in manifest.load(store.layout.manifest_path(direct_key)) if r.get("key") == entry.key]
        if not found or found[0].get("deps") is None:
            continue
        deps = [(p, h) for p, h in found[0]["deps"]]
        for line in upload(store.layout, entry, direct_key, deps, remotes):
            print("%s  %s" % (entry.key, line))
        pushed += 1
    print("%d entr%s offered to %d remote(s)" % (pushed, "y" if pushed == 1 else "ies", len(settings.remote)))
    return 0


def _ls(a: argparse.Namespace) -> int:
    store = open_store()
    rows = []
    for e in store.entries():
        job = e.meta.get("job", {})
        rows.append(
            {
                "key": e.key,
                "level": e.meta.get("level", "?"),
                "source": os.path.join(job.get("cwd", ""), job.get("source", "")),
                "size": e.size,
                "stored": e.meta.get("stored", ""),
                "verified": bool(e.meta.get("evidence", {}).get("verified", False)),
            }
        )
    if a.json:
        print(json.dumps(rows, indent=1, sort_keys=True))
        return 0
    if not rows:
        print("no entries in %s" % store.layout.root)
        return 0
    for r in rows:
        print("%s  %-6s  %-10s  %s%s" % (r["key"], r["level"], r["stored"][:10], r["source"],
                                          "" if r["verified"] else "  (unverified)"))
    return 0


def _find(store: Store, key: str) -> str:
    matches = [e.key for e in store.entries() if e.key.startswith(key)]
    if not matches:
        raise UsageError("no entry %s; `coopt cache ls` lists them" % key)
    if len(matches) > 1:
        raise UsageError("%s is ambiguous (%d entries); give more of the key" % (key, len(matches)))
    return matches[0]


def _show(a: argparse.Namespace) -> int:
    store = open_store()
    key = _find(store, a.key)
    entry = store.get(key)
    assert entry is not None
    intact = store.verify(entry)
    print(json.dumps({"path": entry.path, "intact": intact, **entry.meta}, indent=1, sort_keys=True))
    return 0


def _rm(a: argparse.Namespace) -> int:
    store = open_store(read_only=False)
    key = _find(store, a.key)
    store.remove(key)
    print("removed %s" % key)
    return 0


def _clear(_a: argparse.Namespace) -> int:
    store = open_store(read_only=False)
    n = store.clear()
    print("removed %d entries from %s" % (n, store.layout.root))
    return 0


def _evict(a: argparse.Namespace) -> int:
    cfg = load_config()  # [cache] dir and max_size from coopt.toml, COOPT_* overriding, as `coopt config show`
    store = Store(cfg.cache.dir)
    try:
        limit = parse_size(a.max_size) if a.max_size else cfg.cache.max_size
    except ValueError as exc:
        raise UsageError("--max-size: %s" % exc) from exc
    removed = store.evict(limit)
    print("evicted %d entries; %.1f MiB left" % (len(removed), store.total_size() / (1 << 20)))
    return 0


_LEVEL_BY_EXT = {".c": "source", ".ll": "ir", ".s": "asm", ".S": "asm", ".o": "object"}


def _put(a: argparse.Namespace) -> int:
    from coopt.cache.publish import PutError, Remotes, put_variant

    store = open_store(read_only=False)
    if store.read_only:
        raise UsageError("the cache is read-only (COOPT_READONLY or [cache] read_only)")
    command = a.command[1:] if a.command and a.command[0] == "--" else a.command
    if bool(a.for_object) == bool(command):
        raise UsageError("give exactly one of --for-object OBJ or -- COMPILE COMMAND")
    if a.evidence:
        try:
            with open(a.evidence, encoding="utf-8") as f:
                evidence = json.load(f)
        except (OSError, ValueError) as exc:
            raise UsageError("cannot read evidence %s: %s" % (a.evidence, exc)) from exc
        if not isinstance(evidence, dict):
            raise UsageError("evidence %s must hold a JSON object" % a.evidence)
    elif a.unverified:
        evidence = {"verified": False, "by": "coopt cache put --unverified"}
    else:
        raise UsageError("a variant needs --evidence FILE (from `coopt verify`) or an explicit --unverified")
    from coopt.agents.registry import BY_NAME

    level = a.level or _LEVEL_BY_EXT.get(os.path.splitext(a.artifact)[1], "")
    if not level:
        raise UsageError("cannot tell the level of %s; pass --level" % a.artifact)
    if level != "object" and level not in BY_NAME:
        raise UsageError("unknown level %r (one of %s, object)" % (level, ", ".join(BY_NAME)))
    kind = "object" if level == "object" else BY_NAME[level].artifact
    if a.for_object:
        job = job_for_object(store.layout, a.for_object)
    else:
        job = job_for_command(command, os.path.abspath(a.cwd))
    from filelock import Timeout

    settings = load_settings()
    remote_lines: list[str] = []
    try:
        entry = put_variant(store, job, a.artifact, kind, evidence,
                            remotes=Remotes(settings.remote, settings.remote_read_only), report=remote_lines,
                            level=level)
    except PutError as exc:
        sys.stderr.write("coopt cache put: error: %s\n" % exc)
        return 1
    except Timeout as exc:
        sys.stderr.write("coopt cache put: error: another process holds %s; try again\n" % exc.lock_file)
        return 1
    except OSError as exc:
        sys.stderr.write("coopt cache put: error: %s: %s\n" % (exc.filename or store.layout.root, exc.strerror))
        return 1
    store.evict(max_cache_size())
    print("stored %s for %s (%s)" % (entry.key, job.source_path, level))
    for line in remote_lines:
        print("  remote %s" % line)
    return 0
