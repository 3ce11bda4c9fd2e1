"""`coopt cache`: stats, ls, show, rm, clear, evict, put."""

from __future__ import annotations

import argparse
import json
import os
import sys

from coopt.cache import stats as statsmod
from coopt.cache.store import KEEP_RUNS, Entry, Store, parse_size
from coopt.cli import UsageError
from coopt.cli.common import (
    job_for_command,
    job_for_object,
    load_config,
    load_settings,
    max_cache_size,
    open_store,
)
from coopt.journal.job import CompileJob
from coopt.redact import mask_data
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
    ev = sub.add_parser("evict", help="remove least recently used entries above the size limit (and, with "
                        "--older-than, those unused that long), the coopt-cc-fast memos of other coopt versions, "
                        "superseded journal records and all but the newest %d optimize runs" % KEEP_RUNS)
    ev.add_argument("--max-size", help="size limit (e.g. 500M); default [cache] max_size of coopt.toml, "
                    "COOPT_CACHE_MAX_SIZE overriding it, else 5G")
    ev.add_argument("--older-than", metavar="AGE", help="also remove entries not used, runs not touched and objects "
                    "kept for compile-and-link calls not rebuilt for AGE (e.g. 7d, 12h, 30m, 2w)")
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
        _stamp_zeroed(store.layout.stats_zeroed_path)
        print("statistics zeroed")
        return 0
    zeroed = _read_zeroed(store.layout.stats_zeroed_path)
    limit = max_cache_size()
    counts = statsmod.read(store.layout.stats_dir)
    entries = store.entries()
    size = sum(e.size for e in entries)
    statuses = [_status(e) for e in entries]
    unverified = statuses.count("unverified")
    refused = len(statuses) - unverified - statuses.count("")
    hits = counts.get("hit", 0)
    misses = sum(v for k, v in counts.items() if k.startswith("miss"))
    remotes = _remote_rows(counts)
    candidates = hits + misses
    rate = hits / candidates if candidates else None
    if a.json:
        summary = {
            "cache_dir": store.layout.root,
            "entries": len(entries),
            "entries_unverified": unverified,
            "entries_not_accepted": refused,
            "size_bytes": size,
            "max_size_bytes": limit,
            "hits": hits,
            "misses": misses,
            "hit_rate": rate,
            "zeroed": zeroed,
            "counters": dict(sorted((k, v) for k, v in counts.items() if not k.startswith("remote:"))),
            "remotes": remotes,
        }
        print(json.dumps(summary, indent=1, sort_keys=True))
        return 0
    print("cache directory   %s" % store.layout.root)
    print("statistics since  %s" % (zeroed or "the cache was created (never zeroed)"))
    print("entries           %d%s" % (len(entries), "".join(
        ", %d %s" % (n, what) for n, what in ((unverified, "unverified (served only with serve_unverified)"),
                                              (refused, "never served: evidence not accepted")) if n)))
    print("size              %s of %s (%.0f%%)" % (mib(size), mib(limit), 100.0 * size / limit if limit else 0))
    rebuilt = counts.get("hit_rebuilt", 0)  # stored by a checkout at another path (docs/remote.md)
    fast = counts.get("hit_fast", 0)  # replayed by coopt-cc-fast (wrapper/fastpath.py)
    print("hits              %d (%d without a compiler run%s%s)" % (
        hits, counts.get("hit_direct", 0), (", %d served by coopt-cc-fast" % fast) if fast else "",
        (", %d rebuilt with this checkout's paths" % rebuilt) if rebuilt else ""))
    print("misses            %d" % misses)
    print("hit rate          %s" % ("%.1f%% of %d candidate compiles" % (100 * rate, candidates)
                                    if rate is not None else "no candidate compiles yet"))
    for display, row in remotes.items():
        print("remote %s" % display)
        print("  hits %d, misses %d, errors %d, skipped while down %d; refused: %d corrupt, %d bad signature"
              % (row["hit"], row["miss"], row["error"], row["skipped"], row["corrupt"], row["bad_signature"]))
        print("  %d requests, mean %.1f ms; %s in, %s out; puts %d, refused %d, not written "
              "(read-only) %d" % (row["requests"], row["mean_ms"], mib(row["bytes_in"]), mib(row["bytes_out"]),
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
        if not isinstance(direct_key, str) or _status(entry) not in ("", "unverified") or not store.verify(entry):
            continue  # a refused entry would be refused by every teammate too
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
                "verified": _status(e) == "",
                "status": _status(e) or "accepted",
            }
        )
    if a.json:
        print(json.dumps(rows, indent=1, sort_keys=True))
        return 0
    if not rows:
        print("no entries in %s" % store.layout.root)
        return 0
    print("%-32s  %-6s  %-10s  %10s  %s" % ("KEY", "LEVEL", "STORED", "SIZE", "SOURCE (STATUS)"))
    for r in rows:
        print("%-32s  %-6s  %-10s  %10s  %s%s" % (r["key"], r["level"], r["stored"][:10], mib(r["size"]),
                                                  r["source"],
                                                  "" if r["verified"] else "  (%s)" % _status_text(r["status"])))
    return 0


