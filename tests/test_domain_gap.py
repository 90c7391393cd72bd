"""The real-vs-pseudo feature gap: norms by hand, per class and overall, the PCA sample, the
report's tables in PA-VAD's layouts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from synthvad import domain_gap
from synthvad.io.shards import shard_writer
from synthvad.report import domain_gap_section, generation_section


def test_feature_norms_and_spread_rows():
    features = np.array([[[3.0, 4.0], [0.0, 1.0]], [[6.0, 8.0], [0.0, 0.0]]])  # [C 2, T 2, D 2]
    np.testing.assert_allclose(domain_gap.feature_norms(features), [5.0, 1.0, 10.0, 0.0])
    assert domain_gap.spread_rows(10, 4).tolist() == [1, 3, 6, 8]
    assert domain_gap.spread_rows(3, 8).tolist() == [0, 1, 2]


def write_part(path, videos):
    """videos: (video_id, source, label, class, features [C, T, D])."""
    rows, feats = [], []
    for vid, source, label, cls, f in videos:
        c, t, _ = f.shape
        for crop in range(c):
            for seg in range(t):
                rows.append(
                    {"video_id": vid, "split": "train", "source": source,
                     "method": "gvvad" if source == "synthetic" else None, "label": label,
                     "class": cls, "segment": seg, "n_frames": 16, "crop": crop}
                )  # fmt: skip
                feats.append(f[crop, seg])
    with shard_writer(path, feats[0].shape[0]) as append:
        append(pd.DataFrame(rows), np.array(feats, dtype=np.float32))


def test_mean_norms_per_class_and_overall(tmp_path):
    ones = np.ones((2, 3, 4), np.float32)  # norm 2 everywhere
    real = [
        ("n1", "real", 0, None, ones),
        ("a1", "real", 1, "fire", 2 * ones),  # norm 4
        ("a2", "real", 1, "theft", np.ones((2, 1, 4), np.float32) * 3),  # norm 6, one segment
    ]
    synthetic = [("s1", "synthetic", 1, "fire", 5 * ones), ("s2", "synthetic", 1, "theft", ones)]
    write_part(tmp_path / "real.parquet", real)
    write_part(tmp_path / "synthetic.parquet", synthetic)
    out = domain_gap.run(
        [str(tmp_path / "real.parquet"), str(tmp_path / "synthetic.parquet")],
        0, str(tmp_path / "gap.json"), str(tmp_path / "gap.png"),
    )  # fmt: skip
    norm = {
        (r["group"], r["class"]): (r["mean_norm"], r["videos"], r["rows"]) for r in out["mean_norm"]
    }
    # real abnormal overall: rows of a1 (6 rows of 4) and a2 (2 rows of 6) -> 36 / 8
    assert norm[("real_abnormal", "all")] == pytest.approx((36 / 8, 2, 8))
    assert norm[("real_abnormal", "fire")] == pytest.approx((4.0, 1, 6))
    assert norm[("pseudo_abnormal", "all")] == pytest.approx(((6 * 10 + 6 * 2) / 12, 2, 12))
    assert norm[("pseudo_abnormal", "theft")] == pytest.approx((2.0, 1, 6))
    assert norm[("real_normal", "all")] == pytest.approx((2.0, 1, 6))
    assert ("real_normal", None) not in norm
    assert out["pca"]["rows_per_group"] == {
        "real_normal": 3,
        "real_abnormal": 4,
        "pseudo_abnormal": 6,
    }
    assert (tmp_path / "gap.png").stat().st_size > 1000
    assert json.loads((tmp_path / "gap.json").read_text()) == json.loads(json.dumps(out))

    section = "\n".join(domain_gap_section(out))
    assert "| all | 4.50 (2) | 6.00 (2) | 2.00 (1) | – |" in section
    assert "| fire | 4.00 (1) | 10.00 (1) | – | – |" in section


def test_generation_section_has_table_3_columns():
    generation = {
        "rows": [{"method": "pavad", "class": "all", "clips": 12, "fvd": 604.0, "fid": 78.04,
                  "kvd": 0.0347, "kid": 0.03, "fvd_real": None}],
        "note": "note text",
    }  # fmt: skip
    text = "\n".join(generation_section(generation))
    assert "| synthetic data | class | clips | FVD ↓ | FID ↓ | KVD ↓ | KID ↓ |" in text
    assert "| pavad | all | 12 | 604.0 | 78.0 | 0.0347 | 0.0300 |" in text and "note text" in text
