"""The epoch loop both training regimes of detect/train.py share.

A regime brings one epoch of training and one validation as callables; train_epochs runs
them, writes one history row per epoch, keeps the weights of the epoch best on
validation (never on the test set) and reloads them at the end.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from tqdm import tqdm

from synthvad.detect.data import Video, experiment_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingJob:
    """One seed's training: its videos, the experiment's settings and the device."""

    train: list[Video]
    val: list[Video]
    experiment: dict
    cfg: dict  # the detector's
    protocol: dict  # the `detect` section, defaults filled
    seed: int
    device: torch.device

    @property
    def name(self) -> str:
        return experiment_name(self.experiment)


@dataclass(frozen=True)
class EpochReport:
    """One epoch's validation: the selection key (higher is better; None when there is
    nothing to select on), its history columns, and what the metrics keep of the chosen epoch."""

    key: tuple | None
    columns: dict
    selected: dict


class EpochSelector:
    """Keeps the state of the best epoch by a key (higher is better)."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.epoch: int | None = None
        self.state: dict | None = None
        self.info: dict = {}

    def offer(self, epoch: int, key: tuple, model: nn.Module, info: dict) -> None:
        if self.key is None or key > self.key:
            self.key, self.epoch, self.info = key, epoch, info
            self.state = copy.deepcopy(model.state_dict())


def _log_epoch(name: str, seed: int, epoch: int, epochs: int, row: dict) -> None:
    shown = " ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
        for k, v in row.items()
        if k not in ("epoch", "seed")
    )
    log.info("%s seed %d epoch %d/%d %s", name, seed, epoch, epochs, shown)


def adam(model: nn.Module, cfg: dict, *other_groups: dict) -> torch.optim.Adam:
    """Adam over the model's parameters at the detector's lr and weight decay; `other_groups`
    (e.g. a learnable alpha) bring their own settings."""
    groups = [{"params": model.parameters(), "weight_decay": float(cfg["weight_decay"])}]
    return torch.optim.Adam([*groups, *other_groups], lr=float(cfg["lr"]))


def descend(optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
    """One optimizer step on `loss`."""
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def train_epochs(
    job: TrainingJob,
    model: nn.Module,
    train_epoch: Callable[[int], dict[str, float]],
    validate: Callable[[], EpochReport],
    val_metric: str,
) -> tuple[dict, list[dict]]:
    """The detector's `epochs` epochs: `train_epoch(epoch)` (its history columns), then
    `validate()`. Leaves `model` in eval mode with the weights of the epoch best on
    validation, or of the last epoch when validation gives no key.

    Returns the selection (best_epoch, val_metric, the chosen epoch's report) and the
    history, one row per epoch."""
    epochs = int(job.cfg["epochs"])
    selector, history = EpochSelector(), []
    for epoch in tqdm(range(1, epochs + 1), desc=f"train {job.name} seed {job.seed}", unit="epoch"):
        trained = train_epoch(epoch)
        report = validate()
        row = {"seed": job.seed, "epoch": epoch, **trained, **report.columns}
        history.append(row)
        _log_epoch(job.name, job.seed, epoch, epochs, row)
        key = (epoch,) if report.key is None else report.key  # none: keep the last epoch
        selector.offer(epoch, key, model, report.selected)
    model.load_state_dict(selector.state)
    model.eval()
    return {"best_epoch": selector.epoch, "val_metric": val_metric, **selector.info}, history