def _stamp_zeroed(path: str) -> None:
    import time

    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(time.strftime("%Y-%m-%d %H:%M:%S %Z") + "\n")
    except OSError:
        pass


def _read_zeroed(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return ""


def _status(entry: Entry) -> str:
    """"" for an entry coopt-cc serves; "unverified" (served only with the opt-in), or why it is never served."""
    from coopt.cache.accept import servable

    return servable(entry.meta, False)


def _status_text(status: str) -> str:
    return "unverified" if status == "unverified" else "never served: %s" % status


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
    print(json.dumps(mask_data({"path": entry.path, "intact": intact, **entry.meta}), indent=1, sort_keys=True))
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
    try:
        older = parse_age(a.older_than) if a.older_than else None
    except ValueError as exc:
        raise UsageError("--older-than: %s" % exc) from exc
    removed = store.evict(limit, older)
    records, runs, kept = store.trim_history(older)
    print("evicted %d entries; %s left of %s; %d superseded journal record(s), %d old run(s) and %d unused kept "
          "object(s) removed" % (len(removed), mib(store.total_size()), mib(limit), records, runs, kept))
    return 0


AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> float:
    """`7d` -> seconds; units s, m, h, d, w."""
    t = text.strip().lower()
    if len(t) < 2 or t[-1] not in AGE_UNITS or not t[:-1].replace(".", "", 1).isdigit():
        raise ValueError("%r is not an age such as 7d, 12h, 30m or 2w" % text)
    return float(t[:-1]) * AGE_UNITS[t[-1]]


def mib(n: int) -> str:
    """Every size this command prints, in one unit."""
    return "%.1f MiB" % (n / (1 << 20))


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
    if a.evidence:
        from coopt.cache.accept import UNVERIFIED, refusal

        why = refusal(evidence, level) or ""
        if why == UNVERIFIED:
            why = "it records no verification; store it with --unverified if that is what you mean"
        if why:
            sys.stderr.write("coopt cache put: error: evidence %s refused: %s\n" % (a.evidence, why))
            return 1
    if a.for_object:
        job = job_for_object(store.layout, a.for_object)
    else:
        job = job_for_command(command, os.path.abspath(a.cwd))
    changed = _changed_functions(job, a.artifact) if a.evidence and level == "source" else None
    from filelock import Timeout

    settings = load_settings()
    remote_lines: list[str] = []
    try:
        entry = put_variant(store, job, a.artifact, kind, evidence,
                            remotes=Remotes(settings.remote, settings.remote_read_only), report=remote_lines,
                            level=level, changed_functions=changed)
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


def _changed_functions(job: CompileJob, artifact: str) -> list[str] | None:
    """The functions whose bodies a source-level artifact changes, as the verifier sees them (coopt.verify
    signatures: bodies compared without whitespace); the entry records them and its evidence must cover each.
    None when text outside the bodies changed too (types, macros, globals): then no function list says it all,
    and the verdict and level are what is checked."""
    from coopt.verify import signatures

    cflags = [*job.key_args, "-iquote", os.path.dirname(job.source_path)]
    here = os.getcwd()
    try:
        os.chdir(job.cwd)  # relative -I and -include resolve against the compile's directory
        original = signatures.parse(job.source_path, cflags, job.compiler)
        candidate = signatures.parse(os.path.join(here, artifact), cflags, job.compiler)
    except (signatures.SignatureError, OSError) as exc:
        raise UsageError("cannot tell which functions %s changes: %s" % (artifact, exc)) from exc
    finally:
        os.chdir(here)

    def flat(text: str) -> str:
        return " ".join(text.split())

    if flat(original.outside_bodies) != flat(candidate.outside_bodies):
        return None
    return sorted(f for f, body in original.bodies.items() if flat(body) != flat(candidate.bodies.get(f, "")))
