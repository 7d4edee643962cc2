"""A real HTTP server speaking the OpenAI chat-completions protocol, driven by a scripted policy.

It listens on 127.0.0.1 (a random free port) in a background thread, so the real ``openai`` client
talks to it over a real socket: status codes, headers (``Retry-After``), timeouts, connection resets
and broken bodies are the ones the client meets in production. What it answers comes from

- a queue of actions (``server.push(...)``), consumed one per request, then
- the ``policy``: a callable ``(request) -> action`` (request: the parsed JSON body), then
- a 500 saying the script ran out.

Actions (build them with the helpers below):

- ``reply(content, tool_calls=..., reasoning=...)``: a 200 chat completion; ``tool_calls`` in the
  OpenAI ``message.tool_calls`` shape (``openai_call(name, args)`` builds one), or Hermes
  ``<tool_call>{json}</tool_call>`` text inside ``content`` (``hermes_call(name, args)``);
- ``status(code, headers=..., body=...)``: an error response (429 with ``Retry-After``, 500, 400);
- ``delay(seconds, then)``: wait, then answer ``then`` (the client's timeout fires first);
- ``reset()``: close the TCP connection with RST before any response;
- ``truncated_json()``: a 200 whose JSON body is cut in half (Content-Length matches the cut body);
- ``short_body()``: a 200 that declares more bytes than it sends, then closes;
- ``raw(body, content_type)``: any bytes.

Requests are checked like the real API checks them (``strict=True``): roles, the keys each role may
carry, ``tool_calls`` non-empty with ``function.arguments`` a JSON *string*, every tool message answering
an earlier call id; a violation gets the 400 a real server sends, before any scripted action.

``GET /v1/models`` lists the served model (for ``videothinker doctor``). Every POST is recorded in
``server.requests`` (body, and headers with lower-case names) for assertions.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Action:
    kind: str  # reply | status | delay | reset | truncated_json | short_body | raw
    body: Any = None
    code: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    then: Action | None = None
    content_type: str = "application/json"


def openai_call(name: str, arguments: Any, call_id: str = "call_0") -> dict[str, Any]:
    """One entry of ``message.tool_calls``; ``arguments`` is JSON-encoded unless already a string."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


def hermes_call(name: str, arguments: Any, thought: str = "Let me check.") -> str:
    """Text content with a Hermes ``<tool_call>`` block, as vLLM/SGLang return without a tool parser."""
    return f"<think>{thought}</think>\n<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def reply(content: str | None = "", tool_calls: list[dict[str, Any]] | None = None,
          reasoning: str | None = None, finish_reason: str | None = None) -> Action:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    return Action("reply", body={"message": message,
                                 "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop")})


def status(code: int, headers: dict[str, str] | None = None, body: Any = None) -> Action:
    body = body if body is not None else {"error": {"message": f"scripted {code}", "type": "server_error",
                                                    "code": code}}
    return Action("status", body=body, code=code, headers=headers or {})


def rate_limited(retry_after_s: float = 0.05) -> Action:
    return status(429, headers={"Retry-After": f"{retry_after_s:g}"},
                  body={"error": {"message": "Rate limit reached", "type": "rate_limit_error", "code": 429}})


def delay(seconds: float, then: Action | None = None) -> Action:
    return Action("delay", seconds=seconds, then=then or reply("late"))


def reset() -> Action:
    return Action("reset")


def truncated_json() -> Action:
    return Action("truncated_json")


def short_body() -> Action:
    return Action("short_body")


def raw(body: bytes, content_type: str = "application/json", code: int = 200) -> Action:
    return Action("raw", body=body, code=code, content_type=content_type)


Policy = Callable[[dict[str, Any]], Action]


