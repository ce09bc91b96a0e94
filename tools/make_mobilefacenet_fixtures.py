"""Make the MobileFaceNet parity fixtures: ArcFace-aligned 112x112 chips and the original TFLite's embeddings.

Two stages, two venvs (the TFLite runtime `ai-edge-litert` is kept out of the project's venv):
    .venv/bin/python tools/make_mobilefacenet_fixtures.py --stage chips     # align the identity fixture faces
    .cache/venvs/litert/bin/python tools/make_mobilefacenet_fixtures.py --stage litert --tflite PATH
    .venv/bin/python tools/make_mobilefacenet_fixtures.py --tflite PATH     # both, in turn

The litert venv: python3 -m venv .cache/venvs/litert && .cache/venvs/litert/bin/pip install ai-edge-litert pillow
PATH is MobileFaceNet.tflite from the npm package (`tools/convert_mobilefacenet.py --keep DIR` leaves a copy in DIR).

Inputs: the 11 faces of tests/fixtures/identity (crop_NN.jpg + the MediaPipe mesh in reference.npz).
Outputs (tests/fixtures/identity/):
    arcface_chip_NN.png   reenact.identity_arcface.arcface_chip of the crop from the mesh's 5 points (exact pixels)
    mobilefacenet.npz     names (N,), emb (N, 192) raw TFLite embeddings of those chips, runtime (litert version),
                          tflite_sha256
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "identity"


def chips_stage() -> None:
    sys.path.insert(0, str(ROOT))
    from reenact.identity_arcface import arcface_chip, mesh_to_arcface5

    ref = np.load(FIXTURES / "reference.npz")
    for i in range(len(ref["names"])):
        crop = np.asarray(Image.open(FIXTURES / f"crop_{i:02d}.jpg").convert("RGB"))
        chip = arcface_chip(crop, mesh_to_arcface5(ref["mesh"][i]))
        Image.fromarray(chip).save(FIXTURES / f"arcface_chip_{i:02d}.png", optimize=True)


def litert_stage(tflite: Path) -> None:
    from importlib.metadata import version

    from ai_edge_litert.interpreter import Interpreter

    ref = np.load(FIXTURES / "reference.npz")
    chips = np.stack([np.asarray(Image.open(FIXTURES / f"arcface_chip_{i:02d}.png").convert("RGB"))
                      for i in range(len(ref["names"]))]).astype(np.float32)
    net = Interpreter(model_path=str(tflite))
    net.allocate_tensors()
    inp, out = net.get_input_details()[0], net.get_output_details()[0]
    batch = int(inp["shape"][0])  # fixed at 2 in this file; its final RESHAPE bakes the batch in
    emb = []
    for k in range(0, len(chips), batch):
        x = chips[k : k + batch]
        n = len(x)
        x = np.concatenate([x, np.repeat(x[-1:], batch - n, 0)])  # pad the last batch with a copy
        net.set_tensor(inp["index"], (x - 127.5) / 128.0)  # the package's own normalisation (MyUtil.normalizeImage)
        net.invoke()
        emb.append(net.get_tensor(out["index"])[:n].copy())
    np.savez_compressed(FIXTURES / "mobilefacenet.npz", names=ref["names"], emb=np.concatenate(emb).astype(np.float32),
                        runtime=f"ai-edge-litert {version('ai-edge-litert')}",
                        tflite_sha256=hashlib.sha256(tflite.read_bytes()).hexdigest())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage", choices=["all", "chips", "litert"], default="all")
    ap.add_argument("--tflite", type=Path, help="MobileFaceNet.tflite (needed by the litert stage)")
    args = ap.parse_args()
    if args.stage in ("all", "chips"):
        chips_stage()
    if args.stage == "litert":
        litert_stage(args.tflite)
    elif args.stage == "all":
        if args.tflite is None:
            ap.error("--tflite is needed for the litert stage")
        py = ROOT / ".cache" / "venvs" / "litert" / "bin" / "python"
        subprocess.run([str(py), __file__, "--stage", "litert", "--tflite", str(args.tflite.resolve())], check=True)


if __name__ == "__main__":
    main()
