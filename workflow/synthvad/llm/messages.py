"""Chat message parts and answer text helpers shared by the describe and refine backends."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}
THINK = re.compile(r"<think>.*?</think>", flags=re.S)
FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


QUOTES = "\"'“”‘’`"
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class InvalidAnswer(ValueError):
    """An answer that breaks the requested format; the message is shown to the model."""


def plain_answer(text: str) -> str:
    """The answer on one line, without the quotes models wrap it in; empty is invalid."""
    answer = " ".join(text.split()).strip(QUOTES + " ")
    if not answer:
        raise InvalidAnswer("the answer is empty")
    return answer


def check_one_sentence(answer: str, max_words: int) -> None:
    """One sentence of at most `max_words` words (captions and refined prompts)."""
    sentences = [s for s in SENTENCE_END.split(answer) if s]
    if len(sentences) > 1:
        raise InvalidAnswer(f"the answer has {len(sentences)} sentences, not one")
    if len(answer.split()) > max_words:
        raise InvalidAnswer(f"the answer has {len(answer.split())} words, more than {max_words}")


def image_part(path: str | Path) -> dict[str, Any]:
    """An image content part carrying the file's bytes as a base64 data URL."""
    path = Path(path)
    mime = MIME.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"{path}: unsupported image type (known: {sorted(MIME)})")
    data = base64.b64encode(path.read_bytes()).decode()
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def summary(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages with each image replaced by the sha256 of its data URL: what a
    cache record keeps to show what was asked, without megabytes of base64."""
    out = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            content = [
                {
                    "type": "image",
                    "sha256": hashlib.sha256(p["image_url"]["url"].encode()).hexdigest(),
                }
                if p["type"] == "image_url"
                else p
                for p in content
            ]
        out.append({**message, "content": content})
    return out


def visible_text(content: str | None) -> str:
    """The answer without reasoning blocks that some models (e.g. Qwen3) emit inline."""
    return THINK.sub("", content or "").strip()


def parse_json_object(text: str) -> dict[str, Any]:
    """The JSON object in an answer, tolerating a Markdown code fence around it."""
    body = FENCE.sub("", text.strip())
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        start, end = body.find("{"), body.rfind("}")
        try:
            value = json.loads(body[start : end + 1]) if 0 <= start < end else None
        except json.JSONDecodeError:
            value = None
    if not isinstance(value, dict):
        raise InvalidAnswer("the answer is not a JSON object")
    return value
