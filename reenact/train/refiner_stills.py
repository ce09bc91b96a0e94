"""Round-trip training pairs for the refiner from still photos: many people without any video of them.

Three talking-face videos are three people, and a refiner trained on them learns those people's mouths, not mouths.
A still photo I (mesh p, its own expression s) gives pairs too, with the warp in a loop (the seeds' cycle
reconstruction on unpaired images, GANimation eq. 5):

    W1 = render(I, q)          the renderer's own rig + warp + mouth paint, to another expression q  (mesh q_pts)
    W2 = warp(W1, q_pts -> p)  back to the photo's own mesh, mouth painted again
    pair: input W2, target I (both cut with p's crop), target parameters s

What the round trip lost must come back (teeth and lip texture of an open mouth that q closed and the way back
painted; lips squeezed or stretched and resampled twice) and everything it kept must stay exactly as it is: on
faces no training video shows. The warp is not differentiable per pair, so unlike GANimation's cycle the refiner
runs only on the way back. The shard format is refiner_data's (split "train"; `video` = the photo's name;
`kind` = "still", which the trainer's `--stills` share reads).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reenact.emotion import EMOTIONS, emotion_to_arkit
from reenact.face.pose import estimate_pose
from reenact.train.refiner_data import PairConfig, render_pairs


@dataclass
class StillConfig:
    per_face: int = 24  # expressions q per face
    emotion_share: float = 0.3  # of them emotion prototypes at a random intensity, the rest rows of the bank
    min_face: float = 60.0  # px: smaller faces are upsampled into the crop and would teach blur
    max_yaw: float = 35.0  # degrees: near-profile faces warp badly and are rare at run time
    max_size: int = 1280  # px: long side, the size `reenact.analysis.load_source` gives the renderer
    seed: int = 0


def expressions(bank: np.ndarray, n: int, rng: np.random.Generator, emotion_share: float) -> np.ndarray:
    """(n, 52) target expressions: real talking-face rows of `bank` (M, 52) and discrete-emotion prototypes (what
    `reenact edit --emotion` asks for) at intensities 0.4-1."""
    k = int(round(n * emotion_share))
    rows = bank[rng.integers(0, len(bank), n - k)]
    emo = [emotion_to_arkit(str(rng.choice([e for e in EMOTIONS if e != "neutral"])), float(rng.uniform(0.4, 1.0)))
           for _ in range(k)]
    return np.concatenate([rows, np.array(emo, np.float32).reshape(k, -1)[:, :52]]).astype(np.float32)


def round_trip(image: np.ndarray, points: np.ndarray, shapes: np.ndarray, targets: np.ndarray, rig,
               cfg: PairConfig | None = None) -> dict[str, np.ndarray]:
    """One face: image (H, W, 3) uint8, points (478, 3), shapes (52,) its ARKit, targets (K, 52) -> K pairs as
    refiner_data's shard arrays (warped = W2, target = the photo, source = W1, masks and points = the photo's)."""
    from reenact.render.renderer import FaceRenderer

    cfg = cfg or PairConfig()
    renderer = FaceRenderer(image, points, shapes, rig)
    frames, moved = renderer.render_with_points(targets)  # (K, H, W, 3) uint8 W1, (K, 478, 3) q_pts
    parts = [render_pairs(np.ascontiguousarray(w1), q_pts, [image], points[None], cfg) for w1, q_pts in zip(frames, moved)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def build_stills(photos: list[Path], out: Path, bank: np.ndarray, models, cfg: StillConfig | None = None,
                 pair_cfg: PairConfig | None = None, log: Callable[[str], None] = lambda s: None) -> list[Path]:
    """Write `out/stills_NNN.npz` shards (split "train") of round-trip pairs for every usable face of `photos`.

    bank: (M, 52) real target expressions (e.g. the estimator on the training videos' meshes). models: a
    reenact.analysis.Models (analyzer, estimator, rig). Faces smaller than `min_face` px or turned further than
    `max_yaw` are skipped (and logged)."""
    from reenact.io.image import read_image

    cfg = cfg or StillConfig()
    rng = np.random.default_rng(cfg.seed)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for n, photo in enumerate(photos):
        image = read_image(photo, max_side=cfg.max_size)  # larger photos never reach the renderer
        faces = models.analyzer.analyze_all(image, name=str(photo), both_ranges=True)  # group photos too
        parts = []
        for f, lm in enumerate(faces):
            width, yaw = float(np.ptp(lm.points[:468, 0])), estimate_pose(lm.points).yaw
            if width < cfg.min_face or abs(yaw) > cfg.max_yaw:
                log(f"{photo.name} face {f}: skipped (width {width:.0f} px, yaw {yaw:.0f} deg)")
                continue
            shapes = models.estimator.estimate(lm.points)[0, :52]
            targets = expressions(bank, cfg.per_face, rng, cfg.emotion_share)
            parts.append(round_trip(image, lm.points, shapes, targets, models.rig, pair_cfg))
        if not parts:
            continue
        arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        arrays["pairs"] = np.zeros((len(arrays["warped"]), 2), np.int32)  # no frame indices: one photo
        path = out / f"stills_{n:03d}.npz"
        np.savez_compressed(path, video=np.array(photo.name), split=np.array("train"), kind=np.array("still"), **arrays)
        written.append(path)
        log(f"{path}: {photo.name}, {len(parts)} face(s), {len(arrays['warped'])} pairs")
    return written