class FakeOpenAIServer:
    """``with FakeOpenAIServer(policy) as server: OpenAI(base_url=server.url)``."""

    def __init__(self, policy: Policy | None = None, model: str = "scripted-teacher", strict: bool = True):
        self.policy = policy
        self.strict = strict
        self.model = model
        self.queue: deque[Action] = deque()
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "start() the server first"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """The base URL to give the client (``.../v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting ---------------------------------------------------------------------------------

    def push(self, *actions: Action) -> None:
        with self._lock:
            self.queue.extend(actions)

    def next_action(self, request: dict[str, Any]) -> Action:
        with self._lock:
            self.requests.append(request)
        if self.strict and (errors := protocol_errors(request["body"])):
            return status(400, body={"error": {"message": "; ".join(errors), "type": "invalid_request_error",
                                               "code": 400}})
        with self._lock:
            if self.queue:
                return self.queue.popleft()
        if self.policy is not None:
            return self.policy(request["body"])
        return status(500, body={"error": {"message": "the fake server's script ran out", "code": 500}})

    def completion(self, action: Action) -> dict[str, Any]:
        with self._lock:
            self._counter += 1
            n = self._counter
        return {
            "id": f"chatcmpl-{n}", "object": "chat.completion", "created": 1_700_000_000, "model": self.model,
            "choices": [{"index": 0, **action.body, "logprobs": None}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }

    @property
    def posts(self) -> int:
        return len(self.requests)


_MESSAGE_KEYS = {
    "system": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "name", "tool_calls", "reasoning_content"},
    "tool": {"role", "content", "tool_call_id", "name"},
}


def protocol_errors(body: Any) -> list[str]:
    """What a strict OpenAI-compatible server would refuse in a chat-completions request body."""
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return ["body must be an object with a string 'model'"]
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return ["'messages' must be a non-empty array"]
    errors: list[str] = []
    call_ids: set[str] = set()
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        role = m.get("role") if isinstance(m, dict) else None
        if role not in _MESSAGE_KEYS:
            errors.append(f"{where}.role: {role!r} is not one of {sorted(_MESSAGE_KEYS)}")
            continue
        extra = sorted(set(m) - _MESSAGE_KEYS[role])
        if extra:
            errors.append(f"{where}: additional properties are not allowed ({', '.join(extra)})")
        if "tool_calls" in m:
            calls = m["tool_calls"]
            if not isinstance(calls, list) or not calls:
                errors.append(f"{where}.tool_calls: empty array; expected at least 1 item")
                continue
            for j, c in enumerate(calls):
                fn = c.get("function") if isinstance(c, dict) else None
                if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                    errors.append(f"{where}.tool_calls[{j}].function.name: expected a string")
                elif not isinstance(fn.get("arguments"), str):
                    errors.append(f"{where}.tool_calls[{j}].function.arguments: expected a string, got "
                                  f"{type(fn.get('arguments')).__name__}")
                if isinstance(c, dict) and isinstance(c.get("id"), str):
                    call_ids.add(c["id"])
        if role == "tool" and m.get("tool_call_id") not in call_ids:
            errors.append(f"{where}.tool_call_id: {m.get('tool_call_id')!r} answers no earlier tool call")
    return errors


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:  # noqa: D401 - resets/timeouts are the point
        pass


class _Handler(BaseHTTPRequestHandler):
    owner: FakeOpenAIServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the access log
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": [{"id": self.owner.model, "object": "model",
                                                              "created": 0, "owned_by": "tests"}]})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length)
        try:
            body = json.loads(data or b"{}")
        except ValueError:
            body = {"_unparseable": data[:200].decode("latin-1")}
        request = {"path": self.path, "body": body, "headers": {k.lower(): v for k, v in self.headers.items()}}
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        self._perform(self.owner.next_action(request))

    def _perform(self, action: Action) -> None:
        if action.kind == "delay":
            if self.owner._stop.wait(action.seconds):
                return
            self._perform(action.then or reply("late"))
        elif action.kind == "reply":
            self._send_json(200, self.owner.completion(action))
        elif action.kind == "status":
            self._send_json(action.code, action.body, action.headers)
        elif action.kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif action.kind == "truncated_json":
            full = json.dumps(self.owner.completion(reply("this reply is cut"))).encode()
            self._send_bytes(200, full[: len(full) // 2], "application/json")
        elif action.kind == "short_body":
            full = json.dumps(self.owner.completion(reply("this reply is cut"))).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(full)))
            self.end_headers()
            self.wfile.write(full[: len(full) // 3])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        elif action.kind == "raw":
            self._send_bytes(action.code, action.body, action.content_type)
        else:
            raise ValueError(f"unknown action {action.kind!r}")

    def _send_json(self, code: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(code, json.dumps(obj).encode(), "application/json", headers)

    def _send_bytes(self, code: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:  # the client gave up (timeout) before the answer came
            self.close_connection = True
