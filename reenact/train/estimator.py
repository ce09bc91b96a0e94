"""Train the estimator head on unlimited synthetic meshes with known parameters (SliderGAN's "known parameters"),
plus real tracked frames labelled by rig fits.

    .venv/bin/python -m reenact.train.estimator [--steps 10000] [--meshes .cache/rig/meshes.npz]

Each batch: sparse random ARKit weights (symmetric pairs likely, exclusive pairs never both, mouthClose <= jawOpen)
-> the rig (weights/rig_arkit52) on a random identity (canonical mesh + PCA of real FaceMesh meshes with the rig's
expression span projected out + random regional proportions) -> random head pose, size and position in pixels ->
landmark noise -> the same Procrustes normalisation as run time -> MLP -> smooth L1 to the known weights.
A quarter of each batch is real tracked frames from the same meshes file (never the held-out franck.mp4), re-posed
the same way, with two losses: smooth L1 to their bounded least-squares rig fit, and the self-consistency
|rig(estimate) - real mesh|^2 (reenact/train/estimator_real.py).

Resumable: checkpoints (model + Adam moments, safetensors) go to .cache/estimator/; rerunning continues. Runs on one
CPU thread in well under 30 minutes. Writes weights/estimator.safetensors + .json, prints held-out MAE per group and
the agreement with direct measurements on the held-out real clip.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from reenact.errors import InputError
from reenact.estimate import EstimatorNet, normalize
from reenact.params import ARKIT52, arkit_to_au
from reenact.rig import load_rig, procrustes
from reenact.train.estimator_real import RealFrames, real_video_agreement
from reenact.train.sampling import random_rotation, uniform

__all__ = ["Identities", "TrainConfig", "collect_meshes", "evaluate", "export", "real_video_agreement", "synth_batch",
           "train"]

GROUPS: dict[str, tuple[str, ...]] = {
    "eyes (blink/squint/wide)": tuple(n for n in ARKIT52 if n.startswith(("eyeBlink", "eyeSquint", "eyeWide"))),
    "gaze (eyeLook*)": tuple(n for n in ARKIT52 if n.startswith("eyeLook")),
    "jaw": tuple(n for n in ARKIT52 if n.startswith("jaw")),
    "mouth": tuple(n for n in ARKIT52 if n.startswith(("mouth", "tongue"))),
    "brows": tuple(n for n in ARKIT52 if n.startswith("brow")),
    "cheeks/nose": tuple(n for n in ARKIT52 if n.startswith(("cheek", "nose"))),
}
PAIRS_EXCLUSIVE = [("eyeLookInLeft", "eyeLookOutLeft"), ("eyeLookUpLeft", "eyeLookDownLeft"),
                   ("eyeLookInRight", "eyeLookOutRight"), ("eyeLookUpRight", "eyeLookDownRight"),
                   ("jawLeft", "jawRight"), ("mouthLeft", "mouthRight"), ("eyeBlinkLeft", "eyeWideLeft"),
                   ("eyeBlinkRight", "eyeWideRight"), ("browDownLeft", "browOuterUpLeft"),
                   ("browDownRight", "browOuterUpRight")]


@dataclass
class TrainConfig:
    steps: int = 10000
    batch: int = 256
    lr: float = 2e-3
    hidden: tuple[int, ...] = (512, 256)
    seed: int = 0
    p_active: float = 0.18  # chance that a channel is on in a sample
    p_symmetric: float = 0.6  # chance that a Left/Right pair moves together
    noise_px: tuple[float, float] = (0.0, 0.006)  # landmark noise, fraction of the face width (~14 canonical cm)
    yaw_deg: float = 35.0
    pitch_deg: float = 25.0
    roll_deg: float = 20.0
    identity_scale: float = 1.0
    meshes: str = ".cache/rig/meshes.npz"
    workdir: str = ".cache/estimator"
    eval_every: int = 1000
    real_steps: int = 2000  # phase 2, after `steps`: fine-tune with real tracked frames in every batch
    real_lr: float = 5e-4  # phase 2 peak learning rate (cosine to 0 again)
    real_fraction: float = 0.25  # share of each phase-2 batch drawn from real tracked frames (RealFrames)
    real_min_frames: int = 200  # fewer real frames than this (a few photos): synthetic only, they would be memorised
    real_label_weight: float = 1.0  # smooth-L1 to the frames' rig-fit labels
    real_mesh_weight: float = 0.01  # self-consistency: |rig(estimate) - real mesh|^2 in mm^2 per vertex
    fit_l1: float = 0.03  # the rig fit's prior (estimator_real.fit_rig), cm^2 per unit weight
    fit_l2: float = 0.1
    rig_dir: str = ""  # folder of a candidate rig_arkit52 to train on (default: the shipped one)
    init: str = ""  # start from these weights (a folder with estimator.*, or a name in weights/) = fine-tune
    extra: dict = field(default_factory=dict)


def rigid_vertices(basis: torch.Tensor, limit_cm: float = 0.12) -> torch.Tensor:
    """Mesh vertices (< 468) that no blendshape moves more than `limit_cm`: the skull-fixed ones for Procrustes."""
    motion = basis[:, :468].norm(dim=-1).amax(0)  # (468,)
    return torch.nonzero(motion < limit_cm).flatten()


class Identities:
    """Random face shapes: canonical + PCA of real meshes (expression span removed) + regional proportions."""

    def __init__(self, neutral: torch.Tensor, basis: torch.Tensor, meshes: Path | None, exclude=("franck_mp4",)):
        self.neutral = neutral  # (478, 3)
        self.components = torch.zeros(0, 478, 3)
        if meshes is not None and meshes.exists():
            self.components = self._pca(meshes, basis, exclude)

    def _pca(self, path: Path, basis: torch.Tensor, exclude) -> torch.Tensor:
        data = np.load(path)
        shapes = []
        for key in data.files:
            if key in exclude:
                continue
            arr = data[key]
            arr = arr[np.isfinite(arr).all(axis=(1, 2))]
            if key != "photos":  # one identity per video: its median aligned frame
                arr = arr[:: max(1, len(arr) // 200)]
            aligned = []
            for m in arr:
                s, r, t = procrustes(self.neutral[:468], torch.as_tensor(m[:468]))
                aligned.append((torch.as_tensor(m) - t) @ r / s)
            aligned = torch.stack(aligned)
            shapes += [aligned] if key == "photos" else [aligned.median(0).values[None]]
        res = (torch.cat(shapes) - self.neutral).flatten(1)  # (N, 1434)
        b = basis.flatten(1)  # (52, 1434): remove what the rig explains (expression), keep the rest (identity)
        coef = torch.linalg.lstsq(b.T, res.T).solution  # (52, N)
        res = res - (b.T @ coef).T
        res = res - res.mean(0)
        _, s, vt = torch.linalg.svd(res, full_matrices=False)
        k = int((s > 1e-3 * s[0]).sum().clamp(max=24))
        std = s[:k] / math.sqrt(max(len(res) - 1, 1))
        return (vt[:k] * std[:, None]).reshape(k, 478, 3)  # each component scaled by its std

    def sample(self, n: int, g: torch.Generator, scale: float = 1.0) -> torch.Tensor:
        """(n, 478, 3) neutral faces."""
        faces = self.neutral.expand(n, -1, -1).clone()
        if len(self.components):
            z = torch.randn(n, len(self.components), generator=g) * scale
            faces = faces + torch.einsum("nk,kpc->npc", z, self.components)
        # Regional proportions: face width/height, eye spacing, mouth width (±8%) about the canonical centre.
        sx = 1 + 0.06 * torch.randn(n, 1, generator=g)
        sy = 1 + 0.06 * torch.randn(n, 1, generator=g)
        faces[..., 0] *= sx
        faces[..., 1] *= sy
        mouth = (faces[..., 1] > 2.0) & (faces[..., 1] < 5.5) & (faces[..., 0].abs() < 3.5)
        faces[..., 0] = torch.where(mouth, faces[..., 0] * (1 + 0.06 * torch.randn(n, 1, generator=g)), faces[..., 0])
        return faces


def sample_params(n: int, g: torch.Generator, cfg: TrainConfig) -> torch.Tensor:
    """(n, 52) sparse ARKit weights with plausible structure."""
    idx = {k: i for i, k in enumerate(ARKIT52)}
    on = torch.rand(n, 52, generator=g) < cfg.p_active
    val = torch.rand(n, 52, generator=g) ** 0.8 * on
    for name in ARKIT52:
        if name.endswith("Left") and name[:-4] + "Right" in idx:
            l, r = idx[name], idx[name[:-4] + "Right"]
            sym = torch.rand(n, generator=g) < cfg.p_symmetric
            val[sym, r] = (val[sym, l] + 0.1 * torch.randn(int(sym.sum()), generator=g) * (val[sym, l] > 0)).clamp(0, 1)
    for a, b in PAIRS_EXCLUSIVE:
        drop = torch.rand(n, generator=g) < 0.5
        val[drop, idx[a]] = 0
        val[~drop, idx[b]] = 0
    val[:, idx["mouthClose"]] = torch.minimum(val[:, idx["mouthClose"]], val[:, idx["jawOpen"]])
    neutral = torch.rand(n, generator=g) < 0.08  # some fully neutral faces
    val[neutral] = 0
    return val


def synth_batch(n: int, g: torch.Generator, basis: torch.Tensor, ids: Identities, cfg: TrainConfig
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(points px (n, 478, 3), params (n, 52))."""
    params = sample_params(n, g, cfg)
    faces = ids.sample(n, g, cfg.identity_scale) + torch.einsum("nk,kpc->npc", params, basis)
    scale = torch.exp(uniform(n, math.log(4.0), math.log(40.0), g))  # px per cm: faces ~55 to ~550 px wide
    shift = uniform((n, 3), 0.0, 1000.0, g) * torch.tensor([1.0, 1.0, 0.0])
    pts = scale[:, None, None] * faces @ random_rotation(n, g, cfg).transpose(1, 2) + shift[:, None]
    sigma = uniform(n, *cfg.noise_px, g) * 14.0 * scale
    pts = pts + torch.randn(pts.shape, generator=g) * sigma[:, None, None]
    return pts, params


