"""The HTML gallery from tiny real clips, a fake filter table, prompts and initial images."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from synthvad.gallery import counts_table, filter_histograms, frame_strip, write_gallery
from synthvad.io.video import write_video

THRESHOLDS = {"min_std": 4.0, "min_motion": 0.3, "min_clip_score": 0.1}
PROMPT = "a man <b>fights</b> & runs"


def _clip(path: Path, seed: int) -> str:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 255, (12, 48, 64, 3), dtype=np.uint8)  # 64 wide, 48 high
    write_video(path, frames, 8)
    return str(path)


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    root = tmp_path_factory.mktemp("gallery")
    init_dir = root / "init_images"
    init_dir.mkdir()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(init_dir / "fighting_000.png")
    init_images = pd.DataFrame(
        [
            {"class": "fighting", "rank": 0, "video_id": "v1", "frame": 3, "scene": "01",
             "score": 0.21, "s_pos": 0.25, "s_neg": 0.125,
             "image": "results/x/init_images/fighting_000.png", "clip_random_weights": True}
        ]
    )  # fmt: skip
    scores = {"decodable": True, "n_frames": 12, "frame_std": 70.0, "motion": 80.0}
    filtered = pd.DataFrame(
        [
            {"clip_id": "pavad-fighting-000", "method": "pavad", "class": "fighting",
             "label": 1, "path": _clip(root / "a.mp4", 0), **scores, "clip_score": 0.3,
             "keep": True, "reason": "ok"},
            {"clip_id": "gvvad-fighting-000-normal", "method": "gvvad", "class": "fighting",
             "label": 0, "path": _clip(root / "b.mp4", 1), **scores, "clip_score": 0.05,
             "keep": False, "reason": "text_mismatch"},
        ]
    )  # fmt: skip
    prompts = pd.DataFrame(
        [
            {"clip_id": "pavad-fighting-000", "method": "pavad", "class": "fighting",
             "label": 1, "prompt": PROMPT, "init_image": init_images.image[0],
             "negative_prompt": "", "backend": "template"},
            {"clip_id": "gvvad-fighting-000-normal", "method": "gvvad", "class": "fighting",
             "label": 0, "prompt": "people walk in a park", "init_image": None,
             "negative_prompt": "", "backend": "template"},
        ]
    )  # fmt: skip
    return root, filtered, prompts, init_images, init_dir


def test_frame_strip_of_a_clip_and_of_garbage(tmp_path):
    path = _clip(tmp_path / "c.mp4", 2)
    jpeg = frame_strip(path, n=4, height=24)
    assert jpeg[:2] == b"\xff\xd8"
    with Image.open(io.BytesIO(jpeg)) as image:
        assert image.size == (4 * 32, 24)  # 64x48 frames scaled to 32x24
    (tmp_path / "x.mp4").write_bytes(b"garbage" * 50)
    placeholder = frame_strip(str(tmp_path / "x.mp4"))
    assert placeholder[:2] == b"\xff\xd8"
    assert frame_strip(str(tmp_path / "missing.mp4"))[:2] == b"\xff\xd8"


def test_counts_table_by_hand():
    filtered = pd.DataFrame(
        {
            "method": ["pavad"] * 4 + ["gvvad"],
            "class": ["fighting"] * 5,
            "label": [1, 1, 1, 1, 0],
            "keep": [True, False, False, False, True],
            "reason": ["ok", "frozen", "blank", "frozen", "ok"],
        }
    )
    table = counts_table(filtered)
    assert table.to_dict("records") == [
        {"method": "gvvad", "class": "fighting", "label": 0, "kept": 1, "rejected": 0,
         "total": 1, "reasons": ""},
        {"method": "pavad", "class": "fighting", "label": 1, "kept": 1, "rejected": 3,
         "total": 4, "reasons": "frozen: 2, blank: 1"},
    ]  # fmt: skip


def test_filter_histograms_write_a_png(tables, tmp_path):
    _, filtered, *_ = tables
    out = tmp_path / "hist.png"
    filter_histograms(out, filtered, THRESHOLDS)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gallery_page(tables, tmp_path):
    _, filtered, prompts, init_images, init_dir = tables
    out = tmp_path / "gallery.html"
    assert write_gallery(out, filtered, prompts, init_images, init_dir, THRESHOLDS) == 2
    page = out.read_text(encoding="utf-8")
    assert page.count('class="clip-card ') == 2
    for clip_id in filtered.clip_id:
        assert clip_id in page
        assert f'id="clip-{clip_id}"' in page
    assert "a man &lt;b&gt;fights&lt;/b&gt; &amp; runs" in page
    assert "<b>fights</b>" not in page
    assert "rejected: text_mismatch" in page
    assert page.count('class="strip" alt=') == 2
    assert page.count("data:image/jpeg;base64,") >= 4  # 2 strips, init thumb twice
    assert "s_pos 0.250" in page and "s_neg 0.125" in page
    assert "Retrieved initial images" in page and "fighting_000.png" in page
    # self-contained: every src/href is a data URL, no URL anywhere, no script
    assert "http" not in page and "<script" not in page
    assert not re.search(r'(?:src|href)="(?!data:)', page)
    # the GV-VAD card has no initial image
    gv = page.split('id="clip-gvvad-fighting-000-normal"')[1].split("clip-card")[0]
    assert "init-thumb" not in gv


def test_gallery_without_init_images_and_capped(tables, tmp_path):
    root, filtered, prompts, *_ = tables
    many = pd.concat(
        [filtered.iloc[[1]].assign(clip_id=f"gvvad-fighting-{i:03d}-normal") for i in range(5)],
        ignore_index=True,
    )
    many.loc[4, "decodable"] = False  # a corrupt clip: placeholder strip, no decode
    many.loc[4, "path"] = str(root / "nothing.mp4")
    out = tmp_path / "capped.html"
    assert write_gallery(out, many, prompts, None, None, THRESHOLDS, max_clips=2) == 2
    page = out.read_text(encoding="utf-8")
    assert page.count('class="clip-card ') == 2
    assert "3 of 5 clips left out" in page
    assert "No initial images" in page


def test_preview_shows_the_first_kept_clips_of_each_method(tables, tmp_path):
    from synthvad.gallery import write_preview

    _, filtered, prompts, init_images, init_dir = tables
    out = tmp_path / "preview.html"
    n = write_preview(out, filtered, prompts, init_images, init_dir, THRESHOLDS, per_method=2)
    fragment = out.read_text()
    assert n == 1  # the gvvad clip was rejected: only the kept pavad one
    assert 'data-clip-id="pavad-fighting-000"' in fragment and "gvvad-fighting" not in fragment
    assert "s_pos 0.250" in fragment and "&lt;b&gt;fights&lt;/b&gt;" in fragment
    assert not fragment.lstrip().startswith("<!DOCTYPE")  # a fragment, for the landing page


def test_gallery_shows_the_filters_strips_without_decoding(tables, tmp_path):
    import base64

    from synthvad.gallery import read_strips

    root, filtered, prompts, init_images, init_dir = tables
    stored = _jpeg_of_colour((10, 200, 10))
    with_strips = tmp_path / "chunk-a.parquet"
    pd.DataFrame({"clip_id": ["pavad-fighting-000"], "strip": [stored]}).to_parquet(with_strips)
    old = tmp_path / "chunk-b.parquet"  # written before the filter made strips
    pd.DataFrame({"clip_id": ["gvvad-fighting-000-normal"]}).to_parquet(old)
    strips = read_strips([str(with_strips), str(old)])
    assert strips == {"pavad-fighting-000": stored}
    moved = filtered.assign(
        path=filtered["path"].where(filtered["clip_id"] != "pavad-fighting-000", "gone.mp4")
    )
    out = tmp_path / "g.html"
    write_gallery(out, moved, prompts, init_images, init_dir, THRESHOLDS, strips=strips)
    page = out.read_text()
    assert base64.b64encode(stored).decode() in page  # the stored strip, the clip not read


def _jpeg_of_colour(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (60, 12), colour).save(buffer, format="JPEG")
    return buffer.getvalue()
