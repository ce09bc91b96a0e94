"""Distil a trained refiner into a smaller, shallower one that costs less per frame.

    .venv/bin/python -m reenact.train.refiner_distill --teacher weights --data .cache/refiner/data \
        .cache/refiner/data_stills --out .cache/refiner/run_d1 --widths 16 32 64 --n-res 1 --steps 6000
    .venv/bin/python -m reenact.train.refiner --export --out .cache/refiner/run_d1 --prior inner-mouth

The student sees the same pairs as the teacher's training (same sampling, flips and photometric jitter) and learns
the teacher's output where the teacher may change anything: the L1 between the two composites, colour maps and
attention maps inside the teacher's region prior (everywhere when it has none). A deterministic teacher is an easy
target: no critic, no averaging over plausible mouths. Fewer stride-2 levels also shrink how far the net looks, so
at run time it needs a smaller window of context around the prior (`Refiner`'s window margin, recorded in the
contract by the export). The configuration says gan="distilled": the export names the student's origin from it.

The checkpoints have the format of `reenact.train.refiner`'s (generator `g`, its Adam moments, the configuration),
so its `--export` writes the student's weights and contract; the best student is the one with the lowest held-out
mouth/eye L1 to the real frames, as for the teacher.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from reenact.render.refine import (
    CROP_SIZE,
    RefinerNet,
    apply_prior,
    compose,
    prior_bits,
    region_prior,
)
from reenact.train.refiner import RefinerTrainConfig, _load_ckpt, eval_and_save
from reenact.train.refiner_data import PairSet, load_shards


def distill_loss(student: RefinerNet, teacher: RefinerNet, b: dict[str, torch.Tensor], bits: int) -> torch.Tensor:
    """Mean |student - teacher| over the region the teacher may repaint (in [-1, 1] units): of the composites, and
    of the colour and attention maps themselves. Through the composite alone C learns only as fast as (1 - A) lets
    it, and a student starting at A ~ 0.88 barely moved in 250 steps; the maps give both a direct gradient."""
    warped = b["warped"]
    with torch.no_grad():
        c_t, a_t = teacher(warped, b["params"])
        target = compose(warped, c_t, apply_prior(a_t, b["masks"], bits))  # (B, 3, S, S)
    c_s, a_s = student(warped, b["params"])
    out = compose(warped, c_s, apply_prior(a_s, b["masks"], bits))
    weight = region_prior(b["masks"], bits) if bits else torch.ones_like(warped[:, :1])  # (B, 1, S, S)
    mean = lambda err: (err * weight).sum() / (err.shape[1] * weight.sum()).clamp(min=1)
    return mean((out - target).abs()) + mean((c_s - c_t).abs()) + mean((a_s - a_t).abs())


def distill(teacher: RefinerNet, data: list[Path], out_dir: Path, cfg: RefinerTrainConfig, resume: bool = True,
            log=print) -> dict[str, float]:
    """Train a `cfg.widths`/`cfg.n_res` student of `teacher` (prior `cfg.prior`); returns the last evaluation."""
    from reenact.errors import InputError

    if teacher.use_source:  # before the pairs are loaded (minutes): fail fast
        raise InputError("Distilling a source-conditioned refiner is not supported.")
    train, test = load_shards(data, "train"), load_shards(data, "test")
    if not train:
        raise InputError(f"No training pairs in {', '.join(map(str, data))}; run tools/make_refiner_data.py first.")
    train_set, test_set = PairSet(train), PairSet(test) if test else None
    eval_idx = np.linspace(0, test_set.n - 1, min(cfg.eval_pairs, test_set.n)).astype(int) if test_set else None
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    bits = prior_bits(cfg.prior)
    teacher = teacher.eval().requires_grad_(False)
    student = RefinerNet(size=CROP_SIZE, widths=cfg.widths, n_res=cfg.n_res, cond=cfg.cond)
    opt = torch.optim.Adam(student.parameters(), cfg.lr_g, betas=(0.9, 0.999))
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt = out_dir / "ckpt.safetensors"
    meta = {"step": 0, "best": float("inf")}
    if resume and ckpt.exists():
        meta = _load_ckpt(ckpt, {"g": student}, {"g": opt})
        log(json.dumps({"resumed": meta["step"]}))
    probs = train_set.sampling_weights(cfg.stills)
    t0, last, running = time.time(), {}, []
    for step in range(meta["step"], cfg.steps):
        for group in opt.param_groups:  # constant, then linear to 0 over the last quarter
            group["lr"] = cfg.lr_g * min(1.0, 4.0 * (1 - step / cfg.steps))
        b = train_set.batch(rng.choice(train_set.n, cfg.batch, p=probs), augment=True, rng=rng, jitter=cfg.color_jitter)
        loss = distill_loss(student, teacher, b, bits)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running.append(loss.item() * 127.5)
        done = step + 1
        if done % 50 == 0 or done == cfg.steps:
            log(json.dumps({"step": done, "loss": round(float(np.mean(running)), 4), "s": round(time.time() - t0, 1)}))
            running = []
        if done % cfg.eval_every == 0 or done == cfg.steps:
            last = eval_and_save(student, test_set, eval_idx, cfg, meta, done, out_dir, {"g": student}, {"g": opt})
            log(json.dumps({"eval": done, **{k: round(v, 4) for k, v in last.items()}, "best": round(meta["best"], 4)}))
    return last


def main() -> None:
    from reenact.weights import load_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", type=Path, default=Path("weights"), help="folder with the teacher's refiner.safetensors + .json")
    ap.add_argument("--data", nargs="*", type=Path, default=[Path(".cache/refiner/data")])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--n-res", type=int, default=1)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--stills", type=float, default=0.3, help="share of round-trip still pairs (as the teacher)")
    ap.add_argument("--color-jitter", type=float, default=0.06)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-resume", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    teacher = load_model("refiner", directory=args.teacher)
    prior = teacher.contract.extra.get("prior", "")  # type: ignore[union-attr]
    cfg = RefinerTrainConfig(steps=args.steps, batch=args.batch, lr_g=args.lr, widths=tuple(args.widths),
                             n_res=args.n_res, stills=args.stills, color_jitter=args.color_jitter,
                             eval_every=args.eval_every, threads=args.threads, prior=prior, gan="distilled")
    distill(teacher, args.data, args.out, cfg, resume=not args.no_resume, log=lambda s: print(s, flush=True))


if __name__ == "__main__":
    main()
