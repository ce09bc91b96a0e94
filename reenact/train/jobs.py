"""The `reenact train` jobs: what the command runs for `estimator` and `refiner`, from a TrainSpec
(reenact.specs) to weights and a contract in `spec.out`. The command only prints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from reenact.errors import InputError
from reenact.specs import TrainSpec

Log = Callable[[str], None]


def train_estimator_job(spec: TrainSpec, device: torch.device | None = None,
                        log: Log = print) -> tuple[Path, dict[str, float]]:
    """The mesh -> expression head on synthetic faces whose identities are learned from the --data photos and
    videos (meshed on `device`); its weights file and held-out metrics."""
    from reenact.train.estimator import TrainConfig, collect_meshes, export, train

    work = spec.work
    cfg = TrainConfig(workdir=str(work)) if spec.steps is None else TrainConfig(steps=spec.steps, workdir=str(work))
    files = spec.files()
    if files:
        log(f"collecting face meshes from {len(files)} file(s)")
        cfg.meshes = str(collect_meshes(files, work / "meshes.npz", device=device))
    net, metrics = train(cfg, log=lambda line, **_: log(line))
    return export(net, cfg, metrics, spec.out), metrics


@dataclass
class TrainedRefiner:
    path: Path  # the exported weights
    extra: dict[str, Any]  # the contract's record: held-out scores, the unseen photos' checks
    reason: str | None  # why the renderer would not use it (reenact.render.refine.gate); None: it would


def train_refiner_job(spec: TrainSpec, device: str = "auto", log: Log = print,
                      debug: Log = lambda s: None) -> TrainedRefiner:
    """The GAN refiner on same-person frame pairs of the --data videos (and pair shards made before), exported,
    checked on the --check photos of other people, and judged as the renderer would."""
    from reenact.render.refine import gate
    from reenact.train.refiner import export, train_refiner
    from reenact.train.refiner_check import record_unseen
    from reenact.train.refiner_data import build_cache
    from reenact.weights import read_contract

    videos = spec.videos()
    shards = [f for f in spec.files() if f.suffix.lower() == ".npz"]
    if videos:
        log(f"making same-person frame pairs from {len(videos)} video(s)")
        shards += build_cache(videos, spec.work / "data", log=debug)
    if not shards:
        raise InputError("--data holds no videos or pair shards (*.npz); give talking-face videos.")
    train_refiner(shards, spec.work, steps=spec.steps, device=device, init=spec.init, log=log)
    path = export(spec.work / "best.safetensors", directory=spec.out, data_note=f"Also: {len(videos)} user video(s).")
    check = spec.check_photos()
    if check:
        log(f"checking it on {len(check)} photo(s) of other people")
        record_unseen(spec.out, check)
    extra = read_contract("refiner", spec.out).extra
    return TrainedRefiner(path, extra, gate(extra))
