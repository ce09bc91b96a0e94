"""Same-identity training pairs for the refiner from talking-face videos, cached as small aligned crops.

For a source frame i and a target frame j of the same video: the renderer's own warp (MeshWarper + mouth paint)
moves frame i to frame j's mesh -> the refiner's input; the real frame j -> its target. Both are cut with the
similarity crop of frame j's mesh, exactly as `Refiner.refine` cuts them at run time. Pairs differ in expression but
hardly in head pose or position (the renderer never moves the head much; a large head move would teach the refiner
to repair background dragged by the warp, which never happens at run time).

The last `holdout` fraction of every video is a held-out segment: no pair used in training touches it.

Shard (npz) arrays, N pairs:  warped, target, source (N, S, S, 3) uint8  (source = frame i in the same crop, unwarped)
    masks (N, S, S) uint8 bits: 1 face, 2 mouth, 4 eyes     points (N, 478, 3) float32 frame j's mesh in its frame px
    pairs (N, 2) int32 (i, j)   video str   split str ("train" | "test")
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reenact.face.pose import estimate_pose
from reenact.identity import dlib_chip_affine, mesh_to_dlib5
from reenact.params import ARKIT52
from reenact.render.mouth import MouthPainter
from reenact.render.refine import (  # noqa: F401  (the mask bits are part of the shard format)
    CROP_SIZE,
    FACE_FRACTION,
    MASK_EYES,
    MASK_FACE,
    MASK_INNER,
    MASK_MOUTH,
    crop_matrices,
    region_masks,
    to_crop,
    to_crop_points,
)
from reenact.render.warp import MeshWarper, iris_motion


@dataclass
class PairConfig:
    size: int = CROP_SIZE
    face_fraction: float = FACE_FRACTION
    holdout: float = 0.15  # last fraction of each video, never used for training pairs
    source_stride: int = 5  # every n-th frame is a source
    targets_per_source: int = 5
    max_gap: int = 150  # frames between source and target
    max_rotation: float = 7.0  # degrees of yaw / pitch / roll change allowed within a pair
    max_shift: float = 0.06  # face-centre move allowed, fraction of the face width
    max_scale: float = 0.05  # relative face-size change allowed
    seed: int = 0


def pose_ok(a: np.ndarray, b: np.ndarray, cfg: PairConfig) -> bool:
    """Whether two meshes of one video differ in expression only (small rotation, shift and scale change)."""
    pa, pb = estimate_pose(a), estimate_pose(b)
    rot = max(abs(pa.yaw - pb.yaw), abs(pa.pitch - pb.pitch), abs(pa.roll - pb.roll))
    width = float(np.ptp(a[:468, 0]))
    shift = float(np.linalg.norm(a[:468, :2].mean(0) - b[:468, :2].mean(0))) / width
    return rot <= cfg.max_rotation and shift <= cfg.max_shift and abs(pb.scale / pa.scale - 1) <= cfg.max_scale


def choose_pairs(points: np.ndarray, cfg: PairConfig) -> dict[str, list[tuple[int, int]]]:
    """(T, 478, 3) per-frame meshes (NaN where no face) -> {"train": [(i, j)], "test": [(i, j)]}.

    Test pairs are the evaluation protocol: source = a held-out frame, targets = the frames that follow it."""
    rng = np.random.default_rng(cfg.seed)
    n = len(points)
    ok = np.isfinite(points).all(axis=(1, 2))
    split_at = round(n * (1 - cfg.holdout))
    out: dict[str, list[tuple[int, int]]] = {"train": [], "test": []}
    for name, lo, hi in (("train", 0, split_at), ("test", split_at, n)):
        for i in range(lo, hi, cfg.source_stride):
            if not ok[i]:
                continue
            if name == "train":
                cand = rng.integers(max(lo, i - cfg.max_gap), min(hi, i + cfg.max_gap + 1), cfg.targets_per_source * 4)
            else:
                cand = i + 1 + np.arange(0, cfg.max_gap, max(cfg.max_gap // (cfg.targets_per_source * 4), 1))
                cand = cand[cand < hi]
            picked = 0
            for j in cand:
                if picked == cfg.targets_per_source:
                    break
                if j != i and ok[j] and pose_ok(points[i], points[j], cfg):
                    out[name].append((i, int(j)))
                    picked += 1
    return out


def render_pairs(source: np.ndarray, source_points: np.ndarray, targets: list[np.ndarray], target_points: np.ndarray,
                 cfg: PairConfig, gain: torch.Tensor | None = None) -> dict[str, np.ndarray]:
    """One source frame (H, W, 3) uint8 + its mesh, K target frames + meshes (K, 478, 3) -> crops as in the shard.
    `gain`: (K, 1, h, w) luminance gain over the source's face ROI (expression shading; tools/eval_shading.py)."""
    warper = MeshWarper(source, source_points[:, :2])
    origin = np.array([warper.roi.x0, warper.roi.y0], np.float32)
    disp = torch.as_tensor(target_points[:, :, :2] - source_points[None, :, :2], dtype=torch.float32)
    with torch.inference_mode():  # the lids slide over the irises' own motion, as they do at run time
        roi = warper.warp(disp, gain, iris_motion(disp))  # (K, 3, h, w) 0..255
    frames = roi.permute(0, 2, 3, 1).numpy().copy()
    painter = MouthPainter(source, source_points, (warper.roi.x0, warper.roi.y0))
    for frame, pts in zip(frames, target_points):
        painter.paint(frame, pts)
    roi = torch.from_numpy(frames).permute(0, 3, 1, 2)
    roi_points = target_points.copy()
    roi_points[:, :, :2] -= origin
    m = crop_matrices(roi_points, cfg.size, cfg.face_fraction)  # (K, 2, 3) ROI px -> crop px
    m_img = m.clone()
    m_img[:, :, 2] -= m[:, :, :2] @ torch.from_numpy(origin)  # frame px -> crop px
    with torch.inference_mode():
        warped = to_crop(roi, m, cfg.size)
        tgt = to_crop(torch.from_numpy(np.stack(targets)).permute(0, 3, 1, 2).float(), m_img, cfg.size)
        src = to_crop(torch.from_numpy(source).permute(2, 0, 1)[None].float().expand(len(targets), -1, -1, -1),
                      m_img, cfg.size)
    u8 = lambda t: t.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    masks = np.stack([region_masks(p, cfg.size) for p in to_crop_points(target_points, m_img)])
    return {"warped": u8(warped), "target": u8(tgt), "source": u8(src), "masks": masks,
            "points": target_points.astype(np.float32)}