def evaluate(net: EstimatorNet, basis: torch.Tensor, ids: Identities, cfg: TrainConfig, n: int = 4096,
             seed: int = 12345) -> dict[str, float]:
    """MAE per channel group (+ AU17, + on active channels only) on held-out synthetic samples."""
    g = torch.Generator().manual_seed(seed)
    pts, target = synth_batch(n, g, basis, ids, cfg)
    with torch.inference_mode():
        canon, _ = normalize(pts, net.neutral, net.rigid)
        pred = net(canon).clamp(0, 1)
    err = (pred - target).abs()
    out = {grp: float(err[:, [ARKIT52.index(c) for c in chans]].mean()) for grp, chans in GROUPS.items()}
    out["ARKit52 all"] = float(err.mean())
    out["ARKit52 active (target > 0.05)"] = float(err[target > 0.05].mean())
    out["AU17"] = float(np.abs(arkit_to_au(pred.numpy()) - arkit_to_au(target.numpy())).mean())
    return out


def _save_ckpt(path: Path, net: EstimatorNet, opt: torch.optim.Optimizer, step: int) -> None:
    tensors = {f"model.{k}": v for k, v in net.state_dict().items()}
    for i, p in enumerate(net.parameters()):
        st = opt.state.get(p, {})
        for k in ("exp_avg", "exp_avg_sq"):
            if k in st:
                tensors[f"opt.{i}.{k}"] = st[k]
    tmp = path.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata={"step": str(step)})
    tmp.replace(path)


