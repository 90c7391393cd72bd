"""The caption stream: segment spans, answer validation, requests against the scripted
server (frames sent, cache, failures), CLIP text embeddings aligned with the visual part,
and captions through the detector's data path (training batches, test scoring)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from synthvad import captions
from synthvad.detect.data import TrainSet, Video, attach_captions
from synthvad.detect.lap import LAP
from synthvad.detect.train import score_videos
from synthvad.io.shards import shard_writer
from synthvad.io.video import write_video
from synthvad.llm.client import LLMError
from synthvad.llm.messages import InvalidAnswer
from synthvad.llm.settings import LLMSettings

from .openai_server import KEY, KEY_VAR, ScriptedOpenAI

CLIP = {"model": "RN50", "pretrained": None, "device": "cpu", "batch_size": 4}
CFG = {"segments_per_caption": 2, "frames_per_caption": 2, "image_size": 64, "max_words": 20}


def feature_part(path, videos: dict[str, list[int]], dim: int = 4, crops: int = 2) -> None:
    """A visual feature part: video -> frames per segment, `crops` crops each."""
    rows = [
        {"video_id": vid, "split": "train", "source": "real", "method": None, "label": 0,
         "class": None, "segment": s, "n_frames": n, "crop": c}
        for vid, frames in videos.items() for c in range(crops) for s, n in enumerate(frames)
    ]  # fmt: skip
    meta = pd.DataFrame(rows)
    with shard_writer(path, dim) as append:
        append(meta, np.random.default_rng(0).normal(size=(len(meta), dim)).astype(np.float32))


@pytest.fixture(scope="module")
def server():
    with ScriptedOpenAI(KEY, retry_after=0.1) as srv:
        yield srv


@pytest.fixture
def settings(server, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_VAR, KEY)
    server.reset()
    server.chat.clear()
    block = {
        "base_url": server.base_url, "model": server.model, "api_key_env": KEY_VAR,
        "temperature": 0.0, "max_tokens": 100, "max_concurrency": 2, "timeout_s": 5.0,
        "max_retries": 1, "validation_retries": 1, "cache_dir": str(tmp_path / "cache"),
    }  # fmt: skip
    return LLMSettings.from_config("captions", block)


@pytest.fixture
def videos(tmp_path):
    """Two small clips: 40 frames (segments 16, 16, 8) and 32 frames (16, 16)."""
    rng = np.random.default_rng(1)
    paths = {}
    for vid, n in (("a", 40), ("b", 32)):
        paths[vid] = str(tmp_path / f"{vid}.mp4")
        write_video(paths[vid], rng.integers(0, 255, size=(n, 48, 64, 3), dtype=np.uint8), 8)
    part = tmp_path / "part-real.parquet"
    feature_part(part, {"a": [16, 16, 8], "b": [16, 16]})
    return paths, str(part)


def test_segment_table_and_caption_groups(videos):
    _, part = videos
    table = captions.caption_groups(captions.segment_table(part), 2)
    a = table[table.video_id == "a"]
    assert a["start"].tolist() == [0, 16, 32]  # consecutive from frame 0
    assert a["group"].tolist() == [0, 0, 2]
    assert a["group_start"].tolist() == [0, 0, 32] and a["group_end"].tolist() == [32, 32, 40]
    assert len(table) == 5  # crop 0 only


def test_caption_validation():
    check = captions.validate(max_words=6)
    assert check(' "A man  walks by a car." ') == "A man walks by a car."
    for bad, reason in (
        ("", "empty"),
        ("A man walks. A car stops.", "2 sentences"),
        ("A man walks slowly along the long street.", "more than 6"),
        ("I'm sorry, I cannot help with that", "refusal"),
    ):
        with pytest.raises(InvalidAnswer, match=reason):
            check(bad)


def test_captions_ask_once_per_span_with_its_frames_and_cache(server, settings, videos, tmp_path):
    paths, part = videos
    out = tmp_path / "captions.parquet"
    result = captions.caption_part(part, paths, CFG, settings, str(out))
    # a: segments {0, 1} and {2}; b: {0, 1}: three requests of two frames each.
    assert len(server.chat) == 3
    for body in server.chat:
        parts = body["messages"][1]["content"]
        assert [p["type"] for p in parts] == ["text", "image_url", "image_url"]
        assert parts[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert result[["video_id", "segment"]].values.tolist() == [
        ["a", 0], ["a", 1], ["a", 2], ["b", 0], ["b", 1],
    ]  # fmt: skip
    assert result.loc[0, "caption"] == result.loc[1, "caption"]  # one span, one caption
    pd.testing.assert_frame_equal(result, pd.read_parquet(out))
    # A rerun answers from the cache: nothing is sent.
    captions.caption_part(part, paths, CFG, settings, str(tmp_path / "again.parquet"))
    assert len(server.chat) == 3


def test_a_failed_caption_is_named_and_nothing_is_written(server, settings, videos, tmp_path):
    paths, part = videos
    server.reset(default="garbage")
    out = tmp_path / "captions.parquet"
    with pytest.raises(LLMError, match="video [ab] segment"):
        captions.caption_part(part, paths, {**CFG, "max_words": 3}, settings, str(out))
    assert not out.exists()


def test_a_video_without_a_file_is_a_clear_error(settings, videos, tmp_path):
    _, part = videos
    with pytest.raises(ValueError, match="no video file for 'a'"):
        captions.caption_part(part, {}, CFG, settings, str(tmp_path / "c.parquet"))


def test_embeddings_are_the_clip_text_vectors_row_aligned(videos, tmp_path):
    from synthvad.clip_model import load_clip
    from synthvad.detect.data import load_videos

    _, part = videos
    table = captions.segment_table(part)
    text = {("a", 0): "one", ("a", 1): "one", ("a", 2): "two", ("b", 0): "three", ("b", 1): "two"}
    caps = pd.DataFrame(
        [
            (v, s, text[(v, s)], "h", "m")
            for v, s in zip(table.video_id, table.segment, strict=True)
        ],
        columns=captions.CAPTION_COLUMNS,
    )
    caps.sample(frac=1.0, random_state=0).to_parquet(
        tmp_path / "c.parquet"
    )  # order must not matter
    out = tmp_path / "embedded.parquet"
    width = captions.embed_part(str(tmp_path / "c.parquet"), part, CLIP, 0, str(out))
    bundle = load_clip(CLIP, seed=0)
    expected = bundle.encode_texts(["one", "one", "two", "three", "two"])
    got = load_videos([str(out)])
    assert [v.video_id for v in got] == ["a", "b"] and width == expected.shape[1]
    np.testing.assert_allclose(np.concatenate([v.features[0] for v in got]), expected, atol=1e-6)
    assert got[0].features.shape == (1, 3, width)  # one crop
    np.testing.assert_array_equal(got[0].segment_frames, [16, 16, 8])
    # A caption table that misses a segment is refused.
    caps.iloc[1:].to_parquet(tmp_path / "short.parquet")
    with pytest.raises(ValueError, match="one to one"):
        captions.embed_part(str(tmp_path / "short.parquet"), part, CLIP, 0, str(tmp_path / "x"))


def video(vid: str, label: int, t: int, dim: int = 8, caption_dim: int = 8, crops: int = 2):
    rng = np.random.default_rng(len(vid) + 10 * label + t)
    return Video(
        video_id=vid, split="train", source="real", method=None, label=label,
        features=rng.normal(size=(crops, t, dim)).astype(np.float32),
        segment_frames=np.full(t, 16), captions=rng.normal(size=(t, caption_dim)).astype(np.float32),
    )  # fmt: skip


def test_attach_captions_checks_segments():
    v = video("v", 0, 5)
    stream = Video(**{**v.__dict__, "features": v.captions[None], "captions": None})
    bare = Video(**{**v.__dict__, "captions": None})
    assert np.array_equal(attach_captions([bare], [stream])[0].captions, v.captions)
    with pytest.raises(ValueError, match="no captions"):
        attach_captions([bare], [])
    short = Video(**{**stream.__dict__, "features": v.captions[None, :4], "segment_frames": np.full(4, 16)})  # fmt: skip
    with pytest.raises(ValueError, match="captions cover 4 segments"):
        attach_captions([bare], [short])


def test_training_batches_carry_captions_resampled_like_features():
    videos = [video("n", 0, 8), video("ab", 1, 3)]
    train = TrainSet(videos, 4, labelled=True, exact_length=True)
    batch = train.batch(torch.tensor([0, 1]), None)
    assert batch.captions.shape == (2, 4, 8)
    # Video n: 8 segments -> 4 chunk means; video ab: 3 segments stretched to 4.
    np.testing.assert_allclose(batch.captions[0].numpy(), videos[0].captions.reshape(4, 2, 8).mean(1), atol=1e-6)  # fmt: skip
    np.testing.assert_allclose(
        batch.captions[1].numpy(), videos[1].captions[[0, 0, 1, 2]], atol=1e-6
    )
    model = LAP(8, {"caption_dim": 8, "head_hidden": [8, 4], "pseudo_labels": "off"})
    objective = model.objective(batch)
    assert torch.isfinite(objective.per_sample).all()
    with pytest.raises(ValueError, match="some training videos have captions"):
        TrainSet([videos[0], Video(**{**videos[1].__dict__, "captions": None})], 4, labelled=True)


def test_test_scores_read_each_videos_captions():
    torch.manual_seed(0)
    model = LAP(8, {"caption_dim": 8, "head_hidden": [8, 4]}).eval()
    videos = [video("x", 0, 7), video("y", 1, 4)]
    scores = score_videos(model, videos, torch.device("cpu"), batch_size=8)
    for v, s in zip(videos, scores, strict=True):
        rows = [
            model.score_rows(torch.from_numpy(c)[None], torch.from_numpy(v.captions)[None])[0]
            for c in v.features
        ]
        np.testing.assert_allclose(s, torch.stack(rows).mean(0).detach().numpy(), atol=1e-6)
    # The same model without them is an error, not visual-only scores.
    with pytest.raises(ValueError, match="caption stream"):
        score_videos(model, [Video(**{**videos[0].__dict__, "captions": None})], torch.device("cpu"), 8)  # fmt: skip
