"""Safe weight loading (safetensors, strict keys, sha256) and the JSON contract that travels with every weight.

Each shipped model is two files in `weights/`, listed in that folder's `MANIFEST.json`:

    NAME.safetensors   the tensors
    NAME.json          the contract: how to build the network and what it expects
    MANIFEST.json      for every NAME: the sha256 of the contract's canonical JSON and of the tensors

Contract fields (all required unless marked optional):

    name            str     file stem, e.g. "facemesh"
    arch            str     a registered network (reenact.registry), e.g. "facemesh"; never an import path
    kwargs          dict    keyword arguments for that constructor (JSON values of the types it declares)
    input           dict    e.g. {"size": [192, 192], "range": [-1, 1], "layout": "NCHW", "color": "RGB"}
    outputs         dict    names and shapes of the outputs (free form, for humans)
    channels        list    optional: output channel names in order (e.g. ARKit52 names)
    training_data   str     where the weights came from / what they were trained on
    licence         str     SPDX id or a short text
    source          str     the original artefact (package==version:path) or "trained by reenact"
    script          str     repository script that reproduces the file
    sha256          str     of the .safetensors file

Loading checks both sha256 against the folder's manifest, then builds `arch` from the registry, so a contract can
only ever construct one of reenact's own networks with data arguments (docs/weights.md). Every writer here
(`save`, `write_contract`, `record_extra`) updates the manifest; `tools/hash_weights.py` rewrites it by hand.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file

from reenact.errors import ContractError, IntegrityError, WeightsError
from reenact.registry import check_arguments, registered_path

MANIFEST = "MANIFEST.json"
HASH_TOOL = "python tools/hash_weights.py"
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
        return cls.from_data(_read_json(path), path)

    @classmethod
    def from_data(cls, data: dict[str, Any], path: Path) -> "Contract":
        missing = [k for k in REQUIRED if k not in data]
        if missing:
            raise WeightsError(f"Weight contract {path} lacks {', '.join(missing)}; re-run the script that made it.")
        if not isinstance(data.get("extra", {}), dict):
            raise WeightsError(f"Weight contract {path}: extra must be a JSON object; re-run the script that made it.")
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


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"Cannot read weight contract {path}: {exc}. Reinstall reenact or re-run its script.")
    if not isinstance(data, dict):
        raise WeightsError(f"Weight contract {path} is not a JSON object; reinstall reenact or re-run its script.")
    return data


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def contract_sha256(data: dict[str, Any]) -> str:
    """sha256 of a contract's canonical JSON (sorted keys, no spaces, ASCII): the content, not its layout, so a
    re-indented file or a checkout with other line endings still matches, and any changed value does not."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def contract_path(name: str, directory: Path | None = None) -> Path:
    return (directory or weights_dir()) / f"{name}.json"


def read_contract(name: str, directory: Path | None = None, verify: bool = False) -> Contract:
    """NAME.json as data (reading one builds nothing); `verify` also checks it against the folder's manifest."""
    path = contract_path(name, directory)
    if not path.exists():
        raise WeightsError(f"Weight contract {path.name} not found in {path.parent}; reinstall reenact.")
    data = _read_json(path)
    if verify:
        _check_contract_hash(name, path.parent, data)
    return Contract.from_data(data, path)


