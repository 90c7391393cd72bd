"""Images per second of stage 6 against a naive loop and the model's own limit.

Three measurements in one run, on the same videos, model, threads and batch size:

- stage 6: synthvad.features.chunks.extract_videos (decoding workers, uint8 crops, batched
  inference under inference_mode; autocast, channels_last and pinned copies on a GPU),
  shard writing included; with --workers (auto: 0 on CPU) and, for comparison, with
  each of --also-workers;
- naive: a loop written here: decode every frame in order, preprocess the sampled ones
  with PIL (open_clip's own transform for centre crops), encode one image at a time;
- limit: the model's forward pass alone on ready, normalised tensors, the same number of
  images in batches of the same size.

Each is timed `--repeats` times, interleaved, and the best time counts (the machine may be
shared). Prints images/s, video frames/s, the ratios and the largest difference between
the stage's and the naive loop's features. On a GPU it also prints the fraction of the
GPU's bf16 peak the stage reaches (FLOPs per image x images/s / peak). Not a test.

  python benchmarks/features.py                                  # CPU, ViT-B-32, 2 videos
  python benchmarks/features.py --model ViT-L-14 --device cuda --batch-size 256 --workers 8
  python benchmarks/features.py --extractor i3d --crops ten --batch-size 10   # I3D: clips/s
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

from synthvad.features.sampling import plan_video  # noqa: E402
from synthvad.features.transforms import ten_crop_side  # noqa: E402

VIDEOS = sorted((ROOT.parent / "shared" / "data" / "videos").glob("*.mp4"))
# Dense bf16 tensor-core peaks (TFLOP/s) from the vendors' data sheets.
BF16_PEAK_TFLOPS = {"H100 SXM": 989.4, "H100 NVL": 835.0, "H100 PCIe": 756.0, "H200": 989.4}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", nargs="+", type=Path, default=VIDEOS)
    parser.add_argument(
        "--extractor",
        default="clip",
        choices=["clip", "i3d", "i3d_resnet50"],
        help="i3d*: stage 6 against the network alone (no naive loop), --frames per video",
    )
    parser.add_argument("--frames", type=int, default=64, help="i3d*: frames per video used")
    parser.add_argument("--model", default="ViT-B-32", help="open_clip architecture")
    parser.add_argument("--pretrained", help="checkpoint or cached tag; default random weights")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sampling", default="even", choices=["even", "center", "all", "stride"])
    parser.add_argument("--frames-per-segment", type=int, default=2)
    parser.add_argument("--stride", type=int, default=4)
    parser.add_argument("--crops", default="center", choices=["center", "ten"])
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--also-workers",
        type=int,
        nargs="*",
        default=[1],
        help="also time stage 6 with these worker counts (the default run uses --workers)",
    )
    parser.add_argument("--workers", default="auto")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (model)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-naive", action="store_true", help="GPU: the naive loop is slow")
    parser.add_argument("--peak-tflops", type=float, help="bf16 peak; default by GPU name")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args()


def configs(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    features = {
        "sampling": args.sampling,
        "frames_per_segment": args.frames_per_segment,
        "stride": args.stride,
        "crops": args.crops,
        "ten_crop_resize": None,
        "precision": args.precision,
    }
    params = {
        "clip": {"model": args.model, "pretrained": args.pretrained},
        "features": features,
        "segments": {"length": 16, "keep_last_partial": True},
        "seed": 0,
    }
    runtime = {
        "device": args.device,
        "batch_size": args.batch_size,
        "workers": args.workers,
        "threads": args.threads,
    }
    return params, runtime


def naive_features(path: Path, bundle: Any, params: dict[str, Any]) -> np.ndarray:
    """Decode every frame, PIL preprocessing, one image per forward pass; features
    [crops * segments, D], crop-major like the shard."""
    import decord
    import open_clip
    from PIL import Image
    from torchvision import transforms as T

    features_cfg = params["features"]
    size = bundle.image_size
    mean, std = bundle.mean.flatten().tolist(), bundle.std.flatten().tolist()
    if features_cfg["crops"] == "center":
        preprocess = open_clip.image_transform(size, is_train=False, mean=mean, std=std)
        crops_of = lambda image: [preprocess(image)]  # noqa: E731
    else:
        side = ten_crop_side(size, features_cfg["ten_crop_resize"])
        resize = T.Resize((side, side), interpolation=T.InterpolationMode.BICUBIC)
        to_input = T.Compose([T.ToTensor(), T.Normalize(mean, std)])
        crops_of = lambda image: [to_input(c) for c in T.TenCrop(size)(resize(image))]  # noqa: E731
    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    plan = plan_video(len(reader), params["segments"], features_cfg)
    wanted: dict[int, list[int]] = {}
    for segment, frame in zip(plan.owners, plan.frames, strict=True):
        wanted.setdefault(frame, []).append(segment)
    n_crops = 1 if features_cfg["crops"] == "center" else 10
    sums: np.ndarray | None = None
    with torch.inference_mode():
        for index in range(len(reader)):
            frame = reader.next().asnumpy()
            for segment in wanted.get(index, []):
                for crop, x in enumerate(crops_of(Image.fromarray(frame))):
                    emb = bundle.model.encode_image(x[None].to(bundle.device)).float()
                    emb = torch.nn.functional.normalize(emb, dim=-1)[0].cpu().numpy()
                    if sums is None:
                        sums = np.zeros((n_crops * plan.n_segments, len(emb)))
                    sums[crop * plan.n_segments + segment] += emb
    assert sums is not None, f"{path}: no sampled frame"
    counts = np.tile(np.asarray(plan.counts, dtype=np.float64), n_crops)
    return (sums / counts[:, None]).astype(np.float32)


def model_limit(bundle: Any, n_images: int, batch_size: int, dtype: torch.dtype | None) -> float:
    """Seconds for the forward passes alone over `n_images` ready inputs."""
    from synthvad.features.extract import prepare_model

    prepare_model(bundle)
    size = bundle.image_size
    generator = torch.Generator().manual_seed(0)
    batches = []
    for start in range(0, n_images, batch_size):
        n = min(batch_size, n_images - start)
        x = torch.rand(n, 3, size, size, generator=generator).to(bundle.device)
        x = (x - bundle.mean) / bundle.std
        if bundle.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        batches.append(x)
    autocast = torch.autocast(bundle.device.type, dtype=dtype) if dtype else _null()
    with torch.inference_mode(), autocast:
        synchronize(bundle.device)
        started = time.perf_counter()
        for x in batches:
            bundle.model.encode_image(x)
        synchronize(bundle.device)
    return time.perf_counter() - started


def _null():
    import contextlib

    return contextlib.nullcontext()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def stage6(videos: Any, bundle: Any, params: dict, runtime: dict, out: Path) -> float:
    from synthvad.features.chunks import extract_videos

    synchronize(bundle.device)
    started = time.perf_counter()
    extract_videos(videos, params, runtime, str(out), skip_corrupt=False, bundle=bundle)
    return time.perf_counter() - started


def stage6_features(out: Path) -> dict[str, np.ndarray]:
    from synthvad.io.shards import read_shards

    meta, feats = read_shards([out])
    meta = meta.sort_values(["video_id", "crop", "segment"])
    return {v: feats[rows.index.to_numpy()] for v, rows in meta.groupby("video_id")}


def flops_per_image(bundle: Any) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 3, bundle.image_size, bundle.image_size, device=bundle.device)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        bundle.model.encode_image(x)
    return float(counter.get_total_flops())


def peak_tflops(args: argparse.Namespace, device: torch.device) -> float | None:
    if args.peak_tflops:
        return args.peak_tflops
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in BF16_PEAK_TFLOPS.items() if all(w in name for w in k.split())), None)


def i3d_main(args: argparse.Namespace) -> None:
    """Clips per second of stage 6 with an I3D extractor (decoding, 340x256 Lanczos resize,
    crops, batched network) against the network alone on ready, normalised clips: the same
    number of clips in batches of the same size, random weights."""
    import pandas as pd

    from synthvad.devices import resolve_device
    from synthvad.features.i3d_extract import CLIP_FRAMES, load_network, network_module

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device, "--device")
    network = load_network(args.extractor, None, seed=0).to(device).eval()
    params = {
        "features": {"extractor": args.extractor, "crops": args.crops, "precision": args.precision,
                     "i3d": {"weights": None}},
        "segments": {"length": CLIP_FRAMES, "keep_last_partial": False},
        "seed": 0,
    }  # fmt: skip
    runtime = {"device": args.device, "batch_size": args.batch_size, "workers": args.workers, "threads": args.threads}  # fmt: skip
    videos = pd.DataFrame(
        {"video_id": [p.stem for p in args.videos], "split": "test", "source": "real",
         "method": None, "label": 0, "class": "normal", "path": [str(p) for p in args.videos],
         "n_frames": args.frames}
    )  # fmt: skip
    n_crops = 1 if args.crops == "center" else 10
    n_clips = len(args.videos) * (args.frames // CLIP_FRAMES) * n_crops
    normalize = network_module(args.extractor).normalize_clips
    ready = normalize(torch.randint(0, 256, (args.batch_size, CLIP_FRAMES, 3, 224, 224), dtype=torch.uint8))  # fmt: skip
    dtype = None if device.type == "cpu" or args.precision == "float32" else torch.bfloat16

    def limit() -> float:
        synchronize(device)
        started = time.perf_counter()
        with torch.inference_mode():
            for start in range(0, n_clips, args.batch_size):
                x = ready[: min(args.batch_size, n_clips - start)].to(device)
                with torch.autocast(device.type, dtype=dtype) if dtype else _null():
                    network.features(x)
        synchronize(device)
        return time.perf_counter() - started

    def stage() -> float:
        from synthvad.features.chunks import extract_videos

        with tempfile.TemporaryDirectory() as tmp:
            synchronize(device)
            started = time.perf_counter()
            extract_videos(videos, params, runtime, f"{tmp}/s.parquet", skip_corrupt=False, bundle=network)  # fmt: skip
            return time.perf_counter() - started

    times: dict[str, list[float]] = {"stage6": [], "limit": []}
    for _ in range(args.repeats):
        times["stage6"].append(stage())
        times["limit"].append(limit())
    best = {k: min(v) for k, v in times.items()}
    rate = {k: n_clips / t for k, t in best.items()}
    print(f"{args.extractor} on {_device_name(device)}, {args.threads} threads, batch {args.batch_size}, "
          f"{len(args.videos)} videos x {args.frames} frames, {n_crops} crop(s): {n_clips} clips, random weights")  # fmt: skip
    print(f"stage 6: {rate['stage6']:.2f} clips/s; network alone: {rate['limit']:.2f} clips/s; "
          f"stage / network = {rate['stage6'] / rate['limit']:.3f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"extractor": args.extractor, "clips": n_clips, "clips_per_s": rate, "best_s": best}, indent=1))  # fmt: skip


def main() -> None:
    args = arguments()
    if args.extractor != "clip":
        i3d_main(args)
        return
    load = os.getloadavg()[0]
    import pandas as pd

    from synthvad.clip_model import load_clip
    from synthvad.features.extract import autocast_dtype, resolve_workers

    torch.set_num_threads(args.threads)
    params, runtime = configs(args)
    bundle = load_clip({**params["clip"], "device": args.device}, seed=0)
    videos = pd.DataFrame(
        {
            "video_id": [p.stem for p in args.videos],
            "split": "test",
            "source": "real",
            "method": None,
            "label": 0,
            "class": "normal",
            "path": [str(p) for p in args.videos],
        }
    )
    plans = [
        plan_video(len(_reader(p)), params["segments"], params["features"]) for p in args.videos
    ]
    n_crops = 1 if args.crops == "center" else 10
    n_images = sum(len(p.frames) for p in plans) * n_crops
    n_frames = sum(sum(p.segment_frames) for p in plans)
    dtype = autocast_dtype(args.precision, bundle.device)
    times: dict[str, list[float]] = {"stage6": [], "naive": [], "limit": []}
    workers = resolve_workers(args.workers, bundle.device, args.threads)
    extra = [w for w in args.also_workers if w != workers]
    times.update({f"stage6_workers_{w}": [] for w in extra})
    naive: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "part.parquet"
        model_limit(bundle, min(n_images, 2 * args.batch_size), args.batch_size, dtype)  # warm-up
        for _ in range(args.repeats):
            times["stage6"].append(stage6(videos, bundle, params, runtime, out))
            for w in extra:
                run = {**runtime, "workers": w}
                other = Path(tmp) / f"workers-{w}.parquet"
                times[f"stage6_workers_{w}"].append(stage6(videos, bundle, params, run, other))
            times["limit"].append(model_limit(bundle, n_images, args.batch_size, dtype))
            if not args.skip_naive:
                started = time.perf_counter()
                naive = {p.stem: naive_features(p, bundle, params) for p in args.videos}
                times["naive"].append(time.perf_counter() - started)
        fast = stage6_features(out)
    best = {k: min(v) for k, v in times.items() if v}
    rate = {k: n_images / v for k, v in best.items()}
    report: dict[str, Any] = {
        "machine": f"{_cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch "
        f"threads, {_device_name(bundle.device)}, load {load:.2f} at start",
        "model": args.model,
        "config": {k: v for k, v in vars(args).items() if k not in ("videos", "json")},
        "videos": [p.name for p in args.videos],
        "images": n_images,
        "video_frames": n_frames,
        "seconds_best": best,
        "seconds_all": times,
        "images_per_s": rate,
        "video_frames_per_s": {k: n_frames / v for k, v in best.items()},
        "workers": workers,
        "stage6_vs_limit": rate["stage6"] / rate["limit"],
        **{
            f"stage6_workers_{w}_vs_limit": rate[f"stage6_workers_{w}"] / rate["limit"]
            for w in extra
        },
    }
    if naive:
        report["stage6_vs_naive"] = rate["stage6"] / rate["naive"]
        report["max_abs_diff_vs_naive"] = max(
            float(np.abs(fast[v] - naive[v]).max()) for v in naive
        )
    if bundle.device.type == "cuda":
        flops = flops_per_image(bundle)
        peak = peak_tflops(args, bundle.device)
        report["gflops_per_image"] = flops / 1e9
        report["bf16_peak_tflops"] = peak
        if peak:
            report["fraction_of_bf16_peak"] = flops * rate["stage6"] / (peak * 1e12)
    print(json.dumps(report, indent=2, default=str))
    print(
        f"\nstage 6 ({workers} decoding workers): {rate['stage6']:.1f} images/s = "
        f"{report['stage6_vs_limit']:.0%} of the "
        f"model-only limit ({rate['limit']:.1f}/s)"
        + (
            f", {report['stage6_vs_naive']:.2f}x the naive loop ({rate['naive']:.1f}/s); "
            f"max |diff| vs naive {report['max_abs_diff_vs_naive']:.2e}"
            if naive
            else ""
        )
    )
    for w in extra:
        print(
            f"stage 6 ({w} decoding workers): {rate[f'stage6_workers_{w}']:.1f} images/s = "
            f"{report[f'stage6_workers_{w}_vs_limit']:.0%} of the model-only limit"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")


def _reader(path: Path) -> Any:
    import decord

    return decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)


def _cpu_name() -> str:
    for line in (
        Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    ):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "CPU"


if __name__ == "__main__":
    main()
