"""Mouth interior of `reenact drive` against the real mouth (issue 19): self-reenactment on held-out clips.

    .venv/bin/python tools/eval_mouth.py [--clips franck single_face carphone] [--seconds 8] \
        [--drive-args "--mouth paint"] [--label NAME] [--code DIR] [--out out/mouth.json]
    .venv/bin/python tools/eval_mouth.py --sheet docs/images/mouth.png --sheet-labels paint driver
    .venv/bin/python tools/eval_mouth.py --colour-stats --clips cap12 cap13 wolfgang
    .venv/bin/python tools/eval_mouth.py --creases LABEL   # issue 19 item 4, simulated on an earlier run's videos

A clip's first frame (lips closed) is the photo and the clip drives it (tools/eval_fidelity.py's cut and CLI
runner). MediaPipe FaceMesh (the independent judge of docs/fidelity.md, cached meshes) meshes the driver and the
output. On the frames where the real mouth is open (inner-lip gap 13-14 above OPEN_GAP mouth widths 78-308), the
output frame is mapped onto the real one by a 2D similarity fitted on the judge's stable points (head motion and
scale removed) and compared inside the real inner-lip contour: PSNR (RGB), SSIM (luma, Gaussian window) and the
luma spread (std of Y inside the contour) of output and real. docs/mouth.md defines and records the numbers.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_fidelity import (  # noqa: E402  (a sibling tool, not a package)
    CLIPS,
    DATA,
    HELD_OUT,
    STABLE,
    Reenact,
    clean,
    code_version,
    cut,
    frames_at,
    meshes,
    similarity,
)

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "mouth"
# MediaPipe inner-lip loop, corner 78 along the upper lip to corner 308, back along the lower lip.
INNER_LOOP = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95]
OPEN_GAP = 0.12  # an open mouth: inner-lip gap above this fraction of the mouth width
MIN_PIXELS = 30  # frames whose real opening covers fewer pixels are skipped (a sliver says nothing)


# --- metrics (pure numpy / OpenCV) -----------------------------------------------------------------------------------

def luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W) float32 BT.601 luma of an RGB image."""
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB, peak 255) of two RGB images over the pixels of a boolean mask."""
    err = ((a[mask].astype(np.float64) - b[mask]) ** 2).mean()
    return float(10 * np.log10(255.0 ** 2 / max(err, 1e-10)))


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """SSIM of the luma of two RGB images (Gaussian window sigma 1.5, Wang et al. 2004 constants), averaged over
    the mask's pixels."""
    x, y = luma(a).astype(np.float64), luma(b).astype(np.float64)
    blur = lambda z: cv2.GaussianBlur(z, (11, 11), 1.5)  # noqa: E731
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    m = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(m[mask].mean())


def inner_mask(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(H, W) bool: inside a mesh's inner-lip contour."""
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(points[INNER_LOOP, :2]).astype(np.int32)], 1)
    return mask.astype(bool)


def opening(points: np.ndarray) -> np.ndarray:
    """(T,) inner-lip gap over mouth width."""
    gap = np.linalg.norm(points[:, 13, :2] - points[:, 14, :2], axis=-1)
    return gap / np.linalg.norm(points[:, 78, :2] - points[:, 308, :2], axis=-1)


