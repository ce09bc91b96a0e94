"""Face-identity embedding and the per-frame identity check.

Three embedders share one interface (`Embedder`); `"default"` names DEFAULT_EMBEDDER:

- `"mobilefacenet"`: an ArcFace-trained MobileFaceNet (sirius-ai MobileFaceNet_TF, Apache-2.0), ported to
  PyTorch and shipped in weights/ (reenact/identity_net.py, tools/convert_mobilefacenet.py). Its input is the
  ArcFace 112x112 chip aligned from 5 points (eye centres, nose tip, mouth corners; reenact/identity_arcface.py).
- `"dlib"`: dlib's face-recognition ResNet (CC0), ported to PyTorch and shipped in weights/ (see
  reenact/identity_net.py, tools/convert_dlib.py). Its input is dlib's 150x150 "face chip", which dlib aligns
  from 5 landmarks (two corners of each eye and the base of the nose); `dlib_chip` reproduces that alignment and
  `mesh_to_dlib5` picks those 5 points from our 478-point MediaPipe-order mesh.
- `"arcface[:PATH]"`: insightface's recognition ONNX (e.g. buffalo_l/w600k_r50.onnx), when the user has it
  (reenact/identity_arcface.py).

Similarity is the cosine of the L2-normalised embeddings, in [-1, 1]. Each embedder's threshold and its measured
false-accept / false-reject rates are in docs/identity.md (tools/calibrate_identity.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from reenact.device import inference
from reenact.errors import InputError, MediaError, NoFaceError
from reenact.identity_arcface import ARCFACE_SIZE, arcface5_batch, arcface_affines, invert_affines

# dlib's get_face_chip_details() 5-point template (image_transforms/interpolation.h), in the unit square of an
# unpadded chip, order: image-right eye outer, inner; image-left eye outer, inner; base of the nose.
DLIB_TEMPLATE_5 = np.array(
    [[0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677], [0.1205750620789, 0.2137274526848],
     [0.3340850613712, 0.2290642403242], [0.4901123135679, 0.6277975316475]]
)
# The same 5 points on the MediaPipe 478 mesh (vertex indices in MediaPipe order). MediaPipe's "left"/"right" are
# the subject's, dlib's 5-point order is by image side. Measured against dlib's shape predictor on the fixture faces
# (tests/fixtures/identity): mean distance 1.3-2.8 % of the outer-eye-corner distance (docs/identity.md).
MESH_DLIB5 = (263, 362, 33, 133, 2)  # subject's left eye outer, inner; right eye outer, inner; subnasale
DLIB_CHIP_SIZE = 150
DLIB_PADDING = 0.25  # dlib's compute_face_descriptor default
# Cosine threshold of the dlib embedder when its contract has none: see docs/identity.md for the measurement.
DEFAULT_THRESHOLD = 0.925
# What `--identity default` runs: the embedder that separated the calibration pairs best (docs/identity.md).
DEFAULT_EMBEDDER = "mobilefacenet"
# Cosine threshold of the MobileFaceNet embedder when its contract has none (docs/identity.md).
MOBILEFACENET_THRESHOLD = 0.52
EMBEDDERS = ("mobilefacenet", "dlib", "arcface[:PATH]")

PointsFn = Callable[[np.ndarray], Any]


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (2, 3) mapping src (N, 2) onto dst (N, 2) (dlib's find_similarity_transform)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var_s = (s**2).sum() / len(src)
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    scale = (sig * np.diag(sign)).sum() / var_s
    m = scale * rot
    return np.concatenate([m, (mu_d - m @ mu_s)[:, None]], 1)


def mesh_to_dlib5(points: np.ndarray) -> np.ndarray:
    """(478|468, 2+) MediaPipe-order mesh in pixels -> (5, 2) points in dlib's 5-point order."""
    points = np.asarray(points, np.float64)
    if points.ndim != 2 or points.shape[0] < 468 or points.shape[1] < 2:
        raise InputError(f"Expected a (478, 2|3) face mesh, got shape {points.shape}.")
    return points[list(MESH_DLIB5), :2]


