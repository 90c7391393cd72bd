"""Answers for a batch of chat requests: from the cache, or asked with bounded
parallelism, validated, re-asked with the problem stated, and cached as they finish."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import openai
from tqdm import tqdm

from synthvad.llm.cache import AnswerCache, request_key
from synthvad.llm.client import LLMError, connect, describe_api_error, redact
from synthvad.llm.messages import InvalidAnswer, summary, visible_text
from synthvad.llm.settings import LLMSettings

log = logging.getLogger(__name__)
# One line per HTTP request would drown the progress bar in the rule's log.
logging.getLogger("httpx2").setLevel(logging.WARNING)

# Errors no other request would escape: stop sending instead of failing every item alike.
FATAL = (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError)


@dataclass(frozen=True)
class Job:
    name: str  # the item, as error messages should name it
    messages: list[dict[str, Any]]
    validate: Callable[[str], Any]  # the parsed answer, or InvalidAnswer
    reminder: str  # what to ask for again after an invalid answer
    params: dict[str, Any] = field(default_factory=dict)  # extra request fields


@dataclass(frozen=True)
class Answer:
    key: str  # request hash: the cache file's name
    text: str
    value: Any
    cached: bool


def request_for(settings: LLMSettings, job: Job) -> dict[str, Any]:
    return {
        "model": settings.model,
        "messages": job.messages,
        "temperature": settings.temperature,
        "max_tokens": settings.max_tokens,
        **job.params,
    }


def ask(
    client: openai.OpenAI, settings: LLMSettings, job: Job, request: dict[str, Any]
) -> tuple[str, Any, int]:
    """(text, parsed value, attempts); re-asks with the problem stated, at most
    `validation_retries` times, then raises LLMError naming the item."""
    messages = list(request["messages"])
    attempts = settings.validation_retries + 1
    for attempt in range(1, attempts + 1):
        response = client.chat.completions.create(**{**request, "messages": messages})
        choice = response.choices[0] if response.choices else None
        text = visible_text(choice.message.content if choice else None)
        try:
            if choice is not None and choice.finish_reason == "length":
                raise InvalidAnswer(f"the answer was cut off at max_tokens={settings.max_tokens}")
            return text, job.validate(text), attempt
        except InvalidAnswer as exc:
            problem = str(exc)
        log.info("%s: answer %d of %d rejected: %s", job.name, attempt, attempts, problem)
        messages += [
            {"role": "assistant", "content": text},
            {"role": "user", "content": f"Your answer was rejected: {problem}. {job.reminder}"},
        ]
    raise LLMError(f"{job.name}: no valid answer in {attempts} attempts; the last one: {problem}")


def from_cache(cache: AnswerCache, key: str, job: Job) -> Answer | None:
    record = cache.get(key)
    if record is None:
        return None
    try:
        return Answer(key, record["answer"], job.validate(record["answer"]), cached=True)
    except (InvalidAnswer, KeyError, TypeError):
        log.warning("%s: cached answer %s no longer validates; asking again", job.name, key)
        return None


def run_jobs(jobs: list[Job], settings: LLMSettings) -> list[Answer]:
    """One answer per job, in order. Fails after trying every item, naming each failed
    one; the answered ones are cached, so a rerun asks only for the rest."""
    cache = AnswerCache(settings.cache_dir)
    requests = {}
    answers: dict[str, Answer] = {}
    keys = []
    for job in jobs:
        request = request_for(settings, job)
        key = request_key(request)
        keys.append(key)
        if key not in answers and key not in requests:
            hit = from_cache(cache, key, job)
            if hit is not None:
                answers[key] = hit
            else:
                requests[key] = (job, request)
    log.info(
        "%s: %d items, %d to ask %s (model %s), the rest answered from the cache in %s",
        settings.stage,
        len(jobs),
        len(requests),
        settings.base_url,
        settings.model,
        cache.root,
    )
    if requests:
        answers.update(_ask_all(requests, settings, cache))
    return [answers[key] for key in keys]


def _ask_all(
    requests: dict[str, tuple[Job, dict[str, Any]]], settings: LLMSettings, cache: AnswerCache
) -> dict[str, Answer]:
    client, secret = connect(settings)
    stop = threading.Event()

    def one(key: str, job: Job, request: dict[str, Any]) -> tuple[str, Answer | str | None]:
        if stop.is_set():
            return "skipped", None
        try:
            text, value, attempts = ask(client, settings, job, request)
        except LLMError as exc:
            return "failed", redact(str(exc), secret)
        except openai.OpenAIError as exc:
            message = describe_api_error(exc, settings, secret)
            if isinstance(exc, FATAL):
                stop.set()
                return "fatal", message
            return "failed", f"{job.name}: {message}"
        record = {
            "stage": settings.stage,
            "item": job.name,
            "model": settings.model,
            "params": {k: v for k, v in request.items() if k not in ("model", "messages")},
            "messages": summary(request["messages"]),
            "answer": text,
            "attempts": attempts,
        }
        cache.put(key, record)
        return "ok", Answer(key, text, value, cached=False)

    answered: dict[str, Answer] = {}
    failed: list[str] = []
    fatal: list[str] = []
    workers = min(settings.max_concurrency, len(requests))
    with (
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix=settings.stage) as pool,
        tqdm(total=len(requests), desc=f"{settings.stage} requests", unit="item") as bar,
    ):
        futures = {pool.submit(one, key, *item): key for key, item in requests.items()}
        for future in as_completed(futures):
            status, result = future.result()
            if status == "ok":
                answered[futures[future]] = result
            elif status == "failed":
                failed.append(result)
            elif status == "fatal":
                fatal.append(result)
            bar.update()
            bar.set_postfix(answered=len(answered), failed=len(failed) + len(fatal))
    kept = f"{len(answered)} new answers are cached in {cache.root}, a rerun asks only for the rest"
    if fatal:
        raise LLMError(f"{settings.stage}: {fatal[0]}; stopped sending ({kept})")
    if failed:
        lines = "\n".join(f"  - {m}" for m in sorted(failed))
        raise LLMError(
            f"{settings.stage}: {len(failed)} of {len(requests)} requests failed ({kept}):\n{lines}"
        )
    return answered
