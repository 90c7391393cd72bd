"""Stage 4 with diffusers: tiny random-weight pipelines saved to disk, then loaded by the
stage exactly as a real checkpoint would be (folder or HF-cache hub id)."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from synthvad import plan
from synthvad.config import ConfigError, validate_config
from synthvad.io.video import probe, read_frames
from synthvad.prompts import NEGATIVE_PROMPT
from synthvad.synthesize import jobs
from synthvad.synthesize import run as stage
from synthvad.synthesize.base import SynthesisError
from synthvad.synthesize.locate import ModelLocationError

from .conftest import DIFFUSERS_KINDS

WIDTH, HEIGHT, FRAMES, FPS = 64, 48, 9, 12  # not square: a swapped width/height shows
KINDS = DIFFUSERS_KINDS


def minimal_config(**synthesize) -> dict:
    """A validated config (defaults filled in) that makes two GV-VAD clips."""
    return validate_config(
        {
            "name": "synth",
            "data": {"kind": "manifest", "manifest": "unused.csv"},  # only clips are made
            "classes": [{"name": "fighting", "positive": "two people fighting"}],
            "describe": {
                "per_class": 1,
                "viewpoints": ["a fixed surveillance camera"],
                "locations": ["a city street"],
                "subjects": ["a man"],
                "events": [{"text": "gets into a fist fight", "class": "fighting"}],
            },
            "experiments": {"gvvad": {"synthetic": ["gvvad"]}},
            "synthesize": synthesize,
        }
    )


def generator_section(model: Path | str, **overrides) -> dict:
    """synthesize.<backend> with every default filled in, as the validated config has it."""
    cfg = minimal_config()["synthesize"]["wan_t2v"]
    cfg.update(model=str(model), width=WIDTH, height=HEIGHT, frames=FRAMES, fps=FPS, steps=2)
    cfg.update(threads=1, **overrides)
    return cfg


def synthesize(backend: str, section: dict, prompts: Path, out: Path, clip_ids, seed=0) -> dict:
    """Run the stage as a Snakemake job would, returning each clip's sidecar."""
    config = {"seed": seed, "synthesize": {backend: section}}
    videos = [str(out / f"{c}.mp4") for c in clip_ids]
    sidecars = [str(out / f"{c}.json") for c in clip_ids]
    stage.run(
        jobs.rule_params(config, backend),
        jobs.runtime(config, backend),
        [str(prompts / f"{c}.json") for c in clip_ids],
        videos,
        sidecars,
    )
    return {c: json.loads(Path(s).read_text()) for c, s in zip(clip_ids, sidecars, strict=True)}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


CASES = [
    ("cogvideox", ["gvvad-fighting-000-abnormal", "gvvad-fighting-000-normal"], {"guidance": 6.0}),
    ("wan2.1-i2v", ["pavad-explosion-000", "pavad-normal-000"], {}),
    ("wan2.2-i2v", ["pavad-explosion-000", "pavad-normal-000"], {"guidance": [3.5, 4.5]}),
    ("wan-t2v", ["gvvad-fighting-000-abnormal", "gvvad-fighting-000-normal"], {}),
]


