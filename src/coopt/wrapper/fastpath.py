"""Replay memos for coopt-cc-fast, the C miss path (src/coopt/data/fastcc.c).

After the Python wrapper decides a call is a plain miss (or a link, or a pass-through), it writes a memo keyed by a
fingerprint of everything that decision depended on. The next identical call is handled by coopt-cc-fast in about
a millisecond instead of Python's ten: it re-checks what could have changed (compiler binary, PATH lookup, a
variant appearing), hashes the source, completes the key, journals and execs the real compiler. All knowledge of
options and key layout stays here, in Python; the C side only fills in the source hash.

A compile's memo may also carry a *direct hit* Python served (`HitReplay`): every fact the hit was decided on, as
checks the C side repeats (the headers' and the entry's files' content hashes, the header search's facts, the
manifest and the entry directory unchanged), and the object to copy. coopt-cc-fast serves that hit again only when
the source hashes to the same key and every check holds; anything else goes to Python.

A second memo, the *shape* memo, serves the other TUs of the same build on a first (cold) build: it is keyed by the
call with its source and object names replaced by tokens (`shape`), and its texts carry the same tokens, which the
C side replaces by the call's own names. Python writes one only after checking, by rendering the decision for the
real names and for two probe names, that the decision depends on the names through those tokens alone.

Memo format: NFIELDS fields, each `<decimal byte length>\\n<bytes>\\n`, in the order of FIELDS below.
"""

from __future__ import annotations

import os

from coopt.cache.key import ENV_ALLOWLIST
from coopt.cache.layout import CacheLayout, memo_dir_name

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: the miss path stays import-light
    from coopt.wrapper.call import Describer, Served
    from coopt.wrapper.classify import Classified

MEMO_MAGIC = "coopt-fast-6"
FIELDS = (
    "magic", "exec", "real", "stamp", "lookup_name", "path_index", "skip_dir", "source",
    "material_head", "material_tail", "journal_body", "journal_path", "stats_dir", "manifests_dir", "drop_args",
    "expires", "kind", "counter", "launcher",
    # A direct hit to replay (HitReplay), all "" for none: its key, its checks (one per line, HIT_CHECKS), the
    # entry's object and its hash, the entry directory, the output it is copied to and the counters it bumps.
    "hit_key", "hit_checks", "hit_object", "hit_object_digest", "hit_entry", "hit_output", "hit_counters",
)
# The checks of a replayed hit, `kind<TAB>argument<TAB>path`, as fastcc.c runs them: a file whose content hashes to
# the argument (and was not modified at or after the call's start), the header search's facts
# (manifest.lookups_hold), a file or directory with the same inode (and size and mtime: "ino size mtime_ns").
HIT_CHECKS = ("hash", "absent", "isfile", "isdir", "dirstat", "same", "inode")
HIT_COUNTERS = ("hit", "hit_direct", "hit_fast")
# The modules whose rules decided a hit: a memo's hit holds only while they are the same files (an upgrade may
# judge evidence or manifests differently, so its first hit of each TU is decided by Python again).
_RULES = ("coopt.cache.accept", "coopt.cache.store", "coopt.cache.manifest", "coopt.wrapper.serve", __name__)
# What a memo replays (its "kind" field): a compile that missed (key, manifest check, journal record ending with the
# key), a link (a whole journal record) or a pass-through (a counter only).
KINDS = ("compile", "link", "pass")
# Shape memos (see the module's docstring): the tokens, and the characters a name they stand for may have.
SHAPE_VERSION = "shape1"
SHAPE_MARK = "@@coopt:"
SOURCE_TOKEN = SHAPE_MARK + "source@@"
OUTPUT_TOKEN = SHAPE_MARK + "output@@"
_SHAPE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-/")
# Names the decision is rendered for besides the call's own: one makes the template, the other checks it.
_PROBES = (("coopt-probe-1.c", "coopt-probe-1.o"), ("sub/coopt-probe-22.c", "obj/coopt-probe-22.c.o"))
_ROOT = "/coopt-probe-root/"  # the directory of the probe names when the call's own name is absolute
# Settings read from the environment that change the decision a memo replays: part of the fingerprint.
# COOPT_BASE_DIR changes the key material the memo holds (a coopt.toml's base_dir is covered by its hash).
FINGERPRINT_ENV = ("PATH", "COOPT_COMPILER", "COOPT_REMOTE_STORAGE", "COOPT_REMOTE_RECHECK", "COOPT_BASE_DIR",
                   "COOPT_LAUNCHER", "COOPT_SERVE_UNVERIFIED")