def dlib_chip_affine(points5: np.ndarray, size: int = DLIB_CHIP_SIZE, padding: float = DLIB_PADDING) -> np.ndarray:
    """Affine (2, 3) from chip pixel (x, y, 1) to image pixel, exactly as dlib's chip_details + extract_image_chip.

    dlib fits a similarity from the padded template to the points, then samples a rectangle of size*scale centred
    on the transformed chip centre, mapping chip pixel 0 and size-1 to its two edges (so its effective scale is
    (size*scale - 1)/(size - 1), not scale).
    """
    template = (padding + DLIB_TEMPLATE_5) / (2 * padding + 1) * size
    t = umeyama(template, points5)
    m = t[:, :2]
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    rot = m / scale
    centre = m @ np.array([size / 2.0, size / 2.0]) + t[:, 2]
    k = (size * scale - 1.0) / (size - 1.0)
    lin = rot * k
    return np.concatenate([lin, (centre - lin @ np.full(2, (size - 1) / 2.0))[:, None]], 1)


def warp_chip(rgb: np.ndarray, affine: np.ndarray, size: int, truncate: bool = True) -> np.ndarray:
    """Sample a (size, size, 3) uint8 chip from `rgb` through `affine` (chip px -> image px), bilinear.

    Like dlib, a chip much smaller than its source region is sampled from an image pyramid (5-tap Gaussian,
    halving) so the result is not aliased. `truncate`: dlib's float -> uint8 truncation; False rounds.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise InputError(f"Expected an RGB uint8 image (H, W, 3), got {rgb.dtype} {rgb.shape}.")
    affine = np.asarray(affine, np.float64).copy()
    step = float(np.hypot(affine[0, 0], affine[1, 0]))  # source pixels per chip pixel
    # dlib halves while the next level's rectangle still has more pixels than the chip: (step*(size-1)+2)/2 > size.
    levels = 0
    while (step * (size - 1) + 2) / 2 > size:
        step, levels = step / 2, levels + 1
    # Work on the region the chip needs (plus a margin for the filters), so a huge photo is not processed whole.
    corners = affine @ np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], float).T
    margin = 4 * 2**levels + 4
    x0, y0 = np.maximum(np.floor(corners.min(1) - margin).astype(int), 0)
    x1, y1 = np.floor(corners.max(1) + margin).astype(int)
    x1, y1 = min(x1, rgb.shape[1]), min(y1, rgb.shape[0])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros((size, size, 3), np.uint8)  # the face lies outside the image: all black, as dlib
    img = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    affine[:, 2] -= (x0, y0)
    for _ in range(levels):
        if min(img.shape[:2]) < 8:
            break
        img = cv2.pyrDown(img)  # 5-tap Gaussian, level pixel q <- source pixel 2q
        affine /= 2.0
    # dlib interpolates in float and truncates to uint8; doing the same makes our chips identical to its chips.
    chip = cv2.warpAffine(img.astype(np.float32), affine, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return np.clip(np.floor(chip) if truncate else np.rint(chip), 0, 255).astype(np.uint8)


def dlib_chip(rgb: np.ndarray, points5: np.ndarray, size: int = DLIB_CHIP_SIZE, padding: float = DLIB_PADDING) -> np.ndarray:
    """dlib's `get_face_chip(img, shape, size, padding)` from its 5 points (5, 2): (size, size, 3) uint8."""
    return warp_chip(rgb, dlib_chip_affine(np.asarray(points5, np.float64)[:, :2], size, padding), size)


def warp_chips_torch(frames: torch.Tensor, affines: torch.Tensor, size: int) -> torch.Tensor:
    """Batched, on-device version of `warp_chip` for frames already on the GPU: no pyramid, bilinear.

    frames (B, 3, H, W) float, affines (B, 2, 3) chip px -> image px; returns (B, 3, size, size).
    """
    b, _, h, w = frames.shape
    ys, xs = torch.meshgrid(torch.arange(size, device=frames.device, dtype=frames.dtype),
                            torch.arange(size, device=frames.device, dtype=frames.dtype), indexing="ij")
    chip = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(1, -1, 3)  # (1, S*S, 3)
    img = chip @ affines.to(frames).transpose(1, 2)  # (B, S*S, 2) image px
    grid = torch.stack([(img[..., 0] + 0.5) / w * 2 - 1, (img[..., 1] + 0.5) / h * 2 - 1], -1)
    out = F.grid_sample(frames, grid.view(b, size, size, 2), mode="bilinear", padding_mode="zeros", align_corners=False)
    return out


