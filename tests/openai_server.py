"""A scripted OpenAI-compatible HTTP server on 127.0.0.1 for tests of the LLM/VLM stages.

It speaks `GET /v1/models` and `POST /v1/chat/completions` (string content, or a list of
text and image_url parts whose data URLs must decode to an image), checks the bearer
key (401 with a partly masked echo of a wrong key, as OpenAI does) and answers each
chat request in a mode: the next one of `script`, else what `rule(request)` returns,
else `default`.

Modes: "good" (an answer derived from the request that passes the stages' validation),
"garbage", "429" (with Retry-After), "500", "hang" (sleeps past the client's timeout).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DESCRIBE_FIELDS = re.compile(
    r"Camera viewpoint: (?P<viewpoint>.+)\nLocation: (?P<location>.+)\n"
    r"Subject: (?P<subject>.+)\nAnomalous event: (?P<event>.+)\n"
)
REFINE_PATTERN = re.compile(r"Generate (?P<label>[^\"]+?) behavior, manifested as")
CAPTION_REQUEST = re.compile(r"^Caption (this frame|these \d+ frames)")
# Captions the server picks among by the request's images, so that they differ.
CAPTIONS = (
    "A person walks along the street past a parked car.",
    "Two people stand talking near the entrance.",
    "A cyclist rides slowly across the plaza.",
)
DATA_URL = re.compile(r"data:image/(png|jpeg|webp);base64,(?P<data>.+)", flags=re.S)
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF")
MODES = ("good", "garbage", "429", "500", "hang")
# Keys for tests: the right one, a wrong one, and the variable the stages read them from.
KEY = "sk-synthvad-test-7f3c9a1e5b2d4c6e8a0f"
WRONG = "sk-wrong-key-0a1b2c3d4e5f6a7b8c9d"
KEY_VAR = "SYNTHVAD_TEST_KEY"


def key_fragments(key: str) -> list[str]:
    """What a leak would look like: the key, and the parts a server echoes of it."""
    return [key, key[:8], key[-6:], key[8:20]]


def assert_no_key_in(root: Path, key: str = KEY) -> None:
    """No file under `root` holds the key or a recognisable part of it."""
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            leaked = [f for f in key_fragments(key) if f.encode() in data]
            assert not leaked, f"{path} contains {leaked}"


class ScriptedOpenAI:
    def __init__(self, key: str, model: str = "test-model", retry_after: float = 1.0) -> None:
        self.key = key
        self.model = model
        self.retry_after = retry_after
        self.hang_s = 3.0
        self.default = "good"
        self.script: list[str] = []
        self.rule: Callable[[dict[str, Any]], str | None] | None = None
        self.chat: list[dict[str, Any]] = []  # every chat request body, with its mode
        self.arrivals: list[float] = []  # time.monotonic() of every chat request
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False  # a hanging handler must not block shutdown
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> ScriptedOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def reset(self, default: str = "good", script: list[str] | None = None, rule=None) -> None:
        with self.lock:
            self.default, self.script, self.rule = default, list(script or []), rule

    def mode_for(self, body: dict[str, Any]) -> str:
        with self.lock:
            self.arrivals.append(time.monotonic())
            if self.script:
                mode = self.script.pop(0)
            else:
                mode = (self.rule and self.rule(body)) or self.default
            self.chat.append({**body, "mode": mode})
        assert mode in MODES, mode
        return mode


def first_user_text(body: dict[str, Any]) -> str:
    """The text of the first user message (later ones are re-asks)."""
    for message in body["messages"]:
        if message["role"] == "user":
            content = message["content"]
            if isinstance(content, str):
                return content
            return "\n".join(p["text"] for p in content if p["type"] == "text")
    return ""


def image_problems(body: dict[str, Any]) -> list[str]:
    problems = []
    for message in body["messages"]:
        if not isinstance(message["content"], list):
            continue
        for part in message["content"]:
            if part["type"] == "image_url":
                match = DATA_URL.fullmatch(part["image_url"]["url"])
                try:
                    data = base64.b64decode(match["data"], validate=True) if match else b""
                except binascii.Error:
                    data = b""
                if not data.startswith(IMAGE_MAGIC):
                    problems.append("image_url is not a base64 data URL of an image")
            elif part["type"] != "text":
                problems.append(f"unknown content part {part['type']!r}")
    return problems


def good_answer(body: dict[str, Any]) -> str:
    text = first_user_text(body)
    if m := DESCRIBE_FIELDS.search(text):
        scene = f"From {m['viewpoint']} at {m['location']}"
        return json.dumps(
            {
                "abnormal": f"{scene}, {m['subject']} {m['event']} as people nearby step back.",
                "normal": f"{scene}, {m['subject']} walks by calmly among other people.",
            }
        )
    if CAPTION_REQUEST.search(text):
        digest = hashlib.sha256(json.dumps(body["messages"]).encode()).digest()
        return CAPTIONS[digest[0] % len(CAPTIONS)]
    if m := REFINE_PATTERN.search(text):
        return (
            f"Generate {m['label']} behavior, manifested as a person in the pictured scene "
            f"acting out {m['label']} near the visible objects."
        )
    return "I do not know what to answer."


def completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


def _handler(server: ScriptedOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet test output
            pass

        def reply(
            self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
            self.reply(
                status, {"error": {"message": message, "type": "test", "code": None}}, headers
            )

        def authorized(self) -> bool:
            sent = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if sent == server.key:
                return True
            # Real OpenAI echoes a wrong key with its middle masked.
            self.error(401, f"Incorrect API key provided: {sent[:8]}****{sent[-4:]}.")
            return False

        def do_GET(self) -> None:
            if self.path.rstrip("/") != "/v1/models":
                return self.error(404, f"no route {self.path}")
            if self.authorized():
                model = {"id": server.model, "object": "model", "created": 0, "owned_by": "test"}
                self.reply(200, {"object": "list", "data": [model]})

        def do_POST(self) -> None:
            if self.path != "/v1/chat/completions":
                return self.error(404, f"no route {self.path}")
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if not self.authorized():
                return
            if problems := image_problems(body):
                return self.error(400, "; ".join(problems))
            if body.get("model") != server.model:
                return self.error(404, f"model {body.get('model')!r} does not exist")
            mode = server.mode_for(body)
            if mode == "429":
                return self.error(429, "rate limited", {"Retry-After": str(server.retry_after)})
            if mode == "500":
                return self.error(500, "internal error")
            if mode == "hang":
                time.sleep(server.hang_s)
                return
            text = good_answer(body) if mode == "good" else "Sorry, I cannot help with that!"
            self.reply(200, completion(server.model, text))

    return Handler