# Environment that makes the wrapper behave differently; coopt-cc-fast hands such calls to Python (fastcc.c).
DEFER_ENV = ("COOPT_DISABLE", "COOPT_DEBUG", "COOPT_READONLY", "COOPT_CONFIG", "COOPT_JOURNAL")


def fingerprint(
    self_path: str,
    args: list[str],
    cwd: str,
    environ: dict[str, str] | os._Environ[str],
    version: str = "1",
    config: tuple[str, str] = ("", ""),
) -> str:
    """The text coopt-cc-fast hashes to find a memo; fastcc.c builds it byte for byte the same.

    `version` is "1" for a call's own memo, SHAPE_VERSION for a shape memo (`args` then is `shape(...)[0]`).
    `config` is the coopt.toml in force and the hash of its bytes, when there is one.
    """
    parts = ["v=%s\n" % version, "cwd=%s\n" % cwd, "self=%s\n" % self_path]
    if config[0]:
        parts.append("config=%s\nconfig-hash=%s\n" % config)
    parts.extend("arg=%s\n" % a for a in args)
    for name in FINGERPRINT_ENV:
        if name in environ:
            parts.append("env:%s=%s\n" % (name, environ[name]))
    for name in ENV_ALLOWLIST:
        if name in environ:
            parts.append("env:%s=%s\n" % (name, environ[name]))
    return "".join(parts)


def _shape_name(name: str, ext: str) -> bool:
    """A source or output name a shape memo may stand for: plain characters (JSON and normpath leave it as it is),
    the given extension, not an option, no hidden or relative components."""
    return (
        len(name) > len(ext)
        and name.endswith(ext)
        and name[0] not in "-."
        and "/." not in name
        and "//" not in name
        and all(ch in _SHAPE_CHARS for ch in name)
    )


def implied_object(source: str) -> str:
    """The object a compile without `-o` writes (classify's default): the source's base name with `.o`."""
    return os.path.basename(source)[: -len(".c")] + ".o"


def shape(args: list[str]) -> tuple[list[str], str, str] | None:
    """The call's arguments with its source and output names replaced by tokens, the source and the output; None
    when the call has no shape. fastcc.c computes it the same way (tests check).

    The output is the word after the only `-o` (without one, `implied_object`); the source the only other word
    ending in `.c` that is not an option. Words equal to the output, or to the output followed by `.` and more
    (CMake's `-MF obj.o.d`), get the output's token; words equal to the source the source's. An absolute name's
    token is written after a "/" in the shape: relative and absolute names are decided differently (a relative one
    is joined to the directory).
    """
    out_at = -1
    for i, a in enumerate(args):
        if SHAPE_MARK in a:
            return None
        if a == "-o":
            if out_at >= 0 or i + 1 >= len(args):
                return None
            out_at = i + 1
    sources = [i for i, a in enumerate(args) if i != out_at and a.endswith(".c") and not a.startswith("-")]
    if len(sources) != 1:
        return None
    source = args[sources[0]]
    output = args[out_at] if out_at >= 0 else implied_object(source)
    if not _shape_name(output, "") or not _shape_name(source, ".c"):
        return None
    out_token = "/" + OUTPUT_TOKEN if output[0] == "/" else OUTPUT_TOKEN
    source_token = "/" + SOURCE_TOKEN if source[0] == "/" else SOURCE_TOKEN
    shaped = []
    for i, a in enumerate(args):
        if i == out_at or a == output:
            shaped.append(out_token)
        elif a.startswith(output + "."):
            shaped.append(out_token + a[len(output) :])
        elif a == source:
            shaped.append(source_token)
        else:
            shaped.append(a)
    return shaped, source, output


def fill(text: str, source: str, output: str) -> str:
    """A shape memo's text for a call's own names (fastcc.c does the same)."""
    return text.replace(SOURCE_TOKEN, source).replace(OUTPUT_TOKEN, output)


