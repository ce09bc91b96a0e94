"""Invariants of the track filters (reenact.smooth)."""

import numpy as np
import pytest

from reenact import smooth as S
from reenact.errors import NoFaceError

CH = ["AU12", "eyeBlinkLeft", "browInnerUp", "yaw", "tx"]
FPS = 30.0


def test_channel_classes():
    assert S.channel_class("AU45") == "blink" and S.channel_class("eyeBlinkRight") == "blink"
    assert S.channel_class("jawOpen") == "mouth" and S.channel_class("aa") == "mouth"
    assert S.channel_class("browDownLeft") == "brow" and S.channel_class("AU1") == "brow"
    assert S.channel_class("yaw") == "pose_angle" and S.channel_class("gazeLeftYaw") == "gaze"
    cut = S.cutoffs_for(CH, FPS)
    assert cut[1] > cut[3] and cut[1] > cut[2]  # blinks fastest


def test_a_nod_survives_the_offline_filter():
    # A 2 Hz nod of 3 degrees (a talking head's quick nods): a 1.5 Hz cutoff kept a quarter of it, and the judge's
    # head pitch on the held-out clips followed the tracked one less (docs/fidelity.md, "Sixth pass").
    t = np.arange(120) / FPS
    nod = 3.0 * np.sin(2 * np.pi * 2.0 * t)
    x = np.zeros((120, len(CH)), np.float32)
    x[:, 3] = nod
    y = S.zero_phase(x, FPS, S.cutoffs_for(CH, FPS))
    kept = np.abs(y[30:-30, 3]).max() / 3.0
    assert kept > 0.75


@pytest.mark.parametrize("mode", ["offline", "online"])
def test_constant_stays_constant(mode):
    x = np.tile(np.array([[0.3, 0.1, 0.7, 12.0, -40.0]], np.float32), (90, 1))
    y, _ = S.smooth_track(x, CH, FPS, mode=mode, calibrate=False)
    np.testing.assert_allclose(y, x, atol=1e-4)


def test_step_keeps_its_level_offline():
    x = np.zeros((120, 5), np.float32)
    x[60:] = [0.8, 0.9, 0.5, 20.0, 10.0]
    y = S.zero_phase(x, FPS, S.cutoffs_for(CH, FPS))
    np.testing.assert_allclose(y[:30], 0.0, atol=0.02 * np.abs(x[-1]).max())
    assert np.all(np.abs(y[-30:] - x[-30:]) <= 0.01 * np.abs(x[-1]) + 1e-4)
    # zero phase: the half-way crossing stays at the step
    for c in range(5):
        half = np.argmax(y[:, c] > 0.5 * x[-1, c])
        assert abs(half - 60) <= 1


def test_step_keeps_its_level_online():
    x = np.zeros((120, 5), np.float32)
    x[30:] = [0.8, 0.9, 0.5, 20.0, 10.0]
    y = S.one_euro(x, FPS, CH)
    np.testing.assert_allclose(y[-1], x[-1], rtol=0.01)


def test_filters_reduce_jitter():
    rng = np.random.default_rng(0)
    t = np.arange(300) / FPS
    clean = 0.5 + 0.3 * np.sin(2 * np.pi * 0.5 * t)
    x = np.stack([clean] * 5, 1) + rng.normal(0, 0.03, (300, 5))
    for y in (S.zero_phase(x, FPS, S.cutoffs_for(CH, FPS)), S.one_euro(x, FPS, CH)):
        assert np.all(S.jitter(y) < 0.5 * S.jitter(x))
        # expression channels still follow the signal (pose is tuned for degrees/pixels, not 0..1 swings)
        assert np.abs(y[30:-30, :3] - clean[30:-30, None]).mean() < 0.03


