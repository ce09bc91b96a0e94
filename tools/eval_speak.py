"""Lip sync and bilabial closures measured on rendered `speak` output (issue 8's acceptance), on held-out speech.

    python tools/eval_speak.py [--clips 6] [--source samples/source.jpg]

Data: the held-out shards written by tools/make_speech_data.py (.cache/speech/data/*_heldout.npz: 16 kHz audio of
utterances never used in training, with 100 Hz viseme labels). Each utterance is rendered with `speak --still` at
320 px; the face tracker measures the inner-lip gap on every output frame. Reported:
- sync: Pearson r between the lip gap and the speech RMS envelope at lags -3..+3 frames (pooled over clips), and the
  lag of the peak (positive = the mouth lags the sound);
- closures: at the centre frame of each labelled bilabial (PP: p, b, m), whether the lips read closed, i.e. the gap
  is within 20 % of that clip's gap range above its minimum.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from reenact.face import FaceAnalyzer
from reenact.io.audio import write_wav
from reenact.io.video import read_frames
from reenact.pipeline import Models, RenderOptions
from reenact.speak import SpeakOptions, SpeakSpec, speak
from reenact.speech import VISEMES

ROOT = Path(__file__).resolve().parent.parent
FPS = 25


def clips(n: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    out = []
    for shard in sorted((ROOT / ".cache" / "speech" / "data").glob("*_heldout.npz")):
        d = np.load(shard)
        for k in range(min(n, len(d["names"]))):
            a0, a1 = d["audio_off"][k], d["audio_off"][k + 1]
            l0, l1 = d["label_off"][k], d["label_off"][k + 1]
            out.append((f"{shard.stem}:{d['names'][k]}", d["audio"][a0:a1].astype(np.float32) / 32768, d["labels"][l0:l1]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=4, help="utterances per held-out shard")
    ap.add_argument("--source", type=Path, default=ROOT / "samples" / "source.jpg")
    args = ap.parse_args()
    models = Models()
    fa = FaceAnalyzer()
    lags = range(-3, 4)
    pooled = {lag: ([], []) for lag in lags}
    closed, total = 0, 0
    per_clip = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, wave, labels in clips(args.clips):
            wav = write_wav(Path(tmp) / "a.wav", wave)
            out = Path(tmp) / "o.mp4"
            speak(SpeakSpec(args.source, wav, out, RenderOptions(overwrite=True), SpeakOptions(still=True), max_size=320),
                  models)
            tracker = fa.tracker()
            with read_frames(out) as frames:
                gap = np.array([(lambda p: p[14, 1] - p[13, 1])(tracker.update(f.rgb).points) for f in frames])
            hop = 16000 // FPS
            env = np.array([np.sqrt(np.mean(wave[i * hop:(i + 1) * hop] ** 2) + 1e-12) for i in range(len(gap))])
            for lag in lags:
                g = gap[max(lag, 0):len(gap) + min(lag, 0)]
                e = env[max(-lag, 0):len(env) + min(-lag, 0)]
                pooled[lag][0].extend(g - g.mean())
                pooled[lag][1].extend(e - e.mean())
            lo, hi = gap.min(), gap.max()
            pp = labels == VISEMES.index("PP")
            starts = np.flatnonzero(np.diff(np.concatenate([[0], pp.astype(int)])) == 1)
            ends = np.flatnonzero(np.diff(np.concatenate([pp.astype(int), [0]])) == -1)
            ok = 0
            for s, e in zip(starts, ends):
                frame = int(round((s + e) / 2 / 100 * FPS))
                if frame < len(gap):
                    total += 1
                    ok += int(gap[frame] <= lo + 0.2 * (hi - lo))
            closed += ok
            per_clip.append({"clip": name, "frames": len(gap), "r0": round(float(np.corrcoef(gap, env)[0, 1]), 3),
                             "bilabials": int(len(starts)), "closed": ok})
    r = {lag: float(np.corrcoef(*pooled[lag])[0, 1]) for lag in lags}
    best = max(r, key=r.get)
    result = {"r_by_lag": {k: round(v, 3) for k, v in r.items()}, "peak_lag_frames": best,
              "bilabial_closed": f"{closed}/{total}", "closure_rate": round(closed / max(total, 1), 3),
              "clips": per_clip}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