def build_video(frames: Callable[[], Iterator[np.ndarray]], points: np.ndarray, cfg: PairConfig,
                splits: tuple[str, ...] = ("test", "train"), chunk: int = 150
                ) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    """frames: a callable returning an iterator over the video's (H, W, 3) uint8 RGB frames (read once).
    points: (T, 478, 3) meshes. Yields (split, arrays) for every `chunk` source frames (see the module doc)."""
    pairs = choose_pairs(points, cfg)
    needed = {k for split in splits for p in pairs[split] for k in p}
    kept = {index: np.ascontiguousarray(rgb) for index, rgb in enumerate(frames()) if index in needed}
    for split in splits:
        by_source: dict[int, list[int]] = {}
        for i, j in pairs[split]:
            if i in kept and j in kept:
                by_source.setdefault(i, []).append(j)
        sources = list(by_source)
        for c in range(0, len(sources), chunk):
            parts: list[dict[str, np.ndarray]] = []
            for i in sources[c:c + chunk]:
                js = by_source[i]
                part = render_pairs(kept[i], points[i], [kept[j] for j in js], points[js], cfg)
                part["pairs"] = np.array([(i, j) for j in js], np.int32)
                parts.append(part)
            yield split, {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def load_shards(paths: list[Path], split: str) -> dict[str, np.ndarray]:
    """Concatenate every shard of one split found in `paths` (files or folders of *.npz)."""
    files: list[Path] = []
    for p in paths:
        files += sorted(p.glob("*.npz")) if p.is_dir() else [p]
    parts = []
    for f in files:
        with np.load(f) as d:
            if str(d["split"]) == split:
                parts.append({k: d[k] for k in ("warped", "target", "source", "masks", "points", "pairs")})
                parts[-1]["video"] = np.array([str(d["video"])] * len(d["warped"]))
                # round-trip pairs from a photo (reenact.train.refiner_stills) rather than two frames of a video
                parts[-1]["still"] = np.full(len(d["warped"]), "kind" in d and str(d["kind"]) == "still")
    if not parts:
        return {}
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _frames(path: Path) -> Iterator[np.ndarray]:
    from reenact.io.video import read_frames

    with read_frames(path) as frames:
        for f in frames:
            yield f.rgb


def track(path: Path) -> np.ndarray:
    """(T, 478, 3) meshes of a video's main face by reenact.face's tracker (NaN rows where no face)."""
    from reenact.face import FaceAnalyzer, track_video

    analyzer = FaceAnalyzer(torch.device("cpu"))
    return np.stack([np.full((478, 3), np.nan, np.float32) if lm is None else lm.points
                     for lm in track_video(_frames(path), analyzer)])


def write_shards(name: str, frames: Callable[[], Iterator[np.ndarray]], points: np.ndarray, out: Path, cfg: PairConfig,
                 splits: tuple[str, ...] = ("test", "train"), log: Callable[[str], None] = lambda s: None) -> list[Path]:
    """Pairs of one frame sequence (see build_video) -> `out/NAME_{split}_NNN.npz` shards, `video` = name."""
    counts: dict[str, int] = {}
    written: list[Path] = []
    for split, arrays in build_video(frames, points, cfg, splits):
        path = out / f"{Path(name).stem}_{split}_{counts.get(split, 0):03d}.npz"
        counts[split] = counts.get(split, 0) + 1
        np.savez_compressed(path, video=np.array(name), split=np.array(split), **arrays)
        written.append(path)
        log(f"{path}: {len(arrays['warped'])} pairs")
    return written


def build_cache(videos: list[Path], out: Path, cfg: PairConfig | None = None, meshes: Path | None = None,
                splits: tuple[str, ...] = ("test", "train"), log: Callable[[str], None] = lambda s: None) -> list[Path]:
    """Write pair shards `out/VIDEO_{split}_NNN.npz` for talking-face videos (what `reenact train refiner --data
    VIDEOS` needs before `train_refiner`). `meshes`: optional npz of (T, 478, 3) arrays keyed by file name with '.'
    replaced by '_'; otherwise every video is tracked here."""
    cfg = cfg or PairConfig()
    out.mkdir(parents=True, exist_ok=True)
    cache = np.load(meshes) if meshes else None
    written: list[Path] = []
    for video in videos:
        key = video.name.replace(".", "_")
        points = cache[key] if cache is not None and key in cache.files else track(video)
        written += write_shards(video.name, lambda v=video: _frames(v), points, out, cfg, splits, log)
    return written


FLIP = [ARKIT52.index(n.replace("Left", "#").replace("Right", "Left").replace("#", "Right"))
        if ("Left" in n or "Right" in n) else i for i, n in enumerate(ARKIT52)]


def sampling_weights(hardness: np.ndarray, still: np.ndarray, stills: float = 0.0) -> np.ndarray:
    """(N,) probabilities from (N,) warp errors on mouth and eyes and (N,) bool round-trip-still flags: half uniform,
    half proportional to the error; with `stills` > 0 and both kinds present, that share of the mass goes to the
    still pairs, the rest to video pairs (most still pairs are easy, so by error alone they would hardly be drawn)."""
    def weights(h: np.ndarray) -> np.ndarray:
        return 0.5 / len(h) + 0.5 * h / max(float(h.sum()), 1e-6)

    if not (0 < stills < 1 and still.any() and not still.all()):
        return weights(hardness)
    p = np.zeros(len(hardness))
    p[still] = stills * weights(hardness[still])
    p[~still] = (1 - stills) * weights(hardness[~still])
    return p


class PairSet:
    """In-memory pairs as uint8 tensors, with target ARKit from the Estimator and dlib chip affines per pair."""

    def __init__(self, arrays: dict[str, np.ndarray], size: int = CROP_SIZE, face_fraction: float = FACE_FRACTION,
                 device: torch.device | None = None) -> None:
        from reenact.estimate import Estimator

        device = device or torch.device("cpu")
        self.n = len(arrays["warped"])
        img = lambda k: torch.from_numpy(arrays[k]).permute(0, 3, 1, 2).contiguous()
        self.warped, self.target, self.source = img("warped"), img("target"), img("source")
        self.masks = torch.from_numpy(arrays["masks"])[:, None]  # (N, 1, S, S) uint8 bits
        self.params = torch.from_numpy(Estimator().estimate(arrays["points"])[:, :52]).float()  # (N, 52)
        pts = to_crop_points(arrays["points"], crop_matrices(arrays["points"], size, face_fraction))  # (N, 478, 2)
        if not (arrays["masks"] & MASK_INNER).any():  # shards made before the inner-mouth bit existed
            self.masks = torch.from_numpy(np.stack([region_masks(p, size) for p in pts]))[:, None]
        self.chips = torch.tensor(np.stack([np.linalg.inv(np.vstack([dlib_chip_affine(mesh_to_dlib5(p)), [0, 0, 1]]))[:2]
                                            for p in pts]), dtype=torch.float32)  # (N, 2, 3) chip px -> crop px
        self.size, self.device = size, device
        # How much the warp misses on mouth and eyes, per pair: training samples hard pairs more often (most pairs
        # need no repainting at all, and those teach the refiner little).
        moving = (self.masks & (MASK_MOUTH | MASK_EYES)) > 0
        err = torch.stack([(self.warped[i].float() - self.target[i].float()).abs().mean(0)[moving[i, 0]].mean()
                           for i in range(self.n)])
        self.hardness = torch.nan_to_num(err, nan=0.0).numpy()
        self.still = np.asarray(arrays.get("still", np.zeros(self.n, bool)), bool)  # (N,) round-trip photo pairs

    def sampling_weights(self, stills: float = 0.0) -> np.ndarray:
        """(N,) probabilities of drawing each pair (see `sampling_weights`)."""
        return sampling_weights(self.hardness, self.still, stills)

    def batch(self, idx: np.ndarray, augment: bool, rng: np.random.Generator | None = None, jitter: float = 0.0,
              identity: float = 0.0) -> dict[str, torch.Tensor]:
        """jitter > 0: also a random colour matrix (I + N(0, jitter)), contrast and gamma per pair, the same on input
        and target. Three people's skin is all the clips show; without it the generator learns their colours and
        tints a stranger's face toward them."""
        dev = self.device
        to = lambda t: t[idx].to(dev).float() / 127.5 - 1
        b = {"warped": to(self.warped), "target": to(self.target), "source": to(self.source), "masks": self.masks[idx].to(dev),
             "params": self.params[idx].to(dev), "chips": self.chips[idx].to(dev)}
        if identity > 0 and rng is not None:
            # "Nothing to change" samples: the real target frame as input, with its own parameters, must come back as
            # it is. At run time every part of the face the expression does not move is exactly that case.
            same = torch.from_numpy(rng.random(len(idx)) < identity).to(dev)[:, None, None, None]
            b["warped"] = torch.where(same, b["target"], b["warped"])
            b["source"] = torch.where(same, b["target"], b["source"])
        if augment and rng is not None:
            flip = torch.from_numpy(rng.random(len(idx)) < 0.5).to(dev)
            for k in ("warped", "target", "source", "masks"):
                b[k] = torch.where(flip[:, None, None, None], b[k].flip(-1), b[k])
            b["params"] = torch.where(flip[:, None], b["params"][:, FLIP], b["params"])
            mirror = torch.tensor([[-1.0, 0, self.size - 1], [0, 1, 0], [0, 0, 1]], device=dev)
            chips = torch.cat([b["chips"], torch.tensor([0, 0, 1.0], device=dev).expand(len(idx), 1, 3)], 1)
            b["chips"] = torch.where(flip[:, None, None], (mirror @ chips)[:, :2], b["chips"])
            gain = torch.from_numpy(rng.uniform(0.8, 1.2, (len(idx), 1, 1, 1)) * rng.uniform(0.93, 1.07, (len(idx), 3, 1, 1)))
            bias = torch.from_numpy(rng.uniform(-0.1, 0.1, (len(idx), 1, 1, 1)))
            for k in ("warped", "target", "source"):  # the same photometric change on inputs and target
                b[k] = ((b[k] + 1) * gain.to(dev).float() - 1 + bias.to(dev).float()).clamp(-1, 1)
            if jitter > 0:
                n = len(idx)
                mix = torch.from_numpy(np.eye(3) + rng.normal(0, jitter, (n, 3, 3))).float().to(dev)  # (B, 3, 3)
                gamma = torch.from_numpy(np.exp(rng.uniform(-2 * jitter, 2 * jitter, (n, 1, 1, 1)))).float().to(dev)
                for k in ("warped", "target", "source"):
                    x = torch.einsum("bij,bjhw->bihw", mix, (b[k] + 1) / 2).clamp(0, 1) ** gamma
                    b[k] = (x * 2 - 1).clamp(-1, 1)
        return b
