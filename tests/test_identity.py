"""Identity check API: alignment maths, embedder loading, batching, report, checker, compare()."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reenact.errors import InputError, NoFaceError, WeightsError
from reenact.identity import (
    DLIB_TEMPLATE_5,
    DlibEmbedder,
    IdentityChecker,
    IdentityReport,
    compare,
    dlib_chip,
    dlib_chip_affine,
    embed_faces,
    load_embedder,
    umeyama,
    warp_chip,
    warp_chips_torch,
)

FIX = Path(__file__).parent / "fixtures" / "identity"


@pytest.fixture(scope="module")
def faces() -> dict:
    z = np.load(FIX / "reference.npz")
    crops = [np.asarray(Image.open(FIX / f"crop_{i:02d}.jpg").convert("RGB")) for i in range(len(z["names"]))]
    return {"names": list(z["names"]), "crops": crops, "mesh": list(z["mesh"]), "points5": z["points5"]}


@pytest.fixture(scope="module")
def embedder() -> DlibEmbedder:
    return load_embedder("dlib")  # type: ignore[return-value]


def test_umeyama_recovers_a_similarity() -> None:
    rng = np.random.default_rng(0)
    src = rng.normal(size=(6, 2)) * 50
    a, s, t = 0.4, 1.7, np.array([12.0, -5.0])
    m = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    fit = umeyama(src, src @ m.T + t)
    assert np.allclose(fit[:, :2], m, atol=1e-9) and np.allclose(fit[:, 2], t, atol=1e-9)


def test_chip_affine_puts_the_points_on_dlibs_template() -> None:
    # Points that are an exact similarity of the padded template land on it (up to dlib's 150/149 rect scale).
    template = (0.25 + DLIB_TEMPLATE_5) / 1.5 * 150
    a, s, t = -0.3, 2.5, np.array([300.0, 200.0])
    m = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    pts = template @ m.T + t
    aff = dlib_chip_affine(pts)
    back = (pts - aff[:, 2]) @ np.linalg.inv(aff[:, :2]).T  # image -> chip
    assert np.abs(back - template).max() < 1.0  # dlib centres its rect on chip px 75, not 74.5
    assert abs(np.hypot(aff[0, 0], aff[1, 0]) - s * (150 * s - 1) / (149 * s)) < 1e-9


def test_large_faces_use_the_pyramid_and_stay_sharp(faces: dict, embedder: DlibEmbedder) -> None:
    crop, p5 = faces["crops"][5], faces["points5"][5]
    big = np.asarray(Image.fromarray(crop).resize((crop.shape[1] * 4, crop.shape[0] * 4), Image.BICUBIC))
    small, large = dlib_chip(crop, p5), dlib_chip(big, p5 * 4 + 1.5)
    e = embedder.embed(torch.from_numpy(np.stack([small, large])).permute(0, 3, 1, 2).float())
    assert float(e[0] @ e[1]) > 0.99


def test_chip_outside_the_image_is_black() -> None:
    img = np.full((64, 64, 3), 200, np.uint8)
    pts = (DLIB_TEMPLATE_5 * 40) + 1000.0
    assert dlib_chip(img, pts).max() == 0


def test_torch_warp_matches_numpy_warp(faces: dict) -> None:
    crop, p5 = faces["crops"][0], faces["points5"][0]
    aff = dlib_chip_affine(p5)
    ref = warp_chip(crop, aff, 150).astype(np.float32)
    frames = torch.from_numpy(crop.copy()).permute(2, 0, 1)[None].float()
    out = warp_chips_torch(frames.repeat(2, 1, 1, 1), torch.from_numpy(aff)[None].repeat(2, 1, 1), 150)
    ours = out[0].permute(1, 2, 0).numpy()
    assert out.shape == (2, 3, 150, 150)
    assert np.abs(ours - ref)[5:-5, 5:-5].mean() < 1.0  # numpy truncates like dlib; torch does not


def test_embeddings_are_unit_norm_and_batch_independent(faces: dict, embedder: DlibEmbedder) -> None:
    all_at_once = embed_faces(embedder, faces["crops"], faces["mesh"])
    in_threes = embed_faces(embedder, faces["crops"], faces["mesh"], batch=3)
    assert all_at_once.shape == (len(faces["crops"]), 128)
    assert np.allclose(np.linalg.norm(all_at_once, axis=1), 1.0, atol=1e-5)
    assert np.abs(all_at_once - in_threes).max() < 1e-4


def test_embed_faces_rejects_mismatched_lists(faces: dict, embedder: DlibEmbedder) -> None:
    with pytest.raises(InputError):
        embed_faces(embedder, faces["crops"][:2], faces["mesh"][:1])
    with pytest.raises(InputError):
        embedder.align(faces["crops"][0], np.zeros((10, 2)))


def test_checker_separates_same_and_different_people(faces: dict, embedder: DlibEmbedder) -> None:
    names = faces["names"]
    i = names.index("franck_0010")
    checker = IdentityChecker(embedder, faces["crops"][i], faces["mesh"][i])
    sims = dict(zip(names, checker.check(faces["crops"], faces["mesh"])))
    assert sims["franck_0010"] > 0.999
    for same in ("franck_1500", "franck_3979"):  # other expressions, same video
        assert sims[same] >= embedder.threshold, sims
    for other in ("obama", "kim", "connery", "astronaut", "cage", "clooney", "cap12_0400"):
        assert sims[other] < embedder.threshold, sims
    mask = checker.failing(list(sims.values()))
    assert mask.dtype == bool and mask.sum() == sum(v < checker.threshold for v in sims.values())


def test_cap_videos_are_one_person(faces: dict, embedder: DlibEmbedder) -> None:
    names = faces["names"]
    a, b = names.index("cap12_0400"), names.index("cap13_0300")
    checker = IdentityChecker(embedder, faces["crops"][a], faces["mesh"][a])
    assert checker.check([faces["crops"][b]], [faces["mesh"][b]])[0] >= embedder.threshold


def test_report_summary() -> None:
    rep = IdentityReport([0.95, 0.4, 0.9, 0.7], threshold=0.8, embedder="x")
    assert rep.passed == [True, False, True, False] and not rep.ok
    s = rep.summary()
    assert s["n"] == 4 and s["n_below"] == 2 and s["frames_below"] == [1, 3]
    assert s["min"] == 0.4 and abs(s["mean"] - 0.7375) < 1e-4 and s["threshold"] == 0.8
    assert IdentityReport([0.9], 0.5).ok


def test_compare_with_an_analyzer(faces: dict, embedder: DlibEmbedder) -> None:
    names = faces["names"]
    mesh_of = {id(c): m for c, m in zip(faces["crops"], faces["mesh"])}
    src = faces["crops"][names.index("franck_0010")]
    blank = np.zeros((100, 100, 3), np.uint8)
    targets = [faces["crops"][names.index("franck_1500")], blank, faces["crops"][names.index("obama")]]

    def analyzer(rgb: np.ndarray):  # stands in for reenact.face: mesh or None
        return mesh_of.get(id(rgb))

    rep = compare(src, iter(targets), analyzer, embedder)
    assert rep.passed == [True, False, False]
    assert rep.similarities[1] == -1.0 and rep.summary()["frames_below"] == [1, 2]
    rep = compare(src, iter(targets[:1]), analyzer, embedder, threshold=0.9999)
    assert rep.passed == [False]
    with pytest.raises(NoFaceError):
        compare(blank, iter(targets), analyzer, embedder)
    with pytest.raises(NoFaceError):
        compare(src, iter([blank]), analyzer, embedder)


def test_load_embedder_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        load_embedder("facenet")
    with pytest.raises(WeightsError, match="non-commercial"):
        load_embedder(f"arcface:{tmp_path / 'missing.onnx'}")


def test_default_threshold_comes_from_the_contract(embedder: DlibEmbedder) -> None:
    assert embedder.threshold == embedder.net.contract.extra["threshold"]  # type: ignore[attr-defined]
    assert 0.5 < embedder.threshold < 0.99


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_gpu_path_matches_cpu(faces: dict, embedder: DlibEmbedder) -> None:
    gpu = load_embedder("dlib", torch.device("cuda"))
    chips = torch.from_numpy(np.stack([embedder.align(c, m) for c, m in zip(faces["crops"], faces["mesh"])]))
    x = chips.permute(0, 3, 1, 2).float()
    a, b = embedder.embed(x), gpu.embed(x.cuda()).cpu()
    assert (a * b).sum(1).min() > 0.999  # fp16 autocast on CUDA