# ------------------------------------------------------------------------------------------------ manifest
def read_manifest(directory: Path | None = None) -> dict[str, dict[str, str]]:
    """{name: {"contract": sha256, "safetensors": sha256}} of the folder's MANIFEST.json."""
    directory = directory or weights_dir()
    path = directory / MANIFEST
    if not path.exists():
        raise IntegrityError(f"{directory} has no {MANIFEST}, so its weights cannot be checked; if you trust its "
                             f"contents, run `{HASH_TOOL} --dir {directory}` (docs/weights.md).")
    try:
        entries = json.loads(path.read_text())["weights"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise IntegrityError(f"Cannot read {path}: {exc!r}; reinstall reenact or run `{HASH_TOOL} --dir {directory}`.")
    if not isinstance(entries, dict):
        raise IntegrityError(f"{path} is damaged; reinstall reenact or run `{HASH_TOOL} --dir {directory}`.")
    return entries


def _manifest_entry(name: str, directory: Path) -> dict[str, str]:
    entry = read_manifest(directory).get(name)
    if not isinstance(entry, dict) or not {"contract", "safetensors"} <= set(entry):
        raise IntegrityError(f"{name} is not listed in {directory / MANIFEST}; re-run the script that made it, or "
                             f"`{HASH_TOOL} --dir {directory} {name}` if you trust its files.")
    return entry


def _check_contract_hash(name: str, directory: Path, data: dict[str, Any]) -> None:
    if contract_sha256(data) != _manifest_entry(name, directory)["contract"]:
        raise IntegrityError(f"{name}.json in {directory} changed after it was hashed into {MANIFEST} (edited, "
                             f"corrupt or replaced); reinstall reenact or re-run its script (if you edited it "
                             f"yourself: `{HASH_TOOL} --dir {directory} {name}`).")


def _check_tensors_hash(name: str, directory: Path, contract: Contract) -> None:
    digest = sha256_of(directory / f"{name}.safetensors")
    if digest != _manifest_entry(name, directory)["safetensors"] or contract.sha256 not in ("", digest):
        raise IntegrityError(f"{name}.safetensors in {directory} does not match its sha256 in {MANIFEST} and "
                             f"{name}.json (corrupt or replaced); reinstall reenact or run {contract.script}.")


def check_contract(contract: Contract, directory: Path | None = None) -> type:
    """The registered class the contract builds, after checking its arch and kwargs; ContractError otherwise.

    Nothing named by the contract is imported: an "arch" is looked up in reenact.registry, which only ever imports
    reenact's own modules. Old contracts held "module:Class" paths; they are refused (with the key to use instead)
    rather than resolved, so a contract can never point the loader at an arbitrary callable.
    """
    arch = contract.arch
    if not isinstance(arch, str) or ":" in arch or "." in arch:
        key = registered_path(arch) if isinstance(arch, str) else None
        tool = f"{HASH_TOOL} --dir {directory} --upgrade" if directory else f"{HASH_TOOL} --upgrade"
        fix = (f'If the folder is yours, change "arch" to "{key}" (`{tool}` does it and re-hashes)' if key else
               "It is not one of reenact's networks: do not use these weights")
        raise ContractError(f"{contract.name}.json names the import path {arch!r} as its arch; reenact builds only "
                            f"registered networks and never imports what a contract names. {fix}.")
    try:
        return check_arguments(arch, contract.kwargs)
    except ContractError as exc:
        raise ContractError(f"{contract.name}.json: {exc} Re-run {contract.script}, or do not use these weights.") from None


def update_manifest(directory: Path | None = None, names: list[str] | None = None, upgrade: bool = False) -> Path:
    """Hash NAME.json + NAME.safetensors into the folder's MANIFEST.json (every contract there when `names` is None;
    otherwise only those, keeping the other entries). Each contract is checked first (registered arch, typed kwargs,
    tensors matching its sha256): hashing a file vouches for it. `upgrade` rewrites an old "module:Class" arch that
    names a registered class to its key. Returns the manifest's path."""
    directory = directory or weights_dir()
    if not directory.is_dir():
        raise WeightsError(f"{directory} is not a folder of weights; check the path.")
    if names is None:
        names = [p.stem for p in sorted(directory.glob("*.json")) if p.name != MANIFEST]
        entries: dict[str, dict[str, str]] = {}
    else:
        entries = read_manifest(directory) if (directory / MANIFEST).exists() else {}
    for name in names:
        contract = read_contract(name, directory)
        key = registered_path(contract.arch) if upgrade and isinstance(contract.arch, str) else None
        if key:
            contract.arch = key
            contract_path(name, directory).write_text(contract.to_json())
        check_contract(contract, directory)
        tensors = directory / f"{name}.safetensors"
        if not tensors.exists():
            raise WeightsError(f"{tensors.name} not found in {directory}; run {contract.script}.")
        digest = sha256_of(tensors)
        if contract.sha256 not in ("", digest):
            raise IntegrityError(f"{tensors.name} does not match the sha256 in {name}.json; run {contract.script}, "
                                 "which writes both.")
        entries[name] = {"contract": contract_sha256(_read_json(contract_path(name, directory))), "safetensors": digest}
    path = directory / MANIFEST
    text = json.dumps({"about": f"sha256 of each weight's contract (canonical JSON) and tensors; {HASH_TOOL} "
                                "rewrites it (docs/weights.md)", "weights": dict(sorted(entries.items()))}, indent=2)
    tmp = path.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)  # never a half-written manifest
    return path


