"""Hint backends against real counterparts: an OpenAI-compatible server of our own that streams server-sent
events (and can be slow, fail or talk nonsense), and the real local model (SmolLM2-135M through llama.cpp)."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tutor.hints.backends import (
    AuthoredLadder,
    Backend,
    BackendError,
    HTTPBackend,
    LocalBackend,
    default_backend,
    model_path,
)

CHAT = [
    {"role": "system", "content": "You are a patient maths tutor. Ask one short guiding question."},
    {"role": "user", "content": "I have to solve 2x + 3 = 11 and I am stuck."},
]

# --- a small OpenAI-compatible server --------------------------------------------------------------------

PIECES = ["What ", "could you ", "subtract first?"]


def sse(payload) -> bytes:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n".encode()


def delta_chunk(text=None, finish=None, role=None) -> dict:
    delta = {}
    if role:
        delta["role"] = role
    if text is not None:
        delta["content"] = text
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def good_stream() -> list[bytes]:
    return [
        sse(delta_chunk(role="assistant")),
        b": keep-alive\n\n",
        *(sse(delta_chunk(piece)) for piece in PIECES),
        sse(delta_chunk(finish="stop")),
        sse({"object": "chat.completion.chunk", "choices": [], "usage": {"completion_tokens": 3}}),
        sse("[DONE]"),
    ]


class FakeOpenAI(BaseHTTPRequestHandler):
    """The first path segment picks the behaviour: /ok/v1/chat/completions, /slow-start/v1/..., ..."""

    protocol_version = "HTTP/1.1"
    requests: list = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOpenAI.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        mode = self.path.strip("/").split("/")[0]
        if not self.path.endswith("/v1/chat/completions"):
            return self.whole(404, "text/plain", b"no such endpoint")
        try:
            self.serve(mode)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def serve(self, mode):
        if mode == "ok":
            self.chunked(good_stream())
        elif mode == "plain":  # HTTP/1.0 style: no chunking, the body ends when the connection closes
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for event in good_stream():
                self.wfile.write(event)
            self.close_connection = True
        elif mode == "slow-start":
            time.sleep(3)
            self.chunked(good_stream())
        elif mode == "slow-stream":
            self.chunked([sse(delta_chunk(f"word{i} ")) for i in range(30)] + [sse("[DONE]")], pause=0.2)
        elif mode == "error500":
            self.whole(500, "application/json", b'{"error": "model overloaded"}')
        elif mode == "garbage":
            self.chunked([sse(delta_chunk("fine ")), b"data: {not json at all\n\n", sse("[DONE]")])
        elif mode == "wrong-shape":
            self.chunked([sse({"choices": [{"delta": "a string, not an object"}]}), sse("[DONE]")])
        elif mode == "html":
            self.whole(200, "text/html", b"<html><body>Welcome to nginx!</body></html>")
        elif mode == "truncated":
            self.chunked([sse(delta_chunk("half a "))])
        elif mode == "error-event":
            self.chunked([sse(delta_chunk("so ")), sse({"error": {"message": "CUDA out of memory"}})])
        elif mode == "json":
            reply = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "A whole reply."}}]}
            self.whole(200, "application/json", json.dumps(reply).encode())
        else:
            self.whole(404, "text/plain", b"unknown mode")

    def whole(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def chunked(self, events, pause=0.0):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event in events:
            self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
            self.wfile.flush()
            time.sleep(pause)
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_http_streams_the_deltas_in_order_and_sends_the_request_settings(server):
    FakeOpenAI.requests.clear()
    backend = HTTPBackend(f"{server}/ok", "tutor-model", api_key="sk-test")
    pieces = list(backend.stream(CHAT, max_tokens=42, temperature=0.2, seed=7, stop=["\n\n"]))
    assert pieces == PIECES
    assert backend.name == "http:tutor-model"
    request = FakeOpenAI.requests[-1]
    assert request["path"] == "/ok/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    assert request["body"] == {
        "model": "tutor-model",
        "messages": CHAT,
        "stream": True,
        "max_tokens": 42,
        "temperature": 0.2,
        "seed": 7,
        "stop": ["\n\n"],
    }


def test_http_base_url_may_end_in_v1_and_needs_no_model(server):
    FakeOpenAI.requests.clear()
    backend = HTTPBackend(f"{server}/ok/v1/")
    assert "".join(backend.stream(CHAT)) == "".join(PIECES)
    body = FakeOpenAI.requests[-1]["body"]
    assert "model" not in body and "seed" not in body and "stop" not in body
    assert "Authorization" not in FakeOpenAI.requests[-1]["headers"]


def test_http_reads_a_stream_that_ends_with_the_connection(server):
    assert list(HTTPBackend(f"{server}/plain").stream(CHAT)) == PIECES


def test_http_accepts_a_server_that_answers_in_one_json_reply(server):
    assert list(HTTPBackend(f"{server}/json").stream(CHAT)) == ["A whole reply."]


def test_http_times_out_waiting_for_the_first_chunk(server):
    started = time.monotonic()
    with pytest.raises(BackendError, match="timed out"):
        list(HTTPBackend(f"{server}/slow-start").stream(CHAT, timeout=0.5))
    assert time.monotonic() - started < 1.5


def test_http_times_out_on_the_whole_stream_after_some_text(server):
    received = []
    started = time.monotonic()
    with pytest.raises(BackendError, match="timed out"):
        for piece in HTTPBackend(f"{server}/slow-stream").stream(CHAT, timeout=1.0):
            received.append(piece)
    assert time.monotonic() - started < 2.0
    assert 2 <= len(received) < 30 and received[0] == "word0 "


@pytest.mark.parametrize(
    "mode, message",
    [
        ("error500", "HTTP 500.*model overloaded"),
        ("garbage", "malformed event.*not json"),
        ("wrong-shape", "malformed event"),
        ("html", "ended the stream before it finished"),
        ("truncated", "ended the stream before it finished"),
        ("error-event", "reported an error.*CUDA out of memory"),
        ("nowhere", "HTTP 404"),
    ],
)
def test_http_failures_are_backend_errors_that_say_what_happened(server, mode, message):
    with pytest.raises(BackendError, match=message):
        list(HTTPBackend(f"{server}/{mode}").stream(CHAT, timeout=5))


def test_http_unreachable_server_is_a_backend_error():
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(BackendError, match="cannot reach"):
        list(HTTPBackend(f"http://127.0.0.1:{port}").stream(CHAT, timeout=2))


def test_http_url_must_be_http():
    with pytest.raises(BackendError, match="http"):
        HTTPBackend("ftp://example.org/v1")


# --- authored ladder ---------------------------------------------------------------------------------------


def test_authored_ladder_gives_the_next_rung_and_stays_on_the_last():
    ladder = AuthoredLadder(["Nudge.", "Scaffold?", "Worked solution."])
    assert isinstance(ladder, Backend)
    dialogue = [{"role": "user", "content": "help"}]
    given = []
    for _ in range(4):
        reply = "".join(ladder.stream(dialogue))
        given.append(reply)
        dialogue += [{"role": "assistant", "content": reply}, {"role": "user", "content": "more"}]
    assert given == ["Nudge.", "Scaffold?", "Worked solution.", "Worked solution."]


def test_authored_ladder_needs_a_hint():
    with pytest.raises(ValueError):
        AuthoredLadder([])


# --- choosing a backend ------------------------------------------------------------------------------------


def test_default_backend_is_the_server_when_a_url_is_set(server, monkeypatch):
    monkeypatch.setenv("TUTOR_LLM_URL", f"{server}/ok")
    monkeypatch.setenv("TUTOR_LLM_MODEL", "qwen")
    monkeypatch.delenv("TUTOR_LLM_API_KEY", raising=False)
    backend = default_backend()
    assert isinstance(backend, HTTPBackend) and backend.name == "http:qwen"
    assert "".join(backend.stream(CHAT)) == "".join(PIECES)


def test_default_backend_without_a_model_file_says_no_model_installed(monkeypatch, tmp_path):
    monkeypatch.delenv("TUTOR_LLM_URL", raising=False)
    monkeypatch.setenv("TUTOR_LLM_MODEL_PATH", str(tmp_path / "missing.gguf"))
    with pytest.raises(BackendError, match="no model installed"):
        default_backend()
    with pytest.raises(BackendError, match="no model installed"):
        LocalBackend()


# --- the real local model ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local():
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (make setup-dev installs it)")
    backend = LocalBackend()  # the packaged SmolLM2 file: a missing file fails here, it is not skipped
    backend.load()
    return backend


def test_default_backend_is_the_local_model_without_a_url(local, monkeypatch):
    monkeypatch.delenv("TUTOR_LLM_URL", raising=False)
    monkeypatch.delenv("TUTOR_LLM_MODEL_PATH", raising=False)
    backend = default_backend()
    assert isinstance(backend, LocalBackend)
    assert backend.name == "smollm2-135m-q4_1 (local)"
    assert backend.path == model_path()


def test_local_model_loads_without_extra_weight_buffers_and_leaves_the_library_defaults_alone(local):
    # On a CPU with AMX those buffers crash the first generation (ggml-org/llama.cpp#20824).
    from llama_cpp import llama_cpp as library

    from tutor.hints import backends

    assert backends._loaded_model.model_params.use_extra_bufts is False
    assert library.llama_model_default_params().use_extra_bufts is True


def test_local_model_streams_a_reply_in_pieces(local):
    pieces = list(local.stream(CHAT, max_tokens=40, seed=1))
    assert len(pieces) > 3
    assert all(isinstance(piece, str) and piece for piece in pieces)
    assert len("".join(pieces).split()) >= 3


def test_local_model_same_seed_same_text_and_seeds_matter(local):
    first = "".join(local.stream(CHAT, max_tokens=40, temperature=0.8, seed=11))
    again = "".join(local.stream(CHAT, max_tokens=40, temperature=0.8, seed=11))
    assert first == again
    others = {"".join(local.stream(CHAT, max_tokens=40, temperature=0.8, seed=seed)) for seed in (12, 13)}
    assert others - {first}


def test_local_model_respects_max_tokens(local):
    short = list(local.stream(CHAT, max_tokens=5, temperature=0, seed=3))
    longer = list(local.stream(CHAT, max_tokens=40, temperature=0, seed=3))
    assert 1 <= len(short) <= 5  # one piece per token at most (a split UTF-8 character waits for the rest)
    assert len(longer) > len(short)
    assert "".join(longer).startswith("".join(short))  # greedy: the short reply is the long one cut off


def test_local_model_stops_at_a_stop_string(local):
    full = "".join(local.stream(CHAT, max_tokens=40, temperature=0, seed=5))
    words = full.split()
    assert len(words) >= 4
    stop = " " + words[3]
    cut = "".join(local.stream(CHAT, max_tokens=40, temperature=0, seed=5, stop=[stop]))
    assert cut == full[: full.index(stop)]


def test_local_model_honours_the_timeout(local):
    story = [{"role": "user", "content": "Write a very long story about a dragon who learns algebra."}]
    # How long the first piece takes depends on how busy the machine is: measure it, then allow a little more.
    started = time.monotonic()
    next(iter(local.stream(story, max_tokens=1, temperature=0)))
    first_piece = time.monotonic() - started
    timeout = first_piece + 0.5
    received = []
    started = time.monotonic()
    with pytest.raises(BackendError, match="timed out"):
        for piece in local.stream(story, max_tokens=1500, temperature=0, timeout=timeout):
            received.append(piece)
    assert received  # it was streaming when the time ran out …
    assert len(received) < 1500  # … and stopped long before the story's end
    assert time.monotonic() - started < timeout + 5  # the clock is read between tokens
    # the model is free again at once
    assert "".join(local.stream(CHAT, max_tokens=3, temperature=0))


def test_local_model_prompt_longer_than_the_context_is_a_backend_error(local):
    huge = [{"role": "user", "content": "seven " * 3000}]
    with pytest.raises(BackendError):
        list(local.stream(huge, max_tokens=5))
    assert "".join(local.stream(CHAT, max_tokens=3, temperature=0))


def test_local_model_is_shared_safely_between_threads_and_abandoned_streams(local):
    reference = "".join(local.stream(CHAT, max_tokens=20, temperature=0.8, seed=21))
    abandoned = local.stream(CHAT, max_tokens=20, seed=22)
    next(abandoned)
    abandoned.close()  # a learner who leaves mid-hint must not keep the model locked
    results = [None, None]

    def generate(slot):
        results[slot] = "".join(local.stream(CHAT, max_tokens=20, temperature=0.8, seed=21, timeout=60))

    threads = [threading.Thread(target=generate, args=(slot,)) for slot in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert results == [reference, reference]