def memo_path(layout: CacheLayout, fp_text: str) -> str:
    from coopt.cache.hashing import short_hash

    h = short_hash(fp_text)
    return os.path.join(layout.root, memo_dir_name(), h[:2], h)


def eligible(self_path: str, args: list[str], cwd: str, cache_dir_from_config: bool) -> bool:
    """Calls the C side could replay: no response files, nothing that needs Python to decide, and the cache
    directory not named by coopt.toml (coopt-cc-fast finds it from the environment alone)."""
    if cache_dir_from_config or "PATH" not in os.environ or any(v in os.environ for v in DEFER_ENV):
        return False
    if "\n" in cwd or "\n" in self_path:
        return False
    return not any(a.startswith("@") or "\n" in a for a in args)


def _path_index(name: str, found: str) -> int:
    """Index of the PATH entry `found` came from, as fastcc.c walks PATH (an empty entry is ".")."""
    for i, d in enumerate(os.environ.get("PATH", "").split(os.pathsep)):
        if os.path.join(d or ".", name) == found:
            return i
    return -1


class Rendering:
    """What a decision amounts to for coopt-cc-fast: its kind (KINDS) and the statistics counter it bumps; for a
    compile the source file it hashes, the key material (with the source's hash in it) and the journal record
    (JSON text ending with the key); for a link the journal record."""

    __slots__ = ("kind", "counter", "source_path", "direct", "record")

    def __init__(self, kind: str, counter: str, source_path: str = "", direct: str = "", record: str = "") -> None:
        self.kind = kind
        self.counter = counter
        self.source_path = source_path
        self.direct = direct
        self.record = record

    def texts(self) -> tuple[str, str, str, str, str]:
        return self.kind, self.counter, self.source_path, self.direct, self.record


class MemoTarget:
    """Where and for whom a memo is written: the call's compiler as resolved, and when the memo stops counting."""

    __slots__ = ("layout", "exec_path", "lookup_name", "skip_dir", "drop_args", "expires", "launcher")

    def __init__(
        self, layout: CacheLayout, exec_path: str, lookup_name: str, skip_dir: str, drop_args: int, expires: int,
        launcher: str = "",
    ) -> None:
        self.layout = layout
        self.exec_path = exec_path
        self.lookup_name = lookup_name
        self.skip_dir = skip_dir
        # How many of coopt-cc's own arguments are not the compiler's (1 in the prefix form).
        self.drop_args = drop_args
        # Unix seconds (0: never) when coopt-cc-fast stops replaying and hands the call to Python again: with
        # remote stores configured a local miss may turn into a remote hit.
        self.expires = expires
        # The launcher (ccache, ...) the compiler runs behind, "" for none: coopt-cc-fast execs
        # `launcher exec_path ARGS`, and passes over the launcher's own symlinks on PATH as Python's lookup does.
        self.launcher = launcher


class HitReplay:
    """A direct hit Python served, as coopt-cc-fast may serve it again: the key, the checks (HIT_CHECKS lines), the
    entry's object with its hash, the entry directory (touched for LRU as Store.lookup does) and the output."""

    __slots__ = ("key", "checks", "object_path", "object_digest", "entry_dir", "output")

    def __init__(self, key: str, checks: str, object_path: str, object_digest: str, entry_dir: str,
                 output: str) -> None:
        self.key = key
        self.checks = checks
        self.object_path = object_path
        self.object_digest = object_digest
        self.entry_dir = entry_dir
        self.output = output


