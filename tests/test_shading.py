"""Expression shading: texture space, the fit (recovers planted maps, drops outlier frames), the renderer's use of
it, and the shipped maps' contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reenact.face import FaceAnalyzer
from reenact.io.image import read_image
from reenact.params import ARKIT52, AU17
from reenact.render.renderer import FaceRenderer
from reenact.render.shade import TEX, ExpressionShading, TextureSpace, gate
from reenact.rig import load_rig
from reenact.train.shading import Sequence, fit


@pytest.fixture(scope="module")
def sample():
    image = read_image("samples/source.jpg")
    return image, FaceAnalyzer().analyze(image, name="source.jpg").points


def test_unwrap_reads_the_face_where_the_mesh_is(sample) -> None:
    image, points = sample
    space = TextureSpace.default()
    # a photo that is bright exactly on the nose tip's neighbourhood: its texels must land on the canonical nose tip
    x, y = points[1, :2]
    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
    spot = np.where((xx - x) ** 2 + (yy - y) ** 2 < 6 ** 2, 250, 10).astype(np.uint8)
    tex, ok = space.unwrap(np.repeat(spot[..., None], 3, 2), points)
    v, u = np.nonzero(ok & (tex > np.log(130.0)))  # the bright texels: rows, columns
    assert len(u) > 0 and np.hypot(u.mean() - space.uv[1, 0], v.mean() - space.uv[1, 1]) < 3  # on the nose tip
    assert ok.sum() > 0.8 * space.mask.sum()  # a frontal face is valid almost everywhere
    assert 0.3 < space.skin.mean() < 0.6 and space.skin.max() == 1.0


def _planted(name: str, n: int, maps: np.ndarray, rng: np.random.Generator, noise: float = 0.003) -> Sequence:
    space = TextureSpace.default()
    base = rng.normal(4.5, 0.3, (TEX, TEX)).astype(np.float32)  # the person's own texture
    seq = Sequence(name)
    for i in range(n):
        au = rng.uniform(0, 1, len(AU17)).astype(np.float32)
        tex = base + np.tensordot(au, maps, 1) + rng.normal(0, noise, (TEX, TEX))
        seq.tex.append(tex.astype(np.float32))
        seq.ok.append(space.mask.copy())
        seq.au.append(au)
        seq.pose.append(np.zeros(3, np.float32))
        seq.held.append(i % 4 == 3)
    return seq


def test_fit_recovers_planted_maps_and_drops_an_occluded_frame() -> None:
    rng = np.random.default_rng(0)
    skin = TextureSpace.default().skin > 0.99
    maps = np.zeros((len(AU17), TEX, TEX), np.float32)
    maps[AU17.index("AU4"), 20:40, 50:80] = -0.3  # a furrow
    maps[AU17.index("AU12"), 70:90, 20:45] = 0.2  # a cheek bulge
    seqs = [_planted("a", 80, maps, rng), _planted("b", 60, maps, rng)]
    seqs[0].tex[0] = seqs[0].tex[0] + np.where(np.arange(TEX)[:, None] > 60, 2.0, 0.0).astype(np.float32)  # a hand
    model, report = fit(seqs, lam=0.1, smooth=0.0, log=lambda s: None)
    got = model.maps.numpy()
    inside = skin & (np.abs(maps).sum(0) > 0)
    assert np.abs(got[:, inside] - maps[:, inside]).max() < 0.05
    assert report["frames_dropped"] >= 1 and report["explained_held_out"] > 0.9
    assert min(report["explained_new_person"].values()) > 0.9
    assert np.all(model.hi.numpy() > 0.8) and np.all(model.lo.numpy() < -0.8)


def test_renderer_applies_the_gain_on_the_face_only(sample) -> None:
    image, points = sample
    shading = ExpressionShading()
    shading.maps[AU17.index("AU4")] = -0.4  # every skin texel darker when the brows come down
    shading.maps *= torch.from_numpy(TextureSpace.default().skin)
    shading.lo.fill_(-1.0)
    shading.hi.fill_(1.0)
    rig = load_rig()
    plain = FaceRenderer(image, points, np.zeros(52, np.float32), rig)
    shaded = FaceRenderer(image, points, np.zeros(52, np.float32), rig, shading=shading)
    assert np.array_equal(shaded.render(np.zeros((1, 52), np.float32))[0], image)  # no change, no gain
    s = np.zeros((1, 52), np.float32)
    s[0, [ARKIT52.index("browDownLeft"), ARKIT52.index("browDownRight")]] = 1.0
    a, b = plain.render(s)[0].astype(np.float32), shaded.render(s)[0].astype(np.float32)
    cheek = points[[205, 425], :2].astype(int)  # both cheeks: skin, away from the features
    for x, y in cheek:
        assert b[y - 3:y + 4, x - 3:x + 4].mean() < 0.8 * a[y - 3:y + 4, x - 3:x + 4].mean()
    far = np.ones(image.shape[:2], bool)
    lo, hi = points[:, :2].min(0).astype(int), points[:, :2].max(0).astype(int)
    far[max(lo[1] - 5, 0):hi[1] + 5, max(lo[0] - 5, 0):hi[0] + 5] = False
    assert np.array_equal(a[far], b[far])  # off the face nothing changes


def test_gate_refuses_maps_that_do_not_carry_over_to_new_people() -> None:
    good = {"fit": {"explained_held_out": 0.1, "explained_new_person": {"a": 0.05, "b": 0.02}}}
    assert gate(good) is None
    assert "held-out" in gate({"fit": {"explained_held_out": -0.01, "explained_new_person": {"a": 0.1, "b": 0.1}}})
    assert "left out" in gate({"fit": {"explained_held_out": 0.1, "explained_new_person": {"a": 0.1, "b": -0.3}}})
    assert "left out" in gate({"fit": {"explained_held_out": 0.1, "explained_new_person": {"a": 0.1}}})
    worse = {"skin": {"warp-only": {"L1": 5.0}, "shaded": {"L1": 5.2}}}
    assert "no closer" in gate({**good, "held_out_pairs": worse})
    assert gate({}) is not None  # no fit report, no shading


def test_shipped_maps_pass_their_gate_and_are_small() -> None:
    from reenact.analysis import Models
    from reenact.weights import read_contract

    extra = read_contract("shading").extra
    assert gate(extra) is None  # held-out frames, every left-out person and the held-out pairs all say "better"
    assert "skin" in extra["held_out_pairs"]  # measured by tools/eval_shading.py --record, not assumed
    shading = Models(torch.device("cpu")).shading
    assert shading is not None and shading.contract.channels == list(AU17)
    assert float(shading.maps.abs().max()) < 0.5  # a gain within e^+-0.5 per unit AU: shading, not repainting


def test_crease_fit_recovers_a_planted_crease_depth() -> None:
    from reenact.train.shading import CREASE_DEADZONE
    from reenact.train.wrinkles import basis

    patterns, names = basis()
    glabella, au4 = names.index(("glabella", "groove")), AU17.index("AU4")
    rng = np.random.default_rng(1)
    seqs = [_planted("a", 60, np.zeros((len(AU17), TEX, TEX), np.float32), rng),
            _planted("b", 40, np.zeros((len(AU17), TEX, TEX), np.float32), rng)]
    for seq in seqs:  # the furrow between lowered brows, 0.25 log-luma deep per unit of AU4 past the dead zone
        relaxed = np.percentile([a[au4] for a in seq.au], 5)
        seq.tex = [t - 0.25 * max(a[au4] - relaxed - CREASE_DEADZONE, 0) * patterns[glabella]
                   for t, a in zip(seq.tex, seq.au)]
    # a per-texel penalty so large that the per-texel maps stay ~0: the creases must carry the furrow alone
    model, report = fit(seqs, lam=1e9, smooth=0.0, log=lambda s: None, creases=1e-3)
    amps = report["creases"]["amplitudes"]
    assert amps["AU4 glabella (groove)"] == pytest.approx(-0.25, abs=0.02)
    assert max(abs(v) for k, v in amps.items() if k != "AU4 glabella (groove)") < 0.02
    assert report["explained_held_out"] > 0.5 and abs(model.maps).max() < 0.01
    on = patterns[glabella] > 0.5
    assert model.creases[au4].numpy()[on].mean() < -0.1 and abs(model.creases[AU17.index("AU12")]).max() < 0.01


def test_creases_are_drawn_only_when_an_expression_rises(sample) -> None:
    image, points = sample
    shading = ExpressionShading(creases=True)
    shading.creases[AU17.index("AU4")] = -0.5 * torch.from_numpy(TextureSpace.default().skin)
    rig = load_rig()
    renderer = FaceRenderer(image, points, np.zeros(52, np.float32), rig)
    photo = shading.for_photo(points, renderer.warper.roi, np.zeros(52, np.float32))
    brows = np.zeros((3, 52), np.float32)
    brows[1, [ARKIT52.index("browDownLeft"), ARKIT52.index("browDownRight")]] = 0.1  # inside the dead zone
    brows[2, [ARKIT52.index("browDownLeft"), ARKIT52.index("browDownRight")]] = 1.0
    g = photo.gain(torch.from_numpy(brows))  # (3, 1, h, w)
    assert float(g[0].min()) == 1.0 and float(g[1].min()) == 1.0  # no change, or a small one: no crease
    assert float(g[2].min()) < 0.8  # brows fully down: the furrow darkens the skin
    lowered = shading.for_photo(points, renderer.warper.roi, brows[2])  # a photo that frowns already
    assert float(lowered.gain(torch.from_numpy(brows[:1])).min()) == 1.0  # relaxing it erases nothing
