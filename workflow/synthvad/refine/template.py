"""The offline `template` backend, and the prompts of both methods with either backend
(synthvad.prompts writes them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from synthvad.plan import NORMAL, gvvad_clip_id, pavad_clip_id
from synthvad.prompts import write_prompts


def with_template(phrase: str, template_phrases: list[str]) -> str:
    """p = concat(s_hat, g_tem) (PA-VAD Eq. 6)."""
    return ", ".join([phrase.rstrip("."), *template_phrases])


def coarse_phrase(cls: str) -> str:
    """The template backend's s_hat: the class name in the refinement pattern."""
    label = cls.replace("_", " ")
    return f"Generate {label} behavior, manifested as {label} in the scene"


def pavad_prompts(init_images: pd.DataFrame, template_phrases: list[str]) -> list[dict[str, Any]]:
    rows = []
    for rec in init_images.to_dict("records"):
        abnormal = rec["class"] != NORMAL
        rows.append(
            {
                "clip_id": pavad_clip_id(rec["class"], int(rec["rank"])),
                "method": "pavad",
                "class": rec["class"],
                "label": int(abnormal),
                "prompt": with_template(coarse_phrase(rec["class"]), template_phrases),
                "init_image": rec["image"],
                "location": None,
                "model": None,
                "request_hash": None,
            }
        )
    return rows


def gvvad_prompts(descriptions: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for rec in descriptions.to_dict("records"):
        for abnormal in (True, False):
            rows.append(
                {
                    "clip_id": gvvad_clip_id(rec["class"], int(rec["index"]), abnormal),
                    "method": "gvvad",
                    "class": rec["class"],
                    "label": int(abnormal),
                    "prompt": rec["abnormal" if abnormal else "normal"],
                    "init_image": None,
                    "location": rec["location"],
                    # the description's provenance (LLM model and request hash)
                    "model": rec["model"],
                    "request_hash": rec["request_hash"],
                }
            )
    return rows


def run(
    backend: str,
    pavad_rows: Callable[[pd.DataFrame], list[dict[str, Any]]],
    methods: list[str],
    planned: list[str],
    descriptions: str | None,
    init_images: str | None,
    table: str,
    clip_dir: str,
) -> pd.DataFrame:
    """Prompts of the `methods` in use, written by synthvad.prompts: GV-VAD from the
    descriptions, PA-VAD rows from the backend's `pavad_rows` (template: pavad_prompts;
    openai: refined_pavad_prompts). They must match the `planned` clip ids exactly."""
    rows: list[dict[str, Any]] = []
    if "gvvad" in methods:
        rows += gvvad_prompts(pd.read_parquet(descriptions))
    if "pavad" in methods:
        rows += pavad_rows(pd.read_parquet(init_images))
    return write_prompts(rows, planned, backend, table, clip_dir)
