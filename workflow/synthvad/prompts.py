"""The stage 3 -> 4 contract: `prompts.parquet` for people, one JSON file per clip for jobs.

A synthesis job reads only its clip's JSON, which holds the prompt and the sha256 of the
initial image. Refine is a Snakemake checkpoint, so the DAG is re-evaluated once it has
run: a clip whose JSON came out byte-identical passes Snakemake's input-checksum test and
is not regenerated. Adding 100 clips to 5,000 therefore reruns refine (cheap, cached) and
makes 100 clips, not 5,100.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from synthvad.io.atomic import write_parquet, write_text

PROMPT_COLUMNS = [
    "clip_id", "method", "class", "label", "prompt", "init_image", "location",
    "model", "request_hash",
]  # fmt: skip
NEGATIVE_PROMPT = "camera motion, zoom, cartoon, text, watermark, blurry, distorted"


class RefineError(ValueError):
    pass


def check_image(path: str | Path, where: str) -> None:
    """Decode an initial image fully; a broken one stops with its name and the command that
    makes it again (hashing alone would accept a truncated file)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise RefineError(
            f"{where}: initial image {path} cannot be decoded ({exc}); recreate it with "
            "snakemake --forcerun retrieve"
        ) from exc


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in blocks (LoRA files run to gigabytes)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    """JSON-ready scalars: numpy ints to int, NaN (pandas' missing) to None."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value


def clip_record(row: dict[str, Any]) -> dict[str, Any]:
    """A clip's JSON: its prompt row plus the initial image's content hash (PA-VAD)."""
    record = {key: _plain(value) for key, value in row.items()}
    image = record.get("init_image")
    if image:
        if not Path(image).is_file():
            raise RefineError(f"clip {record['clip_id']}: initial image {image} does not exist")
        check_image(image, f"clip {record['clip_id']}")
        record["init_image_sha256"] = file_sha256(image)
    return record


def clip_prompt_path(folder: str | Path, clip_id: str) -> str:
    """Where refine writes a clip's prompt file and synthesis reads it."""
    return f"{folder}/{clip_id}.json"


def write_prompts(
    rows: list[dict[str, Any]],
    planned: Sequence[str],
    backend: str,
    table: str | Path,
    clip_dir: str | Path,
) -> pd.DataFrame:
    """`table` in plan order and one JSON per planned clip in `clip_dir`: the one output
    of every refine backend."""
    df = pd.DataFrame(rows, columns=PROMPT_COLUMNS)
    df["negative_prompt"] = NEGATIVE_PROMPT
    df["backend"] = backend
    if sorted(df["clip_id"]) != sorted(planned):
        missing = sorted(set(planned) - set(df["clip_id"]))
        extra = sorted(set(df["clip_id"]) - set(planned))
        raise RefineError(
            f"prompts do not match the planned clips: missing {missing}, extra {extra}"
        )
    df = df.set_index("clip_id").loc[list(planned)].reset_index()
    for row in df.to_dict("records"):
        # Sorted keys and no timestamp: an unchanged prompt gives the same bytes.
        text = json.dumps(clip_record(row), indent=1, sort_keys=True) + "\n"
        write_text(text, clip_prompt_path(clip_dir, row["clip_id"]))
    write_parquet(df, table)
    return df


def read_clip_prompts(clip_files: Sequence[str | Path]) -> dict[str, dict[str, Any]]:
    """clip id -> prompt record, checking that each file names its clip and that an
    initial image still has the content refine saw."""
    prompts = {}
    for path in clip_files:
        try:
            record = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise RefineError(f"{path}: unreadable clip prompt ({exc}); rerun refine") from exc
        if record.get("clip_id") != Path(path).stem:
            raise RefineError(f"{path}: holds clip {record.get('clip_id')!r}, not its own")
        expected = record.get("init_image_sha256")
        if expected and not Path(record["init_image"]).is_file():
            raise RefineError(f"{path}: initial image {record['init_image']} is missing")
        if expected:
            check_image(record["init_image"], str(path))
        if expected and file_sha256(record["init_image"]) != expected:
            raise RefineError(
                f"{path}: initial image {record['init_image']} changed after refine ran; "
                "rerun refine (snakemake --forcerun refine)"
            )
        prompts[record["clip_id"]] = record
    return prompts
