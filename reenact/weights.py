"""Safe weight loading (safetensors, strict keys, sha256) and the JSON contract that travels with every weight.

Each shipped model is two files in `weights/`:

    NAME.safetensors   the tensors
    NAME.json          the contract: how to build the network and what it expects

Contract fields (all required unless marked optional):

    name            str     file stem, e.g. "facemesh"
    arch            str     "module.path:ClassName" that builds the network
    kwargs          dict    keyword arguments for that constructor
    input           dict    e.g. {"size": [192, 192], "range": [-1, 1], "layout": "NCHW", "color": "RGB"}
    outputs         dict    names and shapes of the outputs (free form, for humans)
    channels        list    optional: output channel names in order (e.g. ARKit52 names)
    training_data   str     where the weights came from / what they were trained on
    licence         str     SPDX id or a short text
    source          str     the original artefact (package==version:path) or "trained by reenact"
    script          str     repository script that reproduces the file
    sha256          str     of the .safetensors file
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from reenact.errors import WeightsError

REQUIRED = ("name", "arch", "kwargs", "input", "outputs", "training_data", "licence", "source", "script")


def weights_dir() -> Path:
    """`$REENACT_WEIGHTS` if set, else the repository's `weights/` folder."""
    env = os.environ.get("REENACT_WEIGHTS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "weights"


@dataclass
class Contract:
    name: str
    arch: str
    kwargs: dict[str, Any]
    input: dict[str, Any]
    outputs: dict[str, Any]
    training_data: str
    licence: str
    source: str
    script: str
    sha256: str = ""
    channels: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, path: Path) -> "Contract":
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise WeightsError(f"Cannot read weight contract {path}: {exc}. Reinstall reenact or re-run its script.")
        missing = [k for k in REQUIRED if k not in data]
        if missing:
            raise WeightsError(f"Weight contract {path} lacks {', '.join(missing)}; re-run the script that made it.")
        known = {f for f in cls.__dataclass_fields__}
        extra = {k: v for k, v in data.items() if k not in known}
        fields = {k: v for k, v in data.items() if k in known and k != "extra"}
        return cls(**fields, extra={**data.get("extra", {}), **extra})

    def to_json(self) -> str:
        data = asdict(self)
        if not data["extra"]:
            data.pop("extra")
        if not data["channels"]:
            data.pop("channels")
        return json.dumps(data, indent=2) + "\n"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def contract_path(name: str, directory: Path | None = None) -> Path:
    return (directory or weights_dir()) / f"{name}.json"


def read_contract(name: str, directory: Path | None = None) -> Contract:
    path = contract_path(name, directory)
    if not path.exists():
        raise WeightsError(f"Weight contract {path.name} not found in {path.parent}; reinstall reenact.")
    return Contract.from_json(path)


def load_state(name: str, directory: Path | None = None, verify: bool = True) -> tuple[dict[str, torch.Tensor], Contract]:
    """Load `NAME.safetensors` and its contract; check the sha256 when `verify`."""
    directory = directory or weights_dir()
    contract = read_contract(name, directory)
    path = directory / f"{name}.safetensors"
    if not path.exists():
        raise WeightsError(f"Weight file {path.name} not found in {directory}; reinstall reenact or run {contract.script}.")
    if verify and contract.sha256 and sha256_of(path) != contract.sha256:
        raise WeightsError(f"{path.name} does not match the sha256 in {name}.json (corrupt or replaced); run {contract.script}.")
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises several unrelated types on a damaged file
        raise WeightsError(f"Cannot read {path.name}: {exc}; run {contract.script}.") from exc
    return state, contract


def build(contract: Contract) -> torch.nn.Module:
    """Instantiate `contract.arch(**contract.kwargs)`."""
    module_name, _, cls_name = contract.arch.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError) as exc:
        raise WeightsError(f"{contract.name}.json names arch {contract.arch!r}, which this version lacks: {exc}.")
    return cls(**contract.kwargs)


def load_model(name: str, device: torch.device | str = "cpu", directory: Path | None = None) -> torch.nn.Module:
    """Build the network its contract describes, load the weights strictly, move it to `device`, eval mode."""
    state, contract = load_state(name, directory)
    model = build(contract)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{name}.safetensors does not fit {contract.arch}: {exc}".splitlines()[0])
    model.contract = contract  # type: ignore[attr-defined]  # travels with the module
    return model.to(device).eval()


def save(name: str, state: dict[str, torch.Tensor], contract: Contract, directory: Path | None = None) -> Path:
    """Write `NAME.safetensors` and `NAME.json` (sha256 filled in). Used by tools/ and training."""
    directory = directory or weights_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.safetensors"
    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(path))
    contract.name = name
    contract.sha256 = sha256_of(path)
    contract_path(name, directory).write_text(contract.to_json())
    return path


def record_extra(name: str, key: str, value: Any, directory: Path | None = None) -> None:
    """Set extra[key] in NAME.json (a measurement made after export); the weights file and its sha256 are unchanged."""
    contract = read_contract(name, directory)
    contract.extra[key] = value
    contract_path(name, directory).write_text(contract.to_json())


def shipped() -> list[Contract]:
    """Contracts of every weight in weights_dir(), sorted by name."""
    d = weights_dir()
    if not d.is_dir():
        return []
    return [Contract.from_json(p) for p in sorted(d.glob("*.json"))]