def hit_replay(served: Served, direct_key: str, output: str, cwd: str) -> HitReplay | None:
    """The direct hit `served` as checks coopt-cc-fast repeats, or None when it cannot be written as such.

    Each fact try_hit (wrapper/serve.py) decided the hit on becomes a check: the manifest result's files (the
    source and every header) still hash as recorded, the header search's facts still hold, the manifest is the
    same file (a newer result would come first), the entry directory is the same one and every file its
    checksums list (meta.json with the evidence, key.txt with the key material, the object) still hashes as then;
    and the code that judged it (_RULES) is the same.
    """
    import sys

    from coopt.cache.key import local_path
    from coopt.cache.store import OBJECT_NAME, read_checksums

    found, entry = served.found, served.entry
    sums = read_checksums(entry.path)
    if sums is None or OBJECT_NAME not in sums or entry.inode is None:
        return None
    lines = ["inode\t%d\t%s" % (entry.inode, entry.path)]
    for path in [served.manifest_path] + [getattr(sys.modules.get(name), "__file__", None) or "" for name in _RULES]:
        try:
            st = os.stat(path)
        except OSError:
            return None
        lines.append("same\t%d %d %d\t%s" % (st.st_ino, st.st_size, st.st_mtime_ns, path))
    lines.extend("hash\t%s\t%s" % (digest, local_path(path, cwd)) for path, digest in found.deps)
    for kind, arg in found.checks:
        if kind == "dirstat":
            fields = arg.split(" ", 2)
            if len(fields) != 3:
                return None
            lines.append("dirstat\t%s %s\t%s" % (fields[0], fields[1], local_path(fields[2], cwd)))
        elif kind in ("absent", "isfile", "isdir"):
            lines.append("%s\t\t%s" % (kind, local_path(arg, cwd)))
        else:
            return None  # a fact this version's C side does not know: Python decides every time
    lines.extend("hash\t%s\t%s" % (digest, os.path.join(entry.path, name))
                 for name, digest in sorted(sums.items()) if name != OBJECT_NAME)
    if any("\n" in line for line in lines) or "\n" in output:
        return None
    return HitReplay(direct_key, "\n".join(lines), entry.object_path, sums[OBJECT_NAME], entry.path, output)


def write_memo(target: MemoTarget, fp_text: str, rendering: Rendering, source_hash: str = "", key: str = "",
               hit: HitReplay | None = None) -> bool:
    """Leave (or refresh) the replay memo for this call. False when the call cannot be replayed in C.

    `source_hash` and `key` are a compile's: where the C side puts its own source's hash and key. `hit`, for a
    compile whose key is `key`: the direct hit coopt-cc-fast may serve again.
    """
    exec_path = target.exec_path
    real = os.path.realpath(exec_path)
    try:
        st = os.stat(real)
    except OSError:
        return False
    index = -1
    lookup_name = target.lookup_name
    if lookup_name and "/" not in lookup_name:
        index = _path_index(lookup_name, exec_path)
        if index < 0:
            return False
    else:
        lookup_name = ""
    head = tail = body = ""
    encoded = rendering.record
    if rendering.kind == "compile":
        direct = rendering.direct
        marker = "source-hash=%s\n" % source_hash
        cut = direct.find(marker)
        if cut < 0:
            return False
        head = direct[: cut + len("source-hash=")]
        tail = direct[cut + len(marker) - 1 :]
        suffix = '%s"}' % key
        if not encoded.startswith("{") or not encoded.endswith(suffix):
            return False
        body = encoded[1 : -len(suffix)]
    elif rendering.kind == "link":
        if not encoded.startswith("{") or not encoded.endswith("}"):
            return False
        body = encoded[1:]
    elif rendering.kind != "pass":
        return False
    layout = target.layout
    values = (
        MEMO_MAGIC, exec_path, real, "%d %d" % (st.st_size, st.st_mtime_ns), lookup_name, str(max(index, 0)),
        target.skip_dir, rendering.source_path, head, tail, body, layout.journal_path, layout.stats_dir,
        os.path.join(layout.root, "manifests"), str(target.drop_args), str(target.expires), rendering.kind,
        rendering.counter, target.launcher,
    ) + _hit_values(hit if rendering.kind == "compile" and hit is not None and hit.key == key else None)
    blob = b"".join(b"%d\n%s\n" % (len(v), v) for v in (x.encode("utf-8", "surrogateescape") for x in values))
    path = memo_path(layout, fp_text)
    try:
        with open(path, "rb") as f:
            if f.read() == blob:
                return True
    except OSError:
        pass
    from coopt.cache.files import replace_atomic

    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        replace_atomic(path, blob)
    except OSError:  # a full or read-only cache: Python decides this call again next time
        return False
    return True


