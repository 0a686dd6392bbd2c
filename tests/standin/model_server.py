#!/usr/bin/env python3
"""A stand-in model server for reagent's end-to-end tests and benchmarks.

It stands in for an OpenAI-compatible inference server such as vLLM or SGLang, so the
model launch path (start, health, metrics, chat, stop) can be tested without a GPU, a model
or an engine. The tests start it through a `backend = "command"` recipe:

    command = ["python3", "tests/standin/model_server.py", "--port", "{port}",
               "--model", "{model}", "--ready-after", "1.5"]

What it serves, on 127.0.0.1:

- GET /health: 503 while it "loads", 200 once `--ready-after` seconds have passed.
- GET /v1/models: the OpenAI model list, holding `--model`.
- GET /metrics: Prometheus text with vLLM's names (`vllm:num_requests_running`,
  `vllm:num_requests_waiting`, `vllm:kv_cache_usage_perc`, `vllm:prompt_tokens_total`,
  `vllm:generation_tokens_total`, the `vllm:time_to_first_token_seconds` histogram), each
  labelled `engine="0"` and `model_name`, fed by the requests it really served.
- POST /v1/chat/completions, whatever model it names: an answer of `--tokens` tokens,
  "tok0 tok1 ...", one every `--token-delay-ms` (fewer, with finish_reason "length", when
  `max_tokens` says so); with `"stream": true` as OpenAI chat-completions server-sent events
  (a role chunk, a chunk per token, a chunk with finish_reason "stop", a usage chunk, then
  `data: [DONE]`), else as one JSON completion. Prompt tokens are counted as words.

Other endpoints answer 503 while loading, as SGLang does.

Modes (`--mode`):

- normal: as above.
- crash: prints a few log lines, "stand-in: crashing at start" among them, and exits with
  code 3 after 0.2 s, before listening: a server that dies at start.
- never-healthy: listens and answers, but /health stays 503 for ever.

What it prints to stdout, flushed at once, for the tests and benchmarks to read:

- `stand-in: listening on PORT` once the port is bound;
- `stand-in: healthy at <unix ms>` the moment /health starts answering 200 (a timer fires
  then, so the time is exact, not noticed at the next request), so a benchmark can measure
  how long after that the daemon marks the model ready;
- an access-log line per request, like uvicorn's.

SIGTERM or SIGINT stops it cleanly with exit code 0 (after `--term-delay` seconds, like a
server that takes a while to free its GPU memory). Python 3.11's standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The stand-in's TTFT histogram bounds, in seconds: vLLM's lower ones, enough to tell
# a few milliseconds from a few hundred.
TTFT_BOUNDS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5]
# How many tokens its pretend KV cache holds; use is the tokens of the requests in flight.
KV_CAPACITY_TOKENS = 4096

PRINT_LOCK = threading.Lock()


def say(line: str) -> None:
    """Prints one line to stdout at once: the tests read it while the server runs."""
    with PRINT_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class State:
    """What /metrics reports, and whether the server is healthy yet."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.healthy = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.waiting = 0
        self.in_flight_tokens = 0
        self.prompt_tokens = 0
        self.generation_tokens = 0
        # Observations per bucket (not cumulative); the last one is +Inf.
        self.ttft_buckets = [0] * (len(TTFT_BOUNDS) + 1)
        self.ttft_count = 0
        self.ttft_sum = 0.0

    def observe_ttft(self, seconds: float) -> None:
        with self.lock:
            index = next((i for i, b in enumerate(TTFT_BOUNDS) if seconds <= b), len(TTFT_BOUNDS))
            self.ttft_buckets[index] += 1
            self.ttft_count += 1
            self.ttft_sum += seconds

    def metrics(self) -> str:
        labels = f'engine="0",model_name="{escape_label(self.model)}"'
        with self.lock:
            kv = min(1.0, self.in_flight_tokens / KV_CAPACITY_TOKENS)
            lines = []

            def family(name: str, kind: str, help_text: str, value: float) -> None:
                lines.append(f"# HELP {name} {help_text}")
                lines.append(f"# TYPE {name} {kind}")
                lines.append(f"{name}{{{labels}}} {float(value)!r}")

            family("vllm:num_requests_running", "gauge",
                   "Number of requests in model execution batches.", self.running)
            family("vllm:num_requests_waiting", "gauge",
                   "Number of requests waiting to be processed.", self.waiting)
            family("vllm:kv_cache_usage_perc", "gauge",
                   "KV-cache usage. 1 means 100 percent usage.", kv)
            family("vllm:prompt_tokens_total", "counter",
                   "Number of prefill tokens processed.", self.prompt_tokens)
            family("vllm:generation_tokens_total", "counter",
                   "Number of generation tokens processed.", self.generation_tokens)
            name = "vllm:time_to_first_token_seconds"
            lines.append(f"# HELP {name} Histogram of time to first token in seconds.")
            lines.append(f"# TYPE {name} histogram")
            cumulative = 0
            for bound, count in zip(TTFT_BOUNDS + [None], self.ttft_buckets):
                cumulative += count
                le = "+Inf" if bound is None else repr(float(bound))
                lines.append(f'{name}_bucket{{engine="0",le="{le}",'
                             f'model_name="{escape_label(self.model)}"}} {float(cumulative)!r}')
            lines.append(f"{name}_count{{{labels}}} {float(self.ttft_count)!r}")
            lines.append(f"{name}_sum{{{labels}}} {self.ttft_sum!r}")
        return "\n".join(lines) + "\n"


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def count_words(messages) -> int:
    """Prompt tokens, counted as words of the messages' text."""
    words = 0
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            words += len(content.split())
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    words += len(part["text"].split())
    return words


