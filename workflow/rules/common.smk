# Config validation, shared paths and input functions.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from synthvad import plan  # noqa: E402
from synthvad.config import ConfigError, validate_config  # noqa: E402
from synthvad.rule_params import canonical  # noqa: E402
from synthvad.datasets import extractor_name, imports_features, stage0_inputs  # noqa: E402
from synthvad.clip_model import RANDOM_WEIGHTS_WARNING  # noqa: E402
from synthvad.prompts import clip_prompt_path  # noqa: E402
from synthvad.resources import grows, grows_with  # noqa: E402  (retries get more)
from synthvad.synthesize import jobs as synthesis  # noqa: E402
from synthvad.features import jobs as feature_jobs  # noqa: E402

try:
    validate_config(config)
except ConfigError as exc:
    raise WorkflowError(f"invalid configuration: {exc}") from None

R = f"results/{config['name']}"
LOGS = f"logs/{config['name']}"
# Snakemake writes each job's runtime and memory here; the report tables them by rule.
BENCH = f"{R}/benchmarks"
EXTRACTOR = extractor_name(config)  # imported features name their own extractor
FEATURES_IMPORTED = imports_features(config["data"])  # then features_real does not run
GENERATORS = synthesis.generators(config)  # method -> generator (synthesize.backend)
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


def dataset_inputs():
    """Stage 0 inputs: a manifest, or a benchmark's official files (and feature lists)."""
    if config["data"]["kind"] in ("demo", "manifest"):
        return {"manifest": manifest_path()}
    return stage0_inputs(config["data"])


try:
    synthesis.check_config(config, METHODS)
except ConfigError as exc:
    raise WorkflowError(f"invalid configuration: {exc}") from None
# clips_per_job > 1: one loop-defined job per batch of clips (synthesize.smk).
SYNTHESIS_BATCHES = (
    synthesis.batches(config, CLIPS) if config["synthesize"]["clips_per_job"] > 1 else []
)


def clip_video(clip_id):
    return f"{R}/synthetic/{synthesis.generator_of(config, clip_id)}/{clip_id}.mp4"


def synthesis_inputs(clip_ids):
    """The clips' prompt files (in the refine checkpoint's folder), plus the initial images
    when a PA-VAD clip is among them and the generator's LoRA files (their digests are also
    params of the synthesis jobs, see synthvad.synthesize.jobs.rule_params).

    Until refine has run (or while it must rerun), checkpoints.refine.get() raises and
    Snakemake makes the job wait for the checkpoint, then re-evaluates it on the files.
    The images are ancient(): a retrieve rerun rewrites the whole folder, and what a clip
    needs from it (its own image's content) is already hashed into its prompt file."""
    folder = checkpoints.refine.get().output.clips
    inputs = {"prompts": [clip_prompt_path(folder, c) for c in clip_ids]}
    loras = synthesis.lora_files(config, synthesis.generator_of(config, clip_ids[0]))
    if loras:
        inputs["lora"] = loras
    if any(synthesis.method_of(c) == "pavad" for c in clip_ids):
        inputs["init_images"] = ancient(f"{R}/init_images")
    return inputs


def refine_inputs(wildcards):
    inputs = {}
    if "gvvad" in METHODS:
        inputs["descriptions"] = f"{R}/descriptions.parquet"
    if "pavad" in METHODS:
        inputs["init_images"] = f"{R}/init_images.parquet"
        inputs["images"] = f"{R}/init_images"
    return inputs


# Stages 5 and 6 scatter over chunks (synthvad.features.jobs), then gather into one file.
FEATURES = f"{R}/features/{EXTRACTOR}"
REAL_CHUNK = f"{FEATURES}/chunks/real-of-{config['features']['real_chunks']}/{{chunk}}.parquet"
SYNTHETIC_CHUNK = f"{FEATURES}/chunks/synthetic/{{chunk}}.parquet"
FILTER_CHUNK = f"{R}/filter/{{chunk}}.parquet"
REAL_CHUNKS = feature_jobs.real_chunk_names(config["features"]["real_chunks"])
CLIP_CHUNKS = plan.rank_chunks(CLIPS, config["features"]["clips_per_chunk"])
FILTER_CHUNKS = plan.rank_chunks(CLIPS, config["filter"]["clips_per_chunk"])


