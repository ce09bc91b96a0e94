"""The fidelity metrics of tools/eval_fidelity.py on synthetic meshes (no video, no mediapipe)."""

from __future__ import annotations

import numpy as np
import pytest

from tools.eval_fidelity import (CHIN_DROP, LIP_GAP, REGIONS, align, best_lag, blink_ratios, brow_height, compare, ear, euler,
                                 gain_corr, rest_drift, similarity, unreproduced)


def rot(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """R = Rz(roll) Ry(yaw) Rx(pitch), angles in degrees (the convention `euler` decomposes)."""
    y, p, r = np.radians([yaw, pitch, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def face(rng: np.random.Generator) -> np.ndarray:
    """A random (478, 3) point cloud with eye corners 33/263 one unit apart and open eyes (EAR ~0.3)."""
    p = rng.normal(0, 0.3, (478, 3))
    p[[33, 133, 362, 263], :] = [[-0.5, 0, 0], [-0.2, 0, 0], [0.2, 0, 0], [0.5, 0, 0]]
    for (up, down), x in zip([(159, 145), (158, 153), (160, 144), (386, 374), (385, 380), (387, 373)],
                             [-0.35, -0.3, -0.4, 0.35, 0.3, 0.4]):
        p[up], p[down] = [x, -0.045, 0], [x, 0.045, 0]
    return p


def test_similarity_recovers_a_known_transform() -> None:
    rng = np.random.default_rng(0)
    src = rng.normal(size=(20, 3))
    r = rot(10, -5, 3)
    s, r_hat, t = similarity(src, 2.5 * src @ r.T + [1, 2, 3])
    assert s == pytest.approx(2.5) and np.allclose(r_hat, r) and np.allclose(t, [1, 2, 3])


def test_align_removes_head_motion_and_euler_reads_it() -> None:
    rng = np.random.default_rng(1)
    base = face(rng)
    angles = [(0, 0, 0), (8, 0, 0), (0, -6, 0), (0, 0, 4), (5, 3, -2)]
    frames = np.stack([1.3 * base @ rot(*a).T + [10, 5, 0] for a in angles])
    aligned, rots = align(frames, 0)
    assert np.allclose(aligned, frames[0], atol=1e-9)
    assert np.allclose(euler(rots), angles, atol=1e-6)


def test_unreproduced_and_gain() -> None:
    rng = np.random.default_rng(2)
    drv = rng.normal(size=(50, 10, 2))
    assert unreproduced(drv, drv) == 0.0
    assert unreproduced(drv, np.zeros_like(drv)) == pytest.approx(1.0)  # a frozen output reproduces nothing
    assert gain_corr(drv, 0.5 * drv) == pytest.approx((0.5, 1.0))
    g, c = gain_corr(drv, rng.normal(size=drv.shape))
    assert abs(g) < 0.2 and abs(c) < 0.2


def test_blink_ratio_and_ear() -> None:
    rng = np.random.default_rng(3)
    open_ = face(rng)
    shut = open_.copy()
    for u, v in [(159, 145), (158, 153), (160, 144), (386, 374), (385, 380), (387, 373)]:
        shut[[u, v], 1] *= 0.2
    assert ear(open_[None])[0] == pytest.approx(0.3)
    assert ear(shut[None])[0] == pytest.approx(0.06)
    drv = np.array([0.3] * 8 + [0.06, 0.06])
    out = np.array([0.3] * 8 + [0.15, 0.15])
    assert blink_ratios(drv, out) == pytest.approx((0.2, 0.5, 2))
    assert np.isnan(blink_ratios(np.full(5, 0.3), np.full(5, 0.3))[0])  # no blink: no ratio


def test_brow_height_ignores_roll_and_scale() -> None:
    rng = np.random.default_rng(4)
    p = face(rng)
    p[REGIONS["brows"], :] = [0, -0.3, 0]  # image y points down: brows above the eyes
    assert brow_height(p) == pytest.approx(0.3)
    assert brow_height(2 * p @ rot(roll=20).T) == pytest.approx(0.3)


def test_best_lag_finds_a_shift() -> None:
    x = np.sin(np.linspace(0, 12, 80)) + np.random.default_rng(5).normal(0, 0.05, 80)
    assert best_lag(x, x) == 0
    assert best_lag(x[:-2], x[2:]) == -2  # output early by two frames


def test_compare_of_a_copy_is_perfect() -> None:
    rng = np.random.default_rng(6)
    base = face(rng)
    frames = np.stack([base + rng.normal(0, 0.01, base.shape) for _ in range(30)])
    frames[5] = np.nan  # a frame without a face is skipped
    m = compare(frames, frames.copy()).metrics
    assert m["frames_compared"] == 29
    for region in REGIONS:
        assert m[f"{region}_unreproduced"] == pytest.approx(0.0, abs=1e-9)
        assert m[f"{region}_gain"] == pytest.approx(1.0)


def test_a_constant_expression_is_a_rest_offset_not_unreproduced_motion() -> None:
    """An output that moves exactly as the driver but holds its mouth 0.05 off (a pout the driver never made) scores
    about 0 unreproduced and an offset of 0.05 over the driver's typical mouth motion."""
    rng = np.random.default_rng(7)
    base = face(rng)
    frames = np.stack([base + rng.normal(0, 0.01, base.shape) for _ in range(40)])
    mouth = REGIONS["mouth"]
    out = frames.copy()
    out[:, mouth, 1] += 0.05
    m = compare(frames, out).metrics
    assert m["mouth_unreproduced"] < 0.05  # only the alignment's per-frame jitter turns the shift into motion
    d = frames[:, mouth, :2] - np.median(frames[:, mouth, :2], 0)
    assert m["mouth_rest_offset"] == pytest.approx(0.05 / np.linalg.norm(d, axis=-1).mean(), rel=0.1)
    assert compare(frames, frames.copy()).metrics["mouth_rest_offset"] == pytest.approx(0.0, abs=1e-9)


def test_the_unreproduced_motion_splits_into_vertical_and_sideways() -> None:
    """An output whose brows move up and down with the driver's but not sideways: its error is all sideways, so with
    the driver's sideways motion put in it vanishes, and with the driver's vertical motion put in it stays."""
    rng = np.random.default_rng(8)
    base = face(rng)
    brows = REGIONS["brows"]
    drift = np.zeros((40, 478, 3))
    drift[:, brows, 0] = rng.normal(0, 0.02, (40, 1))  # the brows slide sideways together ...
    drift[:, brows, 1] = rng.normal(0, 0.02, (40, 1))  # ... and rise and fall
    frames = base + drift + rng.normal(0, 0.002, drift.shape)  # every point jitters a little, as tracked ones do
    out = frames.copy()
    out[:, brows, 0] = base[brows, 0]  # the output's brows never slide
    m = compare(frames, out).metrics
    assert m["brows_unreproduced"] > 0.3
    assert m["brows_unreproduced_vertical"] < 0.05 < 0.3 < m["brows_unreproduced_sideways"]


def test_rest_drift_is_how_far_the_photo_is_from_itself_where_the_driver_rests() -> None:
    """A driver that rests (lips closed) on its first 20 frames and talks on the rest; an output that keeps a pout
    0.04 off the photo's mouth throughout drifts 0.04 at rest, one that pouts only while the driver talks drifts 0."""
    rng = np.random.default_rng(9)
    base = face(rng)
    base[LIP_GAP[0]], base[LIP_GAP[1]] = [0, 0.6, 0], [0, 0.62, 0]
    drv = np.stack([base + rng.normal(0, 0.001, base.shape) for _ in range(60)])
    drv[20:, LIP_GAP[1], 1] += rng.uniform(0.05, 0.2, 40)  # the lower lip drops while the driver talks
    photo = face(np.random.default_rng(10))  # another person
    mouth = REGIONS["mouth"]
    out = np.repeat(photo[None], 60, 0)
    out[:, mouth, 1] += 0.04
    assert rest_drift(drv, photo, out)["mouth_rest_drift"] == pytest.approx(0.04, rel=0.05)
    out[:20] = photo
    m = rest_drift(drv, photo, out)
    assert m["mouth_rest_drift"] == pytest.approx(0.0, abs=1e-6) and m["rest_frames"] <= 20


def test_a_jaw_that_drops_half_as_far_reads_a_chin_gain_of_a_half() -> None:
    """The output opens its mouth with the driver's timing but drops its chin half as far (the rig's jaw on most
    drivers, docs/fidelity.md "Twelfth pass"): chin-drop gain 0.5, correlation 1."""
    rng = np.random.default_rng(9)
    base = face(rng)
    base[CHIN_DROP[1]] = [0.0, 1.2, 0.0]  # the chin, below the nose tip (image y down)
    base[CHIN_DROP[0]] = [0.0, 0.4, 0.0]
    drop = 0.1 * (1 + np.sin(np.linspace(0, 6 * np.pi, 40)))  # (40,) the jaw opening and closing
    frames = np.stack([base] * 40)
    out = frames.copy()
    frames[:, CHIN_DROP[1], 1] += drop
    out[:, CHIN_DROP[1], 1] += 0.5 * drop
    with np.errstate(invalid="ignore"):  # the still lips' and head's correlations are undefined (NaN)
        m = compare(frames, out).metrics
    assert m["chin_drop_gain"] == pytest.approx(0.5, rel=0.05)
    assert m["chin_drop_corr"] == pytest.approx(1.0, abs=1e-6)
