"""The offline `template` backend: combinatorial, seeded paired descriptions."""

from __future__ import annotations

import itertools
import zlib
from typing import Any

import numpy as np
import pandas as pd

from synthvad.llm.cache import request_key
from synthvad.plan import described_classes

NORMAL_ACTIVITIES = (
    "walks past calmly",
    "waits quietly and checks a phone",
    "strolls through at an ordinary pace",
    "stands still for a moment, then moves on",
)


class DescribeError(ValueError):
    pass


def request_hash(payload: dict[str, Any]) -> str:
    """Content hash of a request (the LLM cache's key, shortened), as the openai backend records."""
    return request_key(payload)[:16]


def combinations(cfg: dict[str, Any], classes: list[str], seed: int) -> list[dict[str, Any]]:
    """`per_class` distinct (viewpoint, location, subject, event) draws per class, seeded.

    Each class draws from its own stream, as a prefix of one permutation of its pool:
    raising per_class keeps every earlier combination at its index (so an LLM backend
    pays only for the new ones), and adding a class changes no other class's draws."""
    out = []
    for cls in classes:
        events = [e for e in cfg["events"] if e["class"] == cls]
        pool = list(itertools.product(cfg["viewpoints"], cfg["locations"], cfg["subjects"], events))
        if cfg["per_class"] > len(pool):
            raise DescribeError(
                f"describe.per_class={cfg['per_class']} but class {cls!r} has only "
                f"{len(pool)} distinct element combinations"
            )
        rng = np.random.default_rng([seed, 1, zlib.crc32(cls.encode())])
        for i, j in enumerate(rng.permutation(len(pool))[: cfg["per_class"]]):
            viewpoint, location, subject, event = pool[int(j)]
            out.append(
                {
                    "class": cls,
                    "index": i,
                    "viewpoint": viewpoint,
                    "location": location,
                    "subject": subject,
                    "event": event["text"],
                }
            )
    return out


def describe(combo: dict[str, Any], rng: np.random.Generator) -> tuple[str, str]:
    """Paired texts of the same scene: the event, and the same place without it."""
    scene = f"From {combo['viewpoint']} at {combo['location']}"
    abnormal = f"{scene}, {combo['subject']} {combo['event']} while others react."
    normal = (
        f"{scene}, {combo['subject']} {NORMAL_ACTIVITIES[rng.integers(len(NORMAL_ACTIVITIES))]}."
    )
    return abnormal, normal


def run(config: dict[str, Any], out: str) -> pd.DataFrame:
    from synthvad.io.atomic import write_parquet

    cfg, seed = config["describe"], config["seed"]
    rows = []
    for combo in combinations(cfg, described_classes(config), seed):
        rng = np.random.default_rng([seed, 2, combo["index"], len(combo["class"])])
        abnormal, normal = describe(combo, rng)
        request = {"backend": "template", **{k: combo[k] for k in combo}}
        rows.append(
            {
                **combo,
                "abnormal": abnormal,
                "normal": normal,
                "backend": "template",
                "model": None,
                "request_hash": request_hash(request),
            }
        )
    df = pd.DataFrame(rows)
    write_parquet(df, out)
    return df
