"""Coarticulation invariants and idle life (no weights needed)."""

from __future__ import annotations

import numpy as np

from reenact import idle, speech

V, M = speech.V, speech.M


def onehot(seq: list[tuple[str, int]]) -> np.ndarray:
    labels = np.concatenate([[V[v]] * n for v, n in seq])
    return np.eye(15, dtype=np.float32)[labels]  # (T, 15) at 100 Hz


def track(seq: list[tuple[str, int]], fps: float = 100.0) -> speech.SpeechTrack:
    post = onehot(seq)
    db = np.where(post[:, V["sil"]] > 0.5, -90.0, -20.0).astype(np.float32)
    return speech.track_from_posteriors(post, None, db, fps, int(len(post) * fps / 100))


def test_bilabial_closes_fully_between_open_vowels():
    tr = track([("aa", 30), ("PP", 8), ("aa", 30)])
    gap = speech.lip_gap(tr.weights)
    assert gap[34] < 0.02 and gap[10] > 0.4 and gap[60] > 0.4
    assert tr.weights[34, M["mouthPressLeft"]] >= 0.45


def test_bilabial_closes_at_25_fps_even_when_short():
    tr = track([("aa", 30), ("PP", 5), ("aa", 30)], fps=25)  # 50 ms closure, 40 ms frames
    assert speech.lip_gap(tr.weights).min() < 0.02


def test_rounding_and_teeth_on_lip():
    o = track([("sil", 10), ("U", 20), ("sil", 10)]).weights[20]
    assert o[M["mouthPucker"]] > 0.5 and o[M["mouthFunnel"]] > 0.25
    f = track([("aa", 20), ("FF", 10), ("aa", 20)]).weights[25]
    assert f[M["mouthRollLower"]] >= 0.55
    # rounding spreads onto a neighbouring consonant ("s" before "oo"), but not far away
    su = track([("SS", 30), ("U", 20)]).weights
    assert su[27, M["mouthPucker"]] > su[5, M["mouthPucker"]] + 0.1


def test_neighbours_blend_smoothly_and_weights_stay_in_range():
    tr = track([("aa", 20), ("I", 20)])
    jaw = tr.weights[:, M["jawOpen"]]
    assert np.all(np.diff(jaw) <= 1e-6)  # monotonic transition from aa's jaw to I's
    assert jaw[19] < jaw[0] and jaw[19] > jaw[-1]  # in between at the boundary
    rng = np.random.default_rng(0)
    post = rng.dirichlet(np.ones(15), 200).astype(np.float32)
    w = speech.track_from_posteriors(post, rng.random(200), np.full(200, -20, np.float32), 30, 60).weights
    assert w.min() >= 0 and w.max() <= 1


def test_silence_is_neutral():
    tr = track([("sil", 50)], fps=25)
    assert np.abs(tr.weights).max() == 0


def test_blink_rate_and_seeds():
    fps, minutes = 25, 10
    rows, names = idle.idle_track(fps * 60 * minutes, fps, seed=3)
    blink = rows[:, names.index("eyeBlinkLeft")]
    rate = ((blink[1:] > 0.5) & (blink[:-1] <= 0.5)).sum() / minutes
    assert 10 <= rate <= 25
    assert blink.max() > 0.95 and np.allclose(blink, rows[:, names.index("eyeBlinkRight")])
    other, _ = idle.idle_track(fps * 60, fps, seed=4)
    assert not np.allclose(rows[: fps * 60], other)
    again, _ = idle.idle_track(fps * 60, fps, seed=3)
    np.testing.assert_array_equal(again, rows[: fps * 60])
    head = rows[:, [names.index("yaw"), names.index("pitch"), names.index("roll")]]
    assert 0.2 < np.abs(head).max() < 6.0  # slight, never frozen


def test_idle_streams_in_blocks_and_follows_loudness():
    fps = 30
    loud = np.zeros(fps * 20, np.float32)
    loud[fps * 5: fps * 15: 10] = 1.0  # syllable-like bursts
    loud = np.convolve(loud, np.ones(4) / 4, "same")
    whole, names = idle.idle_track(len(loud), fps, loud, seed=7)
    life = idle.IdleLife(fps, seed=7)
    blocks = np.concatenate([life.step(len(loud[i:i + 97]), loud[i:i + 97]) for i in range(0, len(loud), 97)])
    np.testing.assert_allclose(blocks, whole, atol=1e-5)
    brow = whole[:, names.index("browInnerUp")]
    assert brow[fps * 5: fps * 15].max() > 0.05 and brow[: fps * 4].max() == 0.0
