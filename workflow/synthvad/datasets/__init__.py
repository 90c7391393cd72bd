"""Public VAD benchmarks (UCF-Crime, ShanghaiTech, XD-Violence) read from their official
annotation files, as raw videos (Form A) or pre-extracted features (Form B, see
synthvad.datasets.import_features)."""

from __future__ import annotations

import logging
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from synthvad.datasets import shanghaitech, ucf_crime, xd_violence
from synthvad.datasets.common import DatasetError

log = logging.getLogger(__name__)

BENCHMARKS: dict[str, ModuleType] = {
    "ucf_crime": ucf_crime,
    "shanghaitech": shanghaitech,
    "xd_violence": xd_violence,
}


def benchmark(kind: str) -> ModuleType:
    if kind not in BENCHMARKS:
        raise DatasetError(f"data.kind {kind!r} is not one of {sorted(BENCHMARKS)}")
    return BENCHMARKS[kind]


def imports_features(data_cfg: dict[str, Any]) -> bool:
    """Form B: the benchmark comes as pre-extracted features, not videos."""
    return data_cfg.get("features") is not None


def stage0_inputs(data_cfg: dict[str, Any]) -> dict[str, list[str]]:
    """Snakemake inputs of stage 0: the official files it reads and, for imported
    features, the two lists (videos and .npy files are found through them; listing
    each one would make the DAG slow for nothing)."""
    module = benchmark(data_cfg["kind"])
    names = module.FORM_B_FILES if imports_features(data_cfg) else module.FORM_A_FILES
    inputs = {"annotations": [str(Path(data_cfg["annotations"]) / name) for name in names]}
    if imports_features(data_cfg):
        features = data_cfg["features"]
        inputs["lists"] = [features["train_list"], features["test_list"]]
    return inputs


def video_table(data_cfg: dict[str, Any]) -> pd.DataFrame:
    """Form A: manifest-like rows (synthvad.index.MANIFEST_COLUMNS) of every listed video."""
    module = benchmark(data_cfg["kind"])
    annotations = module.load(data_cfg["annotations"])
    rows = []
    for video in module.list_videos(data_cfg):
        info = annotations.label(video.video_id, video.split)
        rows.append(
            {
                "video_id": video.video_id,
                "path": str(video.path),
                "split": video.split,
                "label": info.label,
                "class": info.cls,
                "scene": info.scene,
                "intervals": info.intervals,
            }
        )
    table = pd.DataFrame(rows)
    if table.empty:
        raise DatasetError(f"no {data_cfg['kind']} video listed under {data_cfg['root']}")
    dupes = table["video_id"][table["video_id"].duplicated()]
    if len(dupes):
        raise DatasetError(f"video {dupes.iloc[0]!r} is listed twice (in train and test?)")
    log.info(
        "%s: %d train and %d test videos listed",
        data_cfg["kind"],
        int((table["split"] == "train").sum()),
        int((table["split"] == "test").sum()),
    )
    return table


def extractor_name(config: dict[str, Any]) -> str:
    """Who makes the real videos' features: the stated extractor of imported features,
    else the configured extractor (its tag names the features/ folder)."""
    if imports_features(config["data"]):
        return config["data"]["features"]["extractor"]
    from synthvad.features.jobs import extractor_tag

    return extractor_tag(config)


def check_config(config: dict[str, Any], error: type[Exception]) -> None:
    """Data rules a JSON schema cannot say; raises `error` naming the config key."""
    data = config["data"]
    kind = data["kind"]
    if kind not in BENCHMARKS:
        for key in ("root", "annotations", "features"):
            if data.get(key) is not None:
                raise error(f"config key 'data.{key}': only for data.kind {sorted(BENCHMARKS)}")
        return
    if imports_features(data) == (data.get("root") is not None):
        raise error(
            f"config key 'data': data.kind {kind} needs either data.root (the videos, Form A) "
            "or data.features (pre-extracted .npy features, Form B), not both"
        )
    if not imports_features(data):
        return
    methods = sorted({m for e in config["experiments"].values() for m in e.get("synthetic", [])})
    if "pavad" in methods:
        raise error(
            "config key 'experiments': PA-VAD retrieves its initial images from real normal "
            "video frames, and data.features has no frames; use the videos (data.root) for "
            "PA-VAD experiments"
        )
    if methods:
        from synthvad.features.jobs import extractor_tag

        stated, synthetic = data["features"]["extractor"], extractor_tag(config)
        if stated != synthetic:
            raise error(
                f"config key 'data.features.extractor': the imported features come from "
                f"{stated!r}, but synthetic clips ({', '.join(methods)}) would be extracted "
                f"with {synthetic!r} (features.extractor; clip.model, clip.pretrained or "
                f"features.i3d.weights); "
                "features of different extractors cannot be mixed: import features of the "
                "configured extractor or drop the synthetic experiments"
            )
