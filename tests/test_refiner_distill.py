"""Distilling the refiner into a smaller one (reenact/train/refiner_distill.py) and exporting the student."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from reenact.params import ARKIT52
from reenact.render.refine import WINDOW_MARGIN, Refiner, RefinerNet, prior_bits
from reenact.weights import load_model, read_contract

ROOT = Path(__file__).resolve().parent.parent


def test_student_learns_the_teacher_and_exports_with_its_window(tmp_path: Path) -> None:
    from reenact.analysis import Models
    from reenact.train.refiner import RefinerTrainConfig, export
    from reenact.train.refiner_data import PairSet, load_shards
    from reenact.train.refiner_distill import distill, distill_loss
    from reenact.train.refiner_stills import StillConfig, build_stills

    bank = np.zeros((2, 52), np.float32)
    bank[:, ARKIT52.index("jawOpen")] = 0.9
    build_stills([ROOT / "samples" / "source.jpg"], tmp_path / "data", bank, Models(), StillConfig(per_face=4))
    teacher = load_model("refiner")  # the shipped refiner: it repaints the mouth opening
    bits = prior_bits(teacher.contract.extra["prior"])  # type: ignore[union-attr]
    pairs = PairSet(load_shards([tmp_path / "data"], "train"))
    b = pairs.batch(np.arange(pairs.n), augment=False)
    with torch.no_grad():
        assert float(distill_loss(copy.deepcopy(teacher), teacher, b, bits)) == 0.0

    cfg = RefinerTrainConfig(steps=40, batch=4, lr_g=2e-3, widths=(8, 16), n_res=1, eval_every=20,
                             prior=teacher.contract.extra["prior"], gan="distilled")  # type: ignore[union-attr]
    torch.manual_seed(0)
    with torch.no_grad():
        before = float(distill_loss(RefinerNet(widths=(8, 16), n_res=1), teacher, b, bits))
    distill(teacher, [tmp_path / "data"], tmp_path / "run", cfg, log=lambda s: None)
    weights = export(tmp_path / "run" / "ckpt.safetensors", directory=tmp_path / "w", window_margin=20)
    student = load_model("refiner", directory=weights.parent)
    with torch.no_grad():
        assert float(distill_loss(student, teacher, b, bits)) < 0.7 * before  # 40 small steps: 0.49 -> 0.27 grey levels

    contract = read_contract("refiner", tmp_path / "w")
    assert contract.kwargs["widths"] == [8, 16] and contract.extra["gan"] == "distilled"
    assert contract.extra["prior"] == teacher.contract.extra["prior"]  # type: ignore[union-attr]
    assert contract.training_data.startswith("Distilled") and "refiner_distill" in contract.script
    assert Refiner(student).window_margin == 20  # the contract's
    assert Refiner(RefinerNet(widths=(8, 16), n_res=1)).window_margin == WINDOW_MARGIN  # none recorded: the default
