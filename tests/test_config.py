import copy

import pytest
import yaml

from synthvad.config import ConfigError, validate_config

from .conftest import ROOT


def raw():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def test_default_config_is_valid_and_defaults_are_filled():
    cfg = raw()
    del cfg["detect"]["val_fraction"]
    validate_config(cfg)
    assert cfg["detect"]["val_fraction"] == 0.2
    assert cfg["segments"] == {"length": 16, "keep_last_partial": True}


@pytest.mark.parametrize(
    ("path", "value", "key"),
    [
        (("detectors", "topk_bce", "lr"), "fast", "detectors.topk_bce.lr"),
        (("retrieve", "lambda"), 1.5, "retrieve.lambda"),
        (("experiments", "real", "synthetic"), ["sora"], "experiments.real.synthetic.0"),
        (("clip", "device"), "tpu", "clip.device"),
        (("data", "demo", "width"), 161, "data.demo.width"),
    ],
)
def test_bad_value_names_its_key(path, value, key):
    cfg = raw()
    node = cfg
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=f"'{key}'"):
        validate_config(cfg)


def test_unknown_key_and_missing_manifest_are_rejected():
    cfg = raw()
    cfg["detect"]["learning_rate"] = 0.1
    with pytest.raises(ConfigError, match="learning_rate"):
        validate_config(cfg)
    cfg = raw()
    cfg["data"] = {"kind": "manifest"}
    with pytest.raises(ConfigError, match="'manifest' is a required property"):
        validate_config(cfg)


def test_event_class_must_be_a_configured_class():
    cfg = raw()
    cfg["describe"]["events"].append({"text": "steals a bike", "class": "stealing"})
    with pytest.raises(ConfigError, match="describe.events.6.class"):
        validate_config(copy.deepcopy(cfg))


# What config.yaml sets away from the schema's defaults on purpose: the demo's choices.
# Any other key it sets must equal the default, so a --configfile user gets what the demo
# documents (the schema is the one source of defaults).
DEMO_CHOICES = {
    "name", "data", "classes", "describe", "experiments",  # the demo's own content
    "synthesize.clips_per_job",  # few, cheap perturb clips per job
    "features.extractor",  # motion: random CLIP weights carry no signal here
    "quality.frames_per_video", "quality.clips_per_video", "quality.max_videos",
    "quality.per_class",  # a CPU-sized look, not a measurement
    "detect.train_segments",  # demo videos have 10-14 segments
    "detectors",  # sized for a few dozen demo videos; the schema holds the papers' sizes
}  # fmt: skip


def _leaves(value, path=""):
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _leaves(sub, f"{path}.{key}" if path else key)
    else:
        yield path, value


def test_config_yaml_sets_only_defaults_and_demo_choices():
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    defaults = validate_config(
        {"name": "x", "data": {"kind": "manifest", "manifest": "m.csv"},
         "classes": raw["classes"], "experiments": {"real": {}}}
    )  # fmt: skip
    disagreements = []
    for path, value in _leaves(raw):
        if any(path == c or path.startswith(c + ".") for c in DEMO_CHOICES):
            continue
        expected = defaults
        for part in path.split("."):
            expected = (
                expected.get(part, "<not a key>") if isinstance(expected, dict) else "<not a key>"
            )
        if value != expected:
            disagreements.append(f"{path}: config.yaml {value!r}, schema default {expected!r}")
    assert not disagreements, "\n".join(disagreements)
