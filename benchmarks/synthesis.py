"""Seconds per clip and peak GPU memory of a stage-4 diffusers generator.

Times the stage's own generator (synthvad.synthesize.diffusion) on a checkpoint folder or
hub id (--model), or on a random-weight pipeline of a published architecture (--arch, see
tests/random_pipelines.py: real sizes such as wan2.2-i2v-a14b, and tiny ones that run on a
CPU). Baseline measured in the same run: the same generator with one
denoising step, so the ratio separates the denoising loop from the fixed cost (text
encoding, VAE decoding). Not a test: it prints figures.

  python benchmarks/synthesis.py --backend wan_i2v --arch tiny-wan2.2-i2v \\
      --width 64 --height 48 --frames 9 --steps 4 --clips 2          # CPU proof
  python benchmarks/synthesis.py --backend wan_i2v --arch wan2.2-i2v-a14b --clips 2  # GPU
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

from synthvad.synthesize import registry  # noqa: E402
from synthvad.synthesize.wan import PAVAD_REFERENCE  # noqa: E402

# PA-VAD supplementary S1.3 / S2: Wan 2.2 I2V A14B on one RTX 6000 Ada, at the settings of
# its seconds-per-clip figure (synthvad.synthesize.wan), used 95,776 MiB of GPU memory.
PAVAD = PAVAD_REFERENCE.settings
ANCHOR = {
    "seconds": PAVAD_REFERENCE.seconds,
    "gpu_mib": 95776,
    "frames": PAVAD.frames,
    "size": (PAVAD.width, PAVAD.height),
    "steps": PAVAD.steps,
}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", required=True, choices=registry.diffusers_names())
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="pipeline folder or hub id in the HF cache")
    source.add_argument("--arch", help="random weights of this architecture")
    parser.add_argument("--revision")
    for name in ("width", "height", "frames", "steps"):
        parser.add_argument(f"--{name}", type=int)
    parser.add_argument("--guidance", type=float, nargs="+", help="one number, or two (Wan 2.2)")
    parser.add_argument(
        "--dtype", default="auto", choices=["auto", "bfloat16", "float16", "float32"]
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--cpu-offload", default="none", choices=["none", "model", "sequential"])
    parser.add_argument("--vae-tiling", action="store_true")
    parser.add_argument("--vae-slicing", action="store_true")
    parser.add_argument("--attention-backend")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--clips", type=int, default=2, help="timed clips after the baseline")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args()


def sections(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """synthesize.<backend> as the stage receives it: settings (params) and runtime."""
    guidance = args.guidance
    settings = {
        "model": args.model or f"random:{args.arch}",
        "revision": args.revision,
        "allow_download": False,
        "width": args.width,
        "height": args.height,
        "frames": args.frames,
        "fps": None,
        "steps": args.steps,
        "guidance": guidance[0] if guidance and len(guidance) == 1 else guidance,
        "boundary_ratio": None,
        "negative_prompt": None,
        "dtype": args.dtype,
    }
    runtime = {
        "device": args.device,
        "cpu_offload": args.cpu_offload,
        "vae_tiling": args.vae_tiling,
        "vae_slicing": args.vae_slicing,
        "attention_backend": args.attention_backend,
        "compile": args.compile,
    }
    return settings, runtime


def open_generator(args: argparse.Namespace, settings: dict, runtime: dict) -> Any:
    from synthvad.synthesize import diffusion

    if args.model:
        return diffusion.DiffusersGenerator.load(args.backend, settings, runtime)
    sys.path.insert(0, str(ROOT / "tests"))  # random-weight architectures are test support
    import random_pipelines

    served, _ = random_pipelines.ARCHITECTURES[args.arch]
    if served != args.backend:
        sys.exit(f"--arch {args.arch} is a {served} architecture, not {args.backend}")
    key = f"synthesize.{args.backend}"
    device = diffusion.resolve_device(runtime, key)
    dtype = diffusion.resolve_dtype(args.dtype, device)
    pipe = random_pipelines.build(args.arch, dtype=dtype)
    for name in registry.diffusers_spec(args.backend).float32_components:  # as the loader does
        if getattr(pipe, name, None) is not None:
            getattr(pipe, name).to(torch.float32)
    return diffusion.DiffusersGenerator(args.backend, settings, runtime, pipe, device)


def prompt(folder: Path, width: int, height: int) -> dict[str, Any]:
    image = folder / "init.png"
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(image)
    return {
        "clip_id": "pavad-benchmark-000",
        "prompt": "Generate explosion behavior in the scene, natural movement, fixed camera",
        "negative_prompt": "camera motion, text, watermark",
        "init_image": str(image),
    }


def timed_clip(generator: Any, record: dict[str, Any], seed: int) -> dict[str, Any]:
    if generator.device.type == "cuda":
        torch.cuda.synchronize(generator.device)
    started = time.perf_counter()
    clip = generator.generate(record, seed, record["clip_id"])
    if generator.device.type == "cuda":
        torch.cuda.synchronize(generator.device)
    return {
        "seconds": time.perf_counter() - started,
        "peak_gpu_mib": (clip.meta["peak_gpu_memory_reserved_bytes"] or 0) / 2**20,
        "frames": int(clip.frames.shape[0]),
    }


def main() -> None:
    args = arguments()
    settings, runtime = sections(args)
    started = time.perf_counter()
    generator = open_generator(args, settings, runtime)
    load_seconds = time.perf_counter() - started
    steps = generator.steps
    with tempfile.TemporaryDirectory() as tmp:
        record = prompt(Path(tmp), generator.width, generator.height)
        generator.steps = 1
        warmup = timed_clip(generator, record, seed=0)  # also pays compile / kernel autotuning
        baselines = [timed_clip(generator, record, seed=1 + i) for i in range(args.clips)]
        generator.steps = steps
        runs = [timed_clip(generator, record, seed=1 + i) for i in range(args.clips)]

    baseline = statistics.median(r["seconds"] for r in baselines)
    per_clip = statistics.median(r["seconds"] for r in runs)
    per_step = (per_clip - baseline) / max(steps - 1, 1)
    peak = max(r["peak_gpu_mib"] for r in runs)
    size = (generator.width, generator.height)
    figures = {
        "backend": args.backend,
        "model": args.model or f"random weights, architecture {args.arch}",
        "device": str(generator.device),
        "gpu": torch.cuda.get_device_name(generator.device)
        if generator.device.type == "cuda"
        else None,
        "dtype": str(generator.pipe.transformer.dtype).removeprefix("torch."),
        "experts": generator.experts,
        "frames": runs[0]["frames"],
        "size": list(size),
        "steps": steps,
        "guidance": list(generator.guidance),
        "runtime": runtime,
        "load_seconds": load_seconds,
        "warmup_seconds": warmup["seconds"],
        "seconds_per_clip_steps_1": baseline,
        "seconds_per_clip": per_clip,
        "seconds_per_clip_all": [r["seconds"] for r in runs],
        "seconds_per_step": per_step,
        "ratio_vs_steps_1": per_clip / baseline,
        "peak_gpu_mib": peak if generator.device.type == "cuda" else None,
    }
    paper_setting = (
        runs[0]["frames"] == ANCHOR["frames"]
        and size == ANCHOR["size"]
        and steps == ANCHOR["steps"]
    )
    print(f"{args.backend} | {figures['model']} | {figures['device']} {figures['gpu'] or ''}")
    print(f"  {runs[0]['frames']} frames {size[0]}x{size[1]}, {steps} steps, {figures['dtype']}")
    print(f"  load {load_seconds:.1f} s, warm-up clip {warmup['seconds']:.2f} s")
    print(f"  baseline (1 step):  {baseline:.2f} s per clip (median of {len(baselines)})")
    print(
        f"  {steps} steps:{' ' * (10 - len(str(steps)))}{per_clip:.2f} s per clip (median of {len(runs)})"
    )
    print(f"  ratio to baseline:  {figures['ratio_vs_steps_1']:.2f}x; {per_step:.3f} s per step")
    if figures["peak_gpu_mib"] is not None:
        print(f"  peak GPU memory:    {peak:,.0f} MiB (reserved)")
        if paper_setting:
            print(
                f"  vs PA-VAD anchor ({ANCHOR['seconds']} s, {ANCHOR['gpu_mib']:,} MiB, "
                f"RTX 6000 Ada): {per_clip / ANCHOR['seconds']:.2f}x time, "
                f"{peak / ANCHOR['gpu_mib']:.2f}x memory"
            )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
