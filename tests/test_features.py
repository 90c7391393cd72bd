"""Stage 6: sampling, crops, batching, the fast path against the naive loop, scatter/gather."""

import importlib.util

import numpy as np
import pandas as pd
import pytest
import torch

from synthvad.clip_model import ClipBundle
from synthvad.features.chunks import extract_videos
from synthvad.features.gather import ShardSetError, gather
from synthvad.features.jobs import balanced_chunks, extractor_tag, params, runtime, uses_gpu
from synthvad.features.loader import BatchPacker
from synthvad.features.sampling import plan_video, segment_samples
from synthvad.features.transforms import crops_uint8
from synthvad.io.shards import read_shards, write_shard
from synthvad.io.video import VideoError, write_video
from synthvad.plan import rank_chunks as clip_chunks

from .conftest import ROOT, SHARED_DATA

SEG = {"length": 16, "keep_last_partial": True}
FEAT = {
    "extractor": "clip",
    "sampling": "even",
    "frames_per_segment": 2,
    "stride": 4,
    "crops": "center",
    "ten_crop_resize": None,
    "precision": "auto",
}
RUNTIME = {"device": "cpu", "batch_size": 16, "workers": 1, "threads": 2}
REAL_VIDEOS = sorted((SHARED_DATA / "videos").glob("*.mp4"))
CLIP_MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
CLIP_STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


