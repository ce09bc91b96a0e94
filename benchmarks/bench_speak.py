"""`speak` benchmark: a photo says N seconds of speech; audio head, per-stage ms/frame, fps vs real time, peak RSS.

    python benchmarks/bench_speak.py --seconds 60      # samples/speech.wav looped to 60 s, samples/source.jpg

Prints one JSON line. Real time at 25 fps means at least 25 frames rendered per second of wall time.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def looped_speech(path: Path, seconds: float) -> Path:
    from reenact.io.audio import load_audio, write_wav

    wave, sr = load_audio(ROOT / "samples" / "speech.wav", sr=16000)
    reps = int(np.ceil(seconds * sr / len(wave)))
    return write_wav(path, np.tile(wave, reps)[: int(seconds * sr)], sr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--source", type=Path, default=ROOT / "samples" / "source.jpg")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    import torch

    from reenact.device import configure_threads
    from reenact.pipeline import Models, RenderOptions
    from reenact.speak import SpeakOptions, SpeakSpec, speak

    with tempfile.TemporaryDirectory() as tmp:
        audio = looped_speech(Path(tmp) / "speech.wav", args.seconds)
        configure_threads(torch.device(args.device))  # as the CLI does
        models = Models(torch.device(args.device))
        start = time.perf_counter()
        report = speak(SpeakSpec(args.source, audio, Path(tmp) / "out.mp4", RenderOptions(), SpeakOptions()), models)
        wall = time.perf_counter() - start
    n = report.frames
    print(json.dumps({"audio_s": args.seconds, "frames": n, "wall_s": round(wall, 2), "fps": round(n / wall, 1),
                      "real_time_factor": round(args.seconds / wall, 2),
                      "ms_per_frame": {k: round(v / n, 2) for k, v in report.timings_ms.items() if k != "per_frame"},
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                      "torch_threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