def _load_ckpt(path: Path, net: EstimatorNet, opt: torch.optim.Optimizer) -> int:
    from safetensors import safe_open

    tensors = load_file(str(path))
    net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    with safe_open(str(path), "pt") as f:
        step = int(f.metadata()["step"])
    for i, p in enumerate(net.parameters()):
        if f"opt.{i}.exp_avg" in tensors:
            opt.state[p] = {"step": torch.tensor(float(step)), "exp_avg": tensors[f"opt.{i}.exp_avg"],
                            "exp_avg_sq": tensors[f"opt.{i}.exp_avg_sq"]}
    return step


def train(cfg: TrainConfig, log=print) -> tuple[EstimatorNet, dict[str, float]]:
    torch.manual_seed(cfg.seed)
    rig = _rig(cfg.rig_dir)
    basis, neutral = rig.basis, rig.neutral
    ids = Identities(neutral, basis, Path(cfg.meshes))
    rigid = rigid_vertices(basis)
    net = EstimatorNet(478, tuple(cfg.hidden), 52, len(rigid))
    net.neutral.copy_(neutral)
    net.rigid.copy_(rigid)
    if cfg.init:
        from reenact.weights import load_model

        init = load_model("estimator", "cpu", Path(cfg.init)) if Path(cfg.init).is_dir() else load_model(cfg.init)
        net.load_state_dict({k: v.float() for k, v in init.state_dict().items()})
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    real = RealFrames(Path(cfg.meshes), neutral, rigid, basis, cfg.fit_l1, cfg.fit_l2) if cfg.real_fraction else None
    n_real = round(cfg.batch * cfg.real_fraction) if real is not None and len(real) >= cfg.real_min_frames else 0
    total = cfg.steps + (cfg.real_steps if n_real else 0)  # phase 1 synthetic only, phase 2 with real frames
    work = Path(cfg.workdir)
    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / "ckpt.safetensors"
    step = _load_ckpt(ckpt, net, opt) if ckpt.exists() else 0
    g = torch.Generator().manual_seed(cfg.seed * 1000 + step)  # a resumed run draws new samples
    t0 = time.time()
    while step < total:
        phase2 = step >= cfg.steps
        if phase2 and step == cfg.steps:  # a fresh optimiser, as a fine-tune of the phase-1 weights would have
            opt = torch.optim.Adam(net.parameters(), lr=cfg.real_lr)
        lr = (cfg.real_lr * 0.5 * (1 + math.cos(math.pi * (step - cfg.steps) / cfg.real_steps)) if phase2 else
              cfg.lr * 0.5 * (1 + math.cos(math.pi * step / cfg.steps)))
        for group in opt.param_groups:
            group["lr"] = lr
        nr = n_real if phase2 else 0
        pts, target = synth_batch(cfg.batch - nr, g, basis, ids, cfg)
        with torch.no_grad():
            canon, _ = normalize(pts, net.neutral, net.rigid)
        loss = torch.nn.functional.smooth_l1_loss(net(canon), target, beta=0.02)
        if nr:
            pts, labels, _ = real.sample(nr, g, cfg)
            with torch.no_grad():
                canon, _ = normalize(pts, net.neutral, net.rigid)
            pred = net(canon)  # (nr, 52)
            loss_real = cfg.real_label_weight * torch.nn.functional.smooth_l1_loss(pred, labels, beta=0.02)
            if cfg.real_mesh_weight:  # rig(estimate) should reproduce the real mesh (in mm, squared)
                res = torch.einsum("nk,kpc->npc", pred, basis) - (canon - neutral)
                loss_real = loss_real + cfg.real_mesh_weight * 100 * res.pow(2).sum(-1).mean()
            loss = (loss * (cfg.batch - nr) + loss_real * nr) / cfg.batch
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % cfg.eval_every == 0 or step in (cfg.steps, total):
            _save_ckpt(ckpt, net, opt, step)
            m = evaluate(net, basis, ids, cfg, n=1024)
            log(json.dumps({"step": step, "loss": round(float(loss.detach()), 5), "lr": round(lr, 6),
                            "mae": round(m["ARKit52 all"], 4), "mae_active": round(m["ARKit52 active (target > 0.05)"], 4),
                            "s": round(time.time() - t0, 1)}), flush=True)
    return net, evaluate(net, basis, ids, cfg)


