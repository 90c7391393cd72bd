# Config validation, shared paths and input functions.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from synthvad import plan  # noqa: E402
from synthvad.config import ConfigError, canonical, validate_config  # noqa: E402
from synthvad.models import RANDOM_WEIGHTS_WARNING, clip_tag  # noqa: E402

try:
    validate_config(config)
except ConfigError as exc:
    raise WorkflowError(f"invalid configuration: {exc}") from None

R = f"results/{config['name']}"
LOGS = f"logs/{config['name']}"
EXTRACTOR = clip_tag(config["clip"])
GENERATOR = config["synthesize"]["backend"]
METHODS = plan.used_methods(config)
CLIPS = plan.clip_ids(config)
EXPERIMENTS = list(config["experiments"])
STAGE = "../scripts/stage.py"



def sub_config(*keys):
    """The config sections a rule reads, as params, so that only they trigger its reruns."""
    return canonical({key: config[key] for key in keys})


def manifest_path():
    if config["data"]["kind"] == "demo":
        return f"{R}/demo/manifest.csv"
    return config["data"]["manifest"]


def clip_video(clip_id):
    return f"{R}/synthetic/{GENERATOR}/{clip_id}.mp4"


def synthesis_inputs(wildcards):
    inputs = {"prompts": f"{R}/prompts.parquet"}
    if wildcards.clip_id.startswith("pavad-"):
        inputs["init_images"] = f"{R}/init_images"
    return inputs


def refine_inputs(wildcards):
    inputs = {}
    if "gvvad" in METHODS:
        inputs["descriptions"] = f"{R}/descriptions.parquet"
    if "pavad" in METHODS:
        inputs["init_images"] = f"{R}/init_images.parquet"
        inputs["images"] = f"{R}/init_images"
    return inputs


def experiment_shards(wildcards):
    shards = [f"{R}/features/{EXTRACTOR}/part-real.parquet"]
    if config["experiments"][wildcards.experiment]["synthetic"]:
        shards.append(f"{R}/features/{EXTRACTOR}/part-synthetic.parquet")
    return shards


def report_warnings():
    warnings = []
    if config["clip"]["pretrained"] is None:
        warnings.append(RANDOM_WEIGHTS_WARNING)
    if config["synthesize"]["backend"] == "perturb" and METHODS:
        warnings.append("synthetic clips come from the offline `perturb` renderer, not a diffusion model")
    return warnings


def all_outputs():
    return [f"{R}/report/summary.md", f"{R}/report/summary.csv", f"{R}/report/plots"]
