"""Serve only what was accepted: an entry is served only when its evidence is an ACCEPTED verdict in a known
format covering its level and the functions it changed, wherever the entry came from.

A hostile teammate is played by writing entries as they would: straight into the store, or packed into a
file:// remote, with checksums and key material valid, only the verdict changed. `coopt cache put` refuses
rejections and unknown formats in one line; `--unverified` entries are served only with the user's opt-in.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import Coopt, require
from coopt.cache import accept
from coopt.cache.hashing import hash_file

TU = "int f(int x) { return x * 3; }\nint g(int x) { return x + 1; }\n"
# Only f's body changes (a marker string shows in the object when the variant is served).
VARIANT = TU.replace("return x * 3;", '__attribute__((used)) static const char m[] = "V"; return (x << 1) + x;')


def _evidence(code: str = "accepted", functions: tuple[str, ...] = ("f",), candidate: str = "v.c",
              version: int = 2) -> dict:
    """An evidence record as `coopt verify --json` writes it (the fields the acceptance rule reads)."""
    return {"version": version, "original": "f.c", "candidate": candidate, "functions": list(functions),
            "unsupported_functions": {}, "checks": [], "verdict": {"code": code, "detail": "", "reason":
                                                                   "return-value" if code == "rejected" else None}}


@dataclasses.dataclass
class Proj:
    d: Path
    co: Coopt  # without the `coopt` fixture's opt-in to unverified entries
    plain: bytes

    def compile(self, co: Coopt | None = None) -> bytes:
        out = self.d / "f.o"
        out.unlink(missing_ok=True)
        (co or self.co).run([self.co.cc, "-O2", "-c", "f.c", "-o", "f.o"], cwd=self.d)
        return out.read_bytes()

    def put(self, *how: str, co: Coopt | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return (co or self.co).coopt("cache", "put", "--artifact", "v.c", *how, "--", "clang", "-O2", "-c", "f.c",
                                     "-o", "f.o", cwd=self.d, check=check)

    def evidence_file(self, ev: dict) -> str:
        (self.d / "ev.json").write_text(json.dumps(ev))
        return str(self.d / "ev.json")


def _without_opt_in(co: Coopt, **env: str) -> Coopt:
    clean = {k: v for k, v in co.env.items() if k != "COOPT_SERVE_UNVERIFIED"}
    return dataclasses.replace(co, env=dict(clean, **env))


@pytest.fixture
def proj(coopt: Coopt, tmp_path: Path) -> Proj:
    require("clang")
    d = tmp_path / "p"
    d.mkdir()
    (d / "f.c").write_text(TU)
    (d / "v.c").write_text(VARIANT)
    subprocess.run(["clang", "-O2", "-c", "f.c", "-o", "plain.o"], cwd=d, check=True)
    return Proj(d, _without_opt_in(coopt), (d / "plain.o").read_bytes())


def _served(p: Proj, obj: bytes) -> bool:
    assert obj == p.plain or b"V\0" in obj
    return obj != p.plain


def _forge(entry: Path, mutate: object) -> None:
    """Change meta.json as a hostile teammate would, and make the checksums hold again."""
    meta_path = entry / "meta.json"
    meta = json.loads(meta_path.read_text())
    mutate(meta)  # type: ignore[operator]
    meta_path.write_text(json.dumps(meta))
    sums = (entry / "checksums.txt").read_text().splitlines()
    fixed = ["%s meta.json" % hash_file(str(meta_path)) if s.endswith(" meta.json") else s for s in sums]
    (entry / "checksums.txt").write_text("\n".join(fixed) + "\n")


def _reject(meta: dict) -> None:
    meta["evidence"]["verdict"] = {"code": "rejected", "detail": "differs", "reason": "return-value"}


def test_an_accepted_entry_is_served(proj: Proj) -> None:
    proj.put("--evidence", proj.evidence_file(_evidence()))
    assert _served(proj, proj.compile())


@pytest.mark.parametrize("mutate", [
    _reject,
    lambda m: m["evidence"].update(version=99),  # a format this coopt does not know
    lambda m: m["evidence"]["verdict"].update(code="inconclusive"),
    lambda m: m.update(level="ir"),  # the evidence judged a .c candidate
    lambda m: m["evidence"].update(functions=["g"]),  # f changed, only g was driven
    lambda m: m.pop("evidence"),
], ids=["rejected", "unknown-format", "inconclusive", "other-level", "uncovered-function", "no-evidence"])
def test_a_forged_entry_in_the_store_is_never_served(proj: Proj, mutate: object) -> None:
    proj.put("--evidence", proj.evidence_file(_evidence()))
    (entry,) = [p.parent for p in proj.co.cache_dir.glob("entries/*/*/meta.json")]
    _forge(entry, mutate)
    assert not _served(proj, proj.compile())
    stats = proj.co.stats()
    assert stats.get("miss_not_accepted") == 1, stats
    assert "never served" in proj.co.coopt("cache", "ls").stdout


def test_a_forged_entry_from_a_remote_is_never_served(proj: Proj, tmp_path: Path) -> None:
    """The teammate's entry reaches us through a file:// remote, repacked with valid checksums."""
    from coopt.cache.remote.sync import pack_entry

    remote = tmp_path / "remote"
    remote.mkdir()
    team = _without_opt_in(proj.co, COOPT_REMOTE_STORAGE="file://%s" % remote,
                           COOPT_CACHE_DIR=str(tmp_path / "teammate-cache"))
    proj.put("--evidence", proj.evidence_file(_evidence()), co=team)

    def fresh(name: str) -> Coopt:
        return dataclasses.replace(team, env=dict(team.env, COOPT_CACHE_DIR=str(tmp_path / name)),
                                   cache_dir=tmp_path / name)

    assert _served(proj, proj.compile(fresh("control-cache")))  # as the teammate stored it: accepted, served
    (entry,) = [p.parent for p in (tmp_path / "teammate-cache").glob("entries/*/*/meta.json")]
    _forge(entry, _reject)
    blobs = [p for p in remote.rglob("*") if p.is_file() and p.read_bytes().startswith(b"coopt-remote-entry")]
    assert len(blobs) == 1
    blobs[0].write_bytes(pack_entry(str(entry), entry.name, None))
    ours = fresh("our-cache")
    assert not _served(proj, proj.compile(ours))
    assert ours.stats().get("miss_not_accepted") == 1, ours.stats()


