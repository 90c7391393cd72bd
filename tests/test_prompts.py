import pandas as pd
import pytest

from synthvad import plan
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


def _init_images():
    return pd.DataFrame(
        {"class": ["fighting", "normal"], "rank": [0, 0], "image": ["a.png", "b.png"]}
    )


def test_refine_builds_prompts_and_checks_the_plan(tmp_path):
    images = tmp_path / "init.parquet"
    _init_images().to_parquet(images)
    planned = ["pavad-fighting-000", "pavad-normal-000"]
    df = refine.run(["fixed camera"], ["pavad"], planned, None, str(images), tmp_path / "p.parquet")
    assert df.clip_id.tolist() == planned
    assert df.label.tolist() == [1, 0]
    assert df.prompt[0].startswith("Generate fighting behavior") and df.prompt[0].endswith(
        "fixed camera"
    )
    with pytest.raises(refine.RefineError, match="missing"):
        refine.run(
            [],
            ["pavad"],
            [*planned, "pavad-fighting-001"],
            None,
            str(images),
            tmp_path / "q.parquet",
        )
    assert not (tmp_path / "q.parquet").exists()
