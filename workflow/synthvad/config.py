"""Config validation against workflow/schemas/config.schema.yaml, with defaults filled in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A config value that breaks the schema; the message names the key."""


def load_schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults in place (Snakemake's own validator) and raise ConfigError naming the
    first offending key."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        validate(config, str(SCHEMA_PATH), set_default=True)
    except WorkflowError as err:
        raise _key_error(config) or ConfigError(str(err)) from None
    _check_cross_references(config)
    _check_experiments(config)
    return config


def _check_cross_references(config: dict[str, Any]) -> None:
    """Rules a JSON schema cannot express: names that must refer to each other."""
    class_names = [c["name"] for c in config["classes"]]
    if len(set(class_names)) != len(class_names):
        raise ConfigError(f"config key 'classes': duplicate class names in {class_names}")
    for i, event in enumerate(config.get("describe", {}).get("events", [])):
        if event["class"] not in class_names:
            raise ConfigError(
                f"config key 'describe.events.{i}.class': {event['class']!r} is not one of "
                f"the classes {class_names}"
            )
    if config["data"]["kind"] == "demo":
        lo, hi = config["data"]["demo"]["seconds"]
        if lo > hi:
            raise ConfigError(f"config key 'data.demo.seconds': min {lo} > max {hi}")
    features = config["features"]
    if features["extractor"] == "motion" and features["crops"] != "center":
        raise ConfigError(
            "config key 'features.crops': crops apply to the clip extractor; the motion "
            "extractor describes the whole frame (one crop), so leave features.crops: center"
        )
    from synthvad.datasets import check_config as check_data

    check_data(config, ConfigError)


def _check_experiments(config: dict[str, Any]) -> None:
    """Each experiment names a configured detector; removing labels needs a label-free one."""
    detectors = config.get("detectors", {})
    for name, experiment in config["experiments"].items():
        detector = experiment["detector"]
        if detector not in detectors:
            raise ConfigError(
                f"config key 'experiments.{name}.detector': {detector!r} is not one of the "
                f"detectors {sorted(detectors)}"
            )
        check_label_free(name, experiment, detectors[detector]["model"])


def check_label_free(name: str, experiment: dict[str, Any], model: str) -> None:
    """An experiment that removes the labels (`unsupervised`) needs a detector that never
    reads one. detect.train.run_experiment checks it too: a direct call skips validation."""
    if experiment.get("unsupervised") and model != "spr_unsupervised":
        raise ConfigError(
            f"config key 'experiments.{name}.unsupervised': experiment {name!r} removes the "
            f"labels but model {model!r} needs them; use a spr_unsupervised detector"
        )


def _key_error(config: dict[str, Any]) -> ConfigError | None:
    """The schema violations as one line that names the key (Snakemake's message is a
    multi-line dump of the schema)."""
    validator = jsonschema.Draft202012Validator(load_schema())
    # "Unevaluated properties" also fires when a conditional branch failed for another
    # reason; that other error names the key, so it goes first.
    errors = sorted(
        validator.iter_errors(config),
        key=lambda e: (e.validator == "unevaluatedProperties", list(e.absolute_path)),
    )
    if not errors:
        return None
    err = errors[0]
    key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ConfigError(f"config key '{key}': {err.message}{more}")


def load_config(path: str | Path) -> dict[str, Any]:
    with open(path) as fh:
        config = yaml.safe_load(fh)
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys")
    return validate_config(config)
