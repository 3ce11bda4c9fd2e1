"""The records one compiler call carries through coopt-cc's decision: the call itself (`Call`) and, for a candidate
compile, what describes any compile of its source (`Describer`: the job and its key material, for the call's own
arguments and for the probe names a shape memo is checked with), and that compile once keyed and journaled
(`Looked`).

Plain classes with __slots__, not dataclasses: this runs once per compile, and importing dataclasses costs ms.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    from coopt.cache.layout import CacheLayout
    from coopt.cache.manifest import ManifestMatch
    from coopt.cache.store import Entry
    from coopt.journal.job import CompileJob
    from coopt.wrapper.classify import Classified
    from coopt.wrapper.compiler import Resolved
    from coopt.wrapper.settings import Settings


class Call:
    """One call of coopt-cc: the real compiler as resolved, the settings, the cache, where and when it runs, its
    arguments (response files expanded) and their classification, the debug log, whether it may write
    (journal, statistics, memos), and whether coopt-cc-fast may replay it (`memo`: not for one source of a call
    with several, whose memo would stand for the whole call). `served`: the direct hit served from the local
    cache, once it is (wrapper/serve.py), for the memo that lets coopt-cc-fast serve it next time."""

    __slots__ = ("resolved", "settings", "layout", "cwd", "started", "args", "c", "debug_log", "writable", "memo",
                 "served")

    def __init__(self, resolved: Resolved, settings: Settings, layout: CacheLayout, cwd: str, started: float,
                 args: list[str], c: Classified, debug_log: list[str], writable: bool, memo: bool = True) -> None:
        self.resolved = resolved
        self.settings = settings
        self.layout = layout
        self.cwd = cwd
        self.started = started
        self.args = args
        self.c = c
        self.debug_log = debug_log
        self.writable = writable
        self.memo = memo
        self.served: Served | None = None


class Served:
    """A direct hit served from the local cache: the manifest result it matched, the entry and the manifest."""

    __slots__ = ("found", "entry", "manifest_path")

    def __init__(self, found: ManifestMatch, entry: Entry, manifest_path: str) -> None:
        self.found = found
        self.entry = entry
        self.manifest_path = manifest_path


class Describer:
    """What a compile of this call's source is keyed on besides its arguments: the compiler (path, name, content
    identity), the source's hash, the environment that changes the object and the base_dir whose paths are keyed
    relative. `describe` gives the job and the direct key material for any arguments naming that source."""

    __slots__ = ("cwd", "compiler_path", "compiler_name", "compiler_id", "source_hash", "env", "base_dir")

    def __init__(self, cwd: str, compiler_path: str, compiler_name: str, compiler_id: str, source_hash: str,
                 env: dict[str, str], base_dir: str = "") -> None:
        self.cwd = cwd
        self.compiler_path = compiler_path
        self.compiler_name = compiler_name
        self.compiler_id = compiler_id
        self.source_hash = source_hash
        self.env = env
        self.base_dir = base_dir

    def describe(self, call_args: list[str], cc: Classified) -> tuple[CompileJob, str]:
        """The job and the direct key material of a compile with `call_args`, classified as `cc`."""
        from coopt.cache import key as keymod
        from coopt.journal.job import CompileJob

        job = CompileJob(self.cwd, self.compiler_path, call_args, cc.key_args, cc.source, cc.output, cc.dep_args,
                         "c", cc.debug, cc.native, self.env, self.base_dir)
        return job, keymod.direct_material(
            compiler_id=self.compiler_id,
            compiler_name=self.compiler_name,
            language="c",
            key_args=cc.key_args,
            source=cc.source,
            source_hash=self.source_hash,
            cwd=self.cwd,
            debug=cc.debug,
            native=cc.native,
            env=self.env,
            base_dir=self.base_dir,
        )


class Looked:
    """A candidate compile after its key is known and it is journaled (wrapper/main.py `lookup`): what `serve`
    needs to serve it or count the miss."""

    __slots__ = ("describer", "job", "direct", "direct_key")

    def __init__(self, describer: Describer, job: CompileJob, direct: str, direct_key: str) -> None:
        self.describer = describer
        self.job = job
        self.direct = direct
        self.direct_key = direct_key

    def may_hit(self, call: Call) -> bool:
        """Whether `serve` could serve it: a local manifest exists or remote stores may hold one."""
        import os

        return bool(call.settings.remote) or os.path.exists(call.layout.manifest_path(self.direct_key))
