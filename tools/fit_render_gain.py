"""Refine the rig's render gains end to end: the tuning clips drive their own first frame, and the shipped gains are
nudged until the output's motion, as an independent face mesh reads it, matches the driver's.

    .venv/bin/python tools/fit_render_gain.py [--clips cap12 cap13] [--seconds 8] [--iterations 3]

tools/build_rig.py fits `Rig.render_gain` on still photos, one shape at a time (motion drawn / motion a tracker reads
back). In a drive the shapes combine, the estimator's reading and the smoothing sit in between, and the judge is
MediaPipe's refined mesh rather than our tracker; this tool closes that loop. Per iteration it runs
`reenact drive` in self-reenactment on each tuning clip (tools/eval_fidelity.py: same cut, photo and judge), reads
the vertical gain (slope of output on driver motion) of a few point groups, and scales the shapes that move each
group by gain^-DAMPING, within [1, MAX_GAIN]. It writes weights/rig_arkit52 after every iteration (the drive reads
it), and its contract records the history. Only tuning clips: the evaluation clips never enter a fit.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eval_fidelity as fidelity  # noqa: E402

from reenact.params import ARKIT52  # noqa: E402
from reenact.weights import load_model, read_contract, save  # noqa: E402

TUNING = ("cap12", "cap13")  # WolfgangLanger's hand crosses its mouth: its mouth motion is not the face's
# point group (MediaPipe indices) -> the shapes whose gain it sets. Vertical motion: what these shapes mostly do.
GROUPS = {
    "lip corners": ([61, 291], ("mouthSmileLeft", "mouthSmileRight")),
    "upper lip": ([0, 37, 267, 13, 82, 312], ("mouthUpperUpLeft", "mouthUpperUpRight")),
    "lower lip": ([17, 84, 314, 14, 87, 317], ("mouthLowerDownLeft", "mouthLowerDownRight", "jawOpen")),
    "brows": (fidelity.REGIONS["brows"], ("browInnerUp", "browOuterUpLeft", "browOuterUpRight")),
}
# The lids keep their photo-fitted gains: raised end to end (to 4) they amplified the estimator's small lid readings
# between blinks, and the held-out clips' lids moved where the driver's did not (eyes unreproduced 1.01 -> 1.15).
DAMPING = 0.7  # move the gain 70 % of the way (in log) toward what the last run asked: the groups interact
MAX_GAIN = 4.0
STEP = (0.67, 1.5)  # at most this change per iteration


def group_gains(work: Path) -> dict[str, float]:
    """Vertical output/driver gain of each point group in one finished self-reenactment run (work = its folder)."""
    drv, out = fidelity.meshes([work / "driver.mp4", work / "output.mp4"])
    a, _ = fidelity.align(drv, 0)
    b, _ = fidelity.align(out, 0)
    eye = fidelity.eye_distance(drv[0])
    res = {}
    for name, (idx, _) in GROUPS.items():
        gain, _ = fidelity.gain_corr(fidelity.motion(a, idx, eye)[..., 1], fidelity.motion(b, idx, eye)[..., 1])
        res[name] = gain
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", nargs="+", default=list(TUNING), choices=sorted(fidelity.CLIPS))
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--iterations", type=int, default=3)
    args = ap.parse_args()
    held_out = set(args.clips) & {"franck", "single_face", "carphone"}
    if held_out:
        sys.exit(f"{', '.join(sorted(held_out))}: evaluation clips, never fitted on (tools/eval_fidelity.py)")
    reenact = fidelity.Reenact(None)
    history = []
    for it in range(args.iterations):
        gains: dict[str, list[float]] = {name: [] for name in GROUPS}
        for clip in args.clips:
            work = fidelity.CACHE / "runs" / f"fit_gain_{it}" / clip
            fidelity.run_clip(reenact, clip, args.seconds, 0, [], work, None)
            for name, g in group_gains(work).items():
                gains[name].append(g)
        rig = load_model("rig_arkit52")
        step = {}
        for name, (_, shapes) in GROUPS.items():
            g = float(np.mean(gains[name]))
            factor = float(np.clip(max(g, 1e-3) ** -DAMPING, *STEP))
            for shape in shapes:
                k = ARKIT52.index(shape)
                rig.render_gain[k] = float(np.clip(float(rig.render_gain[k]) * factor, 1.0, MAX_GAIN))
            step[name] = {"gain": round(g, 3), "factor": round(factor, 3)}
        history.append(step)
        print(json.dumps({"iteration": it, **step}), flush=True)
        contract = read_contract("rig_arkit52")
        info = contract.extra.get("render_gain", {})
        info["end_to_end"] = {"clips": args.clips, "seconds": args.seconds, "damping": DAMPING, "history": history,
                              "script": "tools/fit_render_gain.py"}
        info["gain"] = {n: round(float(rig.render_gain[ARKIT52.index(n)]), 3) for n in info.get("gain", {})}
        contract.extra = {**contract.extra, "render_gain": info}
        save("rig_arkit52", rig.state_dict(), contract)


if __name__ == "__main__":
    main()