def _hit_values(hit: HitReplay | None) -> tuple[str, ...]:
    """The memo's hit fields (all "" without a hit)."""
    if hit is None:
        return ("",) * 7
    return (hit.key, hit.checks, hit.object_path, hit.object_digest, hit.entry_dir, hit.output,
            "".join(c + "\n" for c in HIT_COUNTERS))


class Renderer:
    """Renders the decision Python takes for a call, for its own arguments or for other names of the same shape:
    a pass-through's counter, a link's journal record, or a missed compile's source, key material and record
    (`describer` and `key`: the compile's inputs; None for links and pass-throughs, which have no compile)."""

    __slots__ = ("cwd", "compiler_path", "describer", "key")

    def __init__(self, cwd: str, compiler_path: str, describer: Describer | None, key: str) -> None:
        self.cwd = cwd
        self.compiler_path = compiler_path
        self.describer = describer
        self.key = key

    def render(self, call_args: list[str], cc: Classified | None = None) -> Rendering | None:
        """The decision for `call_args` (classified as `cc` when the caller has done it); None when it is not one
        coopt-cc-fast can replay."""
        from coopt.journal.job import LinkJob
        from coopt.journal.log import encode
        from coopt.wrapper.classify import classify
        from coopt.wrapper.reasons import Reason

        cc = cc or classify(call_args)
        if cc.kind == "pass":
            return Rendering("pass", cc.reason)
        if cc.kind == "link":
            link = LinkJob(self.cwd, self.compiler_path, call_args, cc.output, cc.inputs)
            return Rendering("link", cc.reason or Reason.LINK, record=encode(link.to_record()))
        if self.describer is None or cc.kind != "compile":
            return None  # several sources, or compile and link: Python splits those calls (wrapper/multi.py)
        job, material = self.describer.describe(call_args, cc)
        return Rendering("compile", "miss_fast", job.source_path, material, encode(job.to_record(self.key)))


def write_shape_memo(
    target: MemoTarget,
    self_path: str,
    raw: list[str],
    cwd: str,
    environ: dict[str, str] | os._Environ[str],
    config: tuple[str, str],
    own: Rendering,
    renderer: Renderer,
    source_hash: str,
    key: str,
) -> bool:
    """Leave the shape memo of this call, so coopt-cc-fast can decide the build's other TUs of the same shape.

    `own` is the decision for the call itself, `renderer` renders the decision Python would take for other
    arguments (None when not a plain compile). Written only when the decision for two probe names and for the call's own
    names is the same template with the names filled in: otherwise something in it depends on the names in a way
    the tokens do not carry, and False is returned.

    Not with remote stores (a memo that expires): Python asked them for this TU only, and another TU of the build
    may be a remote hit.
    """
    shaped = shape(raw) if not target.expires else None
    if shaped is None:
        return False
    args, source, output = shaped
    drop = target.drop_args
    # The shape's words as fill() turns them into arguments: an absolute name's "/" is part of the name.
    args = [a.replace("/" + SOURCE_TOKEN, SOURCE_TOKEN).replace("/" + OUTPUT_TOKEN, OUTPUT_TOKEN) for a in args]

    def rendered(names: tuple[str, str]) -> tuple[str, ...] | None:
        r = renderer.render([fill(a, *names) for a in args[drop:]])
        return None if r is None else r.texts()

    def like_own(names: tuple[str, str]) -> tuple[str, str]:
        probe_source = _ROOT + names[0] if source[0] == "/" else names[0]
        if "-o" not in raw:
            return probe_source, implied_object(probe_source)
        return probe_source, _ROOT + names[1] if output[0] == "/" else names[1]

    probe, check = like_own(_PROBES[0]), like_own(_PROBES[1])
    first = rendered(probe)
    if first is None:
        return False
    template = tuple(t.replace(probe[0], SOURCE_TOKEN).replace(probe[1], OUTPUT_TOKEN) for t in first)
    for names, texts in ((check, rendered(check)), ((source, output), own.texts())):
        if texts != tuple(fill(t, *names) for t in template):
            return False
    fp_text = fingerprint(self_path, shaped[0], cwd, environ, SHAPE_VERSION, config)
    return write_memo(target, fp_text, Rendering(*template), source_hash, key)
