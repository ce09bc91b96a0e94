"""ArcFace backend: loading, alignment and normalisation, tested with a tiny ONNX model of w600k_r50's signature.

The real insightface packs cannot be shipped (non-commercial licence), so the test builds a stand-in: input
"input.1" (N, 3, 112, 112) float, output (N, 512), linear in the pixels so we can check the normalisation exactly.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reenact.errors import WeightsError
from reenact.identity import load_embedder
from reenact.identity_arcface import ARCFACE_TEMPLATE_5, arcface_affine, find_model, mesh_to_arcface5

FIX = Path(__file__).parent / "fixtures" / "identity"


def make_onnx(path: Path, batch: int | str = "N", side: int = 112, seed: int = 0) -> np.ndarray:
    """Write AveragePool(8) -> Flatten -> MatMul(W) to `path`; return W (588, 512)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(seed).normal(size=(3 * (side // 8) ** 2, 512)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("AveragePool", ["input.1"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8]),
         helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
         helper.make_node("MatMul", ["flat", "W"], ["683"])],
        "tiny_arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [batch, 3, side, side])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, [batch, 512])],
        [numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return w


def reference(chips: np.ndarray, w: np.ndarray) -> np.ndarray:
    """What insightface computes: (x - 127.5) / 127.5, the model, L2 normalisation."""
    x = (chips.astype(np.float64) - 127.5) / 127.5  # (B, 3, 112, 112)
    pooled = x.reshape(len(x), 3, 14, 8, 14, 8).mean(axis=(3, 5)).reshape(len(x), -1)
    out = pooled @ w
    return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def face() -> tuple[np.ndarray, np.ndarray]:
    z = np.load(FIX / "reference.npz")
    return np.asarray(Image.open(FIX / "crop_05.jpg").convert("RGB")), z["mesh"][5]


def test_embed_matches_insightface_normalisation(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    w = make_onnx(tmp_path / "w600k_r50.onnx")
    emb = load_embedder(f"arcface:{tmp_path / 'w600k_r50.onnx'}")
    assert emb.name == "arcface:w600k_r50.onnx" and emb.chip_size == 112 and 0 < emb.threshold < 1
    chips = np.random.default_rng(1).integers(0, 256, size=(5, 3, 112, 112)).astype(np.uint8)
    got = emb.embed(torch.from_numpy(chips).float()).numpy()
    assert got.shape == (5, 512)
    assert np.abs(got - reference(chips, w)).max() < 1e-4


def test_fixed_batch_model_is_run_one_by_one(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    w = make_onnx(tmp_path / "fixed.onnx", batch=1)
    emb = load_embedder(f"arcface:{tmp_path / 'fixed.onnx'}")
    chips = np.random.default_rng(2).integers(0, 256, size=(3, 3, 112, 112)).astype(np.uint8)
    assert np.abs(emb.embed(torch.from_numpy(chips).float()).numpy() - reference(chips, w)).max() < 1e-4


def test_alignment_puts_mesh_points_on_insightface_template(face: tuple) -> None:
    rgb, mesh = face
    p5 = mesh_to_arcface5(mesh)
    assert p5[0, 0] < p5[1, 0] and p5[3, 0] < p5[4, 0]  # image-left first, as insightface's detector
    aff = arcface_affine(p5)
    on_chip = p5 @ aff[:, :2].T + aff[:, 2]
    # A real face is not exactly a similarity of the template, but close: a few pixels on a 112 chip.
    assert np.abs(on_chip - ARCFACE_TEMPLATE_5).max() < 6.0


def test_align_and_embed_a_real_face(tmp_path: Path, face: tuple) -> None:
    pytest.importorskip("onnxruntime")
    make_onnx(tmp_path / "w600k_r50.onnx")
    emb = load_embedder(f"arcface:{tmp_path}")  # a pack folder works too
    rgb, mesh = face
    chip = emb.align(rgb, mesh)
    assert chip.shape == (112, 112, 3) and chip.dtype == np.uint8 and chip.mean() > 40
    e = emb.embed(torch.from_numpy(chip).permute(2, 0, 1)[None].float())
    assert abs(float(e.norm()) - 1) < 1e-5


def test_finds_the_users_insightface_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pack = tmp_path / "models" / "buffalo_l"
    pack.mkdir(parents=True)
    (pack / "det_10g.onnx").write_bytes(b"")
    (pack / "w600k_r50.onnx").write_bytes(b"")
    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path))
    monkeypatch.delenv("REENACT_ARCFACE", raising=False)
    assert find_model() == pack / "w600k_r50.onnx"
    monkeypatch.setenv("REENACT_ARCFACE", str(pack / "det_10g.onnx"))
    assert find_model() == pack / "det_10g.onnx"


def test_missing_pack_says_where_and_licence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path))
    monkeypatch.delenv("REENACT_ARCFACE", raising=False)
    with pytest.raises(WeightsError, match="buffalo_l.*non-commercial"):
        find_model()


def test_not_a_recognition_model_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    make_onnx(tmp_path / "odd.onnx", side=64)
    (tmp_path / "odd.onnx").write_bytes((tmp_path / "odd.onnx").read_bytes()[:100])  # truncated file
    with pytest.raises(WeightsError, match="Cannot load"):
        load_embedder(f"arcface:{tmp_path / 'odd.onnx'}")


def test_without_onnxruntime_the_error_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "w600k_r50.onnx").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(WeightsError, match=r"reenact\[arcface\]"):
        load_embedder(f"arcface:{tmp_path / 'w600k_r50.onnx'}")
