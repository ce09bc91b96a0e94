"""ArcFace backend: insightface's recognition ONNX (e.g. buffalo_l/w600k_r50.onnx) run with onnxruntime.

insightface's model packs are licensed for non-commercial research only and are on no package registry, so
reenact never ships or downloads them: this backend runs only when the user already has a pack (insightface
downloads it into ~/.insightface/models/ on first use) or passes the .onnx path: `--identity arcface[:PATH]`.
Install the runtime with `pip install reenact[arcface]` (onnxruntime; onnxruntime-gpu for CUDA).

Alignment is insightface's `face_align.norm_crop`: a least-squares similarity from 5 points (eye centres, nose
tip, mouth corners) onto its fixed 112x112 template, bilinear warp. The 5 points come from our mesh.
Input normalisation is insightface's for these models: RGB, (x - 127.5) / 127.5.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from reenact.errors import InputError, WeightsError

# insightface.utils.face_align.arcface_dst: image-left eye, image-right eye, nose tip, image-left and image-right
# mouth corner, in a 112x112 chip.
ARCFACE_TEMPLATE_5 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)
# From the MediaPipe mesh, matching the usual 68-point -> insightface mapping (eye = mean of the eye contour,
# nose tip = point 30, mouth corners = 48 / 54), measured against dlib's 68-point predictor on the fixture faces:
# eye centre = mean of the two corners and the mid upper / lower lid (gaze-independent, unlike the iris; within
# 1 % of the eye distance), nose tip = vertex 4 (3 %; vertex 1 sits 9 % lower), mouth corners 61 / 291 (2 %).
MESH_EYES = ((33, 133, 159, 145), (362, 263, 386, 374))  # subject's right eye (image left), left eye (image right)
MESH_NOSE_TIP = 4
MESH_MOUTH_CORNERS = (61, 291)  # image left, image right
ARCFACE_SIZE = 112
# Cosine threshold for w600k_r50-class models. Not measured here (no pack can be shipped or fetched); it is the
# commonly used verification operating point for buffalo_l. Override with --threshold.
ARCFACE_THRESHOLD = 0.30
KNOWN_MODELS = ("w600k_r50.onnx", "glintr100.onnx", "w600k_mbf.onnx")
LICENCE_NOTE = ("insightface model packs (e.g. buffalo_l) are for non-commercial research use only; reenact does "
                "not ship or download them")


def mesh_to_arcface5(points: np.ndarray) -> np.ndarray:
    """(478|468, 2+) MediaPipe-order mesh in pixels -> (5, 2) in insightface's 5-point order."""
    p = np.asarray(points, np.float64)
    if p.ndim != 2 or p.shape[0] < 468 or p.shape[1] < 2:
        raise InputError(f"Expected a (478, 2|3) face mesh, got shape {p.shape}.")
    p = p[:, :2]
    right_eye, left_eye = (p[list(idx)].mean(0) for idx in MESH_EYES)
    return np.stack([right_eye, left_eye, p[MESH_NOSE_TIP], p[MESH_MOUTH_CORNERS[0]], p[MESH_MOUTH_CORNERS[1]]])


def umeyama_batch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """`reenact.identity.umeyama` for a batch: (B, N, 2) points onto one (N, 2) template -> (B, 2, 3).

    One batched SVD instead of a Python loop: the identity thread aligns a whole render batch at once.
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(1, keepdims=True), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    n = src.shape[1]
    var_s = (s**2).sum((1, 2)) / n  # (B,)
    cov = np.einsum("nj,bnk->bjk", d, s) / n  # (B, 2, 2) = d^T s
    u, sig, vt = np.linalg.svd(cov)
    flip = np.linalg.det(u) * np.linalg.det(vt) < 0  # reflection: flip the smallest singular direction
    sign = np.ones((len(src), 2))
    sign[flip, 1] = -1
    rot = u @ (sign[:, :, None] * vt)
    scale = (sig * sign).sum(1) / var_s
    m = scale[:, None, None] * rot
    t = mu_d - np.einsum("bjk,bk->bj", m, mu_s[:, 0])
    return np.concatenate([m, t[:, :, None]], 2)


def arcface_affines(points5: np.ndarray, size: int = ARCFACE_SIZE) -> np.ndarray:
    """insightface's estimate_norm for a batch: (B, 5, 2) points -> (B, 2, 3) similarities, image px -> chip px."""
    template = ARCFACE_TEMPLATE_5 * (size / 112.0)
    return umeyama_batch(np.asarray(points5, np.float64)[..., :2], template)


def arcface_affine(points5: np.ndarray, size: int = ARCFACE_SIZE) -> np.ndarray:
    """insightface's estimate_norm: similarity (2, 3) from image px to chip px."""
    return arcface_affines(np.asarray(points5, np.float64)[None], size)[0]


def invert_affines(affines: np.ndarray) -> np.ndarray:
    """(B, 2, 3) -> (B, 2, 3) inverse affine maps (e.g. chip px -> image px, what `warp_chip` takes)."""
    lin = np.linalg.inv(affines[:, :, :2])
    return np.concatenate([lin, -lin @ affines[:, :, 2:]], 2)


