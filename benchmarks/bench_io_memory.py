"""Memory and speed of streaming video I/O: RSS must not grow with video length.

Generates a synthetic clip (default 10 minutes, 640x480, 25 fps, 16 kHz speech-band audio) once into
.cache/bench/, then in this process:
  1. decode only (read_frames), and
  2. decode + re-encode with the driver's audio copied (read_frames -> VideoWriter(audio=clip)),
sampling the resident set size (RSS) after 10 s of video and at the end, and the peak (VmHWM, reset before each
pass). Prints one JSON object.

    python benchmarks/bench_io_memory.py                      # 10 minutes (a few minutes on 2 cores)
    python benchmarks/bench_io_memory.py --minutes 1 --preset veryfast
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from reenact.io.video import VideoWriter, probe, read_frames

CACHE = Path(".cache/bench")


def rss_mb() -> float:
    return _status_kb("VmRSS") / 1024


def peak_mb() -> float:
    return _status_kb("VmHWM") / 1024


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status (Linux only)")


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # Linux: resets VmHWM to the current RSS


def make_clip(path: Path, minutes: float, size: tuple[int, int], fps: int) -> None:
    """A moving gradient with a bouncing block, plus a wav muxed in (AAC-encoded by the writer)."""
    w, h = size
    n = int(minutes * 60 * fps)
    sr = 16000
    wav = path.with_suffix(".wav")
    t = np.arange(int(minutes * 60 * sr)) / sr
    speechy = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))  # 3 Hz "syllables"
    _write_wav(wav, speechy.astype(np.float32), sr)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 255 // (w + h)], -1).astype(np.uint8)
    with VideoWriter(path, fps, preset="ultrafast", audio=wav, overwrite=True) as out:
        for i in range(n):
            frame = np.roll(base, i * 3, axis=1)
            x, y = (i * 7) % (w - 64), (i * 5) % (h - 64)
            frame[y:y + 64, x:x + 64] = 255
            out.write(frame)
    wav.unlink()


def _write_wav(path: Path, wave: np.ndarray, sr: int) -> None:
    import wave as wavemod

    with wavemod.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sr)
        f.writeframes((np.clip(wave, -1, 1) * 32767).astype("<i2").tobytes())


def decode_pass(clip: Path, fps: float) -> dict[str, float]:
    reset_peak()
    mark = int(10 * fps)
    rss_10s = 0.0
    t0 = time.perf_counter()
    n = 0
    for f in read_frames(clip):
        n += 1
        if f.index == mark:
            rss_10s = rss_mb()
    dt = time.perf_counter() - t0
    return {"frames": n, "decode_ms_per_frame": 1000 * dt / n, "rss_mb_at_10s": rss_10s, "rss_mb_at_end": rss_mb(),
            "peak_rss_mb": peak_mb()}


def transcode_pass(clip: Path, out: Path, preset: str) -> dict[str, float]:
    info = probe(clip)
    reset_peak()
    mark = int(10 * info.fps)
    rss_10s = 0.0
    t_enc = 0.0
    t0 = time.perf_counter()
    n = 0
    with VideoWriter(out, info.fps, preset=preset, audio=clip, overwrite=True) as w:
        for f in read_frames(clip):
            t1 = time.perf_counter()
            w.write(f.rgb)
            t_enc += time.perf_counter() - t1
            n += 1
            if f.index == mark:
                rss_10s = rss_mb()
    dt = time.perf_counter() - t0
    return {"frames": n, "total_ms_per_frame": 1000 * dt / n, "encode_ms_per_frame": 1000 * t_enc / n,
            "rss_mb_at_10s": rss_10s, "rss_mb_at_end": rss_mb(), "peak_rss_mb": peak_mb(),
            "output_mb": out.stat().st_size / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--preset", default="medium", help="x264 preset of the re-encode (the writer's default)")
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    CACHE.mkdir(parents=True, exist_ok=True)
    clip = CACHE / f"clip_{args.minutes:g}min_{args.size}_{args.fps}.mp4"
    t0 = time.perf_counter()
    if not clip.exists():
        make_clip(clip, args.minutes, (size[0], size[1]), args.fps)
    gen_s = time.perf_counter() - t0
    info = probe(clip)
    result = {
        "clip": {"minutes": args.minutes, "size": args.size, "fps": str(info.fps), "frames": info.n_frames,
                 "audio": info.audio_codec, "mb": clip.stat().st_size / 1e6, "generate_s": round(gen_s, 1)},
        "rss_mb_before": rss_mb(),
        "decode": decode_pass(clip, float(info.fps)),
        "transcode": transcode_pass(clip, CACHE / "transcoded.mp4", args.preset),
        "preset": args.preset,
    }
    print(json.dumps(_rounded(result), indent=1))


def _rounded(obj: object) -> object:
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    return round(obj, 2) if isinstance(obj, float) else obj


if __name__ == "__main__":
    main()
