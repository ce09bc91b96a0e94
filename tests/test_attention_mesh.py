"""Parity of the ported attention FaceMesh (refine_landmarks=True's model) with MediaPipe's own runtime.

Fixture: tools/make_attention_fixtures.py ran MediaPipe's FaceLandmarkCpu graph (WITH_ATTENTION) on 192 px crops of
real frames; its 478 refined landmarks are in crop px.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from media_utils import face_fixture

from reenact.face import nets
from reenact.face.landmarks import MESH_SIZE, MeshModel, Roi, refine_attention
from reenact.weights import contract_path, load_model


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    if not contract_path("facemesh_attention").exists():
        pytest.skip("weights/facemesh_attention.* absent (tools/convert_mediapipe.py --only facemesh_attention)")
    return load_model("facemesh_attention")


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    return face_fixture("attention")


def _run(model: torch.nn.Module, crops: np.ndarray) -> list[np.ndarray]:
    with torch.inference_mode():
        out = model(torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255)
    return [o.numpy() for o in out]


def test_shapes(model, ref):
    mesh, lips, left_eye, right_eye, left_iris, right_iris, flag = _run(model, ref["crops"][:2])
    assert mesh.shape == (2, 468, 3) and lips.shape == (2, 80, 3) and flag.shape == (2,)
    assert left_eye.shape == right_eye.shape == (2, 71, 3) and left_iris.shape == right_iris.shape == (2, 5, 3)
    assert (flag > 0).all()  # faces: presence logit well above 0


def test_refined_parity(model, ref):
    """Same crop in, MediaPipe's refined 478 out: every point within 0.01 px of the 192 px crop (fp16 weights in both)."""
    *parts, _ = _run(model, ref["crops"])
    ours = refine_attention(*parts)
    err = np.abs(ours - ref["refined"])
    assert err[..., :2].max() < 0.01, f"x, y off by {err[..., :2].max():.4f} px"
    assert err[..., 2].max() < 0.01, f"z off by {err[..., 2].max():.4f} px"


def test_regions_move_the_points(model, ref):
    """The refinement matters: MediaPipe's lips and lids differ from the attention model's own mesh there."""
    mesh, lips, left_eye, *_ = _run(model, ref["crops"])
    assert np.abs(lips[..., :2] - mesh[:, list(nets.LIPS), :2]).max() > 0.5
    assert np.abs(left_eye[..., :2] - mesh[:, list(nets.LEFT_EYE), :2]).max() > 0.5


def test_mesh_model_option(model, ref):
    """MeshModel(model="attention") crops, runs and projects: an identity ROI on the crop gives the refined points."""
    mm = MeshModel(torch.device("cpu"), model="attention")
    assert mm.iris is None  # the attention mesh places the irises itself
    crop = ref["crops"][0]
    roi = Roi(centre=np.array([MESH_SIZE / 2, MESH_SIZE / 2]), side=float(MESH_SIZE), angle=0.0)
    pts, score = mm([crop], [roi], iris=False)
    assert pts.shape == (1, 478, 3) and score[0] > 0.9
    assert np.abs(pts[0] - ref["refined"][0]).max() < 0.05


def test_end_to_end_photos_match_mediapipe_refined(model):
    """Detector -> ROI -> attention mesh on the fixture photos: MediaPipe's refine_landmarks=True 478 points (static
    mode, its own detector and ROI) within 0.2 % of the eye distance on average (plain FaceMesh + iris: 1.4-2 %)."""
    from reenact.face import FaceAnalyzer

    images = face_fixture("images")
    analyzer = FaceAnalyzer(torch.device("cpu"), mesh="attention")
    for i in range(len(images["names"])):
        face = analyzer.analyze(images[f"image_{i}"])
        ref = images[f"mesh478_{i}"][0]
        iod = np.linalg.norm(ref[33, :2] - ref[263, :2])
        err = np.linalg.norm(face.points[:, :2] - ref[:, :2], axis=1) / iod
        assert face.points.shape == (478, 3) and err.mean() < 0.002 and err.max() < 0.01, (i, err.mean(), err.max())