def onto(out_frame: np.ndarray, out_points: np.ndarray, real_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The output frame and its mesh mapped onto the real frame by the 2D similarity of their stable points."""
    s, rot, t = similarity(out_points[STABLE, :2].astype(np.float64), real_points[STABLE, :2].astype(np.float64))
    m = np.hstack([s * rot, t[:, None]]).astype(np.float32)  # (2, 3)
    frame = cv2.warpAffine(out_frame, m, (out_frame.shape[1], out_frame.shape[0]), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    return frame, out_points[:, :2] @ (s * rot).T + t


@dataclass
class FrameScore:
    frame: int
    psnr: float
    ssim: float
    spread_out: float
    spread_real: float
    pixels: int
    area_ratio: float  # the output's opening (its inner-lip contour, mapped) over the real one: geometry, not content


def score(real: np.ndarray, out: np.ndarray, real_pts: np.ndarray, out_pts: np.ndarray, i: int) -> FrameScore | None:
    mask = inner_mask(real_pts, real.shape)
    if mask.sum() < MIN_PIXELS:
        return None
    if out.shape != real.shape:
        return None
    mapped, mapped_pts = onto(out, out_pts, real_pts)
    area = inner_mask(mapped_pts, real.shape).sum() / mask.sum()
    return FrameScore(i, psnr(mapped, real, mask), ssim(mapped, real, mask), float(luma(mapped)[mask].std()),
                      float(luma(real)[mask].std()), int(mask.sum()), float(area))


# --- runs ------------------------------------------------------------------------------------------------------------

def decode(path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    return frames_at(path, wanted) if wanted else {}


@dataclass
class ClipMouth:
    clip: str
    frames: int
    open_frames: int
    psnr: float
    ssim: float
    spread_out: float
    spread_real: float
    spread_ratio: float
    area_ratio: float
    per_frame: list[dict]


def run_clip(reenact: Reenact, name: str, seconds: float, drive_args: list[str], work: Path) -> ClipMouth:
    work.mkdir(parents=True, exist_ok=True)
    src = DATA / CLIPS[name]
    driver, photo, output = work / "driver.mp4", work / "photo.png", work / "output.mp4"
    cut(src, driver, seconds)
    cv2.imwrite(str(photo), cv2.cvtColor(frames_at(src, {0})[0], cv2.COLOR_RGB2BGR))
    reenact("drive", str(photo), str(driver), "-o", str(output), "-y", *drive_args)
    drv, out = meshes([driver, output])
    n = min(len(drv), len(out))
    ok = ~np.isnan(drv[:n, 0, 0]) & ~np.isnan(out[:n, 0, 0])
    is_open = ok & (np.nan_to_num(opening(drv[:n])) > OPEN_GAP)
    wanted = set(np.flatnonzero(is_open).tolist())
    reals, outs = decode(driver, wanted), decode(output, wanted)
    rows = [score(reals[i], outs[i], drv[i], out[i], i) for i in sorted(wanted)]
    rows = [r for r in rows if r is not None]
    if not rows:
        sys.exit(f"{name}: no open-mouth frame with a face in both videos")
    keys = ("psnr", "ssim", "spread_out", "spread_real", "area_ratio")
    mean = {k: float(np.mean([getattr(r, k) for r in rows])) for k in keys}
    return ClipMouth(name, n, len(rows), mean["psnr"], mean["ssim"], mean["spread_out"], mean["spread_real"],
                     mean["spread_out"] / mean["spread_real"], mean["area_ratio"], [asdict(r) for r in rows])


def table(results: list[ClipMouth]) -> str:
    lines = ["| clip | open frames | PSNR dB | SSIM | luma spread out | luma spread real | spread ratio | "
             "opening area ratio |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.clip} | {r.open_frames}/{r.frames} | {r.psnr:.2f} | {r.ssim:.3f} | {r.spread_out:.1f} | "
                     f"{r.spread_real:.1f} | {r.spread_ratio:.2f} | {r.area_ratio:.2f} |")
    keys = ("psnr", "ssim", "spread_out", "spread_real", "area_ratio")
    m = {k: float(np.mean([getattr(r, k) for r in results])) for k in keys}
    lines.append(f"| **mean** |  | {m['psnr']:.2f} | {m['ssim']:.3f} | {m['spread_out']:.1f} | {m['spread_real']:.1f} "
                 f"| {m['spread_out'] / m['spread_real']:.2f} | {m['area_ratio']:.2f} |")
    return "\n".join(lines)


# --- colour of real mouths (reenact.render.interior.LibraryLook's targets) ------------------------------------------

def colour_stats(clip: str, seconds: float) -> dict[str, list[float]]:
    """Mean colour over the lip-adjacent skin's, per channel, of the teeth and of the rest inside the real inner-lip
    contour on the clip's open-mouth frames (teeth told apart as reenact does: interior.teeth_weight)."""
    sys.path.insert(0, str(ROOT))
    from reenact.render.interior import KEEP, skin_gains, teeth_weight

    work = CACHE / "stats" / clip
    work.mkdir(parents=True, exist_ok=True)
    driver = work / "driver.mp4"
    if not driver.exists():
        cut(DATA / CLIPS[clip], driver, seconds)
    drv = meshes([driver])[0]
    wanted = set(np.flatnonzero(np.nan_to_num(opening(drv)) > OPEN_GAP).tolist())
    teeth, rest = [], []
    for i, frame in sorted(decode(driver, wanted).items()):
        mask = inner_mask(drv[i], frame.shape)
        if mask.sum() < MIN_PIXELS:
            continue
        skin = skin_gains(frame, drv[i][KEEP, :2])
        rel = frame[mask].astype(np.float32) / skin  # (N, 3)
        w = teeth_weight(frame[mask], skin)[:, None]
        if w.sum() >= 1:
            teeth.append((rel * w).sum(0) / w.sum())
        rest.append((rel * (1 - w)).sum(0) / max(float((1 - w).sum()), 1e-3))
    return {"teeth": [round(float(x), 3) for x in np.mean(teeth, 0)], "rest": [round(float(x), 3) for x in np.mean(rest, 0)]}


# --- the driver's fine creases as a ratio image (issue 19 item 4), simulated ------------------------------------------

def crease_scores(label: str, clip: str, sigma: float = 3.0, step: int = 2, shift: int = 0) -> dict[str, float]:
    """The driver's fine creases carried as a ratio image in the face's texture space (Averbuch-Elor et al. 2017),
    simulated on an earlier run (`label`) of this tool: the output's log luminance in texture space, with and
    without the driver's fine log ratio to its first frame (reenact.render.shade.fine_ratio, high-pass of `sigma`
    texels: creases, not light), against the real frame's, on the skin texels outside lips, eyes and brows
    (reenact.render.shade.TextureSpace.skin; all meshes the judge's). PSNR and SSIM of luma (0..255), every
    `step`-th frame. Note: in self-reenactment the photo is the driver's first frame, so the ratio image carries the
    real frame's own detail: an upper bound of what the feature can give, not evidence that it helps elsewhere.
    `shift` > 0: a control, the creases of the driver frame `shift` frames later (same person and light, the wrong
    moment): where that helps as much, the gain is the photo's own detail coming back, not the expression's."""
    sys.path.insert(0, str(ROOT))
    from reenact.render.shade import TextureSpace, fine_ratio
    from reenact.render.warp import LOG_OFFSET

    space = TextureSpace.default()
    skin = space.skin > 0.5
    d = CACHE / "runs" / label / clip
    drv, out = meshes([d / "driver.mp4", d / "output.mp4"])
    n = min(len(drv), len(out))
    ok = ~np.isnan(drv[:n, 0, 0]) & ~np.isnan(out[:n, 0, 0])
    frames = [int(i) for i in np.flatnonzero(ok)[::step] if i + shift < n and ok[i + shift]]
    wanted = set(frames) | {i + shift for i in frames} | {0}
    reals, outs = decode(d / "driver.mp4", wanted), decode(d / "output.mp4", wanted)
    ref, ref_ok = space.unwrap(reals[0], drv[0])
    to_y = lambda t: np.exp(t) - LOG_OFFSET  # noqa: E731  log(Y + 8) -> Y
    rows = []
    for i in frames:
        if i == 0:
            continue
        real, real_ok = space.unwrap(reals[i], drv[i])
        ratio_src, src_ok = space.unwrap(reals[i + shift], drv[i + shift])
        mine, mine_ok = space.unwrap(outs[i], out[i])
        valid = skin & ref_ok & real_ok & mine_ok & src_ok
        if valid.sum() < 100:
            continue
        fine = fine_ratio(ratio_src, src_ok & real_ok & mine_ok, ref, ref_ok, sigma)  # (TEX, TEX) what drive adds
        y_real, y_out, y_new = to_y(real), to_y(mine), to_y(mine + fine)
        grey = lambda y: np.repeat(np.clip(y, 0, 255)[..., None], 3, -1)  # noqa: E731  (luma as RGB for psnr/ssim)
        rows.append([psnr(grey(y_out), grey(y_real), valid), psnr(grey(y_new), grey(y_real), valid),
                     ssim(grey(y_out), grey(y_real), valid), ssim(grey(y_new), grey(y_real), valid)])
    r = np.mean(rows, 0)
    return {"frames": len(rows), "psnr_without": float(r[0]), "psnr_with": float(r[1]), "ssim_without": float(r[2]),
            "ssim_with": float(r[3])}


# --- contact sheet ---------------------------------------------------------------------------------------------------

def sheet(clip: str, labels: list[str], path: Path, columns: int = 4, size: int = 160) -> None:
    """Driver row over one row per run (`labels`, earlier runs of this tool), mouth crops at the clip's `columns`
    most open frames (spread over the clip), each crop `size` px wide."""
    driver = CACHE / "runs" / labels[0] / clip / "driver.mp4"
    drv = meshes([driver])[0]
    gap = np.nan_to_num(opening(drv), nan=-1.0)
    picks: list[int] = []
    for i in np.argsort(-gap):  # the most open frames at least half a second apart
        if all(abs(int(i) - p) > 12 for p in picks):
            picks.append(int(i))
        if len(picks) == columns:
            break
    picks.sort()
    rows = [(clip + " real", decode(driver, set(picks)), drv)]
    for label in labels:
        output = CACHE / "runs" / label / clip / "output.mp4"
        rows.append((label, decode(output, set(picks)), meshes([output])[0]))
    tiles = []
    for text, frames, pts in rows:
        cells = []
        for i in picks:
            p = pts[i] if not np.isnan(pts[i, 0, 0]) else drv[i]
            lips = p[[61, 291, 0, 17, 78, 308, 13, 14], :2]
            c, w = lips.mean(0), np.ptp(lips[:, 0]) * 1.9
            x0, y0 = int(c[0] - w / 2), int(c[1] - w * 0.36)
            crop = frames[i][max(y0, 0):y0 + int(w * 0.72), max(x0, 0):x0 + int(w)]
            crop = cv2.resize(crop, (size, round(size * 0.72)), interpolation=cv2.INTER_CUBIC)
            cv2.putText(crop, f"{text} #{i}", (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 0), 1, cv2.LINE_AA)
            cells.append(crop)
        tiles.append(np.hstack(cells))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack(tiles), cv2.COLOR_RGB2BGR))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--clips", nargs="+", default=list(HELD_OUT), choices=sorted(CLIPS))
    ap.add_argument("--seconds", type=float, default=8.0, help="drive with the first N seconds (0: all)")
    ap.add_argument("--drive-args", default="", help='extra `reenact drive` arguments, e.g. "--mouth paint"')
    ap.add_argument("--label", default="", help="name of this run (default: from --drive-args)")
    ap.add_argument("--code", type=Path, help="run the reenact CLI of this checkout (default: the installed one)")
    ap.add_argument("--out", type=Path, help="JSON of every number (default: out/mouth_LABEL.json)")
    ap.add_argument("--sheet", type=Path, help="contact sheet PNG per clip (clip name appended) from earlier runs")
    ap.add_argument("--sheet-labels", nargs="+", default=["paint", "driver"], help="the runs shown in --sheet")
    ap.add_argument("--colour-stats", action="store_true", help="teeth / rest colour over skin of the real mouths")
    ap.add_argument("--creases", metavar="LABEL", help="simulate the driver's creases on an earlier run's videos")
    ap.add_argument("--crease-sigma", type=float, default=3.0, help="--creases: high-pass sigma, texels")
    ap.add_argument("--crease-shift", type=int, default=0, help="--creases: control, creases of N frames later")
    argv = sys.argv[1:]
    for i, a in enumerate(argv[:-1]):  # `--drive-args --mouth paint`: keep argparse from reading it as options
        if a == "--drive-args":
            argv[i:i + 2] = [f"--drive-args={argv[i + 1]}"]
            break
    args = ap.parse_args(argv)
    if args.creases:
        for c in args.clips:
            print(c, json.dumps({k: round(v, 3) for k, v in crease_scores(args.creases, c, args.crease_sigma,
                                                                                   shift=args.crease_shift).items()}))
        return
    if args.colour_stats:
        for c in args.clips:
            print(c, json.dumps(colour_stats(c, args.seconds)))
        return
    if args.sheet is not None:
        for c in args.clips:
            sheet(c, args.sheet_labels, args.sheet.with_name(f"{args.sheet.stem}_{c}{args.sheet.suffix}"))
        return
    drive_args = shlex.split(args.drive_args)
    label = args.label or ("_".join(a.lstrip("-") for a in drive_args) or "default")
    reenact = Reenact(args.code.resolve() if args.code else None)
    t0 = time.perf_counter()
    results = []
    for c in args.clips:
        results.append(run_clip(reenact, c, args.seconds, drive_args, CACHE / "runs" / label / c))
        print(f"{c}: {results[-1].open_frames} open frames, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    print(f"## mouth interior: {label} (drive args: {args.drive_args or 'none'}; first {args.seconds:g} s)\n")
    print(table(results))
    doc = {"label": label, "code": code_version(args.code), "drive_args": drive_args, "seconds": args.seconds,
           "open_gap": OPEN_GAP, "clips": [asdict(r) for r in results],
           "seconds_total": round(time.perf_counter() - t0)}
    out = args.out or ROOT / "out" / f"mouth_{label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(clean(doc), indent=1) + "\n")
    print(f"\nwrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
