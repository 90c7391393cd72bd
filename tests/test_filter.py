import numpy as np

from synthvad.filter import frame_std, motion, score_clip, verdict
from synthvad.io.video import write_video

CFG = {"min_std": 4.0, "min_motion": 0.3, "min_clip_score": 0.1}


def test_measures_by_hand():
    frames = np.zeros((2, 2, 2, 3), np.uint8)
    frames[1] = 10
    assert motion(frames) == 10.0
    assert frame_std(frames) == 0.0
    half = np.zeros((1, 2, 2, 3), np.uint8)
    half[0, 0] = 20  # half the pixels 20, half 0 -> std 10
    assert frame_std(half) == 10.0


def test_verdict_order_and_reasons():
    good = {"decodable": True, "frame_std": 30.0, "motion": 2.0, "clip_score": 0.3}
    assert verdict(good, CFG) == (True, "ok")
    assert verdict({**good, "decodable": False}, CFG) == (False, "corrupt")
    assert verdict({**good, "frame_std": 1.0}, CFG) == (False, "blank")
    assert verdict({**good, "motion": 0.0}, CFG) == (False, "frozen")
    assert verdict({**good, "clip_score": 0.0}, CFG) == (False, "text_mismatch")


def test_scores_of_real_clips(tmp_path):
    rng = np.random.default_rng(0)
    still = np.repeat(rng.integers(0, 255, (1, 64, 64, 3), dtype=np.uint8), 32, axis=0)
    write_video(tmp_path / "still.mp4", still, 16)
    scores, frames = score_clip(str(tmp_path / "still.mp4"), 8)
    assert scores["decodable"] and frames.shape[0] == 8
    assert verdict({**scores, "clip_score": 1.0}, CFG) == (False, "frozen")
    moving = rng.integers(0, 255, (32, 64, 64, 3), dtype=np.uint8)
    write_video(tmp_path / "moving.mp4", moving, 16)
    scores, _ = score_clip(str(tmp_path / "moving.mp4"), 8)
    assert verdict({**scores, "clip_score": 1.0}, CFG) == (True, "ok")
    (tmp_path / "broken.mp4").write_bytes(b"junk" * 100)
    scores, frames = score_clip(str(tmp_path / "broken.mp4"), 8)
    assert frames is None and verdict({**scores, "clip_score": -1.0}, CFG) == (False, "corrupt")


def test_gather_applies_the_thresholds_to_every_chunk(tmp_path):
    import pandas as pd
    import pytest

    from synthvad.filter import gather

    def chunk(name, clips):
        scores = {"decodable": True, "frame_std": 30.0, "motion": 2.0, "clip_score": 0.3}
        rows = [{"clip_id": c, "n_frames": 48, **scores, "motion": m, "strip": b"\xff\xd8"}
                for c, m in clips]  # fmt: skip
        pd.DataFrame(rows).to_parquet(tmp_path / name)
        return str(tmp_path / name)

    paths = [chunk("a.parquet", [("c1", 2.0), ("c2", 0.1)]), chunk("b.parquet", [("c3", 1.0)])]
    out = gather(CFG, paths, str(tmp_path / "filtered.parquet"))
    assert out.keep.tolist() == [True, False, True]
    assert out.reason.tolist() == ["ok", "frozen", "ok"]
    assert "strip" not in out  # the strips stay in the chunks, for the gallery
    assert gather({**CFG, "min_motion": 0.05}, paths, str(tmp_path / "f.parquet")).keep.all()
    with pytest.raises(ValueError, match="'c3' is in two filter chunks"):
        gather(CFG, [*paths, chunk("c.parquet", [("c3", 1.0)])], str(tmp_path / "f.parquet"))


def test_strip_of_evenly_spaced_frames():
    import io

    from PIL import Image

    from synthvad.io.strips import evenly, strip_jpeg

    frames = np.zeros((10, 48, 64, 3), np.uint8)
    frames[:, :, :, 0] = np.arange(10)[:, None, None] * 20  # red = 20 x frame number
    chosen = evenly(frames)  # linspace(0, 9, 6) = 0, 1.8, 3.6, 5.4, 7.2, 9
    assert chosen[:, 0, 0, 0].tolist() == [0, 40, 80, 100, 140, 180]
    assert len(evenly(frames[:4])) == 4
    with Image.open(io.BytesIO(strip_jpeg(chosen, height=24))) as image:
        assert image.size == (6 * 32, 24)
