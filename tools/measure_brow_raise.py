"""The shape of real brow raises along the brow, from tracked footage (docs/fidelity.md, "Seventh pass").

    .venv/bin/python tools/measure_brow_raise.py [CLIP ...] [--meshes .cache/rig/meshes.npz] [--frames 10]

CLIP is a key of the meshes file (cap12_edit_mp4, cap13_edit2_mp4, WolfgangLanger_Pexels_mp4, franck_mp4: the
tracked clips `tools/build_rig.py extract-meshes` stores) or a video path, tracked here. Each frame's mesh is put in
the estimator's pose-free canonical frame; the height of the brows' upper-edge vertices above the eye corners is
taken about the clip's median, and the mean over the `--frames` frames of largest mean rise is printed per brow,
from the tail to the inner end, relative to its highest point, with that point's rise in cm. The rig's full raise
(browInnerUp + browOuterUp at 1) is printed the same way for comparison.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reenact.analysis import Models  # noqa: E402
from reenact.clip_geometry import canonical_points  # noqa: E402
from reenact.face.canonical import load_canonical  # noqa: E402
from reenact.params import ARKIT52  # noqa: E402

# The brows' upper edges, tail -> inner end: the subject's left, then right
BROWS = tuple(load_canonical().group(f"{side}_eyebrow_upper") for side in ("left", "right"))
CORNERS = [33, 133, 362, 263]


def apex_profile(canon: np.ndarray, frames: int) -> tuple[np.ndarray, float]:
    """(T, 468, 3) canonical meshes -> (2, 5) each brow's rise at its largest raises over its highest point, and the
    highest rise (cm)."""
    canon = canon[np.isfinite(canon).all(axis=(1, 2))]
    corners = canon[:, CORNERS, 1].mean(1)[:, None]  # (T, 1), y down
    height = np.stack([corners - canon[:, list(b), 1] for b in BROWS], 1)  # (T, 2, 5)
    rise = height - np.median(height, 0)
    top = np.argsort(-rise.mean((1, 2)))[:frames]
    profile = rise[top].mean(0)  # (2, 5)
    return profile / profile.max(1, keepdims=True), float(profile.max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips", nargs="*", default=["cap12_edit_mp4", "cap13_edit2_mp4", "WolfgangLanger_Pexels_mp4"])
    ap.add_argument("--meshes", type=Path, default=ROOT / ".cache" / "rig" / "meshes.npz")
    ap.add_argument("--frames", type=int, default=10)
    args = ap.parse_args()
    models = Models()
    basis = models.rig.basis.numpy()
    full = sum(basis[ARKIT52.index(n)] for n in ("browInnerUp", "browOuterUpLeft", "browOuterUpRight"))
    rig = np.stack([-full[list(b), 1] for b in BROWS])
    left, right = np.round(rig / rig.max(1, keepdims=True), 2)
    print(f"{'rig, full raise':28s} left {left} right {right} peak {rig.max():.2f} cm")
    stored = np.load(args.meshes) if args.meshes.exists() else {}
    profiles = []
    for clip in args.clips:
        if clip in stored:
            points = stored[clip]
        else:
            from reenact.face.track import track_video
            from reenact.io.video import read_frames

            with read_frames(Path(clip)) as frames:
                tracked = list(track_video((f.rgb for f in frames), models.analyzer))
            if not any(lm is not None for lm in tracked):
                sys.exit(f"{clip}: no face in any frame")
            missing = np.full_like(next(lm.points for lm in tracked if lm is not None), np.nan)
            points = np.stack([missing if lm is None else lm.points for lm in tracked])  # NaN: no face
        profile, peak = apex_profile(canonical_points(points.astype(np.float32), models.estimator), args.frames)
        profiles.append(profile)
        print(f"{Path(clip).name[:28]:28s} left {np.round(profile[0], 2)} right {np.round(profile[1], 2)}"
              f" peak {peak:.2f} cm")
    mean = np.mean(np.concatenate(profiles), 0)
    print(f"{'mean of both brows':28s} {np.round(mean / mean.max(), 3)}")


if __name__ == "__main__":
    main()
