"""Refiner: network shapes, A = 1 identity, crop/uncrop geometry, contract, training-data rules. CPU, fast."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from reenact.errors import InputError
from reenact.face.align import crop_matrix
from reenact.face.canonical import load_canonical
from reenact.params import ARKIT52
from reenact.render.refine import (
    CROP_SIZE,
    FACE_FRACTION,
    MASK_EYES,
    MASK_MOUTH,
    WINDOW_MARGIN,
    Critic,
    Refiner,
    RefinerNet,
    compose,
    crop_matrices,
    feather,
    from_crop,
    gate,
    prior_window,
    region_prior,
    to_crop,
)

ROOT = Path(__file__).resolve().parent.parent
torch.set_num_threads(1)


def face_points(scale: float = 9.0, centre: tuple[float, float] = (150.0, 140.0), roll: float = 0.1) -> np.ndarray:
    """(478, 3) canonical mesh placed in a 300 x 300 ROI, slightly rotated."""
    v = load_canonical().vertices478.astype(np.float64) * scale
    c, s = np.cos(roll), np.sin(roll)
    xy = v[:, :2] @ np.array([[c, s], [-s, c]]) + centre
    return np.concatenate([xy, v[:, 2:]], 1).astype(np.float32)


def smooth_image(h: int = 300, w: int = 300, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (1, 3, 12, 12)).astype(np.float32)
    return torch.nn.functional.interpolate(torch.from_numpy(small), size=(h, w), mode="bicubic", align_corners=True).clamp(0, 255)


def constant_attention(net: RefinerNet, bias: float) -> RefinerNet:
    with torch.no_grad():
        net.attention.weight.zero_()
        net.attention.bias.fill_(bias)
    return net.eval()


def test_generator_and_critic_shapes_and_ranges() -> None:
    net = RefinerNet(size=64, widths=(8, 16, 32), n_res=1).eval()
    x, p = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 52)
    with torch.no_grad():
        color, attn = net(x, p)
        _, logits = net(x, p, raw=True)
    assert color.shape == (2, 3, 64, 64) and attn.shape == (2, 1, 64, 64)
    assert color.abs().max() <= 1 and 0 <= attn.min() and attn.max() <= 1
    assert torch.allclose(torch.sigmoid(logits), attn)
    assert float(attn.mean()) > 0.8  # initial bias: the untrained refiner mostly keeps the warp
    scores, params = Critic(size=64, widths=(16, 32, 64)).eval()(x)
    assert scores.shape == (2, 1, 8, 8) and params.shape == (2, 52)


def test_compose_attention_one_keeps_warp() -> None:
    w, c = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    assert torch.equal(compose(w, c, torch.ones(1, 1, 8, 8)), w)
    assert torch.equal(compose(w, c, torch.zeros(1, 1, 8, 8)), c)


def test_refine_with_attention_one_returns_input_unchanged() -> None:
    refiner = Refiner(constant_attention(RefinerNet(), 60.0))  # sigmoid(60) == 1.0 in float32
    roi = smooth_image()
    pts = np.stack([face_points(), face_points(roll=-0.2)])
    out, keep = refiner.refine(roi.expand(2, -1, -1, -1), pts, np.random.rand(2, 52), return_attention=True)
    assert torch.equal(out, roi.expand(2, -1, -1, -1))
    assert torch.equal(keep, torch.ones_like(keep))


def test_refine_changes_only_inside_the_crop_without_seam() -> None:
    refiner = Refiner(constant_attention(RefinerNet(residual=False), -60.0))  # A = 0: the generated colour everywhere
    roi = smooth_image()
    pts = face_points()[None]
    out, keep = refiner.refine(roi, pts, np.zeros((1, 52)), return_attention=True)
    m = crop_matrices(pts)[0].numpy()
    ys, xs = np.mgrid[0:300, 0:300]
    u = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
    v = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    outside = (u < -1) | (u > CROP_SIZE) | (v < -1) | (v > CROP_SIZE)
    centre = (abs(u - CROP_SIZE / 2) < CROP_SIZE / 4) & (abs(v - CROP_SIZE / 2) < CROP_SIZE / 4)
    changed = (out - roi).abs().amax(1)[0].numpy()
    assert changed[outside].max() == 0  # untouched outside the crop
    assert changed[centre].mean() > 1  # the generated colour shows inside
    assert float(keep[0, 0][torch.from_numpy(centre)].max()) < 1e-3
    # feathered: along a row through the crop border the change ramps up, no jump between neighbours
    row = changed[int(pts[0, 1, 1])]
    assert np.abs(np.diff(row)).max() < 0.25 * max(row.max(), 1)


def test_untrained_residual_refiner_passes_the_warp_through() -> None:
    refiner = Refiner(RefinerNet())  # C starts as the warped crop, so any A gives (almost) the warp back
    roi = smooth_image(seed=2)
    out = refiner.refine(roi, face_points()[None], np.random.rand(1, 52))
    assert float((out - roi).abs().max()) < 3.0


def test_refine_keeps_the_rois_own_detail() -> None:
    """A = 0 with C = the crop itself adds nothing: the ROI's fine texture must come back, not the 128 px crop
    upsampled (pasting C instead of the correction blurred every face larger than the crop)."""
    net = constant_attention(RefinerNet(), -60.0)  # A = 0 everywhere
    with torch.no_grad():
        net.color.weight.zero_()  # tanh(0) = 0: C = the warped crop exactly
    roi = torch.from_numpy(np.random.default_rng(3).uniform(0, 255, (1, 3, 300, 300)).astype(np.float32))  # pure noise
    out = Refiner(net).refine(roi, face_points(scale=14.0)[None], np.zeros((1, 52)))
    assert float((out - roi).abs().max()) < 1e-3


def test_region_prior_repaints_only_around_mouth_and_eyes() -> None:
    """A refiner whose contract says prior: A = 0 and a foreign colour everywhere still changes only the mouth and
    the eyes; the cheeks and the forehead stay the warp's, and the change fades in without a seam."""
    from types import SimpleNamespace

    net = constant_attention(RefinerNet(residual=False), -60.0)
    net.contract = SimpleNamespace(extra={"prior": "mouth+eyes"})
    roi, pts = smooth_image(), face_points()
    out = Refiner(net).refine(roi, pts[None], np.zeros((1, 52)))
    changed = (out - roi).abs().amax(1)[0].numpy()
    at = lambda i: changed[int(round(pts[i, 1])), int(round(pts[i, 0]))]  # noqa: E731
    assert at(13) > 1 and at(159) > 1  # inner upper lip, left upper eyelid
    assert max(at(10), at(50), at(280)) < 0.01  # forehead, both cheeks
    bits = torch.zeros(1, 1, 32, 32, dtype=torch.uint8)
    bits[..., 12:20, 12:20] = MASK_MOUTH
    prior = region_prior(bits, MASK_MOUTH)[0, 0]
    assert float(region_prior(bits, MASK_EYES).max()) == 0
    assert float(prior[12:20, 12:20].min()) > 0.95 and float(prior[0, 0]) == 0
    assert float(prior[16].diff().abs().max()) < 0.3  # soft edge


