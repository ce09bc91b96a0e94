"""Idle life for speech-driven video: blinks, brow raises on stressed syllables, head sway and nods.

`speak` adds it to the lip track so a talking photo does not stare; `--still` turns it off.
"""

from __future__ import annotations

import numpy as np

from reenact.errors import InputError

IDLE = ("eyeBlinkLeft", "eyeBlinkRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "yaw", "pitch", "roll")


class IdleLife:
    """Blinks (~17/min, gamma-distributed intervals), brow raises on stressed syllables, slow head sway plus nods
    that follow loudness. Stateful, so a stream can be fed block by block; the same seed gives the same motion."""

    def __init__(self, fps: float, seed: int = 0, blinks_per_min: float = 17.0) -> None:
        if fps <= 0:
            raise InputError(f"fps must be positive, got {fps}.")
        self.fps, self.rng, self.frame = fps, np.random.default_rng(seed), 0
        self.mean_gap = 60.0 / blinks_per_min
        self.next_blink = self._gap() * 0.5
        self.blinks: list[float] = []  # start times (s) of blinks that may still be visible
        self.slow, self.fast = 0.0, 0.0  # loudness envelopes (~1.5 s and ~80 ms)
        sway = self.rng.uniform(0.05, 0.35, (3, 3))  # per-axis sum of 3 slow sinusoids (Hz)
        self.sway = (sway, self.rng.uniform(0, 2 * np.pi, (3, 3)), np.array([1.6, 1.0, 0.8]))  # amplitude in degrees

    def _gap(self) -> float:
        return max(0.6, float(self.rng.gamma(4.0, self.mean_gap / 4.0)))

    @staticmethod
    def _blink_shape(dt: np.ndarray) -> np.ndarray:  # closes in 80 ms, holds 40 ms, reopens in 180 ms
        close, hold, open_ = 0.08, 0.04, 0.18
        up = np.clip(dt / close, 0, 1)
        down = np.clip(1 - (dt - close - hold) / open_, 0, 1)
        return np.where((dt >= 0) & (dt < close + hold + open_), np.minimum(up, down), 0.0) ** 0.8

    def step(self, n_frames: int, loudness: np.ndarray | None = None) -> np.ndarray:
        """The next `n_frames` rows, (n_frames, len(IDLE)); `loudness` (n_frames,) in [0, 1] or None for silence."""
        loud = np.zeros(n_frames, np.float32) if loudness is None else np.asarray(loudness, np.float32).reshape(-1)
        if len(loud) != n_frames:
            raise InputError(f"Idle life got {len(loud)} loudness values for {n_frames} frames; pass one per frame.")
        t = (self.frame + np.arange(n_frames)) / self.fps
        out = np.zeros((n_frames, len(IDLE)), np.float32)
        end = t[-1] + 1.0 / self.fps if n_frames else 0.0
        while self.next_blink < end:
            self.blinks.append(self.next_blink)
            self.next_blink += self._gap()
        for start in self.blinks:  # sample each blink at sub-frame steps and keep the max so none falls between
            sub = (t[:, None] + np.linspace(0, 1.0 / self.fps, 4, endpoint=False)[None]) - start
            out[:, 0] = np.maximum(out[:, 0], self._blink_shape(sub).max(1))
        self.blinks = [b for b in self.blinks if b > end - 0.5]
        out[:, 1] = out[:, 0]
        stress = np.zeros(n_frames, np.float32)
        a_slow, a_fast = 1.0 - np.exp(-1.0 / (1.5 * self.fps)), 1.0 - np.exp(-1.0 / (0.08 * self.fps))
        for i, x in enumerate(loud):  # causal envelopes: stress = fast loudness above its slow average
            self.slow += a_slow * (x - self.slow)
            self.fast += a_fast * (x - self.fast)
            stress[i] = max(0.0, self.fast - self.slow - 0.05)
        stress = np.clip(stress * 3.0, 0.0, 1.0)
        out[:, 2] = 0.25 * stress
        out[:, 3] = out[:, 4] = 0.2 * stress
        freq, phase, amp = self.sway
        sway = (np.sin(2 * np.pi * freq[None] * t[:, None, None] + phase[None]).sum(-1) / 3.0) * amp  # (n, 3)
        out[:, 5:8] = sway * (1.0 + 0.5 * loud[:, None])
        out[:, 6] -= 2.0 * stress  # a small nod (pitch down) on stressed syllables
        self.frame += n_frames
        return out


def idle_track(n_frames: int, fps: float, loudness: np.ndarray | None = None, seed: int = 0
               ) -> tuple[np.ndarray, tuple[str, ...]]:
    """Idle life for `n_frames` video frames: (n_frames, 8) rows named IDLE (blinks, brows in [0, 1]; yaw, pitch,
    roll in degrees). `loudness` (n_frames,) in [0, 1] (SpeechTrack.loudness) drives brows and nods."""
    return IdleLife(fps, seed).step(n_frames, loudness), IDLE