def _benchmark():
    """benchmarks/features.py, whose naive loop is the reference of the fast path."""
    spec = importlib.util.spec_from_file_location("bench_features", ROOT / "benchmarks/features.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TinyEncoder(torch.nn.Module):
    """A seeded conv net in CLIP's place: cheap, and sensitive to every pixel."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 16, 4, stride=4)
        self.fc = torch.nn.Linear(16 * 64, 24)

    def encode_image(self, x):
        pooled = torch.nn.functional.adaptive_avg_pool2d(self.conv(x).relu(), 8)
        return self.fc(pooled.flatten(1))


def tiny_bundle(size=32):
    return ClipBundle(
        TinyEncoder().eval(), None, torch.device("cpu"), size, CLIP_MEAN, CLIP_STD, True, "tiny"
    )


def video_table(paths):
    return pd.DataFrame(
        {
            "video_id": [p.stem for p in paths],
            "split": "test",
            "source": "real",
            "method": None,
            "label": 0,
            "class": "normal",
            "path": [str(p) for p in paths],
        }
    )


def _grey_video(path, n=40, size=(48, 64)):
    # frame i is uniformly 5 * i grey, so sampled frames are known by their value
    write_video(path, np.stack([np.full((*size, 3), 5 * i, np.uint8) for i in range(n)]), 16)


def test_sampling_modes():
    assert segment_samples(16, 32, {**FEAT, "frames_per_segment": 2}) == [20, 28]
    assert segment_samples(16, 32, {**FEAT, "sampling": "center"}) == [24]
    assert segment_samples(32, 40, {**FEAT, "sampling": "all"}) == list(range(32, 40))
    assert segment_samples(0, 16, {**FEAT, "sampling": "stride", "stride": 5}) == [0, 5, 10, 15]
    plan = plan_video(40, SEG, {**FEAT, "sampling": "center"})
    assert plan.bounds == ((0, 16), (16, 32), (32, 40)) and plan.frames == [8, 24, 36]
    assert plan.segment_frames == [16, 16, 8]
    assert plan_video(40, {**SEG, "keep_last_partial": False}, FEAT).n_segments == 2


def test_ten_crops_are_corners_centre_and_mirrors():
    frames = np.random.default_rng(0).integers(0, 255, (2, 45, 61, 3), dtype=np.uint8)
    ten = crops_uint8(frames, "ten", 32, resize=36)  # even margins: centres align exactly
    assert ten.shape == (2, 10, 3, 32, 32) and ten.dtype == torch.uint8
    # the mirrored frame's top-left crop is the mirror image of the top-right crop
    assert torch.equal(ten[:, 5], ten[:, 1].flip(-1))
    assert torch.equal(ten[:, 9], ten[:, 4].flip(-1))
    assert crops_uint8(frames, "center", 32).shape == (2, 1, 3, 32, 32)


def test_packer_fills_batches_and_marks_video_ends():
    packer = BatchPacker(4)
    img = lambda n: torch.zeros(n, 3, 2, 2, dtype=torch.uint8)  # noqa: E731
    packer.start({"pos": 0})
    batches = list(packer.add(0, img(3), torch.arange(3)))
    packer.finish(0)
    packer.start({"pos": 1})
    batches += list(packer.add(1, img(6), torch.arange(6)))
    packer.finish(1)
    packer.start({"pos": 2})  # a video without images (too short)
    packer.finish(2)
    batches += list(packer.flush())
    assert [len(b["images"]) for b in batches] == [4, 4, 1]
    assert [b["videos"].tolist() for b in batches] == [[0, 0, 0, 1], [1, 1, 1, 1], [1]]
    assert [[pos for pos, _ in b["finished"]] for b in batches] == [[0], [], [1, 2]]
    assert [[h["pos"] for h in b["started"]] for b in batches] == [[0, 1], [], [2]]


@pytest.mark.skipif(not REAL_VIDEOS, reason="no ../shared/data/videos")
@pytest.mark.parametrize(
    "sampling, crops, workers",
    [({"sampling": "even"}, "center", 1), ({"sampling": "stride"}, "ten", 0)],
)
def test_fast_path_equals_naive_loop_on_real_videos(tmp_path, sampling, crops, workers):
    # Real H.264 files: 19.62 and 30 fps, 355 and 420 frames (a last partial segment each).
    bench, bundle = _benchmark(), tiny_bundle()
    cfg = {"features": {**FEAT, **sampling, "crops": crops}, "segments": SEG}
    out = tmp_path / "part.parquet"
    done = extract_videos(
        video_table(REAL_VIDEOS), cfg, {**RUNTIME, "workers": workers}, str(out), False, bundle
    )
    assert done == 2
    meta, _ = read_shards([out])
    n_crops = 10 if crops == "ten" else 1
    assert set(meta.crop) == set(range(n_crops))
    fast = bench.stage6_features(out)
    for path in REAL_VIDEOS:
        naive = bench.naive_features(path, bundle, cfg)
        # uint8 resizing differs from PIL's by at most one grey level on a few pixels
        np.testing.assert_allclose(fast[path.stem], naive, atol=3e-3)
        rows = meta[(meta.video_id == path.stem) & (meta.crop == 0)]
        assert rows.n_frames.sum() == {"v_GGSY1Qvo990": 355, "v_ZNVhz7ctTq0": 420}[path.stem]
        assert rows.n_frames.iloc[-1] < 16


def test_clip_model_fast_path_equals_naive_loop(tmp_path):
    from synthvad.clip_model import load_clip

    _grey_video(tmp_path / "v.mp4", n=40)
    bench = _benchmark()
    bundle = load_clip({"model": "ViT-B-32", "pretrained": None, "device": "cpu"})
    cfg = {"features": {**FEAT, "sampling": "center"}, "segments": SEG}
    out = tmp_path / "part.parquet"
    extract_videos(video_table([tmp_path / "v.mp4"]), cfg, RUNTIME, str(out), False, bundle)
    naive = bench.naive_features(tmp_path / "v.mp4", bundle, cfg)
    np.testing.assert_allclose(bench.stage6_features(out)["v"], naive, atol=1e-4)


def test_segment_feature_is_the_mean_of_its_frames(tmp_path):
    class MeanPixel(torch.nn.Module):  # embedding: (mean pixel, 1) before normalisation
        def encode_image(self, x):
            return torch.stack([x.mean((1, 2, 3)), torch.ones(len(x))], dim=1)

    _grey_video(tmp_path / "v.mp4", n=40)
    bundle = ClipBundle(
        MeanPixel(), None, torch.device("cpu"), 16, torch.zeros(1, 3, 1, 1),
        torch.ones(1, 3, 1, 1), True, "mean",
    )  # fmt: skip
    out = tmp_path / "part.parquet"
    cfg = {"features": FEAT, "segments": SEG}
    extract_videos(video_table([tmp_path / "v.mp4"]), cfg, RUNTIME, str(out), False, bundle)
    meta, feats = read_shards([out])
    grey = np.array([[20, 60], [100, 140], [170, 190]]) / 255  # frames (4, 12) (20, 28) (34, 38)
    unit = np.stack([grey, np.ones_like(grey)], -1)
    unit /= np.linalg.norm(unit, axis=-1, keepdims=True)
    np.testing.assert_allclose(feats, unit.mean(axis=1), atol=0.01)
    assert meta.n_frames.tolist() == [16, 16, 8] and meta.segment.tolist() == [0, 1, 2]


def test_a_corrupt_video_stops_real_jobs_and_is_skipped_in_synthetic_ones(tmp_path, caplog):
    _grey_video(tmp_path / "good.mp4")
    (tmp_path / "bad.mp4").write_bytes(b"junk" * 100)
    videos = video_table([tmp_path / "good.mp4", tmp_path / "bad.mp4"])
    cfg = {"features": FEAT, "segments": SEG}
    out = tmp_path / "part.parquet"
    with pytest.raises(VideoError, match="bad.mp4"):
        extract_videos(videos, cfg, RUNTIME, str(out), False, tiny_bundle())
    assert not out.exists()
    assert extract_videos(videos, cfg, RUNTIME, str(out), True, tiny_bundle()) == 1
    assert "bad is skipped" in caplog.text
    assert set(read_shards([out])[0].video_id) == {"good"}


def test_clip_chunks_keep_their_clips_when_clips_are_added():
    def ids(per_class, top_k):
        gv = [f"gvvad-{c}-{i:03d}-{k}" for c in "ab" for i in range(per_class)
              for k in ("abnormal", "normal")]  # fmt: skip
        return gv + [f"pavad-{c}-{r:03d}" for c in ("a", "b", "normal") for r in range(top_k)]

    before = clip_chunks(ids(20, 30), 35)  # 7 clips per rank -> 5 ranks per chunk
    after = clip_chunks(ids(22, 31), 35)
    assert sum(map(len, before.values())) == 20 * 4 + 30 * 3
    changed = [name for name in after if before.get(name) != after[name]]
    assert changed == ["ranks-0020-0024", "ranks-0030-0034"]
    assert max(map(len, before.values())) <= 35


def test_balanced_chunks_cover_every_video_once():
    frames = {f"v{i}": n for i, n in enumerate([100, 90, 50, 40, 30, 30, 20, 5])}
    chunks = balanced_chunks(frames, 3)
    assert sorted(v for c in chunks for v in c) == sorted(frames)
    totals = [sum(frames[v] for v in c) for c in chunks]
    assert max(totals) - min(totals) <= 20
    assert balanced_chunks(frames, 3) == chunks


def _with(config, section, **values):
    return {**config, section: {**config[section], **values}}


def test_params_hold_only_what_changes_features(default_config):
    clip = _with(default_config, "features", extractor="clip")
    cfg = _with(clip, "features", batch_size=7)
    assert params(cfg) == params(clip)
    assert runtime(cfg)["batch_size"] == 7
    assert params(_with(clip, "features", crops="ten")) != params(clip)
    assert params(_with(clip, "features", motion={"grid": 2})) == params(clip)


def test_motion_params_ignore_clip_and_its_sampling(default_config):
    motion = _with(default_config, "features", extractor="motion")
    assert params(_with(motion, "clip", model="ViT-B-32")) == params(motion)
    assert params(_with(motion, "features", frames_per_segment=8)) == params(motion)
    assert params({**motion, "seed": 99}) == params(motion)
    grid = {**motion["features"]["motion"], "grid": 2}
    assert params(_with(motion, "features", motion=grid)) != params(motion)
    assert extractor_tag(motion) == "motion-grid4"
    assert extractor_tag(_with(motion, "features", extractor="clip")).startswith("clip-")
    assert uses_gpu(_with(motion, "clip", device="cuda")) == 0


def _chunk(path, videos, dim=4, crops=1):
    rows = [
        {"video_id": v, "split": "train", "source": "synthetic", "method": None, "label": 1,
         "class": "x", "segment": s, "n_frames": min(16, n - 16 * s), "crop": c}
        for v, n in videos.items() for c in range(crops) for s in range(-(-n // 16))
    ]  # fmt: skip
    write_shard(pd.DataFrame(rows), np.ones((len(rows), dim), np.float32), path)
    return str(path)


def test_gather_checks_the_chunk_set(tmp_path):
    a = _chunk(tmp_path / "a.parquet", {"v1": 40, "v2": 16})
    b = _chunk(tmp_path / "b.parquet", {"v3": 20, "rejected": 32})
    out = str(tmp_path / "out.parquet")
    expected = {"v1": 40, "v2": 16, "v3": 20}
    assert gather([a, b], expected, SEG, out, ignored=frozenset({"rejected"})) == 3 + 1 + 2
    assert set(read_shards([out])[0].video_id) == {"v1", "v2", "v3"}
    with pytest.raises(ShardSetError, match="not an expected video"):
        gather([a, b], expected, SEG, out)
    with pytest.raises(ShardSetError, match="in no chunk"):
        gather([a], expected, SEG, out)
    with pytest.raises(ShardSetError, match="'v1' is in"):
        gather([a, _chunk(tmp_path / "c.parquet", {"v1": 40, "v3": 20})], expected, SEG, out)
    with pytest.raises(ShardSetError, match="feature size"):
        gather([a, _chunk(tmp_path / "d.parquet", {"v3": 20}, dim=5)], expected, SEG, out)
    with pytest.raises(ShardSetError, match="'v1': expected crops"):  # frame count mismatch
        gather([a, _chunk(tmp_path / "e.parquet", {"v3": 20})], {**expected, "v1": 60}, SEG, out)
    ten = _chunk(tmp_path / "f.parquet", {"v3": 20}, crops=10)
    with pytest.raises(ShardSetError, match="'v3': expected crops 0..0"):
        gather([a, ten], expected, SEG, out)