class Handler(BaseHTTPRequestHandler):
    # Keep-alive, as real servers do: the daemon polls /health over one connection.
    protocol_version = "HTTP/1.1"
    server_version = "reagent-standin/1"
    sys_version = ""

    @property
    def state(self) -> State:
        return self.server.state  # type: ignore[attr-defined]

    @property
    def options(self) -> argparse.Namespace:
        return self.server.options  # type: ignore[attr-defined]

    # The access log, like uvicorn's (vLLM's server): one line per request, on stdout.
    def log_request(self, code="-", size="-") -> None:
        status = code.value if hasattr(code, "value") else code
        host, port = self.client_address[:2]
        say(f'INFO:     {host}:{port} - "{self.requestline}" {status}')

    def log_message(self, format: str, *args) -> None:
        say("stand-in: " + (format % args))

    def send_json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_text(self, status: int, text: str, content_type: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def loading(self) -> bool:
        """Answers 503 and says so when the model is not loaded yet."""
        if self.state.healthy.is_set():
            return False
        self.send_json(503, {"error": {"message": "the model is loading", "type": "ServiceUnavailable",
                                       "param": None, "code": 503}})
        return True

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/health":
            if self.state.healthy.is_set():
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self.send_json(503, {"status": "loading"})
        elif path == "/metrics":
            self.send_text(200, self.state.metrics(), "text/plain; version=0.0.4; charset=utf-8")
        elif path == "/v1/models":
            if self.loading():
                return
            model = self.state.model
            self.send_json(200, {"object": "list", "data": [{
                "id": model, "object": "model", "created": int(time.time()),
                "owned_by": "reagent-standin", "root": model, "parent": None,
                "max_model_len": KV_CAPACITY_TOKENS}]})
        else:
            self.send_json(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        if path != "/v1/chat/completions":
            self.send_json(404, {"detail": "Not Found"})
            return
        if self.loading():
            return
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the body is not a JSON object")
        except ValueError as err:
            self.send_json(400, {"error": {"message": f"invalid JSON body: {err}",
                                           "type": "BadRequestError", "param": None, "code": 400}})
            return
        # Any model name is served, as llama.cpp's server does: a `command` recipe can only
        # pass the recipe's `model`, and clients ask for its served name.
        self.complete(body)

    def complete(self, body: dict) -> None:
        """Answers a chat completion, streamed or whole, and counts it in the metrics."""
        arrived = time.monotonic()
        state, options = self.state, self.options
        prompt = count_words(body.get("messages"))
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        tokens = options.tokens
        finish = "stop"
        if isinstance(limit, int) and 0 <= limit < tokens:
            tokens, finish = limit, "length"
        stream = bool(body.get("stream"))
        completion_id = "chatcmpl-" + uuid.uuid4().hex
        created = int(time.time())
        delay = options.token_delay_ms / 1000.0
        with state.lock:
            state.running += 1
            state.prompt_tokens += prompt
            state.in_flight_tokens += prompt
        held = prompt
        try:
            if stream:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()

                def chunk(delta: dict, finish_reason=None, usage=None, choices=True) -> None:
                    event = {"id": completion_id, "object": "chat.completion.chunk",
                             "created": created, "model": state.model,
                             "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                          "finish_reason": finish_reason}] if choices else [],
                             "usage": usage}
                    self.send_chunk(f"data: {json.dumps(event)}\n\n")

                chunk({"role": "assistant", "content": ""})
            text = []
            for index in range(tokens):
                time.sleep(delay)
                piece = ("" if index == 0 else " ") + f"tok{index}"
                text.append(piece)
                if index == 0:
                    state.observe_ttft(time.monotonic() - arrived)
                with state.lock:
                    state.generation_tokens += 1
                    state.in_flight_tokens += 1
                held += 1
                if stream:
                    chunk({"content": piece})
            usage = {"prompt_tokens": prompt, "completion_tokens": tokens,
                     "total_tokens": prompt + tokens}
            if stream:
                chunk({}, finish_reason=finish)
                chunk({}, usage=usage, choices=False)
                self.send_chunk("data: [DONE]\n\n")
                self.send_chunk("")
            else:
                self.send_json(200, {
                    "id": completion_id, "object": "chat.completion", "created": created,
                    "model": state.model,
                    "choices": [{"index": 0, "logprobs": None, "finish_reason": finish,
                                 "message": {"role": "assistant", "content": "".join(text)}}],
                    "usage": usage})
        except (BrokenPipeError, ConnectionResetError):
            say("stand-in: the client went away mid-answer")
            self.close_connection = True
        finally:
            with state.lock:
                state.running -= 1
                state.in_flight_tokens -= held

    def send_chunk(self, text: str) -> None:
        """One piece of a chunked body; the empty one ends it."""
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def main() -> int:
    started = time.monotonic()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--model", default="standin", help="the model name it answers to")
    parser.add_argument("--ready-after", type=float, default=1.0,
                        help="seconds until /health answers 200 (default 1.0)")
    parser.add_argument("--mode", choices=["normal", "crash", "never-healthy"], default="normal")
    parser.add_argument("--tokens", type=int, default=8, help="tokens in each answer (default 8)")
    parser.add_argument("--token-delay-ms", type=float, default=5.0,
                        help="milliseconds between tokens (default 5)")
    parser.add_argument("--term-delay", type=float, default=0.0,
                        help="seconds it takes to stop after SIGTERM (default 0)")
    options = parser.parse_args()

    say(f"stand-in: starting, model {options.model}, mode {options.mode}, "
        f"ready after {options.ready_after:g} s")
    if options.mode == "crash":
        say(f"stand-in: loading weights of {options.model}")
        say("stand-in: RuntimeError: CUDA error: out of memory (pretend)")
        say("stand-in: crashing at start")
        time.sleep(0.2)
        return 3

    state = State(options.model)
    try:
        server = ThreadingHTTPServer((options.host, options.port), Handler)
    except OSError as err:
        say(f"stand-in: cannot listen on {options.host}:{options.port}: {err}")
        return 1
    server.daemon_threads = True
    server.state = state  # type: ignore[attr-defined]
    server.options = options  # type: ignore[attr-defined]

    stopping = []

    def on_signal(number, _frame) -> None:
        if not stopping:
            stopping.append(signal.Signals(number).name)
            # shutdown() waits for serve_forever(), which runs on this very thread.
            def stop() -> None:
                time.sleep(options.term_delay)
                server.shutdown()
            threading.Thread(target=stop, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    say(f"stand-in: listening on {server.server_address[1]}")

    def become_healthy() -> None:
        at = now_ms()
        state.healthy.set()
        say(f"stand-in: healthy at {at}")

    if options.mode == "normal":
        wait = max(0.0, options.ready_after - (time.monotonic() - started))
        timer = threading.Timer(wait, become_healthy)
        timer.daemon = True
        timer.start()

    server.serve_forever(poll_interval=0.05)
    server.server_close()
    say(f"stand-in: stopped on {stopping[0] if stopping else 'shutdown'}")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # Not sys.exit: answers still streaming run in daemon threads, and one writing while the
    # interpreter shuts down can abort it; the exit code must stay the one chosen here.
    os._exit(code)