@pytest.mark.parametrize(("name", "clip_ids", "overrides"), CASES, ids=[c[0] for c in CASES])
def test_backend_makes_seeded_clips_of_the_configured_shape(
    name, clip_ids, overrides, checkpoints, prompts, tmp_path
):
    backend = KINDS[name][1]
    section = generator_section(checkpoints[name], **overrides)
    sidecars = synthesize(backend, section, prompts, tmp_path / "batch", clip_ids)

    for clip_id, meta in sidecars.items():
        info = probe(tmp_path / "batch" / f"{clip_id}.mp4")
        assert (info.n_frames, info.width, info.height) == (FRAMES, WIDTH, HEIGHT)
        assert info.fps == pytest.approx(FPS)
        assert meta["frames"] == FRAMES and meta["resolution"] == [WIDTH, HEIGHT]
        assert meta["fps"] == FPS and meta["steps"] == 2
        assert meta["seed"] == stage.clip_seed(0, clip_id)
        assert meta["model"] == str(checkpoints[name]) and meta["model_path"]
        assert meta["negative_prompt"] == NEGATIVE_PROMPT and meta["prompt"]
        assert meta["seconds"] > 0 and meta["clips_in_job"] == 2 and meta["dtype"] == "float32"
        assert "peak_gpu_memory_bytes" in meta and "revision" in meta
        assert (meta["init_image"] is not None) == (backend == "wan_i2v")
    experts = 2 if name == "wan2.2-i2v" else 1
    assert sidecars[clip_ids[0]]["experts"] == experts
    expected_guidance = {"cogvideox": [6.0], "wan2.1-i2v": [5.0], "wan2.2-i2v": [3.5, 4.5]}
    assert sidecars[clip_ids[0]]["guidance"] == expected_guidance.get(name, [5.0])

    # The same config gives the same clip, bit for bit, whether made alone or in a batch;
    # another clip id (another seed) gives another clip.
    synthesize(backend, section, prompts, tmp_path / "alone", clip_ids[:1])
    first = tmp_path / "batch" / f"{clip_ids[0]}.mp4"
    assert digest(first) == digest(tmp_path / "alone" / f"{clip_ids[0]}.mp4")
    other = read_frames(tmp_path / "batch" / f"{clip_ids[1]}.mp4")
    assert not np.array_equal(read_frames(first), other)
    if experts == 2:  # the second scale reaches the low-noise expert
        section = {**section, "guidance": [3.5, 1.0]}
        synthesize(backend, section, prompts, tmp_path / "g2", clip_ids[:1])
        assert not np.array_equal(read_frames(first), read_frames(tmp_path / "g2" / first.name))


def test_hub_id_resolves_from_the_hf_cache_only(checkpoints, prompts, tmp_path, monkeypatch):
    import huggingface_hub.constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--tiny-org--wan-t2v"
    shutil.copytree(checkpoints["wan-t2v"], repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    section = generator_section("tiny-org/wan-t2v")
    meta = synthesize("wan_t2v", section, prompts, tmp_path / "out", ["gvvad-fighting-000-normal"])
    assert meta["gvvad-fighting-000-normal"]["revision"] == commit

    missing = generator_section("tiny-org/not-downloaded")
    with pytest.raises(ModelLocationError, match="synthesize.wan_t2v.model.*allow_download"):
        synthesize("wan_t2v", missing, prompts, tmp_path / "out", ["gvvad-fighting-000-normal"])


def test_tokenizer_shipped_as_spiece_model_loads(checkpoints, prompts, tmp_path):
    """CogVideoX checkpoints carry their T5 tokenizer as spiece.model, with no tokenizer.json."""
    import sentencepiece

    folder = tmp_path / "cogvideox"
    shutil.copytree(checkpoints["cogvideox"], folder)
    tokenizer = folder / "tokenizer"
    shutil.rmtree(tokenizer)
    tokenizer.mkdir()
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a man gets into a fist fight\na man walks on the street\n" * 20)
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(tokenizer / "spiece"),
        vocab_size=20,
        hard_vocab_limit=False,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        minloglevel=2,
    )
    config = {"tokenizer_class": "T5Tokenizer", "extra_ids": 0}
    (tokenizer / "tokenizer_config.json").write_text(json.dumps(config))
    clip = "gvvad-fighting-000-normal"
    meta = synthesize("cogvideox", generator_section(folder), prompts, tmp_path / "out", [clip])
    assert meta[clip]["frames"] == FRAMES


