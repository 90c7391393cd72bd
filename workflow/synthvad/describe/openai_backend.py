"""The `openai` backend: an LLM on an OpenAI-compatible server writes the paired
abnormal/normal descriptions of each element combination (GV-VAD II-A)."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from synthvad.describe.template import combinations
from synthvad.llm.batch import Job, run_jobs
from synthvad.llm.messages import InvalidAnswer, parse_json_object
from synthvad.llm.settings import LLMSettings
from synthvad.plan import described_classes

SYSTEM = (
    "You write short descriptions of surveillance footage that a text-to-video model will "
    "render. Describe only what a fixed camera would record. Reply with a JSON object only."
)
REMINDER = 'Reply again with only the JSON object {"abnormal": "...", "normal": "..."}.'
# Words that say nothing about which event happened, skipped when checking that the
# abnormal text mentions it.
FILLER = frozenset(
    "the and into onto with from gets get got its his her their then while over away "
    "out off suddenly someone something".split()
)


def user_message(combo: dict[str, Any], max_chars: int) -> str:
    return (
        "Write two descriptions of the same surveillance scene.\n"
        f"Camera viewpoint: {combo['viewpoint']}\n"
        f"Location: {combo['location']}\n"
        f"Subject: {combo['subject']}\n"
        f"Anomalous event: {combo['event']}\n"
        '"abnormal": one or two sentences, seen from this viewpoint at this location, in '
        "which the subject performs the anomalous event, and how people nearby react.\n"
        '"normal": one or two sentences of the same viewpoint and location showing ordinary, '
        "peaceful activity, with no anomaly at all.\n"
        f"Each description has at most {max_chars} characters. "
        'Reply with {"abnormal": "...", "normal": "..."}.'
    )


def event_stems(event: str) -> set[str]:
    """First four letters of the event's content words: enough to accept
    'collapses' for 'collapsing' or 'explodes' for 'explosion'."""
    words = [w for w in re.findall(r"[a-z]+", event.lower()) if len(w) >= 3 and w not in FILLER]
    return {w[:4] for w in words}


def validate(combo: dict[str, Any], max_chars: int):
    stems = event_stems(combo["event"])

    def check(text: str) -> tuple[str, str]:
        answer = parse_json_object(text)
        texts = {}
        for field in ("abnormal", "normal"):
            value = answer.get(field)
            if not isinstance(value, str) or not value.strip():
                raise InvalidAnswer(f"field {field!r} is missing or empty")
            value = " ".join(value.split())
            if len(value) > max_chars:
                raise InvalidAnswer(
                    f"field {field!r} has {len(value)} characters, more than {max_chars}"
                )
            texts[field] = value
        words = re.findall(r"[a-z]+", texts["abnormal"].lower())
        if stems and not any(w[:4] in stems for w in words):
            raise InvalidAnswer(
                f"the abnormal description does not mention the event {combo['event']!r}"
            )
        if combo["event"].lower() in texts["normal"].lower():
            raise InvalidAnswer(f"the normal description contains the event {combo['event']!r}")
        return texts["abnormal"], texts["normal"]

    return check


def combination_name(combo: dict[str, Any]) -> str:
    return (
        f"combination class={combo['class']} viewpoint={combo['viewpoint']!r} "
        f"location={combo['location']!r} subject={combo['subject']!r} event={combo['event']!r}"
    )


def job(combo: dict[str, Any], cfg: dict[str, Any]) -> Job:
    return Job(
        name=combination_name(combo),
        messages=[
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": user_message(combo, cfg["max_chars"])},
        ],
        validate=validate(combo, cfg["max_chars"]),
        reminder=REMINDER,
        params={"response_format": {"type": "json_object"}} if cfg["json_mode"] else {},
    )


def run(config: dict[str, Any], settings: LLMSettings, out: str) -> pd.DataFrame:
    from synthvad.io.atomic import write_parquet

    cfg = config["describe"]
    combos = combinations(cfg, described_classes(config), config["seed"])
    answers = run_jobs([job(c, cfg) for c in combos], settings)
    rows = [
        {
            **combo,
            "abnormal": answer.value[0],
            "normal": answer.value[1],
            "backend": "openai",
            "model": settings.model,
            "request_hash": answer.key,
        }
        for combo, answer in zip(combos, answers, strict=True)
    ]
    df = pd.DataFrame(rows)
    write_parquet(df, out)
    return df