def chunk_clips(chunks):
    """Input function: the clips (and their sidecars) of the job's chunk."""

    def inputs(wildcards):
        clips = chunks[wildcards.chunk]
        videos = [clip_video(c) for c in clips]
        return {"videos": videos, "sidecars": [v[: -len(".mp4")] + ".json" for v in videos]}

    return inputs


def experiment_stores(wildcards):
    """The feature stores (real, and synthetic when used) an experiment trains and tests on."""
    # Imported clips (GV-VAD's lists) sit in the real part with the features they came with.
    made = set(config["experiments"][wildcards.experiment]["synthetic"]) - {"imported"}
    parts = ["real"] + (["synthetic"] if made else [])
    return [f"{R}/features/{EXTRACTOR}/store-{part}" for part in parts]


def caption_inputs(wildcards):
    """A feature part (its segments are captioned) and the videos behind it."""
    inputs = {"features": f"{FEATURES}/part-{wildcards.part}.parquet"}
    if wildcards.part == "real":
        inputs["index"] = f"{R}/index.parquet"
    else:
        inputs["videos"] = [clip_video(c) for c in CLIPS]
    return inputs


def experiment_captions(wildcards):
    """The caption shards of the experiment's parts, when its detector reads captions."""
    detector = config["detectors"][config["experiments"][wildcards.experiment]["detector"]]
    if not detector.get("captions"):
        return []
    parts = [s.removeprefix(f"{FEATURES}/store-") for s in experiment_stores(wildcards)]
    return [f"{R}/captions/embedded-{part}.parquet" for part in parts]


def experiment_config(wildcards):
    """The experiment's entry (with its name) as detect params."""
    return canonical({"name": wildcards.experiment, **config["experiments"][wildcards.experiment]})


def detector_config(wildcards):
    """Only the detector the experiment names: editing another one reruns nothing here."""
    return canonical(config["detectors"][config["experiments"][wildcards.experiment]["detector"]])


def experiment_text_bank(wildcards):
    """LAP's class-text bank, for the experiments whose detector makes pseudo labels."""
    detector = config["detectors"][config["experiments"][wildcards.experiment]["detector"]]
    if detector["model"] == "lap" and detector["pseudo_labels"] != "off":
        return [f"{R}/class_text_bank.npy"]
    return []


def synthetic_metrics(wildcards):
    """What the report shows about the made clips, when some experiment trains on them."""
    if not METHODS:
        return {}
    inputs = {
        "domain_gap": f"{R}/metrics/domain_gap.json",
        "gallery_preview": f"{R}/report/gallery_preview.html",
    }
    if config["quality"]["enabled"]:
        inputs["generation"] = f"{R}/metrics/generation.json"
    return inputs


def gallery_inputs(wildcards):
    """The clips, their prompts and filter verdicts, and PA-VAD's initial images."""
    inputs = {
        "filtered": f"{R}/filtered.parquet",
        "prompts": f"{R}/prompts.parquet",
        "clips": [clip_video(c) for c in CLIPS],
        # Their frame strips, made by the filter from the frames it decoded.
        "filter_chunks": expand(FILTER_CHUNK, chunk=list(FILTER_CHUNKS)),
    }
    if "pavad" in METHODS:
        inputs.update(init_table=f"{R}/init_images.parquet", init_dir=f"{R}/init_images")
    return inputs



def report_warnings():
    warnings = []
    clip_used = not FEATURES_IMPORTED or METHODS  # imported features need no CLIP alone
    if config["clip"]["pretrained"] is None and clip_used:
        warnings.append(RANDOM_WEIGHTS_WARNING)
    i3d = config["features"]["extractor"] in ("i3d", "i3d_resnet50")
    if i3d and config["features"]["i3d"]["weights"] is None and clip_used:
        warnings.append(
            "I3D weights are RANDOM (features.i3d.weights is null): the features carry no "
            "semantics; set it to a checkpoint for a real run"
        )
    if any(GENERATORS[method] == "perturb" for method in METHODS):
        warnings.append("synthetic clips come from the offline `perturb` renderer, not a diffusion model")
    return warnings


def all_outputs():
    outputs = [f"{R}/report/summary.md", f"{R}/report/summary.html", f"{R}/report/plots"]
    if METHODS:
        outputs += [f"{R}/report/gallery.html", f"{R}/report/domain_gap.png"]
    return outputs
