"""Peak memory and time of scoring one long test video with a detector (default urdmu).

UCF-Crime's longest test video (Normal_Videos_924) has 6,749 16-frame segments, 10 crops
of 1,024-D I3D features; XD-Violence's longest is shorter. The detector (schema defaults:
the released UR-DMU size, random weights) scores it through synthvad's test path
(`score_videos`: every crop, scores averaged), and the script prints the peak resident
memory of the process against the same measurement for a 200-segment video in the same
run (the baseline: model, torch and the features themselves).

    python benchmarks/score_memory.py                 # 6,749 x 10 crops x 1,024, CPU
    python benchmarks/score_memory.py --segments 3000 --device cuda
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(model: str, segments: int, crops: int, dim: int, device: str) -> tuple[float, float]:
    """(peak RSS in GB, seconds) of scoring one video, in a fresh process."""
    code = f"""
import resource, sys, time
sys.path.insert(0, {str(ROOT / "benchmarks")!r}); sys.path.insert(0, {str(ROOT / "workflow")!r})
import numpy as np, torch
from detect import detector_defaults
from synthvad.detect.data import Video
from synthvad.detect.registry import build_detector
from synthvad.detect.train import score_videos
from synthvad.devices import resolve_device
device = resolve_device({device!r}, "device")
torch.manual_seed(0)
model = build_detector({model!r}, {dim}, detector_defaults([{model!r}])[{model!r}]).to(device)
x = np.random.default_rng(0).normal(size=({crops}, {segments}, {dim})).astype(np.float32)
video = Video("long", "test", "real", None, 0, x, np.full({segments}, 16))
start = time.perf_counter()
(scores,) = score_videos(model, [video], device, batch_size=64)
assert scores.shape == ({segments},) and np.isfinite(scores).all()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, time.perf_counter() - start)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    peak, seconds = out.stdout.split()[-2:]
    return float(peak), float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="urdmu")
    parser.add_argument("--segments", type=int, default=6749)
    parser.add_argument("--crops", type=int, default=10)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    base = measure(args.model, 200, args.crops, args.dim, args.device)
    long = measure(args.model, args.segments, args.crops, args.dim, args.device)
    for name, (peak, seconds) in (("200 segments", base), (f"{args.segments} segments", long)):
        print(f"{name:>16}: peak RSS {peak:.2f} GB, scored in {seconds:.1f} s")
    print(f"peak RSS ratio long / 200 segments = {long[0] / base[0]:.2f} (same run)")


if __name__ == "__main__":
    main()
