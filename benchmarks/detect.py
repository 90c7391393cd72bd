"""Training steps per second of a detector (default urdmu) against topk_bce, same run.

Each step is what `synthvad.detect.train.fit_weak` does per step: index a batch out of
the in-memory TrainSet (`batch` normal + `batch` abnormal videos of `segments` segments),
the detector's objective, synthetic sample loss scaling, backward, Adam. Detector sizes are
the schema defaults (the papers'); features are random, which changes no FLOP.

    python benchmarks/detect.py                       # urdmu vs topk_bce, CPU, 64+64 x 200 x 768
    python benchmarks/detect.py --device cuda --steps 20
    python benchmarks/detect.py --official /tmp/urdmu --dim 1024   # + the released UR-DMU
    python benchmarks/detect.py --model lap --batch 32 --segments 32 --crops 10 \
        --official-lap /tmp/gvvad                                   # + GV-VAD's released LAP

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
import tempfile
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
from synthvad.detect.data import TrainSet, Video  # noqa: E402
from synthvad.detect.registry import build_detector  # noqa: E402
from synthvad.detect.train import Alpha, scaled_step_loss  # noqa: E402
from synthvad.devices import resolve_device  # noqa: E402


def detector_defaults(models: list[str]) -> dict[str, dict]:
    """Schema defaults of each model, as a config naming it with no other key gets them."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["detectors"] = {m: {"model": m} for m in models}
    config["experiments"] = {"x": {"detector": models[0]}}
    return validate_config(config)["detectors"]


def synthetic_videos(n: int, segments: int, dim: int, seed: int, crops: int = 1) -> list[Video]:
    rng = np.random.default_rng(seed)
    return [
        Video(
            video_id=f"v{i:04d}",
            split="train",
            source="synthetic" if i % 4 == 3 else "real",
            method=None,
            label=i % 2,
            features=rng.normal(size=(crops, segments, dim)).astype(np.float32),
            segment_frames=np.full(segments, 16),
        )
        for i in range(n)
    ]


