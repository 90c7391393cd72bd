"""The `openai` client for an OpenAI-compatible server: key from the environment, a
preflight check before any work, and error messages with the key redacted.

Retries on 429, 5xx and timeouts (exponential backoff with jitter, honouring
Retry-After) are the client's own, configured through `max_retries` and `timeout_s`.
"""

from __future__ import annotations

import logging
import os
import re

import openai

from synthvad.llm.settings import LLMSettings

log = logging.getLogger(__name__)

# Servers that ignore keys (a local vLLM or Ollama) still need a non-empty one in the client.
NO_KEY = "unused"
# Shorter shared substrings may be ordinary words; longer ones are taken as parts of the key.
MIN_FRAGMENT = 6
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class LLMError(RuntimeError):
    """A request or answer problem, with a message that never contains the API key."""


def redact(text: str, secret: str | None) -> str:
    """`text` without the secret and without any run of MIN_FRAGMENT or more of its
    characters (servers echo a wrong key partly masked, e.g. its first and last few)."""
    if not secret or secret == NO_KEY:
        return text
    for length in range(len(secret), MIN_FRAGMENT - 1, -1):
        for start in range(len(secret) - length + 1):
            fragment = secret[start : start + length]
            if fragment in text:
                text = text.replace(fragment, "[redacted]")
    return text


def api_key(settings: LLMSettings) -> str:
    var = settings.api_key_env
    if var is None:
        return NO_KEY
    if not ENV_NAME.fullmatch(var):
        # Not echoed: a key pasted here by mistake must not reach the log.
        raise LLMError(
            f"{settings.key}.api_key_env must be the NAME of an environment variable "
            "(e.g. OPENAI_API_KEY), not a key; remove the key from the config file"
        )
    key = os.environ.get(var, "")
    if not key.strip():
        raise LLMError(
            f"{settings.key}.api_key_env: environment variable {var} is not set; export it "
            f"with the API key for {settings.base_url} (for a server without keys set "
            f"{settings.key}.api_key_env to null)"
        )
    return key.strip()


def describe_api_error(exc: openai.OpenAIError, settings: LLMSettings, secret: str) -> str:
    """One line about a failed call, naming the server, with the key redacted."""
    if isinstance(exc, openai.AuthenticationError) and settings.api_key_env is None:
        return f"the server at {settings.base_url} wants an API key (HTTP 401): set {settings.key}.api_key_env"
    if isinstance(exc, openai.AuthenticationError):
        return (
            f"the server at {settings.base_url} rejected the API key from "
            f"${settings.api_key_env} (HTTP 401); check the key ({settings.key}.api_key_env)"
        )
    if isinstance(exc, openai.APITimeoutError):
        return (
            f"no answer from {settings.base_url} within {settings.key}.timeout_s="
            f"{settings.timeout_s} s after {settings.max_retries} retries"
        )
    if isinstance(exc, openai.APIConnectionError):
        return (
            f"cannot reach {settings.base_url} ({settings.key}.base_url): "
            f"{redact(str(exc.__cause__ or exc), secret)}"
        )
    if isinstance(exc, openai.APIStatusError):
        return f"{settings.base_url} answered HTTP {exc.status_code}: {redact(exc.message, secret)}"
    return redact(f"{type(exc).__name__}: {exc}", secret)


def connect(settings: LLMSettings) -> tuple[openai.OpenAI, str]:
    """A client for `settings`, checked against the server (key, address, model)
    before any work; returns it with the key, for redaction."""
    secret = api_key(settings)
    client = openai.OpenAI(
        api_key=secret,
        base_url=settings.base_url,
        timeout=settings.timeout_s,
        max_retries=settings.max_retries,
    )
    try:
        served = [m.id for m in client.models.list()]
    except openai.NotFoundError:
        served = []  # a server without GET /models: the first request will tell
    except openai.OpenAIError as exc:
        raise LLMError(f"{settings.stage}: {describe_api_error(exc, settings, secret)}") from None
    if served and settings.model not in served:
        raise LLMError(
            f"{settings.key}.model: {settings.model!r} is not served at {settings.base_url}; "
            f"it serves {sorted(served)[:20]}"
        )
    log.info("%s: %s serves %s", settings.stage, settings.base_url, settings.model)
    return client, secret