def arcface5_batch(points: list[np.ndarray] | np.ndarray) -> np.ndarray:
    """Each face's 5 ArcFace points: a list of (478|468, 2+) meshes or (5, 2+) points -> (B, 5, 2)."""
    return np.stack([np.asarray(p, np.float64)[:, :2] if len(p) == 5 else mesh_to_arcface5(p) for p in points])


def arcface_chip(rgb: np.ndarray, points5: np.ndarray, size: int = ARCFACE_SIZE) -> np.ndarray:
    """insightface's norm_crop on an RGB image: (size, size, 3) uint8."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise InputError(f"Expected an RGB uint8 image (H, W, 3), got {rgb.dtype} {rgb.shape}.")
    return cv2.warpAffine(rgb, arcface_affine(points5, size), (size, size), borderValue=(0, 0, 0))


def find_model(path: str | os.PathLike[str] | None = None) -> Path:
    """The recognition .onnx: PATH (file or pack folder), $REENACT_ARCFACE, or the user's insightface folder."""
    home = Path(os.environ.get("INSIGHTFACE_HOME", Path.home() / ".insightface")).expanduser()
    candidates: list[Path] = []
    for p in (path, os.environ.get("REENACT_ARCFACE")):
        if p:
            candidates.append(Path(p).expanduser())
    if path is None:
        candidates += [home / "models" / pack for pack in ("buffalo_l", "antelopev2")]
    for c in candidates:
        if c.is_file():
            return c
        if c.is_dir():
            for name in KNOWN_MODELS:
                if (c / name).is_file():
                    return c / name
    where = str(path) if path else f"{home / 'models' / 'buffalo_l'} (or $REENACT_ARCFACE)"
    raise WeightsError(
        f"No insightface recognition model found at {where}; get a pack such as buffalo_l through insightface "
        f"itself and pass --identity arcface:PATH/w600k_r50.onnx ({LICENCE_NOTE})."
    )


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise WeightsError("--identity arcface needs onnxruntime: pip install 'reenact[arcface]'.") from exc
    return onnxruntime


class ArcFaceEmbedder:
    """insightface recognition ONNX behind the `Embedder` interface (512-d, unit norm)."""

    chip_size = ARCFACE_SIZE

    def __init__(self, path: str | os.PathLike[str] | None = None, device: torch.device = torch.device("cpu"),
                 threshold: float = ARCFACE_THRESHOLD, mean: float = 127.5, std: float = 127.5) -> None:
        ort = _onnxruntime()
        self.path = find_model(path)
        self.device = torch.device(device)
        providers = ["CPUExecutionProvider"]
        if self.device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": self.device.index or 0}))
        try:
            self.session = ort.InferenceSession(str(self.path), providers=providers)
        except Exception as exc:  # onnxruntime raises its own unrelated exception types on a bad file
            raise WeightsError(f"Cannot load {self.path.name} with onnxruntime: {exc}".splitlines()[0]) from exc
        inp = self.session.get_inputs()[0]
        if len(inp.shape) != 4 or inp.shape[1] != 3 or inp.shape[2] != inp.shape[3]:
            raise WeightsError(f"{self.path.name} takes {inp.shape}, not (N, 3, S, S): not a face-recognition model.")
        self.input_name = inp.name
        self.fixed_batch = inp.shape[0] if isinstance(inp.shape[0], int) else None
        self.chip_size = int(inp.shape[2]) if isinstance(inp.shape[2], int) else ARCFACE_SIZE
        self.threshold, self.mean, self.std = float(threshold), float(mean), float(std)
        self.name = f"arcface:{self.path.name}"

    def align(self, rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
        return self.align_batch([rgb], [points])[0]

    def align_batch(self, frames: list[np.ndarray], points: list[np.ndarray]) -> np.ndarray:
        """insightface's norm_crop of each frame (its own bilinear warp, as the model was trained on): (B, S, S, 3)."""
        affines = arcface_affines(arcface5_batch(points), self.chip_size)
        for rgb in frames:
            if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
                raise InputError(f"Expected an RGB uint8 image (H, W, 3), got {rgb.dtype} {rgb.shape}.")
        size = (self.chip_size, self.chip_size)
        return np.stack([cv2.warpAffine(f, a, size, borderValue=(0, 0, 0)) for f, a in zip(frames, affines)])

    def embed(self, chips: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) RGB in [0, 255] -> (B, D) unit norm on `device`."""
        x = ((chips.detach().float().cpu() - self.mean) / self.std).numpy()  # (B, 3, S, S)
        step = self.fixed_batch or len(x)
        outs = [self.session.run(None, {self.input_name: x[i : i + step]})[0] for i in range(0, len(x), max(step, 1))]
        emb = torch.from_numpy(np.concatenate(outs, 0).reshape(len(x), -1)).float()
        return F.normalize(emb, dim=1).to(self.device)
