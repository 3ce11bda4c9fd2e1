"""Provider `local`: llama.cpp's OpenAI-compatible HTTP server from the `xllamacpp` wheel, on a loopback port.

The server runs in a child Python process (`python -m coopt.llm.local_server`), not in ours:
- stopping it is ending a process, which frees the model's memory at once and cannot hang on native threads;
- a crash inside llama.cpp ends the child, not the optimizer run;
- the child has its own session, so Ctrl-C reaches only coopt, whose `with` block then stops the child in order;
- the child exits when its stdin reaches end of file, so even a coopt killed with SIGKILL leaves no server behind.

The child binds 127.0.0.1 port 0 (the kernel picks a free port, so there is no race between choosing and binding),
loads the model, prints `listening URL` on stdout and blocks on stdin. The parent then waits for /health to answer
200. llama.cpp's log goes to a file whose last line is quoted when the server does not come up.

Threads: on machines with 2 cores or fewer the server decodes with one thread (DESIGN.md field notes: with two
threads on a shared 2-core machine decode speed swings from 1 to 56 tokens/s); larger machines use half their
cores, at most 8.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from coopt.llm import fetch as llm_fetch

DEFAULT_CTX = 4096
START_TIMEOUT = 180.0


class LocalModelError(Exception):
    """The local model cannot be used: no GGUF, no xllamacpp, or the server did not come up. One line."""


def default_threads() -> int:
    cpus = os.cpu_count() or 1
    return 1 if cpus <= 2 else min(cpus // 2, 8)


def resolve_model_path(environ: dict[str, str] | None = None, store: str | None = None) -> str:
    """`$COOPT_MODEL_PATH` when set (any GGUF), else the largest pinned model fetched here."""
    env = os.environ if environ is None else environ
    explicit = env.get("COOPT_MODEL_PATH", "")
    if explicit:
        if not os.path.isfile(explicit):
            raise LocalModelError("COOPT_MODEL_PATH=%s is not a file; point it at a GGUF model" % explicit)
        return explicit
    for size in ("1.5b", "0.5b"):
        model = llm_fetch.PINNED[size]
        if llm_fetch.is_stored(model, store):
            return llm_fetch.stored_path(model, store)
    raise LocalModelError("no local model here; run `coopt model fetch` (or set COOPT_MODEL_PATH to a GGUF file)")


def model_name(path: str) -> str:
    """The model name sent with requests (and so part of every transcript key): stable across runs and ports."""
    base = os.path.basename(path)
    return "local/" + (base[:-5] if base.endswith(".gguf") else base)


@dataclass(frozen=True)
class ServerOptions:
    threads: int = 0  # 0: default_threads()
    ctx: int = DEFAULT_CTX
    start_timeout: float = START_TIMEOUT


class LocalServer:
    """A llama.cpp server for one GGUF, as a context manager. `start()` is idempotent and returns the base URL."""

    def __init__(self, model_path: str, options: ServerOptions | None = None, log_dir: str | None = None) -> None:
        self.model_path = model_path
        self.options = options or ServerOptions()
        self.log_dir = log_dir
        self.log_path = ""
        self.address = ""
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return self.address + "/v1" if self.address else ""

    @property
    def name(self) -> str:
        return model_name(self.model_path)

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> str:
        """Start the server unless it runs; wait until it answers /health. Returns the OpenAI base URL."""
        if self._proc is not None and self._proc.poll() is None and self.address:
            return self.base_url
        if not os.path.isfile(self.model_path):
            raise LocalModelError("model file %s does not exist; run `coopt model fetch`" % self.model_path)
        try:
            import xllamacpp  # noqa: F401 - only to say early and clearly that it is missing
        except ImportError:
            raise LocalModelError("the local provider needs the xllamacpp package: pip install 'coopt-cc[local]'") \
                from None
        config = {"model": self.model_path, "threads": self.options.threads or default_threads(),
                  "ctx": self.options.ctx}
        log_dir = self.log_dir or tempfile.gettempdir()
        os.makedirs(log_dir, exist_ok=True)
        fd, self.log_path = tempfile.mkstemp(prefix="coopt-llama-", suffix=".log", dir=log_dir)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "coopt.llm.local_server", json.dumps(config)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=fd, start_new_session=True,
                env=_child_env(),
            )
        finally:
            os.close(fd)
        try:
            self.address = self._wait_listening(time.monotonic() + self.options.start_timeout)
            self._wait_healthy(time.monotonic() + self.options.start_timeout)
        except BaseException:  # KeyboardInterrupt during the load included: leave no server behind
            self.stop()
            raise
        return self.base_url

    def stop(self) -> None:
        """Stop the server: close its stdin (it exits by itself), then SIGTERM, then SIGKILL."""
        proc, self._proc = self._proc, None
        self.address = ""
        if proc is None:
            return
        self._close_stdin(proc)
        for harder in (None, proc.terminate, proc.kill):
            if harder is not None:
                harder()
            try:
                proc.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                continue
        if proc.stdout is not None:
            proc.stdout.close()

    @staticmethod
    def _close_stdin(proc: subprocess.Popen[bytes]) -> None:
        if proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass

    def _wait_listening(self, deadline: float) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self._proc.stdout, selectors.EVENT_READ)
        line = b""
        try:
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LocalModelError("the llama.cpp server did not start within %.0f s (log: %s)"
                                          % (self.options.start_timeout, self.log_path))
                if not sel.select(timeout=min(left, 1.0)):
                    continue
                chunk = os.read(self._proc.stdout.fileno(), 4096)
                if not chunk:
                    raise LocalModelError("the llama.cpp server exited while loading %s: %s"
                                          % (self.model_path, self._log_tail()))
                line += chunk
        finally:
            sel.close()
        text = line.decode("utf-8", "replace").strip()
        if not text.startswith("listening http://"):
            raise LocalModelError("the llama.cpp server did not start: %s" % text)
        return text.split(None, 1)[1]

    def _wait_healthy(self, deadline: float) -> None:
        while True:
            try:
                with urllib.request.urlopen(self.address + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass  # 503 while the model loads, or not accepting yet
            if self._proc is None or self._proc.poll() is not None:
                raise LocalModelError("the llama.cpp server exited: %s" % self._log_tail())
            if time.monotonic() > deadline:
                raise LocalModelError("the llama.cpp server at %s did not become healthy within %.0f s (log: %s)"
                                      % (self.address, self.options.start_timeout, self.log_path))
            time.sleep(0.1)

    def _log_tail(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                lines = [ln.strip() for ln in f.read().splitlines() if ln.strip()]
        except OSError:
            lines = []
        return "%s (log: %s)" % (lines[-1] if lines else "no output", self.log_path)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The child imports this module; make sure it finds the same coopt as the parent.
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH", "")) if p)
    return env


def _serve(config: dict[str, Any]) -> int:
    """The child: load the model, serve on a free loopback port, exit when stdin closes."""
    import xllamacpp

    p = xllamacpp.CommonParams()
    p.model.path = config["model"]
    p.n_ctx = int(config["ctx"])
    p.n_parallel = 1  # one request at a time: a second would halve the speed of the first
    p.cpuparams.n_threads = int(config["threads"])
    p.cpuparams_batch.n_threads = int(config["threads"])
    p.n_threads_http = 2
    p.hostnames = ["127.0.0.1"]
    p.port = 0
    p.ui = False
    p.warmup = False
    p.cache_ram_mib = 0  # no prompt cache in RAM: requests rarely share long prefixes, and memory is scarce
    server = xllamacpp.Server(p)
    sys.stdout.write("listening %s\n" % server.listening_address)
    sys.stdout.flush()
    try:
        sys.stdin.buffer.read()
    except KeyboardInterrupt:
        pass
    # Skip the server's destructor: ending the process is the quickest complete clean-up.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(_serve(json.loads(sys.argv[1])))
