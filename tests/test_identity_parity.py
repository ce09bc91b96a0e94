"""Parity of the ported dlib face-recognition ResNet and chip alignment with dlib itself (stored fixtures).

The fixtures (tests/fixtures/identity, made by tools/make_identity_fixtures.py with dlib-bin 20.0.1 and
mediapipe 0.10.21) hold, per face: a crop, dlib's 5 points and chip on it, dlib's descriptors, and MediaPipe's
478-point mesh. dlib is not needed here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reenact.identity import DlibEmbedder, dlib_chip, mesh_to_dlib5

FIX = Path(__file__).parent / "fixtures" / "identity"


@pytest.fixture(scope="module")
def ref() -> dict:
    z = np.load(FIX / "reference.npz")
    n = len(z["names"])
    data = {k: z[k] for k in z.files}
    data["crops"] = [np.asarray(Image.open(FIX / f"crop_{i:02d}.jpg").convert("RGB")) for i in range(n)]
    data["chips"] = np.stack([np.asarray(Image.open(FIX / f"chip_{i:02d}.png").convert("RGB")) for i in range(n)])
    return data


@pytest.fixture(scope="module")
def embedder() -> DlibEmbedder:
    return DlibEmbedder(torch.device("cpu"))


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def embed(embedder: DlibEmbedder, chips: np.ndarray) -> np.ndarray:
    return embedder.embed(torch.from_numpy(np.ascontiguousarray(chips)).permute(0, 3, 1, 2).float()).numpy()


def test_fixture_is_complete(ref: dict) -> None:
    n = len(ref["names"])
    assert n >= 10
    assert ref["points5"].shape == (n, 5, 2) and ref["mesh"].shape == (n, 478, 3)
    assert ref["desc"].shape == (n, 128) and ref["chips"].shape == (n, 150, 150, 3)
    assert sum(p.stat().st_size for p in FIX.iterdir()) < 1.5e6


def test_net_matches_dlib_descriptors_on_dlib_chips(ref: dict, embedder: DlibEmbedder) -> None:
    ours = embed(embedder, ref["chips"])
    cos_chip = (ours * unit(ref["desc_chip"])).sum(1)
    cos_full = (ours * unit(ref["desc"])).sum(1)
    assert cos_chip.min() > 0.999, dict(zip(ref["names"], cos_chip))
    assert cos_full.min() > 0.999, dict(zip(ref["names"], cos_full))
    # and the raw (unnormalised) descriptors agree too, fp16 weight storage included
    raw = embedder.net(torch.from_numpy(ref["chips"]).permute(0, 3, 1, 2).float()).detach().numpy()
    assert np.abs(raw - ref["desc_chip"]).max() < 5e-3


def test_different_people_are_not_the_same_vector(ref: dict, embedder: DlibEmbedder) -> None:
    ours = embed(embedder, ref["chips"])
    sims = ours @ ours.T
    names = list(ref["names"])
    assert sims[names.index("franck_0010"), names.index("obama")] < 0.9


def test_chip_alignment_reproduces_dlib_get_face_chip(ref: dict) -> None:
    for crop, p5, chip in zip(ref["crops"], ref["points5"], ref["chips"]):
        ours = dlib_chip(crop, p5).astype(int)
        diff = np.abs(ours - chip.astype(int))
        assert diff.max() <= 1 and diff.mean() < 0.01


def test_mesh_five_points_match_dlib_shape_predictor(ref: dict) -> None:
    p5 = ref["points5"]
    iod = np.linalg.norm(p5[:, 0] - p5[:, 2], axis=1)  # outer eye corner distance
    for mesh, dlib5, d in zip(ref["mesh"], p5, iod):
        err = np.linalg.norm(mesh_to_dlib5(mesh) - dlib5, axis=1) / d
        assert err.max() < 0.06, err
        assert err.mean() < 0.04, err


def test_mesh_aligned_chip_gives_dlib_descriptor(ref: dict, embedder: DlibEmbedder) -> None:
    chips = np.stack([embedder.align(c, m) for c, m in zip(ref["crops"], ref["mesh"])])
    cos = (embed(embedder, chips) * unit(ref["desc"])).sum(1)
    assert cos.min() > 0.98, dict(zip(ref["names"], cos))
