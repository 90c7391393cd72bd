"""The `openai` backend: a VLM on an OpenAI-compatible server turns (class, initial image)
into one scene-grounded phrase s_hat (PA-VAD Eq. 5, instruction of S1.2), then the
template phrases are appended (Eq. 6). GV-VAD prompts are the stage-1 descriptions."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from synthvad.llm.batch import Job, run_jobs
from synthvad.llm.messages import (
    InvalidAnswer,
    check_one_sentence,
    image_part,
    plain_answer,
    text_part,
)
from synthvad.llm.settings import LLMSettings
from synthvad.plan import NORMAL
from synthvad.refine.template import pavad_prompts, with_template

SYSTEM = (
    "You are an expert in visual scene understanding and in designing the behaviour of "
    "people and objects for surveillance video synthesis."
)
# Motion of the camera itself, which the video model must not produce.
CAMERA_MOTION = re.compile(
    r"\b(camera\s+(pans|zooms|tilts|moves|shakes|follows|tracks|rotates|cuts)|"
    r"zoom(s|ing)?\s+(in|out)|panning|tracking\s+shot)\b",
    flags=re.I,
)


def pattern(cls: str) -> str:
    return f"Generate {cls.replace('_', ' ')} behavior, manifested as"


def instruction(cls: str) -> str:
    """g_vlm: scene-grounded, nothing invented, no camera motion, one sentence."""
    if cls == NORMAL:
        task = (
            "Describe the most plausible ordinary, everyday activity for this exact scene, "
            "with no anomaly of any kind."
        )
    else:
        task = (
            f"The anomaly category is '{cls.replace('_', ' ')}'. Describe the most plausible "
            "abnormal behaviour of this category that could happen in this exact scene."
        )
    return (
        f"The image is a frame from a fixed surveillance camera. {task} "
        f'Answer with one short sentence that completes "{pattern(cls)} ...". '
        "Use only people, objects and places clearly visible in the image; do not invent "
        "objects, persons, weapons or motions that the image does not show. Keep the action "
        "realistic and physically plausible. The camera is fixed: never describe camera "
        "motion, zoom or cuts."
    )


def validate(cls: str, max_words: int):
    words = r"\s+".join(re.escape(w) for w in cls.replace("_", " ").split())
    own_pattern = re.compile(rf"generate\s+{words}\s+behaviou?r\s*,?\s*manifested\s+as\b", re.I)

    def check(text: str) -> str:
        phrase = plain_answer(text)
        if not phrase.lower().startswith("generate"):
            raise InvalidAnswer(f'the answer must be one sentence completing "{pattern(cls)} ..."')
        check_one_sentence(phrase, max_words)
        if motion := CAMERA_MOTION.search(phrase):
            raise InvalidAnswer(f"the answer describes camera motion ({motion.group(0)!r})")
        if not own_pattern.match(phrase):
            # A VLM may answer with another class ("Generate abnormal behavior, ...").
            opening = " ".join(phrase.split()[:5])
            raise InvalidAnswer(
                f'the answer must complete "{pattern(cls)} ..." for this {cls} clip, '
                f'not "{opening} ..."'
            )
        return phrase.rstrip(".")

    return check


def job(cls: str, image: str, max_words: int) -> Job:
    return Job(
        name=f"image {image} (class {cls})",
        messages=[
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": [text_part(instruction(cls)), image_part(image)]},
        ],
        validate=validate(cls, max_words),
        reminder=f'Reply again with only one short sentence completing "{pattern(cls)} ...".',
    )


def refined_pavad_prompts(
    init_images: pd.DataFrame, cfg: dict[str, Any], settings: LLMSettings
) -> list[dict[str, Any]]:
    records = init_images.to_dict("records")
    answers = run_jobs([job(r["class"], r["image"], cfg["max_words"]) for r in records], settings)
    rows = pavad_prompts(init_images, cfg["template_phrases"])
    for row, answer in zip(rows, answers, strict=True):
        row.update(
            prompt=with_template(answer.value, cfg["template_phrases"]),  # Eq. 6
            model=settings.model,
            request_hash=answer.key,
        )
    return rows