# ------------------------------------------------------------------------------------------------ loading
def load_state(name: str, directory: Path | None = None, verify: bool = True) -> tuple[dict[str, torch.Tensor], Contract]:
    """Load `NAME.safetensors` and its contract, both checked against the folder's manifest (the tensors' sha256
    only when `verify`), and the contract's arch and kwargs checked against the registry."""
    directory = directory or weights_dir()
    contract = read_contract(name, directory, verify=True)
    check_contract(contract, directory)
    path = directory / f"{name}.safetensors"
    if not path.exists():
        raise WeightsError(f"Weight file {path.name} not found in {directory}; reinstall reenact or run {contract.script}.")
    if verify:
        _check_tensors_hash(name, directory, contract)
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises several unrelated types on a damaged file
        raise WeightsError(f"Cannot read {path.name}: {exc}; run {contract.script}.") from exc
    return state, contract


def build(contract: Contract) -> torch.nn.Module:
    """Construct the registered network `contract.arch` with `contract.kwargs` (both checked first)."""
    return check_contract(contract)(**contract.kwargs)


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


M = TypeVar("M", bound=torch.nn.Module)


def load_typed(name: str, kind: type[M], device: torch.device | str = "cpu", directory: Path | None = None) -> M:
    """`load_model`, checked to have built a `kind`: a contract may name any registered network, and the caller
    needs this one (WeightsError otherwise)."""
    model = load_model(name, device, directory)
    if not isinstance(model, kind):
        raise WeightsError(f"The contract of {name} builds a {type(model).__name__}, not a {kind.__name__}; restore "
                           f"the shipped {name}.* files.")
    return model


# ------------------------------------------------------------------------------------------------ writing
def write_contract(contract: Contract, directory: Path | None = None) -> Path:
    """Write NAME.json and re-hash it (with NAME.safetensors) into the folder's manifest. Every contract writer
    goes through here, so a retrained or re-measured weight never leaves a stale manifest behind."""
    directory = directory or weights_dir()
    path = contract_path(contract.name, directory)
    path.write_text(contract.to_json())
    update_manifest(directory, [contract.name])
    return path


def save(name: str, state: dict[str, torch.Tensor], contract: Contract, directory: Path | None = None) -> Path:
    """Write `NAME.safetensors` and `NAME.json` (sha256 filled in) and update the manifest. Used by tools/ and training."""
    directory = directory or weights_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.safetensors"
    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(path))
    contract.name = name
    contract.sha256 = sha256_of(path)
    write_contract(contract, directory)
    return path


def record_extra(name: str, key: str, value: Any, directory: Path | None = None) -> None:
    """Set extra[key] in NAME.json (a measurement made after export); the weights file and its sha256 are unchanged.
    The contract is checked against the manifest first, so re-hashing it cannot launder an edit made behind our back."""
    contract = read_contract(name, directory, verify=True)
    contract.extra[key] = value
    write_contract(contract, directory)


def keep_extra(contract: Contract, keys: tuple[str, ...], directory: Path | None = None) -> Contract:
    """Carry extra[key] for `keys` over from the contract already saved under the same name (measurements made after
    an export, e.g. a calibrated threshold), so that re-converting the weights does not drop them. None saved yet: the
    contract is returned as it is."""
    try:
        old = read_contract(contract.name, directory)
    except WeightsError:
        return contract
    contract.extra.update({k: old.extra[k] for k in keys if k in old.extra})
    return contract


def shipped() -> list[Contract]:
    """Contracts of every weight in weights_dir(), sorted by name."""
    d = weights_dir()
    if not d.is_dir():
        return []
    return [Contract.from_json(p) for p in sorted(d.glob("*.json")) if p.name != MANIFEST]