def test_wrong_or_missing_model_is_named(checkpoints, prompts, tmp_path):
    clip = ["pavad-explosion-000"]
    with pytest.raises(ModelLocationError, match="synthesize.wan_i2v.model.*does not exist"):
        synthesize("wan_i2v", generator_section(tmp_path / "nope"), prompts, tmp_path, clip)
    wrong = generator_section(checkpoints["cogvideox"])
    with pytest.raises(ModelLocationError, match="CogVideoXPipeline.*expected a WanImageToVideo"):
        synthesize("wan_i2v", wrong, prompts, tmp_path, clip)
    two_scales = generator_section(checkpoints["wan2.1-i2v"], guidance=[3.5, 3.5])
    with pytest.raises(SynthesisError, match="synthesize.wan_i2v.guidance.*one transformer"):
        synthesize("wan_i2v", two_scales, prompts, tmp_path, clip)
    odd_size = generator_section(checkpoints["wan2.1-i2v"], width=72)
    with pytest.raises(SynthesisError, match="synthesize.wan_i2v.width: 72"):
        synthesize("wan_i2v", odd_size, prompts, tmp_path, clip)
    assert not list(tmp_path.glob("*.mp4"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
@pytest.mark.parametrize("runtime", [{"device": "cuda"}, {"cpu_offload": "model"}])
def test_gpu_setting_without_cuda_fails_before_loading(runtime, prompts, tmp_path, monkeypatch):
    from synthvad.synthesize import diffusion

    def must_not_load(*args, **kwargs):
        raise AssertionError("the model was looked up before the device was checked")

    monkeypatch.setattr(diffusion, "locate_model", must_not_load)
    section = generator_section(tmp_path / "any", **runtime)
    with pytest.raises(SynthesisError, match="synthesize.cogvideox.*needs a CUDA GPU"):
        synthesize("cogvideox", section, prompts, tmp_path, ["gvvad-fighting-000-normal"])


def test_out_of_memory_names_the_options_that_reduce_memory(
    checkpoints, prompts, tmp_path, monkeypatch
):
    from diffusers import WanPipeline

    def out_of_memory(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(WanPipeline, "__call__", out_of_memory)
    section = generator_section(checkpoints["wan-t2v"])
    with pytest.raises(SynthesisError, match="out of memory") as err:
        synthesize("wan_t2v", section, prompts, tmp_path, ["gvvad-fighting-000-normal"])
    for option in ("synthesize.wan_t2v", "cpu_offload: model", "vae_tiling", "vae_slicing"):
        assert option in str(err.value)


def test_runtime_options_are_applied(checkpoints, monkeypatch):
    from synthvad.synthesize.diffusion import DiffusersGenerator

    compiled = []
    monkeypatch.setattr(
        "diffusers.WanTransformer3DModel.compile_repeated_blocks",
        lambda self, **kw: compiled.append(kw),
    )
    config = {"synthesize": {"wan_i2v": generator_section(checkpoints["wan2.2-i2v"])}}
    runtime = jobs.runtime(config, "wan_i2v")
    runtime.update(vae_tiling=True, vae_slicing=True, attention_backend="native", compile=True)
    settings = jobs.settings(config, "wan_i2v")
    generator = DiffusersGenerator.load("wan_i2v", settings, runtime)
    assert generator.pipe.vae.use_tiling and generator.pipe.vae.use_slicing
    assert compiled == [{"fullgraph": True}] * 2  # both experts
    bad = {**runtime, "attention_backend": "warp_drive"}
    with pytest.raises(SynthesisError, match="attention_backend: unknown backend 'warp_drive'"):
        DiffusersGenerator.load("wan_i2v", settings, bad)


# --- parse-time planning -------------------------------------------------------------


def test_batches_group_clips_of_one_generator_and_method():
    config = minimal_config(clips_per_job=2, backend={"gvvad": "cogvideox", "pavad": "wan_i2v"})
    ids = ["gvvad-a-000-abnormal", "gvvad-a-000-normal", "gvvad-a-001-abnormal"]
    ids += ["gvvad-a-001-normal", "pavad-a-000", "pavad-normal-000"]
    batches = jobs.batches(config, ids)
    assert [(b.rule, b.generator, b.clip_ids) for b in batches] == [
        ("synthesize_batch_gvvad_0000_0000", "cogvideox", tuple(ids[:2])),
        ("synthesize_batch_gvvad_0001_0001", "cogvideox", tuple(ids[2:4])),
        ("synthesize_batch_pavad_0000_0000", "wan_i2v", ("pavad-a-000", "pavad-normal-000")),
    ]
    assert jobs.resources(config, "wan_i2v", 2) == {"gpu": 1, "mem_mb": 64000, "runtime": 40}
    assert jobs.resources(config, "perturb", 2)["gpu"] == 0


def test_batches_keep_their_clips_when_ranks_are_added():
    """Raising per_class adds higher ranks: only the batch whose rank range they fall in
    changes (and is regenerated whole); every other batch keeps its clips."""

    def ids(per_class: int) -> list[str]:
        return [
            plan.gvvad_clip_id(c, i, abnormal)
            for c in ("a", "b", "c")
            for i in range(per_class)
            for abnormal in (True, False)
        ]

    config = minimal_config(clips_per_job=12)  # 6 clips per rank: 2 ranks per batch
    before = {b.rule: b.clip_ids for b in jobs.batches(config, ids(5))}  # ranks 0-4
    after = {b.rule: b.clip_ids for b in jobs.batches(config, ids(6))}  # + rank 5
    grown = "synthesize_batch_gvvad_0004_0005"
    assert len(before[grown]) == 6 and len(after[grown]) == 12
    assert {rule: after[rule] for rule in before if rule != grown} == {
        rule: clips for rule, clips in before.items() if rule != grown
    }
    assert len(before) == len(after) == 3


def test_rule_params_hold_what_a_clip_is_not_how_it_is_made():
    base = minimal_config(backend="wan_i2v")
    tuned = copy.deepcopy(base)
    tuned["synthesize"]["wan_i2v"].update(cpu_offload="model", vae_tiling=True, mem_mb=9000)
    assert jobs.rule_params(base, "wan_i2v") == jobs.rule_params(tuned, "wan_i2v")
    tuned["synthesize"]["wan_i2v"]["steps"] = 40
    assert jobs.rule_params(base, "wan_i2v") != jobs.rule_params(tuned, "wan_i2v")
    tuned["synthesize"]["cogvideox"]["steps"] = 10  # another generator's settings
    assert jobs.rule_params(base, "perturb") == jobs.rule_params(tuned, "perturb")


@pytest.mark.parametrize(
    ("synthesize", "key"),
    [
        ({"backend": "wan_i2v", "wan_i2v": {"model": "m"}}, "synthesize.backend"),
        ({"backend": {"pavad": "wan_i2v"}}, "synthesize.wan_i2v.model"),
        ({"backend": "cogvideox", "cogvideox": {"model": "m", "frames": 48}}, "cogvideox.frames"),
        ({"backend": "cogvideox", "cogvideox": {"model": "m", "guidance": [1, 2]}}, "guidance"),
    ],
)
def test_config_check_names_the_key(synthesize, key):
    config = minimal_config(**synthesize)
    with pytest.raises(ConfigError, match=key):
        jobs.check_config(config, ["gvvad", "pavad"])


# --- the real Snakemake --------------------------------------------------------------


@pytest.mark.workflow
def test_snakemake_batch_job_then_no_rerun_until_a_setting_changes(checkpoints, tmp_path):
    import subprocess
    import sys

    from .test_workflow import ROOT, snakemake

    config = minimal_config(
        backend={"gvvad": "cogvideox"},
        clips_per_job=2,
        cogvideox={"model": str(checkpoints["cogvideox"]), "device": "cpu", "threads": 1},
    )
    config["synthesize"]["cogvideox"].update(width=WIDTH, height=HEIGHT, frames=FRAMES, steps=2)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    clips = [f"gvvad-fighting-000-{kind}" for kind in ("abnormal", "normal")]
    targets = [f"results/synth/synthetic/cogvideox/{c}.mp4" for c in clips]

    def jobs_to_run() -> list[str]:
        out = snakemake(tmp_path, "--dry-run", *targets)
        return sorted(re.findall(r"^(?:local)?rule (\w+):", out, flags=re.M))

    def gpu_plan_output(*options: str) -> str:
        cmd = [sys.executable, "-m", "synthvad.synthesize.gpu_plan", *options, "--", *targets,
               "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
               "--configfile", str(config_path)]  # fmt: skip
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    def set_synthesize(**keys) -> None:
        cfg = yaml.safe_load(config_path.read_text())
        for key, value in keys.items():
            section, _, name = key.rpartition(".")
            (cfg["synthesize"][section] if section else cfg["synthesize"])[name] = value
        config_path.write_text(yaml.safe_dump(cfg))

    snakemake(tmp_path, *targets)
    log = (
        tmp_path / "logs/synth/synthesize/cogvideox/synthesize_batch_gvvad_0000_0000.log"
    ).read_text()
    assert log.count("loaded CogVideoXPipeline") == 1 and "denoising" in log  # one load, 2 clips
    sidecar = json.loads((tmp_path / targets[0]).with_suffix(".json").read_text())
    assert sidecar["clips_in_job"] == 2 and sidecar["frames"] == FRAMES
    made = {t: (tmp_path / t).stat().st_mtime_ns for t in targets}

    assert jobs_to_run() == []  # unchanged config: nothing to do
    set_synthesize(**{"cogvideox.vae_tiling": True, "cogvideox.mem_mb": 9000})  # how: nothing
    assert jobs_to_run() == []
    set_synthesize(**{"cogvideox.steps": 3})  # what a clip is: both clips
    assert jobs_to_run() == ["synthesize_batch_gvvad_0000_0000"]
    # One job per clip: a job's inputs are its own clips' prompt files, so regrouping
    # changes them and Snakemake regenerates (choose clips_per_job before the first run).
    set_synthesize(clips_per_job=1)
    assert jobs_to_run() == ["synthesize", "synthesize"]
    assert made == {t: (tmp_path / t).stat().st_mtime_ns for t in targets}

    # A LoRA is what a clip is: its path, its scale and its file each regenerate the clips.
    from .test_synthesize_lora import tiny_lora

    snakemake(tmp_path, *targets)
    lora = tiny_lora("cogvideox", tmp_path / "lora")
    set_synthesize(**{"cogvideox.lora": [{"path": str(lora)}]})
    assert jobs_to_run() == ["synthesize", "synthesize"]
    snakemake(tmp_path, *targets)
    assert jobs_to_run() == []
    # The GPU plan finds these clips' seconds under the digest of the current settings.
    run_config = validate_config(yaml.safe_load(config_path.read_text()))
    sidecar = json.loads((tmp_path / targets[0]).with_suffix(".json").read_text())
    assert sidecar["settings_digest"] == jobs.settings_digest(
        jobs.rule_params(run_config, "cogvideox")
    )
    assert "No diffusion clips to make" in gpu_plan_output()
    set_synthesize(**{"cogvideox.lora": [{"path": str(lora), "scale": 0.5}]})
    assert jobs_to_run() == ["synthesize", "synthesize"]
    set_synthesize(**{"cogvideox.lora": [{"path": str(lora)}]})
    assert jobs_to_run() == []
    tiny_lora("cogvideox", tmp_path / "lora", seed=2)  # another LoRA at the same path
    assert jobs_to_run() == ["synthesize", "synthesize"]
    plan = gpu_plan_output("--gpus", "2")
    assert "cogvideox: 2 clips in 2 jobs" in plan and "2 clips made with other settings" in plan
