"""Dense face landmarks: MediaPipe's rotated ROI, FaceMesh (468 points) and the iris model (+10 points = 478).

ROI recipe (MediaPipe face_landmark / iris_landmark graphs):
  * from a detection: centre = box centre, rotation from the right-eye to the left-eye keypoint, side = 1.5 x the
    longer box side;
  * from landmarks (tracking): centre/size from the box of the 468 points, rotation from point 33 to 263, 1.5x;
  * eyes: box of the two eye corners (33-133, 362-263), rotation along them, 2.3x the longer side; the image-right
    eye is mirrored so both look like the image-left eye the iris model was trained on.
Crops are bilinear with replicated borders; crop corners map to 0 and `size` (MediaPipe's convention), so a
point at crop px p maps to the image by the same 2x3 matrix used for the warp.

Eyelids: FaceMesh alone does not close on a shut eye (it reads an eye aspect ratio of ~0.2 where the eye is shut).
The iris model also returns 71 eye-contour points per eye (lids, halo rings, the brow's edges), and MediaPipe's
iris pipeline writes them over the mesh's points of the same names (EYE_CONTOUR below, its
update_face_landmarks order). `MeshModel` writes the first REFINED of them (lids and the two halo rings nearest
them), keeping the mesh's depth. On a real clip with blinks this gives the reference refined mesh's blink depth
(eye aspect ratio at blinks 0.27 of its median vs MediaPipe's 0.25; FaceMesh alone 0.66). The brow points stay
FaceMesh's: the iris model's brows sit off the hair at the crop's edge, and a warp driven by them moved the
brows a third less than the rig asked.

Output order is MediaPipe's refined 478: 0..467 mesh, 468..472 iris of the image-left eye (the subject's right;
centre first), 473..477 iris of the image-right eye.

`MeshModel(model="attention")`, the default, runs MediaPipe's attention mesh instead (FaceMeshAttention, the
model behind MediaPipe's refine_landmarks=True): one network gives the mesh and, from crops of its own features, the
lips, both eyes and both irises; `refine_attention` merges them as MediaPipe's LandmarksRefinementCalculator does
(x, y of the lips' 80 and each eye's 71 points over the mesh's, the irises appended). No separate iris model runs
then. `model="plain"` keeps FaceMesh + the iris model described above.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from reenact.device import inference
from reenact.face.nets import LEFT_EYE, LIPS, RIGHT_EYE
from reenact.weights import load_model

MESH_SIZE, IRIS_SIZE = 192, 64
FACE_SCALE, EYE_SCALE = 1.5, 2.3
EYES = ((33, 133, False), (362, 263, True))  # (start, end, mirror): image-left eye, image-right eye

# The iris model's 71 contour points as mesh vertices, image-left eye then image-right eye (the mirrored crop makes the
# image-right eye's list run outer corner -> inner corner too): lower lid, upper lid, two halo rings (lower, upper),
# the brow's lower edge, a third lower halo, the brow's upper edge.
EYE_CONTOUR = np.array([
    [33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173,
     130, 25, 110, 24, 23, 22, 26, 112, 243, 247, 30, 29, 27, 28, 56, 190,
     226, 31, 228, 229, 230, 231, 232, 233, 244, 113, 225, 224, 223, 222, 221, 189,
     35, 124, 46, 53, 52, 65, 143, 111, 117, 118, 119, 120, 121, 128, 245, 156, 70, 63, 105, 66, 107, 55, 193],
    [263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398,
     359, 255, 339, 254, 253, 252, 256, 341, 463, 467, 260, 259, 257, 258, 286, 414,
     446, 261, 448, 449, 450, 451, 452, 453, 464, 342, 445, 444, 443, 442, 441, 413,
     265, 353, 276, 283, 282, 295, 372, 340, 346, 347, 348, 349, 350, 357, 465, 383, 300, 293, 334, 296, 336, 285, 417],
])  # (2, 71)
# Per eye, in EYE_CONTOUR's order, the (upper, lower) lid vertex pairs whose gaps an eye aspect ratio reads.
LID_PAIRS = (((159, 145), (158, 153), (160, 144)), ((386, 374), (385, 380), (387, 373)))
REFINED = 48  # contour points per eye written over the mesh: lids and two halo rings (see MeshModel)
# Per eye, in EYE_CONTOUR's order, the upper lid from corner to corner (outer corner, upper lid, inner corner).
UPPER_LIDS = np.stack([np.concatenate([c[:1], c[9:16], c[8:9]]) for c in EYE_CONTOUR])  # (2, 9)
# Per eye, in EYE_CONTOUR's order, its opening as a closed polygon: the lower lid corner to corner, the upper lid back.
OPENINGS = np.stack([np.concatenate([c[:9], c[9:16][::-1]]) for c in EYE_CONTOUR])  # (2, 16)
# Per eye, in EYE_CONTOUR's order, its iris: centre first, then the ring (the iris model's 5 points).
IRISES = np.stack([np.arange(468, 473), np.arange(473, 478)])  # (2, 5)
IRIS_CENTRES = [int(i) for i in IRISES[:, 0]]  # in the same order
# The inner-lip contour, corner to corner (mouth corner 78 -> other corner 308), upper and lower lip; as one closed
# loop (corner 78 along the upper lip to 308, back along the lower lip); the outer-lip loop (61 along the upper lip to
# 291 and back); both loops, inner first: every lip vertex.
UPPER_INNER = np.array([78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308])
LOWER_INNER = np.array([78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308])
LIP_INNER_LOOP = np.concatenate([UPPER_INNER, LOWER_INNER[::-1][1:-1]])  # (20,)
LIP_OUTER_LOOP = np.array([61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146])
LIP_LOOPS = np.concatenate([LIP_INNER_LOOP, LIP_OUTER_LOOP])  # (40,)
MESH_ONLY = np.setdiff1d(np.arange(468), EYE_CONTOUR[:, :REFINED])  # vertices FaceMesh alone places
MODELS = ("plain", "attention")  # MeshModel's choices: FaceMesh + iris model, or the attention mesh


@dataclass
class Roi:
    centre: np.ndarray  # (2,) px
    side: float  # px, square
    angle: float  # rad; + = clockwise on screen (y down)

    def matrix(self, size: int) -> np.ndarray:
        """2x3 affine: crop px (0..size) -> image px."""
        c, s = np.cos(self.angle), np.sin(self.angle)
        k = self.side / size
        m = np.array([[c * k, -s * k, 0.0], [s * k, c * k, 0.0]])
        m[:, 2] = self.centre - m[:, :2] @ np.array([size / 2, size / 2])
        return m


def _roi(a: np.ndarray, b: np.ndarray, pts: np.ndarray, scale: float) -> Roi:
    lo, hi = pts.min(0), pts.max(0)
    angle = float(np.arctan2(b[1] - a[1], b[0] - a[0]))  # MediaPipe: target 0 - atan2(-(y1 - y0), x1 - x0)
    return Roi(centre=((lo + hi) / 2).astype(np.float64), side=float(max(hi - lo)) * scale, angle=angle)


def roi_from_detection(box: np.ndarray, keypoints: np.ndarray) -> Roi:
    return _roi(keypoints[0], keypoints[1], box.reshape(2, 2), FACE_SCALE)


def roi_from_landmarks(points: np.ndarray) -> Roi:
    xy = points[:468, :2]
    return _roi(xy[33], xy[263], xy, FACE_SCALE)


def crop(rgb: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """(size, size, 3) uint8 crop sampling image px m @ [p, 1] for crop px p."""
    return cv2.warpAffine(rgb, cv2.invertAffineTransform(m), (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def project(pts: np.ndarray, mats: np.ndarray, size: int) -> np.ndarray:
    """Crop px (B, N, 3) -> image px with the crop matrices (B, 2, 3); z scaled like x."""
    xy = np.einsum("bij,bnj->bni", mats[:, :, :2], pts[..., :2]) + mats[:, None, :, 2]
    z = pts[..., 2] * np.linalg.norm(mats[:, :, 0], axis=1)[:, None]
    return np.concatenate([xy, z[..., None]], -1).astype(np.float32)


def _to_tensor(crops: list[np.ndarray], device: torch.device) -> torch.Tensor:
    x = torch.from_numpy(np.stack(crops)).to(device).permute(0, 3, 1, 2)  # NHWC memory = channels_last NCHW view
    return x.float().mul_(1.0 / 255.0)  # (B, 3, S, S) in [0, 1]


def refine_attention(mesh: np.ndarray, lips: np.ndarray, left_eye: np.ndarray, right_eye: np.ndarray,
                     left_iris: np.ndarray, right_iris: np.ndarray) -> np.ndarray:
    """FaceMeshAttention's outputs -> (B, 478, 3) in MediaPipe's refined order (tensors_to_face_landmarks_with_attention:
    x, y of the lips and eyes written over their mesh vertices, z kept from the mesh; irises appended, image-left
    eye first)."""
    out = np.concatenate([mesh, left_iris, right_iris], 1)
    for part, idx in ((lips, LIPS), (left_eye, LEFT_EYE), (right_eye, RIGHT_EYE)):
        out[:, list(idx), :2] = part[..., :2]
    return out


class MeshModel:
    """FaceMesh + iris (model="plain"), or the attention mesh (model="attention"), batched over (frame, ROI) pairs."""

    def __init__(self, device: torch.device = torch.device("cpu"), iris: bool = True, model: str = "attention") -> None:
        if model not in MODELS:
            raise ValueError(f"MeshModel: model must be one of {MODELS}, not {model!r}")
        self.device, self.attention = device, model == "attention"
        # channels_last: the NHWC crops need no copy, and oneDNN's small convs run ~1.5x faster in it.
        mesh = "facemesh_attention" if self.attention else "facemesh"
        self.mesh = load_model(mesh, device).to(memory_format=torch.channels_last)
        # The attention mesh places lids and irises itself: there is no iris model to run (nor to batch later).
        self.iris = load_model("iris", device).to(memory_format=torch.channels_last) if iris and not self.attention else None

    def __call__(self, frames: list[np.ndarray], rois: list[Roi], iris: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """frames[i] with rois[i] -> (points (B, 478 or 468, 3) image px, presence scores (B,)).

        `iris=False` skips the iris model for this call (468 points), e.g. to run it later on a batch of frames.
        The attention mesh always returns its refined 478 points (they come from the same network call).
        """
        if not rois:
            n = 478 if self.attention or (self.iris is not None and iris) else 468
            return np.zeros((0, n, 3), np.float32), np.zeros(0, np.float32)
        mats = np.stack([r.matrix(MESH_SIZE) for r in rois])
        x = _to_tensor([crop(f, m, MESH_SIZE) for f, m in zip(frames, mats)], self.device)
        with inference(self.device):
            *parts, flag = self.mesh(x)
        score = 1.0 / (1.0 + np.exp(-flag.float().cpu().numpy().astype(np.float64)))
        if self.attention:
            refined = refine_attention(*(p.float().cpu().numpy() for p in parts))  # (B, 478, 3) crop px
            return project(refined, mats, MESH_SIZE), score.astype(np.float32)
        pts = project(parts[0].float().cpu().numpy(), mats, MESH_SIZE)  # (B, 468, 3)
        if self.iris is None or not iris:
            return pts, score.astype(np.float32)
        return self.refine_eyes(frames, pts), score.astype(np.float32)

    def refine_eyes(self, frames: list[np.ndarray], pts: np.ndarray) -> np.ndarray:
        """(B, 468, 3) mesh -> (B, 478, 3): eyelids (x, y) from the iris model's contours, iris points appended."""
        contours, irises = self.eyes(frames, pts)
        out = np.concatenate([pts[:, :468], irises], 1)
        k = REFINED
        out[:, EYE_CONTOUR[:, :k].ravel(), :2] = contours.reshape(-1, 2, 71, 3)[:, :, :k, :2].reshape(len(pts), -1, 2)
        return out

    def eyes(self, frames: list[np.ndarray], pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, 468, 3) mesh -> (eye contours (B, 142, 3) in EYE_CONTOUR order, iris points (B, 10, 3)), image px."""
        crops, mats = [], []
        for f, p in zip(frames, pts):
            for a, b, mirror in EYES:
                r = _roi(p[a, :2], p[b, :2], p[[a, b], :2], EYE_SCALE)
                m = r.matrix(IRIS_SIZE)
                c = crop(f, m, IRIS_SIZE)
                crops.append(c[:, ::-1] if mirror else c)
                mats.append(m)
        x = _to_tensor([np.ascontiguousarray(c) for c in crops], self.device)
        with inference(self.device):
            contour, iris = self.iris(x)
        contour, iris = contour.float().cpu().numpy(), iris.float().cpu().numpy()  # (2B, 71, 3), (2B, 5, 3)
        contour[1::2, :, 0] = IRIS_SIZE - contour[1::2, :, 0]  # un-mirror the image-right eye
        iris[1::2, :, 0] = IRIS_SIZE - iris[1::2, :, 0]  # un-mirror the image-right eye ...
        iris[1::2, [1, 3]] = iris[1::2, [3, 1]]  # ... and its contour order, so both eyes go the same way round
        mats = np.stack(mats)
        contours = project(contour, mats, IRIS_SIZE).reshape(len(pts), 142, 3)
        out = project(iris, mats, IRIS_SIZE).reshape(len(pts), 10, 3)
        # The iris model's z is relative to its eye crop; put it on the mesh's depth (eye-corner mean) instead.
        corners = pts[:, [33, 133, 362, 263], 2].reshape(-1, 2, 2).mean(-1)  # (B, 2)
        out[..., 2] = out[..., 2] - out[:, [0, 5], 2].repeat(5, 1) + corners.repeat(5, 1)
        return contours, out
