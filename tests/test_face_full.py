"""Full-range BlazeFace: sparse-weight densification, parity with the original runtime, and the "auto" detector policy.

Fixtures from tools/make_face_fixtures.py: full.npz (raw .tflite outputs, FaceDetection(model_selection=1) results on
the images.npz photos and on the canvas) and small_faces.png (1280x960, two faces ~1/10-1/12 of its width).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from media_utils import FACE_FIXTURES, face_fixture

from reenact.errors import InputError, NoFaceError
from reenact.face import FaceAnalyzer
from reenact.face.detect import AutoDetector, BlazeFaceDetector, iou
from reenact.weights import load_model
from tools.convert_mediapipe import SparseDim, densify

FIX = FACE_FIXTURES


@pytest.fixture(scope="module")
def full() -> dict[str, np.ndarray]:
    return face_fixture("full")


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    d = face_fixture("images")
    return [d[f"image_{i}"] for i in range(len(d["names"]))]


@pytest.fixture(scope="module")
def canvas() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(FIX / "small_faces.png")), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    return FaceAnalyzer(torch.device("cpu"))


def test_densify_block_sparse():
    """A 2x2-block CSR matrix (the layout TFLite uses for block-sparse weights), uint8 and int32 index vectors."""
    rng = np.random.default_rng(0)
    dense = rng.standard_normal((6, 8)).astype(np.float32)
    keep = rng.random((3, 4)) < 0.5
    keep[1] = False  # an empty block row
    dense *= np.kron(keep, np.ones((2, 2))).astype(np.float32)
    seg, ind, vals = [0], [], []
    for r in range(3):
        for c in np.flatnonzero(keep[r]):
            ind.append(c)
            vals.append(dense[2 * r:2 * r + 2, 2 * c:2 * c + 2].ravel())  # block contents, row-major
        seg.append(len(ind))
    for dtype in (np.uint8, np.int32):
        dims = [SparseDim(3), SparseDim(segments=np.array(seg, dtype), indices=np.array(ind, dtype)), SparseDim(2), SparseDim(2)]
        out = densify(np.concatenate(vals), [6, 8], [0, 1, 2, 3], [0, 1], dims)
        np.testing.assert_array_equal(out, dense)
    # plain CSR on the last axis with a permuted traversal (columns first): a transposed CSR layout
    dims = [SparseDim(8), SparseDim(segments=np.array([0, 1, 1, 1, 2, 2, 2, 2, 3]), indices=np.array([2, 0, 5]))]
    out = densify(np.array([1.0, 2.0, 3.0], np.float32), [6, 8], [1, 0], [], dims)
    want = np.zeros((6, 8), np.float32)
    want[2, 0], want[0, 3], want[5, 7] = 1.0, 2.0, 3.0
    np.testing.assert_array_equal(out, want)


def test_blazeface_full_raw_parity(full):
    x = torch.from_numpy(full["det_in"]).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (2, 3, 192, 192)
    with torch.inference_mode():
        reg, logits = load_model("blazeface_full")(x)
    ref = full["det_reg"].astype(np.float32)
    assert reg.shape == (2, 2304, 16) and logits.shape == (2, 2304)
    assert np.abs(reg.numpy() - ref).max() < 0.15  # fp16-stored reference, values up to ~140 px
    assert np.abs(logits.numpy() - full["det_cls"]).max() < 1e-2
    assert full["det_cls"].max() > 0  # the inputs do contain faces


def _match(found, boxes, keypoints, scores) -> None:
    assert len(found) == len(boxes)
    for rb, rk, rs in zip(boxes, keypoints, scores):  # the reference is in score order, ours left to right
        d = max(found, key=lambda d: float(iou(d.box, rb[None])[0]))
        assert iou(d.box, rb[None])[0] > 0.95
        assert abs(d.score - rs) < 0.01
        size = float(rb[2] - rb[0])
        assert np.abs(d.keypoints - rk).max() < max(1.0, 0.01 * size)


def test_full_range_detection_parity(full, photos, canvas):
    found = BlazeFaceDetector(model="full")(photos + [canvas])  # one batch, mixed sizes
    for i in range(len(photos)):
        _match(found[i], full[f"boxes_{i}"], full[f"keypoints_{i}"], full[f"scores_{i}"])
    _match(found[-1], full["boxes_canvas"], full["keypoints_canvas"], full["scores_canvas"])
    assert len(found[-1]) == 2


def test_auto_policy(full, photos, canvas):
    auto = AutoDetector()
    short = BlazeFaceDetector()
    assert short([canvas]) == [[]]  # the small faces are below the short-range model's reach
    on_photos = auto(photos)
    assert auto._full is None  # normal photos never load or run the full-range model
    for a, s in zip(on_photos, short(photos)):
        assert len(a) == len(s) and all(np.array_equal(x.box, y.box) for x, y in zip(a, s))
    mixed = auto([photos[0], canvas])
    assert len(mixed[0]) == 1 and len(mixed[1]) == 2
    _match(mixed[1], full["boxes_canvas"], full["keypoints_canvas"], full["scores_canvas"])


def test_analyzer_small_face(analyzer, canvas, full):
    face = analyzer.analyze(canvas, name="canvas.png")  # the larger of the two small faces
    assert face.score > 0.9
    ref = full["boxes_canvas"]
    assert max(iou(face.box, ref)) > 0.5  # mesh box (468 points) vs detector box
    assert len(analyzer.analyze_all(canvas)) == 2
    with pytest.raises(NoFaceError, match="canvas.png"):
        FaceAnalyzer(detector="short").analyze(canvas, name="canvas.png")
    forced = FaceAnalyzer(detector="full")
    assert isinstance(forced.detector, BlazeFaceDetector) and forced.detector.config.size == 192
    with pytest.raises(InputError, match="'auto'"):
        FaceAnalyzer(detector="tiny")


def test_tracker_redetects_small_face(analyzer, canvas):
    tracker = analyzer.tracker()
    first = tracker.update(canvas)
    assert first is not None and tracker.detections_run == 1
    again = tracker.update(canvas)  # tracked from the previous mesh, no detector run
    assert again is not None and tracker.detections_run == 1
    assert np.abs(again.points[:468, :2] - first.points[:468, :2]).mean() < 2.0


def test_tiny_face_at_full_range_floor(analyzer):
    with np.load(FIX / "images.npz") as d:
        img = d["image_2"]
    big = np.full((600, 600, 3), 40, np.uint8)
    small = img[::8, ::8]  # face ~21 px: the full-range model reports it at its ~9 px (of 192) floor, ~28 px here
    big[300:300 + small.shape[0], 300:300 + small.shape[1]] = small
    dets = analyzer.detect(big)
    assert dets and all(d.model == "full" and d.width > 24 for d in dets)  # found, with an inflated box
    with pytest.raises(InputError, match="tiny.png is too small for its 600x600 image"):
        analyzer.analyze(big, name="tiny.png")


def test_analyze_all_both_ranges_finds_a_groups_small_faces(analyzer, photos, canvas):
    """A large face beside two small ones: "auto" stops at what short range found, both ranges merged find all
    three, each once (refiner training stills use group photos)."""
    group = canvas.copy()  # the two small faces lie above y = 480
    large = cv2.resize(photos[3], None, fx=2, fy=2)  # a face of ~200 px
    group[520:520 + large.shape[0], 450:450 + large.shape[1]] = large
    assert len(analyzer.analyze_all(group)) == 1
    faces = analyzer.analyze_all(group, both_ranges=True)
    assert len(faces) == 3 and [f.box[0] for f in faces] == sorted(f.box[0] for f in faces)
