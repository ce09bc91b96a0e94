"""One source photo -> frames for any batch of target expressions: rig -> mesh displacement -> (expression shading)
-> warp -> mouth interior -> (refiner) -> paste-back. Everything per photo is computed once in the constructor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, Sequence

import numpy as np
import torch

from reenact.face.landmarks import (EYE_CONTOUR, IRIS_CENTRES, IRISES, LID_PAIRS, LIP_LOOPS, LOWER_INNER,
                                    UPPER_INNER)
from reenact.face.pose import estimate_pose
from reenact.params import ARKIT52, BLINKS
from reenact.render.interior import Carrier, DriverMouth, LibraryPicker, blend_fill
from reenact.render.mouth import MouthPainter
from reenact.render.warp import MeshWarper
from reenact.rig import mode_motion

if TYPE_CHECKING:
    from reenact.render.refine import Refiner
    from reenact.render.shade import ExpressionShading
    from reenact.rig import EyeArea


class Rig(Protocol):
    neutral: torch.Tensor  # (478, 3) canonical
    render_gain: torch.Tensor  # (52,)
    pose_gain: torch.Tensor  # (3,) yaw, pitch, roll

    def deltas(self, params: torch.Tensor) -> torch.Tensor: ...  # (B, 52) -> (B, 478, 3)
    def scaled_to(self, face_points: np.ndarray) -> "Rig": ...


# Shapes that close an opening: their weight stops at 1, where the lids meet.
CLOSING = BLINKS
# An eyeBlink value is drawn as the share of the photo's opening its lids close, through this piecewise-linear curve
# (value, closure) instead of the rig's render gain: a laugh's narrowed eyes (a reading of 0.4-0.6) close as far as
# the driver's did, a shut eye (0.85 and up) shuts. Judged on the tuning clips (tools/eval_fidelity.py, the per-eye
# opening against the driver's at the same reading; docs/fidelity.md "Fifth pass"): the rig's photo-fitted gain (1.66)
# all but shut an eye at a reading of 0.55 (0.91 of the way), where real eyes are about a quarter closed.
BLINK_CLOSURE = ((0.0, 0.0), (0.6, 0.6), (0.85, 1.0), (1.0, 1.0))


def blink_closure(value: torch.Tensor) -> torch.Tensor:
    """eyeBlink values (any shape, 0..1) -> the closure BLINK_CLOSURE draws them at, 0..1."""
    x = value.clamp(0.0, 1.0)
    out = torch.zeros_like(x)
    for (x0, y0), (x1, y1) in zip(BLINK_CLOSURE, BLINK_CLOSURE[1:]):
        inside = (x >= x0) & (x <= x1)
        out = torch.where(inside, y0 + (x - x0) * (y1 - y0) / (x1 - x0), out)
    return out


def euler_matrix(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """(B,) angles in degrees -> (B, 3, 3) rotations image <- canonical, R = Ry(yaw) Rx(pitch) Rz(roll).

    The inverse of reenact.estimate.angles (and reenact.face.pose.angles), so a yaw the tracker reads on the driver
    turns the photo the same way: yaw > 0 toward image right, pitch > 0 up, roll > 0 clockwise on screen.
    """
    y, p, r = (torch.deg2rad(v) for v in (yaw, pitch, roll))
    one, zero = torch.ones_like(y), torch.zeros_like(y)
    cy, sy, cp, sp, cr, sr = y.cos(), y.sin(), p.cos(), p.sin(), r.cos(), r.sin()
    ry = torch.stack([cy, zero, -sy, zero, one, zero, sy, zero, cy], -1).view(-1, 3, 3)
    rx = torch.stack([one, zero, zero, zero, cp, sp, zero, -sp, cp], -1).view(-1, 3, 3)
    rz = torch.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1).view(-1, 3, 3)
    return ry @ rx @ rz


# Per eye: the upper lid's vertices and their lower-lid partners (EYE_CONTOUR pairs upper 9 + j with lower 1 + j),
# and the eye's corners.
LID_ROWS = [(torch.as_tensor(c[9:16]), torch.as_tensor(c[1:8]), int(c[0]), int(c[8])) for c in EYE_CONTOUR]
WIDEN_MOST = 1.8  # lids open at most this many times the photo's gap (`limit_opening`)


# Folds. Where the rig carries neighbouring vertices past each other (a removed smile drags the mouth corners and the
# nose base over their neighbours), the backward warp samples those pixels twice and draws dark rings at the folds
# (the nostril, the mouth corners). Triangles that end up flipped or squeezed under FOLD_SHARE of their photo area
# have their vertices' and these vertices' neighbours' displacement relaxed toward their neighbours' until none is
# left (at most FOLD_STEPS).
# The lids close on purpose (their triangles squeeze to nothing at a blink) and have their own exact map in the warp:
# triangles touching a lid or halo vertex are left alone. A fold of the lips' triangles (a vertex within LIPS_REACH_CM
# of the lips' contours) must also lose at least FOLD_MIN_LOST of the photo's median triangle area: slivers that are
# flat in the photo already (round the lip corners, under a pixel) flip with any motion and cover nothing, and
# relaxing them and their neighbours pulled the mouth corners in on every frame (single_face's smile drawn 0.85 of
# the driver's width, 1.06 without; docs/fidelity.md "Fifth pass"); at a tenth, a broad smile on a photo that smiles
# already flipped slivers that lose more than that, and relaxing them drew single_face's smile 0.74 of his width and
# the sample photo's 0.75 of the way at mouthSmile 0.75 (at a half: 1.05 and 0.92; "Thirteenth pass"). Elsewhere a
# flipped sliver is still a fold: at the nose's base it drew a dark dot by the nostril (`edit --au 12=0` at 0.75 on
# the sample photo, "Sixth pass").
FOLD_SHARE, FOLD_MIN_LOST, FOLD_STEPS = 0.05, 0.5, 30
LIPS_REACH_CM = 0.5  # the lips' triangles: those with a vertex this close to the lips' contours (canonical mesh)


def _signed_area(xy: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
    """(B, N, 2) points, (T, 3) triangles -> (B, T) signed areas."""
    a, b, c = xy[:, tri[:, 0]], xy[:, tri[:, 1]], xy[:, tri[:, 2]]
    return 0.5 * ((b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0]))


class Unfolder:
    """Relaxes folded mesh triangles of a target mesh (see FOLD_SHARE). One per photo."""

    def __init__(self, points: torch.Tensor) -> None:
        from reenact.face.canonical import load_canonical

        tri = torch.tensor(np.array(load_canonical().triangles), dtype=torch.long, device=points.device)  # (F, 3)
        lids = torch.as_tensor(np.unique(EYE_CONTOUR), device=points.device)
        self.tri = tri[~torch.isin(tri, lids).any(1)]  # (F', 3) the triangles that may not fold
        self.photo_area = self.area(points[None, :, :2])[0]  # (F',)
        self.min_lost = FOLD_MIN_LOST * float(self.photo_area.abs().median())  # px^2
        canon = load_canonical().vertices[:468, :2]
        near = np.linalg.norm(canon[:, None] - canon[None, LIP_LOOPS], axis=-1).min(1) < LIPS_REACH_CM  # (468,)
        self.lips = torch.isin(self.tri, torch.as_tensor(np.flatnonzero(near), device=points.device)).any(1)  # (F',)
        n = 468  # the mesh; the iris points are not in its triangles
        edges = torch.cat([self.tri[:, [0, 1]], self.tri[:, [1, 2]], self.tri[:, [2, 0]]])
        adj = torch.zeros(n, n, device=points.device)
        adj[edges[:, 0], edges[:, 1]] = 1.0
        adj[edges[:, 1], edges[:, 0]] = 1.0
        self.mean = adj / adj.sum(1, keepdim=True).clamp(min=1.0)  # (P, P) neighbours' mean
        self.points = points

    def area(self, xy: torch.Tensor) -> torch.Tensor:
        """(B, P, 2) -> (B, F') signed triangle areas."""
        return _signed_area(xy, self.tri)

    def hits(self, folded: torch.Tensor) -> torch.Tensor:
        """(B, F') bool -> (B, P) how many of them each vertex is a corner of."""
        out = torch.zeros(len(folded), len(self.mean), device=folded.device)
        for k in range(3):
            out.scatter_add_(1, self.tri[:, k].expand_as(folded), folded.to(out.dtype))
        return out

    def __call__(self, target: torch.Tensor) -> torch.Tensor:
        """(B, 478, 3) target mesh -> the same with its folds relaxed (x, y of the 468 mesh vertices only)."""
        n = len(self.mean)  # 468
        disp = target[:, :n, :2] - self.points[None, :n, :2]  # (B, P, 2)
        for _ in range(FOLD_STEPS):
            kept = self.area(self.points[None, :n, :2] + disp) * self.photo_area.sign()  # (B, F')
            lost = self.photo_area.abs() - kept  # (B, F') px^2
            folded = (kept < FOLD_SHARE * self.photo_area.abs()) & ((lost > self.min_lost) | ~self.lips)
            if not bool(folded.any()):
                break
            hits = self.hits(folded)  # (B, P) folded triangles at each vertex
            verts = (hits + hits @ self.mean.T) > 0  # and their neighbours, so the fold spreads out
            relaxed = 0.5 * disp + 0.5 * torch.einsum("pq,bqc->bpc", self.mean, disp)
            disp = torch.where(verts[..., None], relaxed, disp)
        out = target.clone()
        out[:, :n, :2] = self.points[None, :n, :2] + disp
        return out


def _down(points: torch.Tensor, a: int, b: int) -> torch.Tensor:
    """(2,) the unit vector across an eye from its corners a -> b, pointing down the image."""
    axis = points[b, :2] - points[a, :2]
    down = torch.stack([-axis[1], axis[0]]) / axis.norm().clamp(min=1e-6)
    return down if float(down[1]) >= 0 else -down


LIP_ROWS = (torch.as_tensor(UPPER_INNER[1:-1]), torch.as_tensor(LOWER_INNER[1:-1]))  # inner-lip pairs, no corners


def close_lips(points: torch.Tensor, target: torch.Tensor, shut: torch.Tensor) -> torch.Tensor:
    """Lips shut by c (speech's p, b, m) keep (1 - c) of the opening the rig drew: both come toward each other, to
    meet at 1. The rig draws a change from the photo, so on a photo whose lips are apart (a smile showing teeth) its
    closing shapes alone left them apart. points (478, 3), target (B, 478, 3), shut (B,) in 0..1."""
    upper, lower = LIP_ROWS
    down = _down(points, 78, 308)
    apart = target[:, lower, :2] - target[:, upper, :2]  # (B, 9, 2) upper -> lower as the rig drew them
    excess = shut.clamp(0.0, 1.0)[:, None] * (apart @ down).clamp(min=0.0)  # (B, 9) px to close
    target = target.clone()
    target[:, upper, :2] += 0.5 * excess[..., None] * down
    target[:, lower, :2] -= 0.5 * excess[..., None] * down
    return target


def close_lids(points: torch.Tensor, target: torch.Tensor, unblinked: torch.Tensor, closing: torch.Tensor
               ) -> torch.Tensor:
    """A blink of c leaves each lid pair at most (1 - c) of the opening the rig draws without the blink (`unblinked`:
    the same shapes, eyeBlink at 0): where the rig left more, the upper lid comes down to (1 - c) of that offset from
    its lower partner, so at 1 they meet. The rig's blink is scaled to the photo's mean opening (Rig.scaled_to), which
    left uneven lids (the attention mesh's) up to 1 px apart at eyeBlink 1 on the sample photo. Measured from the
    unblinked lids, not the photo's: an eye that opens wider (eyeWide) stays wider at no blink and closes smoothly from
    there (capped at the photo's own opening, eyeWide drew nothing). points (478, 3), target and unblinked
    (B, 478, 3), closing (B, 2) in CLOSING's order (eyeBlinkLeft, eyeBlinkRight)."""
    target = target.clone()
    for (upper, lower, a, b), c in zip(LID_ROWS, closing.flip(-1).unbind(-1)):  # LID_ROWS: the subject's right first
        down = _down(points, a, b)
        opening = unblinked[:, lower, :2] - unblinked[:, upper, :2]  # (B, 7, 2) upper -> lower without the blink
        apart = target[:, lower, :2] - target[:, upper, :2]  # (B, 7, 2) and as the rig drew them
        wanted = (1 - c)[:, None, None] * opening  # (B, 7, 2) what a blink of c leaves
        short = ((apart - wanted) @ down > 0)[..., None]  # (B, 7, 1) the rig left the pair further apart
        target[:, upper, :2] = torch.where(short, target[:, lower, :2] - wanted, target[:, upper, :2])
    return target


def uncross_lids(points: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Lids meet and stop: where the shapes together carry an upper-lid vertex past its lower-lid partner (a blink
    with a squint or a smile's cheek raising the lower lid), both go to where they meet. Crossed, the warp turned
    the eyeball's strip out between them again (white shards round a shut eye). points (478, 3), target (B, 478, 3).
    """
    target = target.clone()
    for upper, lower, a, b in LID_ROWS:
        down = _down(points, a, b)
        up_pts, lo_pts = target[:, upper, :2], target[:, lower, :2]  # (B, 7, 2)
        apart = (points[lower, :2] - points[upper, :2]) @ down >= 0  # (7,) open in the photo (a photo's own is kept)
        crossed = (((lo_pts - up_pts) @ down < 0) & apart)[..., None]  # (B, 7, 1) the upper vertex is now below
        meet = (up_pts + lo_pts) / 2
        target[:, upper, :2] = torch.where(crossed, meet, up_pts)
        target[:, lower, :2] = torch.where(crossed, meet, lo_pts)
    return target


def limit_opening(points: torch.Tensor, target: torch.Tensor, most: float = WIDEN_MOST) -> torch.Tensor:
    """Lids open at most `most` times as far apart as the photo's: each lid pair's widening (the upper lid's rise and
    the lower lid's fall, where they move apart) is cut back by the share that exceeds it. Beyond the photo's opening
    a warp has no eyeball to show, only the photo's lashes and the slit's shadow stretched; a downcast photo's eyes
    opened wide by its driver (WolfgangLanger, six times its gap) drew two black holes. points (478, 3), target
    (B, 478, 3)."""
    target = target.clone()
    for upper, lower, a, b in LID_ROWS:
        down = _down(points, a, b)
        photo_gap = ((points[lower, :2] - points[upper, :2]) @ down).clamp(min=0.0)  # (7,)
        up, lo = target[:, upper, :2], target[:, lower, :2]  # (B, 7, 2)
        rise = ((points[upper, :2] - up) @ down).clamp(min=0.0)  # (B, 7) how far each lid moved away from the other
        fall = ((lo - points[lower, :2]) @ down).clamp(min=0.0)
        excess = ((lo - up) @ down - most * photo_gap).clamp(min=0.0)  # (B, 7)
        cut = (excess / (rise + fall).clamp(min=1e-6)).clamp(max=1.0)  # (B, 7) the share of the widening taken back
        target[:, upper, :2] = up + (cut * rise)[..., None] * down
        target[:, lower, :2] = lo - (cut * fall)[..., None] * down
    return target


def follow_lids(points: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Move each iris vertically with its eyelids: the rig moves the lids, and an iris left where it was would pin
    the eye open in the warp. Its relative height between the lids is kept. points (478, 3), target (B, 478, 3)."""
    target = target.clone()
    for iris, ((upper, lower), *_) in zip(torch.as_tensor(IRISES), LID_PAIRS):  # each eye's mid lid pair
        top, bottom = points[upper, 1], points[lower, 1]
        rel = (points[iris, 1] - top) / (bottom - top).clamp(min=1e-3)  # (5,)
        t_top, t_bottom = target[:, upper, 1:2], target[:, lower, 1:2]  # (B, 1)
        target[:, iris, 1] = t_top + rel * (t_bottom - t_top)
    return target


# A sideways gaze carries each iris along its eye. The warp's triangles between the iris and the lids then squeeze,
# and past the white the photo shows they fold over: the iris drawn as a chevron, white wedges beside it
# (WolfgangLanger looking up and aside, eyeLook 0.86, on any photo; at 0.5 already a few triangles flip). The iris's
# motion along its eye (from its corners' own) is cut back, frame by frame, to the largest share of GAZE_SHARES at
# which every triangle at the iris keeps GAZE_KEEP of its photo area (or what it keeps with no gaze, where lids that
# close squeeze it anyway).
GAZE_KEEP = 0.3
GAZE_SHARES = torch.linspace(1.0, 0.0, 11)


class GazeLimit:
    """Cuts back each iris's motion along its eye until its triangles do not fold (see GAZE_KEEP). One per photo.

    points: (478, 3) the photo's mesh; eye_tris: per eye (EYE_CONTOUR's order, as IRISES), the warp's triangles
    round it (MeshWarper.eye_tris): those with an iris vertex are kept from folding."""

    def __init__(self, points: torch.Tensor, eye_tris: Sequence[np.ndarray]) -> None:
        self.eyes = []
        for iris, ring, tris in zip(IRISES, EYE_CONTOUR, eye_tris):
            tris = tris[np.isin(tris, iris).any(1)]  # (T, 3) the triangles at the iris
            verts, local = np.unique(tris, return_inverse=True)  # their vertices, and the triangles in those
            tri = torch.as_tensor(local.reshape(tris.shape), dtype=torch.long, device=points.device)
            corners = (int(ring[0]), int(ring[8]))
            axis = points[corners[1], :2] - points[corners[0], :2]
            moving = torch.as_tensor(np.isin(verts, iris), device=points.device)  # (V,) which of them are the iris's
            self.eyes.append((torch.as_tensor(verts, device=points.device), moving, corners,
                              axis / axis.norm().clamp(min=1e-6), tri, _signed_area(points[None, verts, :2], tri)[0]))
        self.points = points
        self.shares = GAZE_SHARES.to(points.device)

    def __call__(self, target: torch.Tensor) -> torch.Tensor:
        """(B, 478, 3) target mesh -> the same with each iris moved along its eye no further than it can fold."""
        if not self.eyes or len(target) == 0:
            return target
        target = target.clone()
        s = self.shares[None, :, None, None]  # (1, S, 1, 1)
        for verts, moving, (a, b), axis, tri, photo in self.eyes:
            corners = (target[:, [a, b], :2] - self.points[[a, b], :2]).mean(1)  # (B, 2) the eye's own motion
            along = ((target[:, verts, :2] - self.points[verts, :2] - corners[:, None]) @ axis) * moving  # (B, V)
            back = along[:, None, :, None] * axis  # (B, 1, V, 2) the gaze's share of the iris's motion
            xy = target[:, None, verts, :2] - (1.0 - s) * back  # (B, S, V, 2) each share of the gaze
            kept = _signed_area(xy.flatten(0, 1), tri).view(len(target), len(self.shares), -1) / photo  # (B, S, T)
            floor = kept[:, -1:].clamp(max=GAZE_KEEP)  # (B, 1, T) what no gaze keeps
            ok = (kept >= floor - 1e-6).all(-1)  # (B, S); the last share (no gaze) always holds
            best = self.shares[ok.float().argmax(1)]  # (B,) the largest share that holds
            target[:, verts, :2] -= (1.0 - best)[:, None, None] * back[:, 0]
        return target


# The eye area (reenact.rig.EyeArea): a driver's own motion of its lids, the skin round its eyes and its brows is
# drawn there instead of the rig's. The lids and their halos give way to the rig as they shut: weight (1 - c)^2 at a
# blink of c on that side, so the rig's blink (shut by close_lids) still shuts the eye (the tracked lids of a shut eye
# stay a pixel or two apart); the skin beyond and the brows stay the driver's, and close_lids leaves the driver's lids
# alone (it pulled them shut at every small blink reading). A tracker reads a warped photo's motion short
# (Rig.render_gain): the whole area is drawn AREA_GAIN times its motion. Judged on the tuning clips
# (tools/eval_fidelity.py, docs/fidelity.md "Fourth pass"; the rig alone -> carried): eyes 0.92 / 1.21 / 0.98 ->
# 0.70 / 0.87 / 0.72 unreproduced, brows 0.36 / 0.46 / 0.93 -> 0.26 / 0.43 / 0.63. The lid margins were drawn once
# until a half-shut lid read as one ("Tenth pass": held-out eyes 0.83 -> 0.77 at AREA_GAIN).
AREA_GAIN = 1.5
# Lids and brows move up and down; sideways, a talking face's eye area moves at most 0.22-0.38 cm from its rest (the
# nine clips of tools/eval_fidelity.py). A hand rubbing an eye drags the tracked brow and lids sideways by a whole
# centimetre (WolfgangLanger), which drew the brow's skin over the hair at the temple with a hard edge. A frame's
# sideways motion is scaled down until no point moves further than this; its up-down motion is drawn as it is.
AREA_SIDEWAYS_CM = 0.4
LIDS_AND_HALOS = np.unique(EYE_CONTOUR[:, :32])  # what the rig's blink moves: the lids and the ring round them


class AreaCarrier:
    """The eye area's modes in one photo's pixels, and the blend of a driver's eye-area motion over the rig's."""

    def __init__(self, area: "EyeArea", rig_neutral: torch.Tensor, points: torch.Tensor) -> None:
        from reenact.rig import procrustes

        s, rot, _ = procrustes(rig_neutral[:468], points[:468])
        self.basis = torch.cat([area.basis, torch.zeros_like(area.basis[..., :1])], -1).to(points.device)  # (K, P, 3)
        self.to_photo = AREA_GAIN * s * rot.T.to(points.device)  # (3, 3) canonical cm (flat z) -> photo px, drawn
        self.points = area.points.to(points.device)  # (P,)
        self.rest = points[self.points]  # (P, 3) where the photo has them
        canon_x = rig_neutral[area.points.to(rig_neutral.device), 0]
        self.side = (canon_x <= 0).long().to(points.device)  # (P,) 0: the subject's left (+x), CLOSING's order
        self.lids = torch.isin(self.points.cpu(), torch.as_tensor(LIDS_AND_HALOS)).to(points.device)  # (P,)

    def __call__(self, target: torch.Tensor, area: torch.Tensor, closing: torch.Tensor) -> torch.Tensor:
        """(B, 478, 3) the rig's target mesh, (B, K) eye-area coefficients and (B, 2) the blink drawn per side
        (0..1, CLOSING's order) -> the target mesh with the eye area carried."""
        motion = mode_motion(area, self.basis)  # (B, P, 3) canonical cm
        sideways = motion[..., 0].abs().amax(1, keepdim=True)  # (B, 1)
        motion[..., 0] *= (AREA_SIDEWAYS_CM / sideways.clamp(min=1e-6)).clamp(max=1.0)
        carried = self.rest + motion @ self.to_photo  # (B, P, 3) px
        shut = closing.clamp(0.0, 1.0)[:, self.side] * self.lids  # (B, P) only the lids give way to a blink
        weight = (1.0 - shut) ** 2
        rig = target[:, self.points]
        target = target.clone()
        target[:, self.points] = rig + weight[..., None] * (carried - rig)
        return target


def pose_angles(points: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) degrees of a face from its landmarks."""
    pose = estimate_pose(np.asarray(points, np.float64))
    return pose.yaw, pose.pitch, pose.roll


class FaceRenderer:
    """Renders the source photo with new expressions.

    image: (H, W, 3) uint8 photo; points: (478, 3) its landmarks (x, y px, z px-scaled); source_shapes: (52,) the
    photo's own ARKit expression (the rig moves the mesh by the *difference* to it); eye_area: the modes a driver's
    eye-area motion is drawn with (`area=` of the render calls), None to draw with the rig alone.
    """

    def __init__(self, image: np.ndarray, points: np.ndarray, source_shapes: np.ndarray, rig: Rig,
                 device: torch.device = torch.device("cpu"), refiner: "Refiner | None" = None,
                 shading: "ExpressionShading | None" = None, eye_area: "EyeArea | None" = None) -> None:
        self.image, self.points, self.device, self.refiner = image, points, device, refiner
        self.rig = rig.scaled_to(points)  # basis rotated and scaled into this photo's pixels
        self.warper = MeshWarper(image, points[:, :2], device)
        self.center = torch.tensor(points[:468].mean(0), dtype=torch.float32, device=device)
        # The photo's own head pose: a driver's turn is applied on top of it, R(photo + change) R(photo)^T.
        self.source_pose = torch.tensor(pose_angles(points), dtype=torch.float32, device=device)  # (3,)
        self.source_rotation = euler_matrix(*self.source_pose[:, None])  # (1, 3, 3)
        self.source_points = torch.tensor(points, dtype=torch.float32, device=device)  # (478, 3)
        self.unfold = Unfolder(self.source_points)  # relaxes folded triangles of each target mesh
        self.gaze_limit = GazeLimit(self.source_points, self.warper.eye_tris)  # irises that do not fold their eyes
        self.area = None if eye_area is None else AreaCarrier(eye_area, rig.neutral.to(device), self.source_points)
        self.source_shapes = torch.tensor(source_shapes, dtype=torch.float32, device=device)
        self.source_closure = blink_closure(self.source_shapes[CLOSING])  # (2,) how far the photo's lids are shut
        self.shading = None if shading is None else shading.for_photo(points, self.warper.roi, source_shapes)
        self.mouth = MouthPainter(image, points, (self.warper.roi.x0, self.warper.roi.y0))
        self.carrier = Carrier(image, points)  # the photo's skin colour, for a driver's carried mouth interior
        self.picker: LibraryPicker | None = None  # --mouth library: real mouths chosen by shape where no driver's is
        box = self.warper.roi  # a source-conditioned refiner also sees the photo's own ROI (1, 3, h, w)
        self.source_roi = (torch.from_numpy(image[box.y0:box.y1, box.x0:box.x1].copy()).permute(2, 0, 1)[None]
                           if refiner is not None and refiner.net.use_source else None)

    def displacement(self, shapes: torch.Tensor, rotation: torch.Tensor | None = None,
                     area: torch.Tensor | None = None, shut: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 52) target shapes [+ (B, 3) yaw/pitch/roll change] [+ (B, K) eye-area motion] [+ (B,) lips shut,
        `close_lips`] -> (B, 478, 3) photo-space vertex displacement."""
        return self.displacements(shapes, rotation, area, shut)[0]

    def displacements(self, shapes: torch.Tensor, rotation: torch.Tensor | None = None,
                      area: torch.Tensor | None = None, shut: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """`displacement`, and (B, 2, 3) the eyeballs' own displacement (the rig's iris centres, the gaze as far as
        `GazeLimit` lets it go; and the head), which the warp slides the lids over."""
        # (B, 52) the linear rig draws the change only, times its render gain (what a tracker reads back short)
        shapes = shapes.to(self.device)
        change = (shapes - self.source_shapes) * self.rig.render_gain
        # The lid shapes are scaled to the photo's own opening (Rig.scaled_to), so for them a change is a share of
        # the travel the photo's lids have left (1 - its own closure); at 1 they meet, and go no further.
        left = (1.0 - self.source_closure).clamp(min=0.2)
        change[:, CLOSING] = ((blink_closure(shapes[:, CLOSING]) - self.source_closure) / left).clamp(max=1.0)
        delta = self.rig.deltas(change)  # (B, 478, 3)
        blink = mode_motion(change[:, CLOSING], self.rig.basis[CLOSING])  # (B, 478, 3) the blink shapes' own part
        target = close_lids(self.source_points, self.source_points + delta, self.source_points + delta - blink,
                            change[:, CLOSING].clamp(min=0.0))
        if area is not None and self.area is not None:  # after close_lids: it shuts the rig's lids, not the driver's
            target = self.area(target, area.to(self.device), change[:, CLOSING])
        if shut is not None:
            target = close_lips(self.source_points, target, shut.to(self.device))
        unfollowed = self.unfold(limit_opening(self.source_points, uncross_lids(self.source_points, target)))
        followed = follow_lids(self.source_points, unfollowed)
        limited = self.gaze_limit(followed)
        # the eyeballs the lids slide over (the warp's eyeball layer) move as far as the mesh's irises may
        eyeballs = unfollowed[:, IRIS_CENTRES] + (limited - followed)[:, IRIS_CENTRES]
        moved = torch.cat([limited, eyeballs], 1)
        if rotation is not None:
            turn = rotation.to(self.device) * self.rig.pose_gain  # (B, 3) the turn drawn so that it reads as asked
            turned = euler_matrix(*(self.source_pose + turn).unbind(-1))  # (B, 3, 3)
            rot = turned @ self.source_rotation.transpose(1, 2)  # (B, 3, 3) the change, in the image frame
            moved = (moved - self.center) @ rot.transpose(1, 2) + self.center
        n = len(self.source_points)
        return moved[:, :n] - self.source_points, moved[:, n:] - self.source_points[IRIS_CENTRES]

    @torch.inference_mode()
    def target_points(self, shapes: np.ndarray, rotation: np.ndarray | None = None,
                      area: np.ndarray | None = None) -> np.ndarray:
        """(B, 52) shapes -> (B, 478, 3) the rendered face's mesh in photo px (for the identity check's alignment)."""
        disp = self.displacement(torch.as_tensor(shapes, dtype=torch.float32), _tensor(rotation), _tensor(area))
        return (self.source_points + disp).cpu().numpy()

    @torch.inference_mode()
    def render(self, shapes: np.ndarray, rotation: np.ndarray | None = None,
               area: np.ndarray | None = None) -> np.ndarray:
        """(B, 52) target ARKit shapes -> (B, H, W, 3) uint8 frames of the full photo."""
        return self.render_with_points(shapes, rotation, area=area)[0]

    @torch.inference_mode()
    def render_with_points(self, shapes: np.ndarray, rotation: np.ndarray | None = None,
                           interior: "Sequence[DriverMouth | None] | None" = None,
                           again: bool = False, area: np.ndarray | None = None,
                           shut: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Like `render`, plus (B, 478, 3) the rendered faces' meshes in photo px (for the identity check).

        `interior`: per frame, the driver's mouth to carry into the opening (reenact.render.interior), or None for
        the painted interior (or the library's, `self.picker`). `again`: frames rendered before (the identity
        fallback's re-render): the library's choice, smoothed over frames, is not advanced by them a second time.
        `area`: (B, K) the driver's eye-area motion (reenact.rig.EyeArea), None: the rig draws the eyes alone.
        `shut`: (B,) how far the lips are shut whatever the photo's opening (`close_lips`; speech's p, b, m)."""
        if interior is not None and len(interior) != len(shapes):
            raise ValueError(f"{len(interior)} driver mouths for {len(shapes)} frames; give one per frame (or None)")
        shapes_t = torch.as_tensor(shapes, dtype=torch.float32)
        disp, eyeballs = self.displacements(shapes_t, _tensor(rotation), _tensor(area), _tensor(shut))  # (B, 478, 3)
        gain = None if self.shading is None else self.shading.gain(shapes_t)  # (B, 1, h, w) creases, bulges
        if gain is not None and interior is not None:  # the driver's own fine creases, behind the shading's gate
            creases = self.shading.crease_gain([None if m is None else m.creases for m in interior])
            gain = gain if creases is None else gain * creases
        roi = self.warper.warp(disp[..., :2], gain, eyeballs[..., :2])  # (B, 3, h, w) 0..255
        targets = (self.source_points + disp).cpu().numpy()
        frames = roi.permute(0, 2, 3, 1).cpu().numpy()  # (B, h, w, 3)
        for i, (frame, target) in enumerate(zip(frames, targets)):
            mouth = None if interior is None else interior[i]
            fill = None if mouth is None else self.carrier.filler(mouth)
            if fill is None and self.picker is not None:  # picked every frame, so its smoothing sees every frame
                fill = blend_fill(self.carrier, self.picker.pick(target, self.carrier.rest_width, not again))
            self.mouth.paint(frame, target, fill)
        roi = torch.from_numpy(frames).permute(0, 3, 1, 2)
        if self.refiner is not None:  # draws what a warp cannot (mouth interior, lids, wrinkles) over it
            origin = np.array([self.warper.roi.x0, self.warper.roi.y0, 0], np.float32)
            roi = self.refiner.refine(roi.to(self.device), targets - origin, shapes_t, source_roi=self.source_roi).cpu()
        return self.warper.paste(self.image, roi), targets


def _tensor(x: np.ndarray | None) -> torch.Tensor | None:
    return None if x is None else torch.as_tensor(x, dtype=torch.float32)
