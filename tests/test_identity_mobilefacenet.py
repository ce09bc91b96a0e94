"""Parity of the ported ArcFace MobileFaceNet with the original TFLite, and its ArcFace 5-point alignment.

The fixtures (tests/fixtures/identity, made by tools/make_mobilefacenet_fixtures.py with ai-edge-litert) hold,
for the 11 identity fixture faces, insightface's norm_crop chip (arcface_chip_NN.png) and the TFLite's raw
192-d embedding of it (mobilefacenet.npz). The TFLite runtime is not needed here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reenact.identity import (IdentityChecker, MobileFaceNetEmbedder, embed_faces, load_embedder, umeyama,
                              warp_chips_torch)
from reenact.identity_arcface import ARCFACE_TEMPLATE_5, arcface5_batch, arcface_affines, umeyama_batch
from reenact.weights import read_contract

FIX = Path(__file__).parent / "fixtures" / "identity"


@pytest.fixture(scope="module")
def ref() -> dict:
    z = np.load(FIX / "mobilefacenet.npz")
    r = np.load(FIX / "reference.npz")
    n = len(z["names"])
    return {
        "names": [str(s) for s in z["names"]],
        "emb": z["emb"],
        "mesh": r["mesh"],
        "crops": [np.asarray(Image.open(FIX / f"crop_{i:02d}.jpg").convert("RGB")) for i in range(n)],
        "chips": np.stack([np.asarray(Image.open(FIX / f"arcface_chip_{i:02d}.png").convert("RGB")) for i in range(n)]),
    }


@pytest.fixture(scope="module")
def embedder() -> MobileFaceNetEmbedder:
    return MobileFaceNetEmbedder(torch.device("cpu"))


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_fixture_matches_the_converted_file(ref: dict) -> None:
    z = np.load(FIX / "mobilefacenet.npz")
    source = read_contract("mobilefacenet").source
    assert str(z["tflite_sha256"]) in source  # the fixture was made from the file the weights were converted from
    assert ref["emb"].shape == (len(ref["names"]), 192) and ref["chips"].shape[1:] == (112, 112, 3)


def test_port_matches_tflite_embeddings(ref: dict, embedder: MobileFaceNetEmbedder) -> None:
    x = torch.from_numpy(ref["chips"]).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        raw = embedder.net(x).numpy()
    cos = (unit(raw) * unit(ref["emb"])).sum(1)
    assert cos.min() > 0.9999, cos
    # Not only the direction: the raw (unnormalised) outputs agree too.
    assert np.abs(raw - ref["emb"]).max() < 1e-3 * np.abs(ref["emb"]).max()


def test_embed_matches_fp32_in_either_precision(ref: dict, embedder: MobileFaceNetEmbedder) -> None:
    x = torch.from_numpy(ref["chips"]).permute(0, 3, 1, 2).float()
    fp32 = MobileFaceNetEmbedder(torch.device("cpu"), bf16=False).embed(x).numpy()
    assert (fp32 * unit(ref["emb"])).sum(1).min() > 0.9999
    bf16 = MobileFaceNetEmbedder(torch.device("cpu"), bf16=True).embed(x).numpy()
    assert (fp32 * bf16).sum(1).min() > 0.999  # the CPU fast path (AMX) stays the same embedding
    assert np.allclose(np.linalg.norm(embedder.embed(x).numpy(), axis=1), 1.0, atol=1e-5)


def test_batched_umeyama_matches_the_single_fit() -> None:
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(20, 5, 2)) * 30 + 200
    pts[4] *= [-1, 1]  # a mirrored face: the fit must still be a rotation, not a reflection
    batch = umeyama_batch(pts, ARCFACE_TEMPLATE_5)
    single = np.stack([umeyama(p, ARCFACE_TEMPLATE_5) for p in pts])
    assert np.abs(batch - single).max() < 1e-9
    assert (np.linalg.det(batch[:, :, :2]) > 0).all()


def test_alignment_matches_insightface_norm_crop(ref: dict, embedder: MobileFaceNetEmbedder) -> None:
    chips = embedder.align_batch(ref["crops"], list(ref["mesh"]))
    diff = np.abs(chips.astype(int) - ref["chips"])
    assert diff.max() <= 1 and (diff > 0).mean() < 0.05  # same geometry; ours rounds float, cv2 fixed-point
    five = arcface5_batch(list(ref["mesh"]))
    on_chip = np.einsum("bij,bkj->bki", arcface_affines(five)[:, :, :2], five) + arcface_affines(five)[:, None, :, 2]
    assert np.abs(on_chip - ARCFACE_TEMPLATE_5).mean() < 3.0  # the faces' 5 points land near insightface's template
    assert np.array_equal(embedder.align(ref["crops"][0], ref["mesh"][0]), chips[0])


def test_torch_warp_with_chip_affines_matches_align(ref: dict, embedder: MobileFaceNetEmbedder) -> None:
    """The on-device path (frames already on the GPU): chip_affines + warp_chips_torch give the same chips."""
    chips = embedder.align_batch(ref["crops"][:4], list(ref["mesh"][:4]))
    frames = torch.from_numpy(np.stack(ref["crops"][:4])).permute(0, 3, 1, 2).float()
    affines = torch.from_numpy(embedder.chip_affines(list(ref["mesh"][:4])))
    warped = warp_chips_torch(frames, affines, 112).permute(0, 2, 3, 1).numpy()
    assert np.abs(warped - chips).mean() < 0.6 and np.abs(warped - chips).max() <= 2


def test_large_faces_are_not_aliased(ref: dict, embedder: MobileFaceNetEmbedder) -> None:
    big = np.asarray(Image.fromarray(ref["crops"][0]).resize((1344, 1344), Image.BICUBIC))
    small = embed_faces(embedder, [ref["crops"][0]], [ref["mesh"][0]])
    large = embed_faces(embedder, [big], [ref["mesh"][0] * 6.0])
    assert float(small[0] @ large[0]) > 0.98


def test_separates_same_and_different_people(ref: dict, embedder: MobileFaceNetEmbedder) -> None:
    names = ref["names"]
    i = names.index("franck_0010")
    checker = IdentityChecker(embedder, ref["crops"][i], ref["mesh"][i])
    sims = dict(zip(names, checker.check(ref["crops"], list(ref["mesh"]))))
    for same in ("franck_1500", "franck_3979"):
        assert sims[same] >= embedder.threshold, sims
    for other in ("obama", "kim", "connery", "astronaut", "cage", "clooney", "cap12_0400"):
        assert sims[other] < embedder.threshold, sims
    a, b = names.index("cap12_0400"), names.index("cap13_0300")
    cap = IdentityChecker(embedder, ref["crops"][a], ref["mesh"][a])
    assert cap.check([ref["crops"][b]], [ref["mesh"][b]])[0] >= embedder.threshold


def test_load_by_name_and_contract(embedder: MobileFaceNetEmbedder) -> None:
    emb = load_embedder("mobilefacenet")
    assert emb.name == "mobilefacenet" and emb.chip_size == 112
    c = read_contract("mobilefacenet")
    assert c.kwargs["dim"] == 192 and "Apache-2.0" in c.licence and "MS1M" in c.training_data
    assert embedder.threshold == c.extra["threshold"] and 0.0 < embedder.threshold < 1.0  # calibrated, in the contract
    assert load_embedder("dlib").name == "dlib-resnet-v1"
    assert load_embedder("default").name == "mobilefacenet"  # docs/identity.md: it separates the pairs better


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_gpu_path_matches_cpu(ref: dict, embedder: MobileFaceNetEmbedder) -> None:
    gpu = MobileFaceNetEmbedder(torch.device("cuda"))
    x = torch.from_numpy(ref["chips"]).permute(0, 3, 1, 2).float()
    a, b = embedder.embed(x), gpu.embed(x.cuda()).cpu()
    assert (a * b).sum(1).min() > 0.999  # fp16 autocast on CUDA