def test_unverified_is_served_only_with_the_opt_in(proj: Proj) -> None:
    proj.put("--unverified")
    assert not _served(proj, proj.compile())
    assert proj.co.stats().get("miss_unverified") == 1
    assert _served(proj, proj.compile(_without_opt_in(proj.co, COOPT_SERVE_UNVERIFIED="1")))
    (proj.d / "coopt.toml").write_text("[cache]\nserve_unverified = true\n")
    assert _served(proj, proj.compile())
    assert not _served(proj, proj.compile(_without_opt_in(proj.co, COOPT_SERVE_UNVERIFIED="0")))


def test_ls_and_stats_show_unverified_entries(proj: Proj) -> None:
    proj.put("--unverified")
    assert "(unverified)" in proj.co.coopt("cache", "ls").stdout
    (row,) = json.loads(proj.co.coopt("cache", "ls", "--json").stdout)
    assert (row["verified"], row["status"]) == (False, "unverified")
    stats = json.loads(proj.co.coopt("cache", "stats", "--json").stdout)
    assert (stats["entries"], stats["entries_unverified"], stats["entries_not_accepted"]) == (1, 1, 0)
    assert "1 unverified" in proj.co.coopt("cache", "stats").stdout


@pytest.mark.parametrize("ev, says", [
    (_evidence("rejected"), "the verdict is rejected (return-value), not accepted"),
    (_evidence("timeout"), "the verdict is timeout, not accepted"),
    (_evidence(version=99), "unknown format (version 99"),
    ({"anything": 1}, "unknown format (no verdict)"),
    ({"verified": False}, "store it with --unverified"),
    (_evidence(candidate="v.ll"), "the evidence is for the ir level, the entry is source"),
    (_evidence(functions=("g",)), "does not cover changed function f"),
], ids=["rejected", "timeout", "version", "no-verdict", "unverified-as-evidence", "other-level", "function"])
def test_put_refuses_evidence_in_one_line(proj: Proj, ev: dict, says: str) -> None:
    proc = proj.put("--evidence", proj.evidence_file(ev), check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("coopt cache put: error: evidence "), proc.stderr
    assert says in proc.stderr, proc.stderr
    assert not list(proj.co.cache_dir.glob("entries/*/*"))


def test_put_accepts_a_record_covering_the_changed_function(proj: Proj) -> None:
    proc = proj.put("--evidence", proj.evidence_file(_evidence(functions=("f", "g"))))
    assert proc.stdout.startswith("stored ")
    (meta,) = [json.loads(p.read_text()) for p in proj.co.cache_dir.glob("entries/*/*/meta.json")]
    assert meta["changed_functions"] == ["f"]


# --- the rule and the parser on their own -------------------------------------------------------------------


def test_the_verifiers_own_records() -> None:
    from coopt.verify.evidence import EVIDENCE_VERSION, Evidence
    from coopt.verify.verdict import Reason, Verdict

    assert EVIDENCE_VERSION in accept.KNOWN_EVIDENCE_VERSIONS
    good = Evidence("f.c", "v.c", Verdict.accepted("ok"), functions=["f"]).to_dict()
    bad = Evidence("f.c", "v.c", Verdict.rejected(Reason.RETURN_VALUE, "differs"), functions=["f"]).to_dict()
    assert accept.refusal(good, "source", ["f"]) == ""
    assert accept.refusal(bad, "source", ["f"]) == "the verdict is rejected (return-value), not accepted"
    optimizer = dict(good, verified=True, proposer={"level": "pgo"})
    assert accept.refusal(optimizer, "pgo") == "" and accept.refusal(optimizer, "source") != ""


def test_a_test_command_covers_undrivable_functions() -> None:
    ev = dict(_evidence(functions=()), unsupported_functions={"f": "takes a callback"})
    assert accept.refusal(ev, "source", ["f"]) != ""
    ev["checks"] = [{"name": "test", "ok": True, "detail": "same output"}]
    assert accept.refusal(ev, "source", ["f"]) == ""


@pytest.mark.parametrize("text", ['{"a": [1, 2.5e3, "x\\u00e9\\n", null, true, false], "b": {"c": -0}}', " [] ",
                                  '"s"'])
def test_loads_agrees_with_json(text: str) -> None:
    assert accept.loads(text) == json.loads(text)


@pytest.mark.parametrize("text", ['{"a": 1} {"b": 2}', '{"a": 1', "", "{'a': 1}"])
def test_loads_refuses_what_json_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        accept.loads(text)


def test_a_hit_imports_no_json() -> None:
    """The lookup's evidence check stays off `json` (and `re`): a hit pays ~0.3 ms, not ~10."""
    import sys

    src = str(Path(__file__).resolve().parent.parent / "src")
    code = ("import sys; sys.path.insert(0, %r); from coopt.cache import accept; "
            "accept.servable(accept.loads('{\"level\": \"source\", \"evidence\": {}}'), False); "
            "print(' '.join(sorted(sys.modules)))" % src)
    loaded = set(subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True,
                                check=True, env={"PATH": os.environ.get("PATH", "")}).stdout.split())
    assert not loaded & {"json", "re"}, sorted(loaded & {"json", "re"})
