"""A clip's blinks, gaze, brows and mouth read from its tracked mesh's own geometry instead of the estimator network.

Why: judged by MediaPipe's refined mesh on the tuning clips (cap12, cap13, WolfgangLanger), the network reads these
channels worse than plain geometry of the same tracked mesh does: eyeBlink correlated 0.28-0.73 with the reference
lids (the lids' own closure 0.83-0.97), eyeLook 0.07-0.45 with the reference irises (the irises' own offset 0.65-0.95),
and its brow channels moved the brows half as far as the reference saw (0.48-0.65; geometry 0.96-1.08), with a
reading that followed head pitch on a face that looks down. Each reading is relative to the clip itself (its
open-eye aspect ratio, its median gaze and brow height), so it needs a clip: a photo, or a clip with fewer than
MIN_CLIP_FRAMES faces, keeps the network's reading. The channels are written back in the network's units, so the
rest of the pipeline (smoothing, retargeting, the rig) is unchanged.

    geometry = clip_geometry(points, estimator)   # (T, GEOMETRY) per chunk of frames, cheap
    values = read_geometry(values, geometry)      # the whole clip's (T, C) estimates
    area = eye_area_channels(geometry)            # (T, EYE_AREA) the eye area's own motion, or None
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from reenact.estimate import CHANNELS, Estimator, gaze_from_arkit, normalize
from reenact.face.landmarks import IRIS_CENTRES, LID_PAIRS
from reenact.params import ARKIT52, AU17, BLINKS, GAZE, arkit_to_au
from reenact.rig import load_eye_area

# In a clip, eyeBlink is read from the tracked lids, not the network. On the tuning clips (cap12, cap13, WolfgangLanger;
# judged by MediaPipe's refined mesh) the network's eyeBlink correlated 0.28-0.73 with the reference lids' closure and
# read > 0.3 on a third of open-eyed frames (more on a face looking down), where the lids' own closure correlated
# 0.83-0.97. closure = 1 - EAR / the clip's open-eye EAR, its median (most frames of a talking face are open-eyed);
# shut eyes read 0.65-0.75. Against the clip's 90th percentile (and from a closure of 0.2) a clip with wide-eyed
# moments read a half-lowered look as nearly shut, which the renderer, once a half-shut lid read as one, drew so
# (cap13: eyes unreproduced 0.90 -> 0.80; docs/fidelity.md "Tenth pass").
OPEN_PERCENTILE = 50  # the clip's open-eye aspect ratio
# ... but never below this: open eyes read 0.2-0.35 on the nine clips' medians and on 42 of 46 still photos (the other
# four are laughs or a mask, 0.07-0.19). WolfgangLanger looks down with her lids low for most of her clip, and her eyes'
# medians (0.053 and 0.107) were shut and half-shut lids: both eyes shut at 0.04 read eyeBlink 0.1 and 0.9, a wink on
# every photo she drove (docs/fidelity.md, "Thirteenth pass"). The floor is the wider eye's; the other's is in the
# proportion of the two eyes' WIDE_PERCENTILE openings (a turned head reads one eye narrower: hers 0.64 of the other).
OPEN_EAR_FLOOR, WIDE_PERCENTILE = 0.15, 90
CLOSURE_OPEN, CLOSURE_SHUT = 0.05, 0.7  # closure read as eyeBlink 0 and 1
MIN_CLIP_FRAMES = 12  # fewer frames with a face than this: no reliable open-eye reference, the network's reading stays
CORNERS = ((33, 133), (362, 263))  # per eye in LID_PAIRS' order (image-left eye: the subject's right), left to right


def eye_aspect_ratios(points: np.ndarray) -> np.ndarray:
    """(T, 478, 3) px -> (T, 2) eye aspect ratio (mean lid gap / corner distance) per eye, in (eyeBlinkLeft,
    eyeBlinkRight) order; NaN where a frame has no face."""
    ears = []
    for (a, b), pairs in zip(CORNERS, LID_PAIRS):
        width = np.linalg.norm(points[:, a, :2] - points[:, b, :2], axis=-1)
        gap = np.mean([np.linalg.norm(points[:, u, :2] - points[:, v, :2], axis=-1) for u, v in pairs], 0)
        ears.append(gap / np.maximum(width, 1e-6))
    return np.stack(ears[::-1], 1)  # the subject's left eye is the image-right one


# Gaze, like blinks, is read from the tracked irises in a clip: the iris centre's offset from the eye corners' midpoint
# (both eyes averaged: eyes turn together), against the clip's median, in eye widths. On the tuning clips this
# correlated 0.65-0.95 (horizontal) and 0.46-0.72 (vertical) with MediaPipe's refined irises at a slope of ~1, the
# network's eyeLook reading 0.07-0.45. The rig's eyeLook shapes at 1 move the iris by these eye widths:
IRIS_PER_LOOK = (0.205, 0.164)  # (eyeLookIn/Out, eyeLookUp/Down), measured on weights/rig_arkit52


def iris_offsets(points: np.ndarray) -> np.ndarray:
    """(T, 478, 3) px -> (T, 2) the irises' mean offset from their eye corners' midpoint, in eye widths, along the
    corner axis (+: image right, the subject's left) and across it (+: down); NaN where a frame has no face or the
    mesh has no iris points (468)."""
    if points.shape[1] < 478:
        return np.full((len(points), 2), np.nan, np.float32)
    out = []
    for iris, (a, b) in zip(IRIS_CENTRES, CORNERS):  # CORNERS is in EYE_CONTOUR's eye order
        pa, pb = points[:, a, :2], points[:, b, :2]
        width = np.linalg.norm(pb - pa, axis=-1, keepdims=True)
        axis = (pb - pa) / np.maximum(width, 1e-6)
        across = np.stack([-axis[:, 1], axis[:, 0]], 1)
        v = points[:, iris, :2] - (pa + pb) / 2
        out.append(np.stack([(v * axis).sum(1), (v * across).sum(1)], 1) / np.maximum(width, 1e-6))
    return np.mean(out, 0)


def gaze_from_irises(values: np.ndarray, offsets: np.ndarray, ears: np.ndarray) -> np.ndarray:
    """(T, C) estimates, (T, 2) iris offsets and (T, 2) eye aspect ratios -> the estimates with eyeLook* (and the
    gaze channels) from the irises' motion about the clip's median. Frames with the lids more than half shut keep the
    last open frame's gaze (a covered iris is not tracked). Clips with fewer than MIN_CLIP_FRAMES faces keep the
    network's reading."""
    ear = ears.mean(1)
    ok = np.isfinite(offsets).all(1) & np.isfinite(values).all(1) & np.isfinite(ear)
    if ok.sum() < MIN_CLIP_FRAMES:
        return values
    seen = ok & (ear > 0.5 * np.percentile(ear[ok], OPEN_PERCENTILE))
    if seen.sum() < MIN_CLIP_FRAMES:
        return values
    idx = np.flatnonzero(seen)
    held = idx[np.clip(np.searchsorted(idx, np.arange(len(values)), side="right") - 1, 0, len(idx) - 1)]
    look = (offsets[held] - np.median(offsets[seen], 0)) / np.array(IRIS_PER_LOOK)  # (T, 2) eyeLook units
    yaw, down = np.clip(look[:, 0], -1, 1), np.clip(look[:, 1], -1, 1)
    out = values.copy()
    toward_left, toward_right = np.maximum(yaw, 0), np.maximum(-yaw, 0)  # the subject's left is image right
    for name, v in (("eyeLookOutLeft", toward_left), ("eyeLookInLeft", toward_right),
                    ("eyeLookInRight", toward_left), ("eyeLookOutRight", toward_right),
                    ("eyeLookDownLeft", np.maximum(down, 0)), ("eyeLookDownRight", np.maximum(down, 0)),
                    ("eyeLookUpLeft", np.maximum(-down, 0)), ("eyeLookUpRight", np.maximum(-down, 0))):
        out[ok, ARKIT52.index(name)] = v[ok]
    n = len(ARKIT52)
    out[ok, len(CHANNELS) - len(GAZE):] = gaze_from_arkit(out[ok, :n])
    return out


# A smile narrows the eyes from below (cheeks and lower lids rise): that share of the closure is the network's
# eyeSquint / cheekSquint reading, not a blink; counted twice, a laugh shut the eyes. Closure per unit of each, the
# rig's lid gap (weights/rig_arkit52), and the reference: each channel's least-squinted frames in the clip. The two
# sides' readings are taken together (their mean), as a smile narrows both eyes: the network reads a blink as a
# squint on one side now and then (franck's eyeSquintLeft 0.46 against Right 0 at a blink both lids shut alike),
# which took that eye's blink away and drew a wink.
SQUINT_CLOSURE = {"eyeSquint": 0.445, "cheekSquint": 0.142}
SQUINT_REST_PERCENTILE = 10


# The eyes blink together: a difference between the two lids' readings below WINK_FROM is the tracker's (a laughing
# or turned face reads one lid a fifth more closed than the other, where the judge reads them alike), and is taken
# out; from WINK_FULL up it is a wink or a one-sided squint, and is kept whole. A wink keeps the other eye open: where
# the more open eye reads BOTH_SHUT_FROM closed or more, both eyes are shutting and a difference is uneven tracking,
# taken out fully from BOTH_SHUT (jwp shuts both eyes as he looks down and reads 0.54 / 1.0 there: drawn as it read,
# every photo he drove winked).
WINK_FROM, WINK_FULL = 0.2, 0.4
BOTH_SHUT_FROM, BOTH_SHUT = 0.3, 0.5


def paired(blink: np.ndarray) -> np.ndarray:
    """(T, 2) eyeBlink readings -> the same with the two eyes' difference kept only as far as it is a wink."""
    mean = blink.mean(1, keepdims=True)
    apart = np.abs(blink[:, :1] - blink[:, 1:])
    other = blink.min(1, keepdims=True)  # how far the more open eye is closed
    keep = np.clip((apart - WINK_FROM) / (WINK_FULL - WINK_FROM), 0.0, 1.0)
    keep *= np.clip((BOTH_SHUT - other) / (BOTH_SHUT - BOTH_SHUT_FROM), 0.0, 1.0)
    return mean + keep * (blink - mean)


def blinks_from_lids(values: np.ndarray, ears: np.ndarray) -> np.ndarray:
    """(T, C) estimates in CHANNELS order and the same frames' (T, 2) eye aspect ratios -> the estimates with eyeBlink
    read from the lids' closure that the squints do not explain (CLOSURE_OPEN -> 0, CLOSURE_SHUT -> 1) and the AUs
    recomputed. Clips with fewer than MIN_CLIP_FRAMES faces keep the network's reading."""
    ok = np.isfinite(ears).all(1) & np.isfinite(values).all(1)
    if ok.sum() < MIN_CLIP_FRAMES:
        return values
    wide = np.percentile(ears[ok], WIDE_PERCENTILE, axis=0)  # (2,) the eyes as open as they get, whatever their pose
    floor = OPEN_EAR_FLOOR * wide / max(float(wide.max()), 1e-6)  # the floor, each eye in that proportion
    closure = 1.0 - ears[ok] / np.maximum(np.percentile(ears[ok], OPEN_PERCENTILE, axis=0), floor)  # (T_ok, 2)
    for shape, per_unit in SQUINT_CLOSURE.items():
        v = values[np.ix_(ok, [ARKIT52.index(shape + "Left"), ARKIT52.index(shape + "Right")])]  # (T_ok, 2)
        excess = np.maximum(v - np.percentile(v, SQUINT_REST_PERCENTILE, axis=0), 0)  # (T_ok, 2)
        closure = closure - per_unit * excess.mean(1, keepdims=True)
    out = values.copy()
    blink = np.clip((closure - CLOSURE_OPEN) / (CLOSURE_SHUT - CLOSURE_OPEN), 0.0, 1.0)  # (T_ok, 2)
    out[np.ix_(ok, BLINKS)] = paired(blink)
    # and the closure read as a blink is not drawn again as a squint: the network reads a closing eye's lids as a
    # squint too, on one side now and then (franck's eyeSquintLeft 0.25-0.46 at a blink), which raised that lower
    # lid alone
    squint = [ARKIT52.index("eyeSquintLeft"), ARKIT52.index("eyeSquintRight")]
    out[np.ix_(ok, squint)] *= 1.0 - out[np.ix_(ok, BLINKS)]
    n = len(ARKIT52)
    out[ok, n:n + len(AU17)] = arkit_to_au(out[ok, :n])
    return out


# Brows: the mean height of each brow's inner and outer half in the network's canonical (pose-free) frame, cm, y down.
BROW_HALVES = ((285, 295, 282, 336, 296), (55, 65, 52, 107, 66),  # inner: subject's left, right
               (300, 293, 334, 276, 283), (70, 63, 105, 46, 53))  # outer: subject's left, right
# The rig's y motion of those halves per unit of shape (weights/rig_arkit52; negative: up), to turn cm into units.
INNER_UP_CM, OUTER_UP_CM, DOWN_CM = -0.350, -0.500, 0.405
# browOuterUp also lifts its side's inner half (the two raises share the brow's middle, so that together they lift the
# whole brow); that part of an inner half's rise is the outer raise's, not browInnerUp's.
OUTER_ON_INNER_CM = -0.181


def canonical_points(points: np.ndarray, estimator: Estimator) -> np.ndarray:
    """(T, 478, 3) px -> (T, 468, 3) the mesh in the network's canonical (pose-free) frame, cm, y down; NaN where a
    frame has no face."""
    net = estimator.net
    out = np.full((len(points), 468, 3), np.nan, np.float32)
    ok = np.flatnonzero(np.isfinite(points).all(axis=(1, 2)))
    if len(ok):
        with torch.inference_mode():
            x = torch.as_tensor(points[ok, :468], dtype=torch.float32, device=estimator.device)
            out[ok] = normalize(x, net.neutral[:468], net.rigid)[0].float().cpu().numpy()
    return out


LIP_GAP = (13, 14)  # the inner lips' midpoints, upper and lower


def lip_gap(canon: np.ndarray) -> np.ndarray:
    """(T, 468, 3) `canonical_points` -> (T,) the inner lips' gap, cm (negative: pressed past each other)."""
    return canon[:, LIP_GAP[1], 1] - canon[:, LIP_GAP[0], 1]


def lip_gap_per_unit() -> np.ndarray:
    """(52,) how far each of the shipped rig's shapes opens the inner lips per unit, cm (negative: closes them)."""
    xy = region_basis(ARKIT52, LIP_GAP)  # (52, 4): x, y of 13, then of 14
    return xy[:, 3] - xy[:, 1]


def brow_heights(canon: np.ndarray) -> np.ndarray:
    """(T, 468, 3) `canonical_points` -> (T, 4) y of the brow halves (inner L, inner R, outer L, outer R), cm."""
    return np.stack([canon[:, list(h), 1].mean(1) for h in BROW_HALVES], 1)


def brows_from_mesh(values: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """(T, C) estimates and (T, 4) `brow_heights` -> brow channels from each half's motion about the clip's median,
    on top of the network's median reading (the person's resting brows): a rise of the inner halves is browInnerUp,
    of an outer half browOuterUp; an inner half lowered below what browInnerUp's rest can take is browDown."""
    ok = np.isfinite(heights).all(1) & np.isfinite(values).all(1)
    if ok.sum() < MIN_CLIP_FRAMES:
        return values
    moved = heights[ok] - np.median(heights[ok], 0)  # (T_ok, 4) cm, y down
    col = {n: ARKIT52.index(n) for n in ("browInnerUp", "browOuterUpLeft", "browOuterUpRight", "browDownLeft",
                                         "browDownRight")}
    rest = {n: float(np.median(values[ok, c])) for n, c in col.items()}
    out = values.copy()
    inner = moved[:, :2] - moved[:, 2:] * (OUTER_ON_INNER_CM / OUTER_UP_CM)  # (T_ok, 2) less the outer raises' share
    inner_up = rest["browInnerUp"] + inner.mean(1) / INNER_UP_CM  # may go below 0: a lowering
    out[ok, col["browInnerUp"]] = np.clip(inner_up, 0, 1)
    for side, i in (("Left", 0), ("Right", 1)):
        out[ok, col[f"browOuterUp{side}"]] = np.clip(rest[f"browOuterUp{side}"] + moved[:, 2 + i] / OUTER_UP_CM, 0, 1)
        # the share of this side's inner lowering that browInnerUp (at 0) could not draw
        lowered = np.maximum(inner[:, i] - rest["browInnerUp"] * -INNER_UP_CM, 0)
        out[ok, col[f"browDown{side}"]] = np.clip(rest[f"browDown{side}"] + lowered / DOWN_CM, 0, 1)
    n = len(ARKIT52)
    out[ok, n:n + len(AU17)] = arkit_to_au(out[ok, :n])
    return out


# The mouth, like the brows, is read from the canonical mesh: per frame, the shapes whose rig motion best reproduces
# the tracked lips' and chin's motion from the clip's resting mouth (`bounded_ridge`, pulled toward the network's
# reading less its reading there: the network separates shapes 2D motion cannot, a pucker from a funnel; the motion
# sets how far they go). So the resting mouth reads 0 on every mouth shape, whatever the network makes of the
# person's lips. Taken about the clip's median on top of the network's median reading instead, a clip that smiles
# most of the time (single_face) read its resting frames as the smile's opposite (pucker 0.7, frown 0.8, press 0.55)
# and drew that pout on the photo wherever the driver rested (docs/fidelity.md, "Eleventh pass"). Through the rig, on
# the tuning clips, the network's shapes left 0.40 of that motion unreproduced, the solved ones 0.19; judged on the
# rendered output, mouth unreproduced 0.38 -> 0.36 (attention tracker). The same solve for the lids (blink, squint,
# wide) left 0.52-0.68 instead of 0.81 through the rig but nothing on the output (eyes 1.02 -> 1.06), so the lids keep
# their readings above.


@dataclass(frozen=True)
class Region:
    """Mesh points whose canonical x, y motion a set of shapes is solved from."""

    points: tuple[int, ...]
    shapes: tuple[str, ...]
    prior: float  # ridge weight toward the readings, in cm^2 per unit^2 of shape


MOUTH = Region(
    points=(0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267,  # lips
            269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415,
            18, 200, 199, 175, 152, 148, 176, 377, 400),  # chin: the jaw's opening
    shapes=tuple(n for n in ARKIT52 if n.startswith(("jaw", "mouth", "cheekPuff"))), prior=0.1)
REGIONS = (MOUTH,)
SOLVE_STEPS = 200
# Where each part sits in a row of `clip_geometry`: EARs, irises, brows, then each region's x, y ...
EARS, IRIS_OFFSETS, BROW_YS = slice(0, 2), slice(2, 4), slice(4, 8)
_ENDS = np.cumsum([BROW_YS.stop] + [2 * len(r.points) for r in REGIONS]).tolist()
REGION_XY = tuple(slice(a, b) for a, b in zip(_ENDS, _ENDS[1:]))  # in REGIONS' order
MOUTH_XY = REGION_XY[REGIONS.index(MOUTH)]
GEOMETRY = _ENDS[-1]
# ... and after them the eye area's canonical x, y (reenact.rig.EyeArea: 2 * its points), read by `eye_area_channels`.


@lru_cache(maxsize=1)
def _rig_basis() -> np.ndarray:
    """(52, 478, 3) the shipped rig's canonical basis, cm, read once per process (a copy: the rig `Models` holds,
    and the one tools/fit_render_gain.py refits, stay its own)."""
    from reenact.rig import load_rig

    return load_rig("cpu").basis.double().numpy()


@lru_cache(maxsize=4)
def region_basis(shapes: tuple[str, ...], points: tuple[int, ...]) -> np.ndarray:
    """(K, 2P): the shipped rig's canonical x, y motion of `points` per unit of each of `shapes`, cm."""
    basis = _rig_basis()[[ARKIT52.index(n) for n in shapes]][:, list(points), :2]
    return basis.reshape(len(shapes), -1)


def bounded_ridge(basis: np.ndarray, target: np.ndarray, prior: np.ndarray, weight: float,
                  steps: int = SOLVE_STEPS) -> np.ndarray:
    """argmin_w |w @ basis - target|^2 + weight |w - prior|^2 subject to 0 <= w <= 1, for every row at once
    (accelerated projected gradient). basis (K, D), target (T, D), prior (T, K) -> (T, K)."""
    a = basis @ basis.T + weight * np.eye(len(basis))  # (K, K)
    b = target @ basis.T + weight * prior  # (T, K)
    step = 1.0 / np.linalg.eigvalsh(a).max()
    w = y = np.clip(prior, 0.0, 1.0)
    k = 1.0
    for _ in range(steps):
        w_next = np.clip(y - step * (y @ a - b), 0.0, 1.0)
        k_next = (1 + np.sqrt(1 + 4 * k * k)) / 2
        y = w_next + (k - 1) / k_next * (w_next - w)
        w, k = w_next, k_next
    return w


# A clip's resting mouth: the frames whose inner-lip gap is in its lowest REST_GAP_PERCENTILE and whose mouth is at
# most as wide as the median of those (closed lips between words, not a closed-lip smile). tools/eval_fidelity.py
# finds the driver's resting frames on the judge's mesh with this rule too.
REST_GAP_PERCENTILE = 30


def resting_mouth(gap: np.ndarray, width: np.ndarray) -> np.ndarray:
    """(T,) inner-lip gap and (T,) mouth width (any one unit) -> (T,) bool, the frames where the mouth rests."""
    low = gap <= np.nanpercentile(gap, REST_GAP_PERCENTILE)
    return low & (width <= np.nanmedian(width[low]))


def mouth_gap_width(xy: np.ndarray, region: Region) -> tuple[np.ndarray, np.ndarray]:
    """(T, 2P) canonical x, y of `region.points` (which hold 13, 14, 61 and 291) -> (T,) inner-lip gap, (T,) mouth
    width, cm."""
    p = xy.reshape(len(xy), -1, 2)
    k = {i: region.points.index(i) for i in (*LIP_GAP, 61, 291)}
    return p[:, k[LIP_GAP[1]], 1] - p[:, k[LIP_GAP[0]], 1], np.abs(p[:, k[291], 0] - p[:, k[61], 0])


def shapes_from_mesh(values: np.ndarray, xy: np.ndarray, region: Region) -> np.ndarray:
    """(T, C) estimates and (T, 2P) canonical x, y of `region.points` -> the estimates with the region's shapes
    solved from the points' motion from the clip's resting mouth (`bounded_ridge`, toward each frame's reading less
    the resting one), the AUs recomputed. Clips with fewer than MIN_CLIP_FRAMES faces keep their readings."""
    ok = np.isfinite(xy).all(1) & np.isfinite(values).all(1)
    if ok.sum() < MIN_CLIP_FRAMES:
        return values
    cols = [ARKIT52.index(n) for n in region.shapes]
    read = values[np.ix_(ok, cols)].astype(np.float64)  # (T_ok, K)
    rest = resting_mouth(*mouth_gap_width(xy[ok], region))
    moved = xy[ok] - np.median(xy[ok][rest], 0)  # (T_ok, 2P) cm from the resting mouth
    prior = np.clip(read - np.median(read[rest], 0), 0.0, 1.0)
    basis = region_basis(region.shapes, region.points)
    out = values.copy()
    out[np.ix_(ok, cols)] = bounded_ridge(basis, moved, prior, region.prior)
    n = len(ARKIT52)
    out[ok, n:n + len(AU17)] = arkit_to_au(out[ok, :n])
    return out


def clip_geometry(points: np.ndarray, estimator: Estimator) -> np.ndarray:
    """(T, 478, 3) px -> (T, GEOMETRY + 2 * eye-area points): eye aspect ratios, iris offsets, brow heights, each
    region's canonical x, y and the eye area's, what `read_geometry` and `eye_area_channels` read."""
    canon = canonical_points(points, estimator)
    regions = [canon[:, list(r.points), :2].reshape(len(points), -1) for r in REGIONS]
    area = canon[:, load_eye_area().points.tolist(), :2].reshape(len(points), -1)
    return np.concatenate([eye_aspect_ratios(points), iris_offsets(points), brow_heights(canon), *regions, area], 1)


def resting_face(geometry: np.ndarray) -> np.ndarray:
    """(T, GEOMETRY + ...) `clip_geometry` -> (T,) bool, the frames where the face rests: its mouth rests
    (`resting_mouth`) and, of those, the half with the lower brows (a talker raises them in the pauses: jwp_close's
    resting mouth is half brow raises). All False where fewer than MIN_CLIP_FRAMES frames have a face."""
    mouth, brows = geometry[:, MOUTH_XY], geometry[:, BROW_YS]
    ok = np.isfinite(mouth).all(1) & np.isfinite(brows).all(1)
    out = np.zeros(len(geometry), bool)
    if ok.sum() < MIN_CLIP_FRAMES:
        return out
    rest = np.flatnonzero(ok)[resting_mouth(*mouth_gap_width(mouth[ok], MOUTH))]
    low = brows[rest].mean(1)  # cm, y down: larger is lower
    out[rest[low >= np.median(low)]] = True
    return out


def eye_area_channels(geometry: np.ndarray) -> np.ndarray | None:
    """A whole clip's (T, EYE_AREA) eye-area coefficients: its eye area's canonical motion from the clip's resting
    face (`resting_face`; its median frame where it has none) along the modes (NaN where a frame has no face); None
    for clips with fewer than MIN_CLIP_FRAMES faces, which are drawn by the rig alone.

    Why the resting face: a photo's eyes and brows are its own where the driver's rest. About the clip's median, a
    driver who smiles for most of a clip (single_face, whose smile narrows his eyes and lowers his brows) drew the
    photo's eyes wide and its brows raised wherever he rested (docs/fidelity.md, "Eleventh pass")."""
    xy = geometry[:, GEOMETRY:]  # (T, 2P)
    ok = np.isfinite(xy).all(1)
    if ok.sum() < MIN_CLIP_FRAMES:
        return None
    rest = resting_face(geometry) & ok
    moved = (xy - np.median(xy[rest if rest.any() else ok], 0)).reshape(len(xy), -1, 2)  # (T, P, 2) cm
    return load_eye_area().coefficients(moved).astype(np.float32)


def read_geometry(values: np.ndarray, geometry: np.ndarray) -> np.ndarray:
    """A whole clip's (T, C) estimates with blinks, gaze, brows and mouth read from its (T, GEOMETRY)
    `clip_geometry`."""
    ears, irises, brows = geometry[:, EARS], geometry[:, IRIS_OFFSETS], geometry[:, BROW_YS]
    values = gaze_from_irises(blinks_from_lids(brows_from_mesh(values, brows), ears), irises, ears)
    for region, xy in zip(REGIONS, REGION_XY):
        values = shapes_from_mesh(values, geometry[:, xy], region)
    return values