def test_gaps_filled():
    x = np.linspace(0, 1, 10, dtype=np.float32)[:, None].repeat(2, 1)
    x[[0, 4, 5, 9]] = np.nan
    lin, missing = S.fill_gaps(x, "linear")
    assert missing.tolist() == [True, False, False, False, True, True, False, False, False, True]
    assert np.isfinite(lin).all()
    np.testing.assert_allclose(lin[4:6, 0], x[[3], 0] + (x[[6], 0] - x[[3], 0]) * np.array([1, 2]) / 3, atol=1e-6)
    assert lin[0, 0] == x[1, 0] and lin[9, 0] == x[8, 0]  # ends hold
    hold, _ = S.fill_gaps(x, "hold")
    assert hold[4, 0] == hold[5, 0] == x[3, 0] and hold[0, 0] == x[1, 0]
    with pytest.raises(NoFaceError):
        S.fill_gaps(np.full((5, 2), np.nan))


def test_neutral_calibration():
    rng = np.random.default_rng(1)
    x = np.full((200, 5), 0.2, np.float32) + rng.uniform(0, 0.01, (200, 5)).astype(np.float32)
    x[50:60, 0] = 0.9  # a smile
    x[:, 3] = 15.0  # head turned: pose is not calibrated
    y, neutral = S.neutral_calibrate(x, CH)
    assert neutral[0] == pytest.approx(0.2, abs=0.01) and neutral[3] == 0.0
    assert np.median(y[:, 0]) < 0.02 and y[55, 0] == pytest.approx(0.7, abs=0.02)
    assert np.all(y[:, 3] == 15.0)


def test_smooth_track_clips_and_reports_missing():
    x = np.full((40, 5), 0.5, np.float32)
    x[10] = np.nan
    x[20, 0] = 1.4
    y, missing = S.smooth_track(x, CH, FPS, calibrate=False)
    assert missing.sum() == 1 and y[:, 0].max() <= 1.0 and np.isfinite(y).all()


def test_jitter_of_ramp_is_zero():
    assert np.allclose(S.jitter(np.linspace(0, 1, 50)[:, None]), 0, atol=1e-7)


@pytest.mark.parametrize("fps", [24.0, 25.0, 30.0])
def test_a_three_frame_blink_still_shuts_after_smoothing(fps) -> None:
    channels = ["eyeBlinkLeft", "jawOpen", "browInnerUp"]
    x = np.zeros((60, 3), np.float32)
    x[30:33] = [[0.5, 0.5, 0.5], [1.0, 1.0, 1.0], [0.5, 0.5, 0.5]]  # eye shut on one frame, half-shut either side
    out, _ = S.smooth_track(x, channels, fps, calibrate=False)
    assert out[31, 0] >= 0.9  # the lid closes in the output too
    assert out[31, 1] >= 0.75  # the jaw keeps most of a one-frame peak
    assert out[31, 2] < out[31, 0]  # brows are filtered harder: their noise is more visible than their speed


def test_a_one_frame_blink_keeps_its_peak_but_lid_jitter_is_smoothed() -> None:
    channels = ["eyeBlinkLeft", "jawOpen"]
    rng = np.random.default_rng(0)
    x = np.zeros((90, 2), np.float32)
    x[:, 0] = 0.1 + 0.03 * rng.standard_normal(90)  # tracker jitter on an open eye
    x[45, 0] = 0.95  # shut for one frame at 30 fps
    x[45, 1] = 0.95
    out, _ = S.smooth_track(x, channels, FPS, calibrate=False)
    assert out[45, 0] >= 0.8  # the filter alone brings it down to about 0.6
    assert out[45, 1] < 0.8  # other channels are not touched
    open_ = np.r_[0:40, 50:90]
    assert S.jitter(out[open_, :1])[0] < 0.5 * S.jitter(x[open_, :1])[0]
    assert np.all(out[:, 0] <= np.maximum(x[:, 0], S.zero_phase(x, FPS, S.cutoffs_for(channels, FPS))[:, 0]) + 1e-6)
