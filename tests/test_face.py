"""Parity of the ported MediaPipe face models with the original runtime (fixtures from tools/make_face_fixtures.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from media_utils import face_fixture

from reenact.face import FaceAnalyzer, load_canonical
from reenact.face.detect import BlazeFaceDetector, iou
from reenact.face.landmarks import EYE_CONTOUR, MESH_ONLY
from reenact.weights import load_model


@pytest.fixture(scope="module")
def nets() -> dict[str, np.ndarray]:
    return face_fixture("nets")


@pytest.fixture(scope="module")
def images() -> dict[str, np.ndarray]:
    return face_fixture("images")


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    """The plain FaceMesh + iris path, whose parity these tests check (the attention mesh, the default, has its own
    in tests/test_attention_mesh.py)."""
    torch.set_num_threads(2)
    return FaceAnalyzer(torch.device("cpu"), mesh="plain")


def _nchw(a: np.ndarray, k: float, off: float) -> torch.Tensor:
    return torch.from_numpy(a).permute(0, 3, 1, 2).float() * k + off


def test_blazeface_raw_parity(nets):
    with torch.inference_mode():
        reg, logits = load_model("blazeface_short")(_nchw(nets["det_in"], 1 / 127.5, -1.0))
    ref = nets["det_reg"].astype(np.float32)
    assert reg.shape == (len(ref), 896, 16)
    # the reference regressors are stored in fp16 (|values| up to ~200 px): allow its rounding
    assert np.abs(reg.numpy() - ref).max() < 0.15
    assert np.abs(logits.numpy() - nets["det_cls"]).max() < 1e-2


def test_facemesh_raw_parity(nets):
    with torch.inference_mode():
        lm, flag = load_model("facemesh")(_nchw(nets["mesh_in"], 1 / 255, 0.0))
    assert np.abs(lm.numpy() - nets["mesh_out"]).max() < 0.01  # px of the 192 input
    assert np.abs(flag.numpy() - nets["mesh_flag"]).max() < 1e-2


def test_iris_raw_parity(nets):
    with torch.inference_mode():
        contours, iris = load_model("iris")(_nchw(nets["iris_in"], 1 / 255, 0.0))
    # the iris .tflite is fp32; our fp16 storage moves points by < 0.05 px of the 64 px crop
    assert np.abs(contours.numpy() - nets["iris_contours"]).max() < 0.05
    assert np.abs(iris.numpy() - nets["iris_points"]).max() < 0.05


def test_detection_parity(images):
    det = BlazeFaceDetector()
    n = len(images["names"])
    found = det([images[f"image_{i}"] for i in range(n)])  # one batch
    for i in range(n):
        ref_boxes = images[f"det_boxes_{i}"]
        assert len(found[i]) == len(ref_boxes)
        for d, rb, rk, rs in zip(found[i], ref_boxes, images[f"det_keypoints_{i}"], images[f"det_scores_{i}"]):
            assert iou(d.box, rb[None])[0] > 0.95
            assert abs(d.score - rs) < 0.01
            assert np.abs(d.keypoints - rk).max() < 1.0


def test_landmark_parity_end_to_end(images, analyzer):
    for i in range(len(images["names"])):
        face = analyzer.analyze(images[f"image_{i}"], name=str(images["names"][i]))
        ref = images[f"mesh468_{i}"][0]
        iod = np.linalg.norm(ref[33, :2] - ref[263, :2])
        err = np.linalg.norm(face.points[MESH_ONLY, :2] - ref[MESH_ONLY, :2], axis=1) / iod
        assert face.points.shape == (478, 3) and face.points.dtype == np.float32
        assert err.mean() < 0.005, f"image {i}: mean error {err.mean():.4f} of the inter-ocular distance"
        assert np.abs(face.points[:468, 2] - ref[:, 2]).mean() / iod < 0.005
        # Iris: MediaPipe's refine_landmarks uses a different (attention) mesh model; same points, looser bound.
        ref_iris = images[f"mesh478_{i}"][0, 468:, :2]
        assert (np.linalg.norm(face.points[468:, :2] - ref_iris, axis=1) / iod).mean() < 0.03
        assert 0.9 < face.score <= 1.0


def test_canonical_mesh_conventions():
    m = load_canonical()
    v = m.vertices
    assert v.shape == (468, 3) and m.triangles.shape[1] == 3 and m.triangles.max() < 468
    assert abs(v.mean(0)).max() < 1e-4  # centred
    assert v[263, 0] > 0 > v[33, 0]  # subject's left eye corner at image right
    assert v[152, 1] > 0 > v[10, 1]  # chin down, forehead up
    assert v[:, 2].argmin() in m.group("nose") and v[1, 2] < v[:, 2].mean() - 2  # nose nearest the camera
    np.testing.assert_allclose(v[m.mirror] * [-1, 1, 1], v, atol=1e-4)  # exactly symmetric
    eye_l, eye_r = v[m.group("left_eye")].mean(0), v[m.group("right_eye")].mean(0)
    assert abs(np.linalg.norm(eye_l - eye_r) - 6.3) < 1e-3
    assert set(m.group("lips_outer")).isdisjoint(m.group("lips_inner"))


def test_eyelids_come_from_the_iris_model_and_agree_with_the_refined_reference(images, analyzer):
    """The lids are the iris model's contours (MediaPipe's iris pipeline), nearer MediaPipe's refined 478-point
    mesh than FaceMesh's own lids on every fixture photo; the rest of the mesh is FaceMesh's (parity test above)."""
    lids = EYE_CONTOUR[:, :16].ravel()
    for i in range(len(images["names"])):
        face = analyzer.analyze(images[f"image_{i}"])
        ref, raw = images[f"mesh478_{i}"][0], images[f"mesh468_{i}"][0]
        iod = np.linalg.norm(ref[33, :2] - ref[263, :2])
        ours = np.linalg.norm(face.points[lids, :2] - ref[lids, :2], axis=1).mean() / iod
        facemesh = np.linalg.norm(raw[lids, :2] - ref[lids, :2], axis=1).mean() / iod
        assert ours < 0.9 * facemesh and ours < 0.015, (i, ours, facemesh)
