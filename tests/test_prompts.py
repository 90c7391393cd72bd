import numpy as np
import pandas as pd
import pytest
from PIL import Image

from synthvad import plan, prompts
from synthvad.describe import template as describe
from synthvad.refine import template as refine


def test_clip_ids_are_a_function_of_config(default_config):
    ids = plan.clip_ids(default_config)
    n_classes = len(default_config["classes"])
    per_class = default_config["describe"]["per_class"]
    r = default_config["retrieve"]
    assert len(ids) == n_classes * per_class * 2 + n_classes * r["top_k"] + r["normal_top_k"]
    assert len(set(ids)) == len(ids)
    assert "pavad-normal-000" in ids and "gvvad-explosion-001-normal" in ids
    cfg = {**default_config, "experiments": {"real": {"synthetic": []}}}
    assert plan.clip_ids(cfg) == []


def test_describe_draws_distinct_seeded_combinations(default_config, tmp_path):
    a = describe.run(default_config, tmp_path / "a.parquet")
    b = describe.run(default_config, tmp_path / "b.parquet")
    pd.testing.assert_frame_equal(a, b)
    per_class = default_config["describe"]["per_class"]
    assert (a.groupby("class").size() == per_class).all()
    keys = ["class", "viewpoint", "location", "subject", "event"]
    assert not a.duplicated(keys).any()
    row = a.iloc[0]
    assert row.event in row.abnormal and row.location in row.normal
    assert row.event not in row.normal
    assert a.request_hash.is_unique


def test_describe_rejects_more_combinations_than_exist(default_config):
    cfg = {**default_config["describe"], "per_class": 10_000}
    with pytest.raises(describe.DescribeError, match="per_class"):
        describe.combinations(cfg, ["fighting"], 0)


def test_template_phrases_are_appended_eq_6():
    assert (
        refine.with_template("Generate fighting behavior.", ["natural movement", "fixed camera"])
        == "Generate fighting behavior, natural movement, fixed camera"
    )


def _init_images(root):
    """Two retrieved initial images as stage 2 writes them (the table plus the PNGs)."""
    rng = np.random.default_rng(0)
    paths = []
    for name in ("fighting_000.png", "normal_000.png"):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(root / name)
        paths.append(str(root / name))
    table = root / "init.parquet"
    pd.DataFrame({"class": ["fighting", "normal"], "rank": [0, 0], "image": paths}).to_parquet(
        table
    )
    return str(table)


def _refine(root, images, planned, out="p"):
    files = [str(root / out / f"{c}.json") for c in planned]

    def pavad_rows(init_images):
        return refine.pavad_prompts(init_images, ["fixed camera"])

    df = refine.run(
        "template",
        pavad_rows,
        ["pavad"],
        planned,
        None,
        images,
        root / f"{out}.parquet",
        root / out,
    )
    return df, files


def test_refine_builds_prompts_and_checks_the_plan(tmp_path):
    images = _init_images(tmp_path)
    planned = ["pavad-fighting-000", "pavad-normal-000"]
    df, files = _refine(tmp_path, images, planned)
    assert df.clip_id.tolist() == planned
    assert df.label.tolist() == [1, 0]
    assert df.prompt[0].startswith("Generate fighting behavior") and df.prompt[0].endswith(
        "fixed camera"
    )
    clips = prompts.read_clip_prompts(files)
    assert list(clips) == planned
    assert clips["pavad-normal-000"]["prompt"] == df.prompt[1]
    assert clips["pavad-normal-000"]["label"] == 0
    with pytest.raises(prompts.RefineError, match="missing"):
        _refine(tmp_path, images, [*planned, "pavad-fighting-001"], out="q")
    assert not (tmp_path / "q.parquet").exists()


def test_unchanged_prompts_are_rewritten_byte_identical(tmp_path):
    """What lets Snakemake's input checksum keep a clip across a refine rerun."""
    images = _init_images(tmp_path)
    planned = ["pavad-fighting-000", "pavad-normal-000"]
    _, files = _refine(tmp_path, images, planned)
    before = [open(f, "rb").read() for f in files]
    _, files = _refine(tmp_path, images, planned)
    assert [open(f, "rb").read() for f in files] == before


def test_a_changed_initial_image_is_caught_before_synthesis(tmp_path):
    images = _init_images(tmp_path)
    _, files = _refine(tmp_path, images, ["pavad-fighting-000", "pavad-normal-000"])
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "normal_000.png")
    prompts.read_clip_prompts(files[:1])  # the other clip's image is untouched
    with pytest.raises(prompts.RefineError, match="changed after refine ran"):
        prompts.read_clip_prompts(files[1:])
    (tmp_path / "normal_000.png").unlink()
    with pytest.raises(prompts.RefineError, match="is missing"):
        prompts.read_clip_prompts(files[1:])


def test_a_prompt_file_must_name_its_own_clip(tmp_path):
    images = _init_images(tmp_path)
    _, files = _refine(tmp_path, images, ["pavad-fighting-000", "pavad-normal-000"])
    other = tmp_path / "pavad-fighting-007.json"
    other.write_bytes(open(files[0], "rb").read())
    with pytest.raises(prompts.RefineError, match="not its own"):
        prompts.read_clip_prompts([other])
    other.write_text("{")
    with pytest.raises(prompts.RefineError, match="unreadable"):
        prompts.read_clip_prompts([other])


def test_a_truncated_initial_image_is_named_with_a_fix_that_works(tmp_path):
    images = _init_images(tmp_path)
    planned = ["pavad-fighting-000", "pavad-normal-000"]
    _, files = _refine(tmp_path, images, planned)
    png = tmp_path / "normal_000.png"
    png.write_bytes(png.read_bytes()[:-40])  # cut inside the image data
    advice = r"normal_000.png cannot be decoded .*snakemake --forcerun retrieve"
    with pytest.raises(prompts.RefineError, match=advice):
        prompts.read_clip_prompts(files[1:])  # the synthesis job
    with pytest.raises(prompts.RefineError, match=advice):
        _refine(tmp_path, images, planned, out="again")  # rerunning refine does not hide it