def long_reach_net(prior: str) -> RefinerNet:
    """A random refiner whose output depends on far-away pixels (amplified bottleneck), with a region prior."""
    from types import SimpleNamespace

    torch.manual_seed(0)
    net = RefinerNet().eval()
    with torch.no_grad():
        for block in net.res:
            block.a.weight.mul_(3)
            block.b.weight.mul_(3)
        net.color.weight.normal_(0, 0.1)
        net.attention.weight.normal_(0, 0.1)
        net.attention.bias.zero_()
    net.contract = SimpleNamespace(extra={"prior": prior})
    return net


def test_windowed_refine_matches_the_full_crop_on_real_faces() -> None:
    """With a region prior the net runs on a window of the crop only; on real photos and meshes the refined ROI
    stays within a small fraction of a grey level of the full crop's, and a window without margin would not."""
    faces = np.load(ROOT / "tests" / "fixtures" / "face" / "images.npz")
    seen: list[tuple[int, ...]] = []
    for prior in ("inner-mouth", "mouth"):
        net = long_reach_net(prior)
        hook = net.stem.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape)))
        full, windowed, tight = (Refiner(net, window_margin=m) for m in (None, WINDOW_MARGIN, 0))
        worst, tight_worst = 0.0, 0.0
        for i in range(3):
            roi = torch.from_numpy(faces[f"image_{i}"]).permute(2, 0, 1)[None].float()  # (1, 3, H, W) 0..255
            pts, shapes = faces[f"mesh478_{i}"], np.full((1, 52), 0.3, np.float32)
            seen.clear()
            ref = full.refine(roi, pts, shapes)
            assert seen[-1][-2:] == (CROP_SIZE, CROP_SIZE) and float((ref - roi).abs().max()) > 5  # it does repaint
            out = windowed.refine(roi, pts, shapes)
            assert seen[-1][-2] < CROP_SIZE and all(s % 8 == 0 for s in seen[-1][-2:])  # a window, on the 1/8 grid
            worst = max(worst, float((out - ref).abs().max()))
            tight_worst = max(tight_worst, float((tight.refine(roi, pts, shapes) - ref).abs().max()))
        hook.remove()
        assert worst < 0.05, (prior, worst)
        assert tight_worst > 0.5, (prior, tight_worst)  # the margin matters: this test can tell