def timed_steps(
    step: Callable[[TrainSet, Tensor], Tensor], optimizer: torch.optim.Optimizer, trainset: TrainSet,
    batch: int, steps: int, warmup: int, device: torch.device,
) -> list[float]:  # fmt: skip
    """Seconds of each training step after `warmup`: `batch` normal + `batch` abnormal
    videos drawn with a fixed seed, loss = step(trainset, their index), backward, optimizer
    step. The step gathers its own batch (one crop, or all of them)."""
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
        loss = step(trainset, index)
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
    device: torch.device, crops: bool = False,
) -> list[float]:  # fmt: skip
    """Seconds per step of a synthvad detector; `crops`: lap on all crops of each video."""
    torch.manual_seed(0)
    model = build_detector(model_name, trainset.features.shape[-1], cfg).to(device).train()
    if model_name == "lap" and cfg["pseudo_labels"] != "off":
        model.set_bank(torch.randn(26, trainset.features.shape[-1], device=device))
    optimizer = torch.optim.Adam(model.parameters(), lr=float(cfg["lr"]))
    alpha = Alpha(0.5, 0.5)

    def step(data: TrainSet, index: Tensor) -> Tensor:
        if crops:  # every crop at once, as the released LAP trains
            labels = data.labels[index]
            out = model.terms(data.features[index.to(data.features.device)], labels)
            return model.per_video_loss(out, len(index) // 2).mean()
        return scaled_step_loss(model.objective(data.batch(index, None)), alpha)[0]

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

    def step(data: TrainSet, index: Tensor) -> Tensor:
        batch = data.batch(index, None)
        return criterion(net(batch.x), batch.labels)[0]

    return timed_steps(step, optimizer, trainset, batch, steps, warmup, device)


def official_lap_steps(
    checkout: Path, trainset: TrainSet, batch: int, steps: int, warmup: int, device: torch.device
) -> list[float]:
    """Seconds per training step of GV-VAD's released LAP (train_tcc_difLR.train) on all
    crops, visual features only (its caption input: the visual crop mean, so that its
    bank comparison sees what synthvad's does), released heads, Adam lr 1e-3 wd 5e-3."""
    import argparse as ap
    import importlib.util
    import os

    path = ROOT / "tests" / "fixtures" / "make_lap_fixture.py"
    spec = importlib.util.spec_from_file_location("lap_fixture", path)
    fixture = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixture)
    model_mod, train_mod = fixture.load_official(checkout)
    here = os.getcwd()
    os.chdir(tempfile.mkdtemp())  # the released Model reads its bank from save/Crime
    dim = trainset.features.shape[-1]
    torch.manual_seed(0)
    bank = torch.randn(26, dim).numpy()
    net = fixture.official_model(
        model_mod, "vis", False, bank, dim=dim, caption_dim=dim, pairs=batch,
        hidden=None, dropout=0.7,
    ).to(device)  # fmt: skip
    os.chdir(here)
    args = ap.Namespace(
        batch_size=batch, alpha=1e-4, normal_weight=1, abnormal_weight=1, extra_loss=True,
        beta=0.001, gama=0.1, VLR_Strategy="None", max_epoch=1000, Learnable_VLR=True, VLR=1.0,
    )  # fmt: skip
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=5e-3)
    normal = torch.where(trainset.labels == 0)[0].cpu()
    abnormal = torch.where(trainset.labels == 1)[0].cpu()
    rng = torch.Generator().manual_seed(0)
    times = []

    class NoViz:
        def plot_lines(self, *a, **k) -> None:
            pass

    for i in range(warmup + steps):
        picked = [
            normal[torch.randint(len(normal), (batch,), generator=rng)],
            abnormal[torch.randint(len(abnormal), (batch,), generator=rng)],
        ]
        loaders = []
        for label, index in zip((0.0, 1.0), picked, strict=True):
            x = trainset.features[index.to(trainset.features.device)]
            text = x.mean(dim=1, keepdim=True).expand_as(x)
            sources = torch.zeros(batch, dtype=torch.long)
            loaders.append(iter([(x, text, torch.full((batch,), label), sources)]))
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        train_mod.train(*loaders, net, args, optimizer, NoViz(), device, 0.1, step=i + 1)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def timing(times: list[float]) -> dict:
    """Median steps/s and every step's seconds, as the figures file holds them."""
    return {
        "steps_per_s": 1.0 / statistics.median(times),
        "seconds_per_step": [round(t, 4) for t in times],
    }


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
    parser.add_argument(
        "--official-lap", type=Path, default=None,
        help="folder with GV-VAD's model_tcc_triplet_v2_oral.py and train_tcc_difLR.py",
    )  # fmt: skip
    parser.add_argument(
        "--crops", type=int, default=1, help="crops per video (lap trains on all of them)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device, "--device")
    defaults = detector_defaults([args.model, args.baseline])
    trainset = TrainSet(
        synthetic_videos(4 * args.batch, args.segments, args.dim, seed=0, crops=args.crops),
        args.segments,
        True,
    ).to(device)
    figures = {
        "device": str(torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"),
        "threads": torch.get_num_threads(),
        "batch": f"{args.batch}+{args.batch}",
        "segments": args.segments,
        "dim": args.dim,
        "crops": args.crops,
    }
    for name in (args.baseline, args.model):
        all_crops = name == "lap" and args.crops > 1
        times = steps_per_second(
            name, defaults[name], trainset, args.batch, args.steps, args.warmup, device, all_crops
        )
        figures[name] = timing(times)
        print(
            f"{name:>12}: {figures[name]['steps_per_s']:.3f} steps/s "
            f"(median of {len(times)}; batch {args.batch}+{args.batch} x {args.segments} x "
            f"{args.dim}, {figures['device']}, {figures['threads']} threads)",
            flush=True,
        )
    ratio = figures[args.model]["steps_per_s"] / figures[args.baseline]["steps_per_s"]
    figures["ratio"] = ratio
    print(f"{args.model} / {args.baseline} = {ratio:.3f} (steps/s ratio, same run)")
    runs = [(args.official, official_steps, "official_urdmu", "official UR-DMU")]
    runs.append((args.official_lap, official_lap_steps, "official_lap", "official LAP (GV-VAD)"))
    for checkout, measure, key, label in runs:
        if checkout is None:
            continue
        figures[key] = timing(
            measure(checkout, trainset, args.batch, args.steps, args.warmup, device)
        )  # noqa: E501
        vs = figures[args.model]["steps_per_s"] / figures[key]["steps_per_s"]
        figures["ratio_to_official"] = vs
        print(f"{label}: {figures[key]['steps_per_s']:.3f} steps/s")
        print(f"{args.model} / {label} = {vs:.3f} (steps/s ratio, same run)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
