"""Reference meshes for tools/eval_fidelity.py: Google's MediaPipe FaceMesh (refine_landmarks=True, 478 points).

Runs inside the reference venv (mediapipe==0.10.21, numpy<2, av), never in the project's venv, so the measurement
does not share code with the reenact tracker it judges:

    .cache/venvs/mediapipe/bin/python tools/_mp_mesh.py IN=OUT.npz [IN=OUT.npz ...]

IN is a video (decoded with PyAV; FaceMesh in tracking mode, as on a live stream) or a still photo (.jpg/.png/...;
static image mode). OUT.npz holds `points` (T, 478, 3) float32 in pixels (x, y, z*width; NaN where no face was
found; T = 1 for a photo) and `size` (width, height).
"""

from __future__ import annotations

import sys
from pathlib import Path

import av
import cv2
import mediapipe as mp
import numpy as np

STILLS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".ppm")


def mesh(face_mesh, rgb: np.ndarray) -> np.ndarray:
    """(478, 3) pixel landmarks of the one face FaceMesh reports (max_num_faces=1), or NaN where it finds none."""
    h, w = rgb.shape[:2]
    res = face_mesh.process(rgb)
    if not res.multi_face_landmarks:
        return np.full((478, 3), np.nan, np.float32)
    return np.array([(q.x * w, q.y * h, q.z * w) for q in res.multi_face_landmarks[0].landmark], np.float32)


def run(src: Path, dst: Path) -> None:
    still = src.suffix.lower() in STILLS
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=still, refine_landmarks=True, max_num_faces=1,
                                         min_detection_confidence=0.5, min_tracking_confidence=0.5) as fm:
        if still:
            rgb = cv2.cvtColor(cv2.imread(str(src), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            frames = [mesh(fm, rgb)]
        else:
            with av.open(str(src)) as container:
                frames = []
                for f in container.decode(video=0):
                    rgb = f.to_ndarray(format="rgb24")
                    frames.append(mesh(fm, rgb))
    h, w = rgb.shape[:2]
    tmp = dst.with_suffix(".tmp.npz")  # atomic: a killed run leaves no half-written cache entry
    np.savez_compressed(tmp, points=np.stack(frames), size=np.array([w, h]))
    tmp.replace(dst)
    missing = int(np.isnan(np.stack(frames)[:, 0, 0]).sum())
    print(f"{src.name}: {len(frames)} frame(s), {missing} without a face", file=sys.stderr)


def main() -> None:
    for arg in sys.argv[1:]:
        src, dst = arg.split("=", 1)
        run(Path(src), Path(dst))


if __name__ == "__main__":
    main()