def test_without_prior_the_net_sees_the_whole_crop() -> None:
    net = long_reach_net("")
    seen: list[tuple[int, ...]] = []
    net.stem.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape)))
    roi, pts = smooth_image(), face_points()[None]
    a, b = Refiner(net).refine(roi, pts, np.zeros((1, 52))), Refiner(net, window_margin=None).refine(roi, pts, np.zeros((1, 52)))
    assert torch.equal(a, b) and float((a - roi).abs().max()) > 1
    assert [s[-2:] for s in seen] == [(CROP_SIZE, CROP_SIZE)] * 2


def test_prior_window_is_aligned_and_covers_the_prior() -> None:
    prior = torch.zeros(2, 1, 128, 128)
    prior[0, :, 70:90, 40:60] = 0.5
    prior[1, :, 75:100, 50:90] = 1.0
    y0, y1, x0, x1 = prior_window(prior, 10, 8)
    assert (y0, y1, x0, x1) == (56, 112, 24, 104)  # union 70..99 x 40..89, +10 px, out to multiples of 8
    assert prior_window(prior, 60, 8) == (8, 128, 0, 128)  # clipped to the crop
    assert prior_window(torch.zeros(1, 1, 64, 64), 10, 8) is None


def test_a_source_conditioned_refiner_needs_the_photos_roi() -> None:
    refiner = Refiner(RefinerNet(size=64, widths=(8, 16), n_res=1, use_source=True))
    roi, pts = smooth_image(), face_points()[None]
    with pytest.raises(InputError, match="source_roi"):
        refiner.refine(roi, pts, np.zeros((1, 52)))
    out = refiner.refine(roi.expand(2, -1, -1, -1), np.repeat(pts, 2, 0), np.zeros((2, 52)), source_roi=smooth_image(seed=5))
    assert out.shape == (2, 3, 300, 300) and torch.isfinite(out).all()


def test_a_source_conditioned_generator_starts_as_the_plain_one() -> None:
    from reenact.train.refiner import init_generator

    plain = RefinerNet(size=64, widths=(8, 16), n_res=1).eval()
    with torch.no_grad():
        plain.color.weight.normal_(0, 0.1)  # make the colour head do something
    cond = RefinerNet(size=64, widths=(8, 16), n_res=1, use_source=True).eval()
    init_generator(cond, plain.state_dict())
    x, p, src = torch.rand(1, 3, 64, 64) * 2 - 1, torch.rand(1, 52), torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        a, b = plain(x, p), cond(x, p, src)
    assert torch.allclose(a[0], b[0], atol=1e-5) and torch.allclose(a[1], b[1], atol=1e-5)


def test_gate_needs_held_out_and_unseen_faces() -> None:
    held = {"region_refined": 4.4, "region_warp": 5.0}
    good = {"sharpness_min": 0.95, "skin_change_max": 1.0, "mouth_open_min": 0.97, "mouth_open_max": 1.03}
    assert gate({"held_out_l1": held, "unseen": good}) is None
    assert "held-out" in gate({"held_out_l1": {"region_refined": 5.0, "region_warp": 5.0}, "unseen": good})
    assert "unseen" in gate({"held_out_l1": held})
    assert "blurs" in gate({"held_out_l1": held, "unseen": {**good, "sharpness_min": 0.5}})
    assert "skin" in gate({"held_out_l1": held, "unseen": {**good, "skin_change_max": 4.0}})
    assert "less open" in gate({"held_out_l1": held, "unseen": {**good, "mouth_open_min": 0.83}})
    assert "less open" in gate({"held_out_l1": held, "unseen": {"sharpness_min": 0.95, "skin_change_max": 1.0}})
    assert "more open" in gate({"held_out_l1": held, "unseen": {**good, "mouth_open_max": 1.16}})
    assert "more open" in gate({"held_out_l1": held, "unseen": {k: v for k, v in good.items() if k != "mouth_open_max"}})
    assert gate({}) is not None
    people = {"region_refined": 9.0, "region_warp": 8.0}
    assert "outside its training" in gate({"held_out_l1": held, "unseen": good, "unseen_people": people})
    assert gate({"held_out_l1": held, "unseen": good, "unseen_people": {**people, "region_refined": 7.0}}) is None


