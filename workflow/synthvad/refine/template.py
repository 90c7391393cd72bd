"""The offline `template` backend and the assembly of prompts.parquet for both methods."""

from __future__ import annotations

from typing import Any

import pandas as pd

from synthvad.plan import NORMAL, gvvad_clip_id, pavad_clip_id

PROMPT_COLUMNS = [
    "clip_id", "method", "class", "label", "prompt", "init_image", "location",
    "model", "request_hash",
]  # fmt: skip
NEGATIVE_PROMPT = "camera motion, zoom, cartoon, text, watermark, blurry, distorted"


class RefineError(ValueError):
    pass


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
    template_phrases: list[str],
    methods: list[str],
    planned: list[str],
    descriptions: str | None,
    init_images: str | None,
    out: str,
) -> pd.DataFrame:
    """Prompts of the `methods` in use; they must match the `planned` clip ids exactly."""
    rows: list[dict[str, Any]] = []
    if "gvvad" in methods:
        rows += gvvad_prompts(pd.read_parquet(descriptions))
    if "pavad" in methods:
        rows += pavad_prompts(pd.read_parquet(init_images), template_phrases)
    return write_prompts(rows, planned, "template", out)


def write_prompts(
    rows: list[dict[str, Any]], planned: list[str], backend: str, out: str
) -> pd.DataFrame:
    """prompts.parquet in plan order, the one contract of every refine backend."""
    from synthvad.io.atomic import write_parquet

    df = pd.DataFrame(rows, columns=PROMPT_COLUMNS)
    df["negative_prompt"] = NEGATIVE_PROMPT
    df["backend"] = backend
    if sorted(df["clip_id"]) != sorted(planned):
        missing = sorted(set(planned) - set(df["clip_id"]))
        extra = sorted(set(df["clip_id"]) - set(planned))
        raise RefineError(
            f"prompts do not match the planned clips: missing {missing}, extra {extra}"
        )
    df = df.set_index("clip_id").loc[planned].reset_index()
    write_parquet(df, out)
    return df