class Embedder(Protocol):
    """Face-identity embedder: aligned chips in, unit-norm embeddings out."""

    name: str
    threshold: float
    chip_size: int
    device: torch.device

    def align(self, rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 frame + (478, 2|3) mesh in pixels -> (chip, chip, 3) uint8 aligned chip."""
        ...

    def align_batch(self, frames: list[np.ndarray], points: list[np.ndarray]) -> np.ndarray:
        """`align` for a batch of frames and their meshes (or 5 points each) -> (B, chip, chip, 3) uint8."""
        ...

    def embed(self, chips: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float RGB in [0, 255] -> (B, D) unit-norm float32 on `device`."""
        ...


class DlibEmbedder:
    """dlib's ResNet on dlib's 5-point chip, 128-d (shipped, CC0; `--identity dlib`)."""

    chip_size = DLIB_CHIP_SIZE

    def __init__(self, device: torch.device = torch.device("cpu"), directory: Any = None) -> None:
        from reenact.weights import load_model

        self.device = torch.device(device)
        # channels_last: oneDNN's fastest conv layout on CPU (about 1.5-2x here) and tensor-core friendly on CUDA.
        self.net = load_model("dlib_face_recognition", self.device, directory).float().to(memory_format=torch.channels_last)
        contract = self.net.contract  # type: ignore[attr-defined]
        self.threshold = float(contract.extra.get("threshold", DEFAULT_THRESHOLD))
        self.name = "dlib-resnet-v1"

    def align(self, rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, np.float64)
        p5 = points[:, :2] if points.shape[0] == 5 else mesh_to_dlib5(points)
        return dlib_chip(rgb, p5)

    def align_batch(self, frames: list[np.ndarray], points: list[np.ndarray]) -> np.ndarray:
        return np.stack([self.align(f, p) for f, p in zip(frames, points)])

    def embed(self, chips: torch.Tensor) -> torch.Tensor:
        with inference(self.device):
            out = self.net(chips.to(self.device, torch.float32).contiguous(memory_format=torch.channels_last))
        return F.normalize(out.float(), dim=1)


def amx_available() -> bool:
    """Whether this CPU has AMX tiles (oneDNN's fast bf16 matrix units)."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private in torch 2.x: absent means unknown -> no
    return bool(probe()) if callable(probe) else False


class MobileFaceNetEmbedder:
    """ArcFace-trained MobileFaceNet on the ArcFace 5-point 112x112 chip, 192-d (shipped, Apache-2.0 code).

    On a CPU with AMX it runs under bf16 autocast: its depthwise / 1x1 layers and PReLUs are memory-bound, and
    bf16 halves the traffic (7 -> 3 ms/face in batches of 16 here, so the per-frame check costs no more than
    dlib's); embeddings stay within cosine 0.999 of fp32 (tests/test_identity_mobilefacenet.py). Elsewhere fp32,
    as bf16 without AMX is emulated and slower. `bf16` forces either.
    """

    chip_size = ARCFACE_SIZE

    def __init__(self, device: torch.device = torch.device("cpu"), directory: Any = None,
                 bf16: bool | None = None) -> None:
        from reenact.weights import load_model

        self.device = torch.device(device)
        self.bf16 = (self.device.type == "cpu" and amx_available()) if bf16 is None else bf16
        self.net = load_model("mobilefacenet", self.device, directory).float().to(memory_format=torch.channels_last)
        contract = self.net.contract  # type: ignore[attr-defined]
        self.threshold = float(contract.extra.get("threshold", MOBILEFACENET_THRESHOLD))
        self.name = "mobilefacenet"

    def chip_affines(self, points: list[np.ndarray]) -> np.ndarray:
        """(B, 2, 3) chip px -> image px: insightface's similarity fit, one batched SVD for the whole batch."""
        return invert_affines(arcface_affines(arcface5_batch(points), self.chip_size))

    def align(self, rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
        return self.align_batch([rgb], [points])[0]

    def align_batch(self, frames: list[np.ndarray], points: list[np.ndarray]) -> np.ndarray:
        # insightface's geometry, sampled like dlib's chips (image pyramid) so a large face in a 1280 px photo is
        # not aliased down to 112 px; rounded, not truncated, as cv2's own uint8 warp (norm_crop) does.
        affines = self.chip_affines(points)
        return np.stack([warp_chip(f, a, self.chip_size, truncate=False) for f, a in zip(frames, affines)])

    def embed(self, chips: torch.Tensor) -> torch.Tensor:
        x = chips.to(self.device, torch.float32).contiguous(memory_format=torch.channels_last)
        with inference(self.device), torch.autocast("cpu", torch.bfloat16, enabled=self.bf16 and self.device.type == "cpu"):
            out = self.net(x)
        return F.normalize(out.float(), dim=1)


def load_embedder(spec: str = "default", device: torch.device = torch.device("cpu")) -> Embedder:
    """`"default"` (DEFAULT_EMBEDDER), `"mobilefacenet"` or `"dlib"` (shipped), or `"arcface[:PATH]"` (insightface
    ONNX the user has)."""
    spec = (spec or "default").strip()
    if spec == "default":
        spec = DEFAULT_EMBEDDER
    if spec == "dlib":
        return DlibEmbedder(device)
    if spec == "mobilefacenet":
        return MobileFaceNetEmbedder(device)
    if spec == "arcface" or spec.startswith("arcface:"):
        from reenact.identity_arcface import ArcFaceEmbedder

        return ArcFaceEmbedder(spec.partition(":")[2] or None, device)
    raise InputError(f"Unknown identity embedder {spec!r}: use {' | '.join(EMBEDDERS)} or default ({DEFAULT_EMBEDDER}).")


def embed_faces(embedder: Embedder, rgb_frames: list[np.ndarray], points: list[np.ndarray], batch: int = 64) -> np.ndarray:
    """Align each face with its mesh and embed in batches: (N, D) unit-norm float32."""
    if len(rgb_frames) != len(points):
        raise InputError(f"{len(rgb_frames)} frames but {len(points)} landmark sets.")
    out = []
    for i in range(0, len(rgb_frames), batch):
        chips = embedder.align_batch(rgb_frames[i : i + batch], points[i : i + batch])
        x = torch.from_numpy(chips).permute(0, 3, 1, 2).float()  # (B, 3, S, S)
        out.append(embedder.embed(x).cpu().numpy())
    return np.concatenate(out, 0) if out else np.zeros((0, 0), np.float32)


@dataclass
class IdentityReport:
    """Per-frame cosine similarity to the source and pass/fail at `threshold`."""

    similarities: list[float]
    threshold: float
    passed: list[bool] = field(default_factory=list)
    embedder: str = ""

    def __post_init__(self) -> None:
        if not self.passed:
            self.passed = [s >= self.threshold for s in self.similarities]

    @property
    def ok(self) -> bool:
        return bool(self.passed) and all(self.passed)

    def summary(self) -> dict[str, Any]:
        """What goes into `--report` JSON: mean, min, n, n_below, frames_below (indices), threshold, embedder."""
        sims = np.asarray(self.similarities, np.float64)
        below = [i for i, p in enumerate(self.passed) if not p]
        return {
            "embedder": self.embedder,
            "threshold": round(self.threshold, 4),
            "n": int(sims.size),
            "mean": round(float(sims.mean()), 4) if sims.size else None,
            "min": round(float(sims.min()), 4) if sims.size else None,
            "n_below": len(below),
            "frames_below": below,
        }


class IdentityChecker:
    """Holds the source embedding; scores output frames against it."""

    def __init__(self, embedder: Embedder, source_rgb: np.ndarray, source_points: np.ndarray,
                 threshold: float | None = None) -> None:
        from reenact.limits import check

        self.embedder = embedder
        # checked here, the one place every caller (drive, batch, `identity`, the library) passes through: a NaN
        # threshold would silently pass every frame, -1 call anyone the same person
        self.threshold = float(embedder.threshold if threshold is None else check("threshold", threshold))
        self.source = torch.from_numpy(embed_faces(embedder, [source_rgb], [source_points])[0])  # (D,)

    def check(self, frames: list[np.ndarray], points: list[np.ndarray]) -> np.ndarray:
        """(N,) cosine similarity of each frame's face to the source."""
        if not frames:
            return np.zeros(0, np.float32)
        return embed_faces(self.embedder, frames, points) @ self.source.numpy()

    def check_chips(self, chips: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) already-aligned chips in [0, 255] (e.g. from `warp_chips_torch` on the GPU) -> (B,)."""
        emb = self.embedder.embed(chips)
        return emb @ self.source.to(emb.device)

    def failing(self, similarities: np.ndarray | list[float]) -> np.ndarray:
        """Boolean mask of frames below the threshold: the renderer's fallback softens and re-renders these."""
        return np.asarray(similarities, np.float64) < self.threshold

    def report(self, similarities: np.ndarray | list[float]) -> IdentityReport:
        return IdentityReport([float(s) for s in similarities], self.threshold, embedder=self.embedder.name)


def _points_of(found: Any) -> np.ndarray | None:
    """Accept an analyzer's result as an array or an object with `.points` (e.g. FaceLandmarks)."""
    if found is None:
        return None
    pts = getattr(found, "points", found)
    return np.asarray(pts, np.float64)


def compare(source_rgb: np.ndarray, target_frames: Iterable[np.ndarray], analyzer: PointsFn, embedder: Embedder,
            threshold: float | None = None, batch: int = 32, source_points: np.ndarray | None = None) -> IdentityReport:
    """`reenact identity A B`: similarity of every target frame (photo = one frame) to the source face.

    `analyzer(rgb)` returns the face mesh (478, 2|3) in pixels or an object with `.points` (e.g.
    `reenact.face.FaceAnalyzer().analyze`), and None or NoFaceError / InputError when the frame has no usable face.
    Target frames without a face are scored -1 (and so fail); the source must have one (its error propagates).
    `source_points` skips the analyzer for the source (e.g. when `analyzer` is a video tracker).
    """
    src = source_points if source_points is not None else _points_of(analyzer(source_rgb))
    if src is None:
        raise NoFaceError("No face found in the source image; use a photo with one clearly visible face.")
    checker = IdentityChecker(embedder, source_rgb, src, threshold)
    sims: list[float] = []
    frames: list[np.ndarray] = []
    pts: list[np.ndarray] = []
    slots: list[int] = []

    def flush() -> None:
        for slot, s in zip(slots, checker.check(frames, pts)):
            sims[slot] = float(s)
        frames.clear()
        pts.clear()
        slots.clear()

    for rgb in target_frames:
        try:
            p = _points_of(analyzer(rgb))
        except MediaError:
            raise
        except InputError:  # NoFaceError, or a face too small / cut off in this frame: count it as missing
            p = None
        sims.append(-1.0)  # stays -1 (fails) when the frame has no face
        if p is not None:
            frames.append(rgb)
            pts.append(p)
            slots.append(len(sims) - 1)
        if len(frames) >= batch:
            flush()
    flush()
    if not sims:
        raise InputError("The target has no frames to compare.")
    if all(s == -1.0 for s in sims):
        raise NoFaceError("No face found in any target frame; check that the target shows a face.")
    return checker.report(sims)


__all__ = [
    "DLIB_TEMPLATE_5", "MESH_DLIB5", "DEFAULT_EMBEDDER", "DEFAULT_THRESHOLD", "EMBEDDERS", "Embedder", "DlibEmbedder",
    "IdentityChecker", "MobileFaceNetEmbedder",
    "IdentityReport", "compare", "dlib_chip", "dlib_chip_affine", "embed_faces", "load_embedder", "mesh_to_dlib5",
    "umeyama", "warp_chip", "warp_chips_torch",
]