def main() -> None:
    ap = argparse.ArgumentParser(description="Train the estimator head on synthetic rig meshes (+ real frames).")
    ap.add_argument("--steps", type=int, default=TrainConfig.steps)
    ap.add_argument("--lr", type=float, default=TrainConfig.lr)
    ap.add_argument("--meshes", default=TrainConfig.meshes)
    ap.add_argument("--workdir", default=TrainConfig.workdir)
    ap.add_argument("--real-steps", type=int, default=TrainConfig.real_steps)
    ap.add_argument("--real-fraction", type=float, default=TrainConfig.real_fraction)
    ap.add_argument("--real-mesh-weight", type=float, default=TrainConfig.real_mesh_weight)
    ap.add_argument("--rig-dir", default="", help="train on the rig_arkit52 in this folder (default: weights/)")
    ap.add_argument("--init", default="", help="fine-tune: start from the estimator.* in this folder (or a name "
                                               "in weights/)")
    ap.add_argument("--out", type=Path, default=None, help="folder for the weights (default: weights/)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-real", action="store_true", help="only measure weights (--out or the shipped ones) on "
                                                             "the franck.mp4 meshes")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.eval_real:
        real = real_video_agreement(Path(args.meshes), estimator=_estimator(args.out), rig=_rig(args.rig_dir))
        print(json.dumps(real, indent=1))
        return
    cfg = TrainConfig(steps=args.steps, lr=args.lr, meshes=args.meshes, workdir=args.workdir, init=args.init,
                      rig_dir=args.rig_dir, real_steps=args.real_steps,
                      real_fraction=args.real_fraction, real_mesh_weight=args.real_mesh_weight)
    net, metrics = train(cfg)
    print(json.dumps({"heldout_mae": {k: round(v, 4) for k, v in metrics.items()}}, indent=1), flush=True)
    path = export(net, cfg, metrics, args.out)
    if Path(args.meshes).exists() and "franck_mp4" in np.load(args.meshes).files:
        real = real_video_agreement(Path(args.meshes), estimator=_estimator(path.parent), rig=_rig(args.rig_dir))
        print(json.dumps({"real_video": real}, indent=1), flush=True)


