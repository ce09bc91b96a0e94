"""The only place that chooses the torch device, dtype and autocast policy."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from reenact.errors import DeviceError
from reenact.limits import check_device_spec


def resolve_device(spec: str = "auto") -> torch.device:
    """Turn `auto|cpu|cuda[:N]|mps` into a torch.device, failing clearly when it is not available."""
    spec = check_device_spec(spec)
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {spec} was asked for but this machine has no CUDA GPU; use --device cpu.")
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) present (cuda:0..)."
            )
        return torch.device("cuda", index)
    if spec == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise DeviceError("--device mps was asked for but MPS is not available; use --device cpu.")
        return torch.device("mps")
    return torch.device("cpu")


def compute_dtype(device: torch.device) -> torch.dtype:
    """Weights stay float32; autocast picks half precision for the heavy ops on GPUs."""
    return torch.float32


@contextlib.contextmanager
def inference(device: torch.device) -> Iterator[None]:
    """Inference mode plus fp16 autocast on CUDA (our convnets are numerically safe in fp16)."""
    with torch.inference_mode():
        if device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.float16):
                yield
        else:
            yield


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def configure_threads(device: torch.device) -> int:
    """Intra-op threads for CPU inference: half the cores (at least 1), or `$REENACT_THREADS`.

    Our networks are small (192 px meshes, 150 px identity chips), so extra intra-op threads buy little, and when
    the cores are shared (the video encoder's own threads, other processes) oneDNN's spinning threads slow every op
    by an order of magnitude: on a busy 2-core machine the face tracker measured 71 ms/frame with 1 thread and
    1250 ms/frame with 2. The other half of the cores is left to the decoder and the x264 encoder.
    """
    import os

    env = os.environ.get("REENACT_THREADS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise DeviceError(f"REENACT_THREADS={env!r}: give a positive whole number of threads.")
        threads = int(env)
    elif device.type == "cpu":
        threads = max(1, (os.cpu_count() or 2) // 2)
    else:
        threads = max(1, min(4, os.cpu_count() or 1))  # CPU-side pre/post-processing only
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads
