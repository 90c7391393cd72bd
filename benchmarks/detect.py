"""Training steps per second of a detector (default urdmu) against topk_bce, same run.

Each step is what `synthvad.detect.train.fit_weak` does per step: index a batch out of
the in-memory TrainSet (`batch` normal + `batch` abnormal videos of `segments` segments),
the detector's objective, synthetic sample loss scaling, backward, Adam. Detector sizes are
the schema defaults (the papers'); features are random, which changes no FLOP.

    python benchmarks/detect.py                       # urdmu vs topk_bce, CPU, 64+64 x 200 x 768
    python benchmarks/detect.py --device cuda --steps 20
    python benchmarks/detect.py --official /tmp/urdmu --dim 1024   # + the released UR-DMU

With --official CHECKOUT (a checkout of henrryzh1/UR-DMU with einops in CHECKOUT/site, as
tests/fixtures/make_urdmu_fixture.py describes), the released WSAD and AD_Loss train on
the same batches at the same shapes in the same run, and synthvad's urdmu is compared to
it: the released code at its own sizes (width 512, 60 + 60 slots) and Adam settings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import Tensor

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

from synthvad.config import validate_config  # noqa: E402
from synthvad.detect.data import Batch, TrainSet, Video  # noqa: E402
from synthvad.detect.registry import build_detector  # noqa: E402
from synthvad.detect.train import Alpha, resolve_device, scaled_step_loss  # noqa: E402


def detector_defaults(models: list[str]) -> dict[str, dict]:
    """Schema defaults of each model, as a config naming it with no other key gets them."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["detectors"] = {m: {"model": m} for m in models}
    config["experiments"] = {"x": {"detector": models[0]}}
    return validate_config(config)["detectors"]


def synthetic_videos(n: int, segments: int, dim: int, seed: int) -> list[Video]:
    rng = np.random.default_rng(seed)
    return [
        Video(
            video_id=f"v{i:04d}",
            split="train",
            source="synthetic" if i % 4 == 3 else "real",
            method=None,
            label=i % 2,
            features=rng.normal(size=(1, segments, dim)).astype(np.float32),
            segment_frames=np.full(segments, 16),
        )
        for i in range(n)
    ]


def timed_steps(
    step: Callable[[Batch], Tensor], optimizer: torch.optim.Optimizer, trainset: TrainSet,
    batch: int, steps: int, warmup: int, device: torch.device,
) -> list[float]:  # fmt: skip
    """Seconds of each training step after `warmup`: `batch` normal + `batch` abnormal
    videos drawn with a fixed seed, loss = step(batch), backward, optimizer step."""
    normal = torch.where(trainset.labels == 0)[0].cpu()
    abnormal = torch.where(trainset.labels == 1)[0].cpu()
    rng = torch.Generator().manual_seed(0)
    times = []
    for i in range(warmup + steps):
        index = torch.cat(
            [
                normal[torch.randint(len(normal), (batch,), generator=rng)],
                abnormal[torch.randint(len(abnormal), (batch,), generator=rng)],
            ]
        )
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss = step(trainset.batch(index, None))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def steps_per_second(
    model_name: str, cfg: dict, trainset: TrainSet, batch: int, steps: int, warmup: int,
    device: torch.device,
) -> list[float]:  # fmt: skip
    torch.manual_seed(0)
    model = build_detector(model_name, trainset.features.shape[-1], cfg).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=float(cfg["lr"]))
    alpha = Alpha(0.5, 0.5)

    def step(data: Batch) -> Tensor:
        return scaled_step_loss(model.objective(data), alpha)[0]

    return timed_steps(step, optimizer, trainset, batch, steps, warmup, device)


def official_steps(
    checkout: Path, trainset: TrainSet, batch: int, steps: int, warmup: int, device: torch.device
) -> list[float]:
    """Seconds per training step of the released UR-DMU code (its train.py step)."""
    import importlib.util

    path = ROOT / "tests" / "fixtures" / "make_urdmu_fixture.py"
    spec = importlib.util.spec_from_file_location("urdmu_fixture", path)
    fixture = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixture)
    cuda = torch.Tensor.cuda
    mods = fixture.load_official(checkout)
    if device.type == "cuda":
        torch.Tensor.cuda = cuda  # the loader's .cuda() shim is for CPU runs only
    torch.manual_seed(0)
    net = mods["model"].WSAD(trainset.features.shape[-1], flag="Train", a_nums=60, n_nums=60)
    net = net.to(device).train()
    criterion = mods["train"].AD_Loss()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.9, 0.999), weight_decay=5e-5)

    def step(data: Batch) -> Tensor:
        return criterion(net(data.x), data.labels)[0]

    return timed_steps(step, optimizer, trainset, batch, steps, warmup, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="urdmu", help="detector model to measure")
    parser.add_argument("--baseline", default="topk_bce", help="detector model to compare to")
    parser.add_argument("--batch", type=int, default=64, help="normal and abnormal videos per step")
    parser.add_argument("--segments", type=int, default=200)
    parser.add_argument("--dim", type=int, default=768, help="feature size (CLIP ViT-L/14: 768)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--official", type=Path, default=None, help="checkout of henrryzh1/UR-DMU to compare to"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    defaults = detector_defaults([args.model, args.baseline])
    trainset = TrainSet(
        synthetic_videos(4 * args.batch, args.segments, args.dim, seed=0), args.segments, True
    ).to(device)
    figures = {
        "device": str(torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"),
        "threads": torch.get_num_threads(),
        "batch": f"{args.batch}+{args.batch}",
        "segments": args.segments,
        "dim": args.dim,
    }
    for name in (args.baseline, args.model):
        times = steps_per_second(
            name, defaults[name], trainset, args.batch, args.steps, args.warmup, device
        )
        figures[name] = {
            "steps_per_s": 1.0 / statistics.median(times),
            "seconds_per_step": [round(t, 4) for t in times],
        }
        print(
            f"{name:>12}: {figures[name]['steps_per_s']:.3f} steps/s "
            f"(median of {len(times)}; batch {args.batch}+{args.batch} x {args.segments} x "
            f"{args.dim}, {figures['device']}, {figures['threads']} threads)",
            flush=True,
        )
    ratio = figures[args.model]["steps_per_s"] / figures[args.baseline]["steps_per_s"]
    figures["ratio"] = ratio
    print(f"{args.model} / {args.baseline} = {ratio:.3f} (steps/s ratio, same run)")
    if args.official:
        times = official_steps(args.official, trainset, args.batch, args.steps, args.warmup, device)
        figures["official_urdmu"] = {
            "steps_per_s": 1.0 / statistics.median(times),
            "seconds_per_step": [round(t, 4) for t in times],
        }
        vs = figures[args.model]["steps_per_s"] / figures["official_urdmu"]["steps_per_s"]
        figures["ratio_to_official"] = vs
        print(f"official UR-DMU: {figures['official_urdmu']['steps_per_s']:.3f} steps/s")
        print(f"{args.model} / official UR-DMU = {vs:.3f} (steps/s ratio, same run)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