def test_a_shipped_refiner_that_passes_the_gate_was_measured_on_other_people() -> None:
    from reenact.weights import read_contract

    extra = read_contract("refiner").extra
    if gate(extra) is None:  # the renderer uses it: then it must have been checked beyond its training people
        assert extra["unseen_people"]["pairs"] >= 100 and extra["unseen"]["photos"]


def test_crop_matches_cv2_and_round_trips() -> None:
    roi = smooth_image(seed=1)
    pts = face_points()
    m = crop_matrices(pts[None])
    assert np.allclose(m[0].numpy(), crop_matrix(pts, CROP_SIZE, FACE_FRACTION), atol=1e-4)
    crop = to_crop(roi, m)  # (1, 3, S, S)
    ref = cv2.warpAffine(roi[0].permute(1, 2, 0).numpy(), m[0].numpy().astype(np.float64), (CROP_SIZE, CROP_SIZE),
                         flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    assert np.abs(crop[0].permute(1, 2, 0).numpy() - ref).max() < 0.5  # same pixel-centre convention as cv2
    back = from_crop(torch.cat([crop, torch.ones_like(crop[:, :1])], 1), m, (300, 300))
    inside = back[0, 3] > 0.999
    assert int(inside.sum()) > 0.25 * CROP_SIZE ** 2
    assert float((back[0, :3] - roi[0]).abs()[:, inside].mean()) < 1.0  # round trip of a smooth image


def test_feather_is_zero_at_border_one_inside() -> None:
    f = feather(32, 4)[0, 0]
    assert float(f[0].max()) == 0 and float(f[:, -1].max()) == 0 and float(f[8:24, 8:24].min()) == 1


def test_bad_inputs_raise() -> None:
    refiner = Refiner(RefinerNet(size=64, widths=(8, 16), n_res=1))
    with pytest.raises(InputError):
        refiner.refine(torch.zeros(1, 300, 300), face_points()[None], np.zeros((1, 52)))
    with pytest.raises(InputError):
        refiner.refine(torch.zeros(1, 3, 300, 300), face_points()[None], np.zeros((1, 40)))
    with pytest.raises(InputError):
        refiner.refine(torch.zeros(1, 3, 300, 300), np.zeros((1, 20, 2)), np.zeros((1, 52)))


def test_shipped_contract_loads_and_refines() -> None:
    from reenact.weights import load_model

    net = load_model("refiner")
    c = net.contract
    assert c.channels == list(ARKIT52) and c.input["size"] == [CROP_SIZE, CROP_SIZE] and c.input["range"] == [-1, 1]
    assert sum(p.numel() for p in net.parameters()) * 4 < 20e6  # the size budget
    refiner = Refiner()
    roi = smooth_image()
    out = refiner.refine(roi, face_points()[None], np.zeros((1, 52)))
    assert out.shape == roi.shape and torch.isfinite(out).all()


def test_flip_permutation_and_pair_split() -> None:
    from reenact.train.refiner_data import FLIP, PairConfig, choose_pairs, region_masks

    assert sorted(FLIP) == list(range(52)) and [FLIP[i] for i in FLIP] == list(range(52))
    assert ARKIT52[FLIP[ARKIT52.index("eyeBlinkLeft")]] == "eyeBlinkRight"
    assert ARKIT52[FLIP[ARKIT52.index("jawOpen")]] == "jawOpen"
    base = face_points(roll=0.0)
    rng = np.random.default_rng(0)
    points = np.stack([base + rng.normal(0, 0.3, base.shape).astype(np.float32) for _ in range(60)])
    points[7] = np.nan  # a frame without a face
    cfg = PairConfig(holdout=0.2, source_stride=3, targets_per_source=2, max_gap=10)
    pairs = choose_pairs(points, cfg)
    assert pairs["train"] and pairs["test"]
    assert all(i < 48 and j < 48 for i, j in pairs["train"])  # never touches the held-out last 20%
    assert all(i >= 48 and j > i for i, j in pairs["test"])
    assert all(7 not in p for p in pairs["train"])
    m = crop_matrices(base[None])[0].numpy()
    masks = region_masks(base[:, :2] @ m[:, :2].T + m[:, 2], CROP_SIZE)
    assert (masks & 1).mean() > 0.2 and (masks & 2).any() and (masks & 4).any()
    assert not ((masks & 2) & ~(masks & 1) * 2).sum() > 0.2 * (masks & 2).sum()  # mouth lies mostly in the face
    inner, outer = (masks & 8) > 0, (masks & 2) > 0
    assert inner.any() and inner.sum() < outer.sum() and (inner & ~outer).sum() == 0  # the opening, inside the lips


def test_identity_samples_ask_for_no_change() -> None:
    from reenact.train.refiner_data import PairSet

    rng = np.random.default_rng(0)
    n = 4
    img = lambda: rng.integers(0, 256, (n, CROP_SIZE, CROP_SIZE, 3), dtype=np.uint8)  # noqa: E731
    pts = np.stack([face_points(roll=0.0)] * n) * 2  # a face of a few hundred px in its frame
    pairs = PairSet({"warped": img(), "target": img(), "source": img(), "points": pts.astype(np.float32),
                     "masks": np.zeros((n, CROP_SIZE, CROP_SIZE), np.uint8)})
    b = pairs.batch(np.arange(n), augment=False, rng=np.random.default_rng(1), identity=1.0)
    assert torch.equal(b["warped"], b["target"]) and torch.equal(b["source"], b["target"])
    b = pairs.batch(np.arange(n), augment=False, rng=np.random.default_rng(1), identity=0.0)
    assert not torch.equal(b["warped"], b["target"])


def test_train_refiner_command_on_a_users_video(tmp_path: Path) -> None:
    """`reenact train refiner --data VIDEO`: pairs from the video, a short run, an exported weight + contract."""
    from cli_utils import run

    from reenact.io.video import VideoWriter, read_frames
    from reenact.weights import read_contract

    clip = tmp_path / "me talking.mp4"
    with read_frames(ROOT / "samples" / "driver.mp4") as frames, VideoWriter(clip, frames.fps, preset="ultrafast") as w:
        for _, f in zip(range(40), frames):
            w.write(f.rgb)
    code, text = run("train", "refiner", "--data", str(clip), "--steps", "2", "--workdir", str(tmp_path / "work"),
                     "--out", str(tmp_path / "out"))
    assert code == 0, text
    contract = read_contract("refiner", tmp_path / "out")
    assert contract.extra["trained_steps"] == 2 and "region_warp" in contract.extra["held_out_l1"]
    assert "1 user video" in contract.training_data and "renderer would not use it" in text
    unseen = contract.extra["unseen"]  # checked on the sample photo, a person outside the video
    assert unseen["photos"] == ["source.jpg"] and unseen["sharpness_min"] > 0 and unseen["skin_change_max"] >= 0 and unseen["mouth_open_min"] > 0
    assert sorted(p.name.split("_")[-2] for p in (tmp_path / "work" / "data").glob("*.npz")) == ["test", "train"]


def test_train_command_bad_inputs(tmp_path: Path) -> None:
    from cli_utils import run

    assert run("train", "refiner")[0] == 2  # no --data
    code, text = run("train", "refiner", "--data", str(tmp_path / "nope"))
    assert code == 2 and "does not exist" in text
    (tmp_path / "notes.txt").write_text("x")
    code, text = run("train", "refiner", "--data", str(tmp_path / "notes.txt"))
    assert code == 2 and "notes.txt" in text
    code, text = run("train", "refiner", "--data", str(tmp_path), "--init", str(tmp_path / "g.safetensors"))
    assert code == 2 and "--init" in text
    code, text = run("train", "refiner", "--data", str(tmp_path), "--check", str(tmp_path / "who.jpg"))
    assert code == 2 and "--check" in text and "Traceback" not in text
    code, text = run("train", "audio-head")
    assert code == 2 and "make_speech_data" in text
