"""The real Snakemake on a features-only UCF-Crime layout (Form B): RTFM-style [T, 10, D]
.npy files with .list files and the real annotation lines of their test videos, no video.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from .conftest import ROOT
from .test_workflow import snakemake

pytestmark = pytest.mark.workflow

TRAIN = ["Abuse001_x264", "Arson002_x264", "Burglary005_x264", "Fighting003_x264"] + [
    f"Normal_Videos{i:03d}_x264" for i in (1, 2, 4, 5)
]
TEMPORAL = (  # the official lines of these test videos
    "RoadAccidents021_x264  RoadAccidents  30  90  -1  -1  \n"
    "Explosion039_x264  Explosion  60  150  -1  -1  \n"
    "Burglary021_x264  Burglary  60  200  840  1340  \n"
    "Normal_Videos_003_x264  Normal  -1  -1  -1  -1  \n"
    "Normal_Videos_006_x264  Normal  -1  -1  -1  -1  "
)
TEST = [line.split()[0] for line in TEMPORAL.splitlines()]
# segments per test video: RoadAccidents021 ends at 5 x 16 = 80 < 90 (clipped)
LENGTHS = {"RoadAccidents021_x264": 5, "Explosion039_x264": 12, "Burglary021_x264": 90}
DIM = 32


def _fixture(workdir: Path, extractor: str, experiments: dict, dim: int = DIM) -> dict[str, int]:
    """Feature files, lists, annotations and config.yaml; returns test video -> T."""
    rng = np.random.default_rng(0)
    feats = workdir / "UCF_ten_crop_i3d"
    feats.mkdir()
    lengths = {}
    for split, names in (("train", TRAIN), ("test", TEST)):
        lines = []
        for name in names:
            n = LENGTHS.get(name, int(rng.integers(8, 20)))
            lengths[name] = n
            np.save(feats / f"{name}_i3d.npy", rng.normal(size=(n, 10, dim)).astype(np.float32))
            lines.append(f"/home/author/UCF_ten_crop_i3d/{name}_i3d.npy")  # as RTFM ships
        (workdir / f"ucf-i3d-{split}.list").write_text("\n".join(lines))
    (workdir / "annotations").mkdir()
    (workdir / "annotations" / "Temporal_Anomaly_Annotation.txt").write_text(TEMPORAL)
    config = yaml.safe_load((ROOT / "config" / "ucf_crime_features.yaml").read_text())
    config["name"] = "ucfbench"
    config["data"] = {
        "kind": "ucf_crime",
        "annotations": "annotations",
        "features": {
            "extractor": extractor,
            "train_list": "ucf-i3d-train.list",
            "test_list": "ucf-i3d-test.list",
            "root": str(feats),
            "name_suffix": "_i3d",
        },
    }
    # The CI config's (fast) detector settings; it trains them on these features instead.
    ci = yaml.safe_load((ROOT / ".test" / "config.yaml").read_text())
    config.update({k: ci[k] for k in ("detect", "detectors") if k in ci})
    config["experiments"] = experiments
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return {name: lengths[name] for name in TEST}


def test_features_only_ucf_crime_trains_and_evaluates(tmp_path):
    ci = yaml.safe_load((ROOT / ".test" / "config.yaml").read_text())
    # every experiment of the CI config that needs no synthetic clip: its detectors
    experiments = {n: e for n, e in ci["experiments"].items() if not e.get("synthetic")}
    lengths = _fixture(tmp_path, "i3d-resnet50", experiments)
    snakemake(tmp_path)
    r = tmp_path / "results" / "ucfbench"
    assert (r / "features" / "i3d-resnet50" / "part-real.parquet").is_file()
    index = pd.read_parquet(r / "index.parquet")
    assert index.path.isna().all() and len(index) == len(TRAIN) + len(TEST)
    summary = (r / "report" / "summary.md").read_text()
    assert "RANDOM" not in summary
    for name in experiments:
        metrics = json.loads((r / "runs" / name / "metrics.json").read_text())
        assert metrics["n_frames"] == 16 * sum(lengths.values())
        # RoadAccidents021 clipped to 30..80; Burglary021's 1440 frames hold both intervals
        assert metrics["n_abnormal_frames"] == (80 - 30) + (150 - 60) + (200 - 60) + (1340 - 840)
        assert 0.0 <= metrics["auc"] <= 1.0
        assert f"| {name} |" in summary
    assert "clipped" in (tmp_path / "logs" / "ucfbench" / "import_features.log").read_text()


def test_gvvad_on_imported_features_is_one_switch(tmp_path):
    experiments = {"real": {}, "gvvad": {"synthetic": ["gvvad"], "alpha": 0.5}}
    _fixture(tmp_path, "clip-ViT-B-32-random", experiments)
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    ci = yaml.safe_load((ROOT / ".test" / "config.yaml").read_text())
    config.update(classes=ci["classes"], describe=ci["describe"])  # what GV-VAD describes
    config["clip"] = {"model": "ViT-B-32", "pretrained": None}  # clip-ViT-B-32-random
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    out = snakemake(tmp_path, "--dry-run")
    jobs = Counter(re.findall(r"^(?:local)?rule (\w+):", out, flags=re.M))
    assert jobs["import_features"] == 1 and jobs["features_synthetic"] == 1
    assert jobs["synthesize"] >= 2 and jobs["describe"] == 1 and jobs["detect"] >= 2
    assert "features_real" not in jobs and "retrieve" not in jobs


def test_imported_i3d_features_take_synthetic_clips_through_the_i3d_extractor(tmp_path):
    """PA-VAD's setting on public features: imported I3D-ResNet50 features, GV-VAD clips
    featurized by synthvad's own I3D-ResNet50 (random weights here), one detector."""
    experiments = {"gvvad": {"synthetic": ["gvvad"], "alpha": 0.5}}
    _fixture(tmp_path, "i3d-resnet50-random", experiments, dim=2048)
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    ci = yaml.safe_load((ROOT / ".test" / "config.yaml").read_text())
    config.update(classes=ci["classes"], describe=ci["describe"], synthesize=ci["synthesize"])
    config["features"] = {"extractor": "i3d_resnet50", "crops": "center", "i3d": {"batch_size": 8}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(tmp_path)
    r = tmp_path / "results" / "ucfbench"
    synthetic = pd.read_parquet(r / "features" / "i3d-resnet50-random" / "part-synthetic.parquet")
    assert len(synthetic.feature.iloc[0]) == 2048 and set(synthetic.crop) == {0}
    metrics = json.loads((r / "runs" / "gvvad" / "metrics.json").read_text())
    assert metrics["n_train_synthetic_abnormal"] > 0 and 0.0 <= metrics["auc"] <= 1.0
    generation = json.loads((r / "metrics" / "generation.json").read_text())
    assert generation["rows"] == [] and "imported features" in generation["note"]
    gap = json.loads((r / "metrics" / "domain_gap.json").read_text())
    assert {row["group"] for row in gap["mean_norm"]} >= {"real_abnormal", "pseudo_abnormal"}
    summary = (r / "report" / "summary.md").read_text()
    assert "I3D weights are RANDOM" in summary and "PA-VAD Table 1" in summary