def _rig(directory: str = ""):
    from reenact.weights import load_model

    return load_model("rig_arkit52", "cpu", Path(directory)) if directory else load_rig()


def _estimator(directory: Path | None):
    from reenact.estimate import Estimator
    from reenact.weights import load_typed

    est = Estimator()
    if directory is not None:
        est.net = load_typed("estimator", EstimatorNet, "cpu", directory)
    return est


def export(net: EstimatorNet, cfg: TrainConfig, metrics: dict[str, float], directory: Path | None = None) -> Path:
    """Write `estimator.safetensors` + contract (fp16 MLP) into `directory` (default: the weights folder)."""
    from reenact.weights import Contract, save

    Path(cfg.workdir).mkdir(parents=True, exist_ok=True)
    Path(cfg.workdir, "metrics.json").write_text(json.dumps(metrics, indent=1))
    state = {k: (v.half() if v.is_floating_point() and k.startswith("mlp") else v) for k, v in net.state_dict().items()}
    return save("estimator", state, Contract(
        name="estimator", arch="estimator",
        kwargs={"n_points": 478, "hidden": list(cfg.hidden), "n_out": 52, "n_rigid": len(net.rigid)},
        input={"points": "(B, 478, 3) mesh in the canonical frame (reenact.estimate.normalize), canonical cm"},
        outputs={"arkit": "(B, 52) ARKit weights, clip to [0, 1]; AU17, pose and gaze are derived (estimate.py)"},
        channels=list(ARKIT52),
        training_data="synthetic: sparse random ARKit weights through weights/rig_arkit52 on random identities (PCA "
                      f"of face meshes from {cfg.meshes}, expression span removed, plus regional proportions), "
                      "random pose/size/position and landmark noise"
                      + (f"; then {cfg.real_steps} fine-tuning steps with {cfg.real_fraction:.0%} of each batch real "
                         "tracked frames from the same meshes (held-out franck.mp4 excluded), re-posed, labelled by "
                         "bounded least-squares rig fits, plus a rig self-consistency loss"
                         if cfg.real_fraction and cfg.real_steps else ""),
        licence="Apache-2.0", source="trained by reenact", script="reenact/train/estimator.py",
        extra={"config": {k: v for k, v in asdict(cfg).items() if k not in ("extra", "rig_dir")},
               "heldout_mae": {k: round(v, 4) for k, v in metrics.items()}, "mlp_dtype": "float16"}), directory)


def collect_meshes(paths: list[Path], out: Path, every: int = 10, device: torch.device | None = None) -> Path:
    """Face meshes of a user's photos and videos (every `every`-th frame) -> an npz for `Identities`.

    Photos go under the key `photos` (one identity each); each video is one key (its median face is one identity).
    """
    from reenact.face import FaceAnalyzer
    from reenact.io.image import read_image
    from reenact.io.video import read_frames

    analyzer = FaceAnalyzer(device or torch.device("cpu"))
    photos, videos = [], {}
    for path in paths:
        if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp", ".bmp"):
            photos += [f.points for f in analyzer.analyze_all(read_image(path))]
            continue
        tracker, meshes = analyzer.tracker(), []
        with read_frames(path) as frames:
            for frame in frames:
                found = tracker.update(frame.rgb)
                if found is not None and frame.index % every == 0:
                    meshes.append(found.points)
        if meshes:
            videos[path.stem.replace(".", "_")] = np.stack(meshes)
    if not photos and not videos:
        raise InputError("No face was found in the training data; give photos or videos that show faces.")
    arrays = {**videos, **({"photos": np.stack(photos)} if photos else {})}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    return out


if __name__ == "__main__":
    main()
