"""A weights folder is data: no contract can make reenact import or call anything (GitHub issue 20).

Contracts name a network in reenact.registry, never an import path; each folder's MANIFEST.json holds the sha256 of
every contract (canonical JSON) and tensors file, checked before anything is built.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from reenact import registry
from reenact.errors import EXIT_RUNTIME, ContractError, IntegrityError, WeightsError
from reenact.rig import Rig
from reenact.weights import (MANIFEST, Contract, contract_sha256, keep_extra, load_model, load_state, read_contract,
                             record_extra, save, sha256_of, update_manifest)
from tests.cli_utils import run

SHIPPED = Path(__file__).resolve().parent.parent / "weights"
SOURCE = Path("samples/source.jpg")
PROBE = "reenact_poison_probe"  # a module a poisoned contract names; importing or calling it leaves a marker file


@pytest.fixture
def spy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Record importlib.import_module calls (the real one still runs for reenact's own modules) and os.system calls,
    and put an importable probe module on sys.path whose import or call would leave a file behind."""
    calls: dict[str, Any] = {"import": [], "system": [], "probe": tmp_path / "probe"}
    real_import = importlib.import_module

    def import_module(name: str, package: str | None = None) -> Any:
        calls["import"].append(name)
        return real_import(name, package)

    def system(command: str) -> int:
        calls["system"].append(command)
        return 0

    calls["probe"].mkdir()
    (calls["probe"] / f"{PROBE}.py").write_text(
        "from pathlib import Path\nPath(__file__).with_name('imported').touch()\n"
        "def run(**kwargs):\n    Path(__file__).with_name('called').touch()\n")
    monkeypatch.syspath_prepend(str(calls["probe"]))
    registry.model_names()  # import reenact's own modules now, so third-party lazy imports inside them are not counted
    monkeypatch.setattr(registry, "_imported", set())  # ...and make the registry ask for them again, as on a cold start
    monkeypatch.setattr(importlib, "import_module", import_module)
    monkeypatch.setattr(os, "system", system)
    return calls


def assert_nothing_ran(calls: dict[str, Any]) -> None:
    assert calls["system"] == []
    assert set(calls["import"]) <= set(registry.KNOWN_MODULES), calls["import"]
    assert PROBE not in sys.modules
    assert not (calls["probe"] / "imported").exists() and not (calls["probe"] / "called").exists()


def rig_folder(tmp_path: Path, rehash: bool = True, **changes: Any) -> Path:
    """A weights folder holding the shipped rig, its contract changed by `changes`; with `rehash` the manifest is
    rewritten to match (what someone who can write the folder can do), so only the registry stands in the way."""
    folder = tmp_path / "weights"
    folder.mkdir(parents=True)
    shutil.copy(SHIPPED / "rig_arkit52.safetensors", folder)
    data = json.loads((SHIPPED / "rig_arkit52.json").read_text())
    (folder / "rig_arkit52.json").write_text(json.dumps(data, indent=2))
    write_manifest(folder, {"rig_arkit52": data})
    data.update(changes)
    (folder / "rig_arkit52.json").write_text(json.dumps(data, indent=2))
    if rehash:
        write_manifest(folder, {"rig_arkit52": data})
    return folder


def write_manifest(folder: Path, contracts: dict[str, dict[str, Any]]) -> None:
    """A manifest written by hand (update_manifest would refuse to vouch for a poisoned contract)."""
    entries = {name: {"contract": contract_sha256(data), "safetensors": sha256_of(folder / f"{name}.safetensors")}
               for name, data in contracts.items()}
    (folder / MANIFEST).write_text(json.dumps({"weights": entries}))


POISON = {"os:system": {"command": "touch {marker}"}, "builtins:eval": {"source": "__import__('os').system('x')"},
          f"{PROBE}:run": {"command": "touch {marker}"}}


@pytest.mark.parametrize("arch", list(POISON))
def test_a_contract_naming_an_import_path_imports_and_calls_nothing(tmp_path: Path, spy: dict, arch: str) -> None:
    marker = tmp_path / "pwned"
    kwargs = {k: v.format(marker=marker) for k, v in POISON[arch].items()}
    folder = rig_folder(tmp_path, arch=arch, kwargs=kwargs)
    with pytest.raises(ContractError, match="import path") as err:
        load_model("rig_arkit52", directory=folder)
    assert "do not use these weights" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ContractError):  # the hashing tool will not vouch for it either
        update_manifest(folder)
    assert_nothing_ran(spy)
    assert not marker.exists()


def test_an_old_reenact_path_is_refused_with_the_key_to_use(tmp_path: Path, spy: dict) -> None:
    folder = rig_folder(tmp_path, arch="reenact.rig:Rig")
    with pytest.raises(ContractError, match='change "arch" to "rig" .*--upgrade'):
        load_model("rig_arkit52", directory=folder)
    update_manifest(folder, upgrade=True)  # what the message offers: rewrite it to the key, then hash
    assert read_contract("rig_arkit52", folder).arch == "rig"
    assert isinstance(load_model("rig_arkit52", directory=folder), Rig)
    assert_nothing_ran(spy)


@pytest.mark.parametrize("kwargs, why", [
    ({"n_points": 478, "n_shapes": 52, "command": "touch pwned"}, "takes no argument command"),
    ({"n_points": "478"}, "n_points='478' is not of type int"),
    ({"n_points": True}, "is not of type int"),
    ({"n_points": 478.5}, "is not of type int"),
    ({"n_points": [478]}, "is not of type int"),
    ({"n_points": {"__class__": "os.system"}}, "is not of type int"),
    ("n_points=478", "must be a JSON object"),
])
def test_a_registered_network_takes_only_its_declared_typed_arguments(tmp_path: Path, spy: dict, kwargs: Any,
                                                                      why: str) -> None:
    folder = rig_folder(tmp_path, kwargs=kwargs)
    with pytest.raises(ContractError, match=why):
        load_model("rig_arkit52", directory=folder)
    assert_nothing_ran(spy)


def test_a_contract_changed_after_hashing_is_refused_before_it_is_read(tmp_path: Path, spy: dict) -> None:
    folder = rig_folder(tmp_path, rehash=False, arch="os:system", kwargs={"command": "touch pwned"})
    with pytest.raises(IntegrityError, match="changed after it was hashed"):
        load_model("rig_arkit52", directory=folder)
    folder = rig_folder(tmp_path / "b", rehash=False, licence="MIT")  # any changed value, not only the arch
    with pytest.raises(IntegrityError, match="changed after it was hashed"):
        load_model("rig_arkit52", directory=folder)
    assert_nothing_ran(spy)


def test_layout_does_not_matter_but_tensors_and_missing_manifests_do(tmp_path: Path) -> None:
    folder = rig_folder(tmp_path)
    data = json.loads((folder / "rig_arkit52.json").read_text())
    (folder / "rig_arkit52.json").write_text(json.dumps(dict(reversed(data.items())), indent=4).replace("\n", "\r\n"))
    assert isinstance(load_model("rig_arkit52", directory=folder), Rig)  # canonical content: same keys and values
    blob = bytearray((folder / "rig_arkit52.safetensors").read_bytes())
    blob[-1] ^= 1
    (folder / "rig_arkit52.safetensors").write_bytes(bytes(blob))
    with pytest.raises(IntegrityError, match="does not match its sha256"):
        load_state("rig_arkit52", folder)
    (folder / MANIFEST).write_text(json.dumps({"weights": {}}))
    with pytest.raises(IntegrityError, match="not listed in"):
        load_state("rig_arkit52", folder)
    (folder / MANIFEST).unlink()
    with pytest.raises(IntegrityError, match="has no MANIFEST.json.*hash_weights.py --dir"):
        load_state("rig_arkit52", folder)


def test_create_model_builds_only_registered_names_with_typed_arguments() -> None:
    rig = registry.create_model("rig", n_points=4, n_shapes=2)
    assert isinstance(rig, Rig) and rig.basis.shape == (2, 4, 3)
    for name in ("os:system", "builtins.eval", "Rig", ""):
        with pytest.raises(ContractError, match="Unknown network .* the registered ones are .*facemesh"):
            registry.create_model(name)
    with pytest.raises(ContractError, match="takes no argument command"):
        registry.create_model("rig", command="id")
    assert issubclass(ContractError, WeightsError) and ContractError.exit_code == EXIT_RUNTIME


def test_register_model_refuses_constructors_a_contract_could_abuse() -> None:
    before = dict(registry._MODELS)

    class Passthrough:
        def __init__(self, size: int = 1, **kwargs: Any) -> None: ...

    class Untyped:
        def __init__(self, factory=None) -> None: ...  # type: ignore[no-untyped-def]

    class ObjectArg:
        def __init__(self, path: Path = Path(".")) -> None: ...

    for cls in (Passthrough, Untyped, ObjectArg):
        with pytest.raises(TypeError):
            registry.register_model("test_only")(cls)
    with pytest.raises(TypeError, match="taken"):
        registry.register_model("rig")(type("Rig", (), {"__init__": lambda self: None}))
    assert registry._MODELS == before


def test_shipped_contracts_name_registry_keys_and_match_the_manifest() -> None:
    """Fails when a weight was retrained or a contract edited without `python tools/hash_weights.py`."""
    keys = registry.model_names()
    names = sorted(p.stem for p in SHIPPED.glob("*.json") if p.name != MANIFEST)
    assert names and set(json.loads((SHIPPED / MANIFEST).read_text())["weights"]) == set(names)
    for name in names:
        _, contract = load_state(name, SHIPPED)  # both sha256 and the registry check
        assert contract.arch in keys, name


def test_writers_keep_the_manifest_right_and_cannot_write_import_paths(tmp_path: Path) -> None:
    rig = Rig(n_points=4, n_shapes=2)
    contract = Contract(name="tiny", arch="rig", kwargs={"n_points": 4, "n_shapes": 2}, input={}, outputs={},
                        training_data="none", licence="Apache-2.0", source="test", script="tests/test_weights_security.py")
    save("tiny", rig.state_dict(), contract, tmp_path)
    assert isinstance(load_model("tiny", directory=tmp_path), Rig)
    record_extra("tiny", "note", "measured later", tmp_path)
    assert load_model("tiny", directory=tmp_path).contract.extra["note"] == "measured later"
    def fresh() -> Contract:
        return Contract(name="tiny", arch="rig", kwargs={"n_points": 4, "n_shapes": 2}, input={}, outputs={},
                        training_data="none", licence="Apache-2.0", source="test", script="tests/test_weights_security.py")

    assert keep_extra(fresh(), ("note", "absent"), tmp_path).extra == {"note": "measured later"}  # a re-export keeps it
    assert keep_extra(fresh(), ("note",), tmp_path / "empty").extra == {}  # nothing saved there yet
    contract.arch = "reenact.rig:Rig"
    with pytest.raises(ContractError, match='change "arch" to "rig" .*--upgrade'):
        save("tiny", rig.state_dict(), contract, tmp_path)


@pytest.mark.parametrize("attack", ["manifest rewritten too", "contract edited"])
def test_poisoned_weights_folder_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, attack: str) -> None:
    """`reenact edit` with REENACT_WEIGHTS at a folder whose every contract says "os:system": exit 1 (README, weights
    refused), one line, no traceback, no output, and the command in the contract never runs (os.system is real here:
    a regression would create the marker)."""
    folder, marker, out = tmp_path / "weights", tmp_path / "pwned", tmp_path / "out" / "x.png"
    shutil.copytree(SHIPPED, folder)
    poisoned = {}
    for path in sorted(folder.glob("*.json")):
        if path.name != MANIFEST:
            data = json.loads(path.read_text())
            poisoned[path.stem] = {**data, "arch": "os:system", "kwargs": {"command": f"touch {marker}"}}
            path.write_text(json.dumps(poisoned[path.stem], indent=2))
    if attack == "manifest rewritten too":
        write_manifest(folder, poisoned)
    monkeypatch.setenv("REENACT_WEIGHTS", str(folder))
    out.parent.mkdir()
    code, err = run("edit", str(SOURCE), "--au", "12=1", "-o", str(out))
    assert code == EXIT_RUNTIME, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    assert ("import path 'os:system'" if attack == "manifest rewritten too" else "changed after it was hashed") in err
    assert not marker.exists() and list(out.parent.iterdir()) == []


def test_hash_weights_tool_hashes_a_trusted_folder_and_refuses_a_poisoned_one(tmp_path: Path) -> None:
    import subprocess

    tool = [sys.executable, str(SHIPPED.parent / "tools" / "hash_weights.py"), "--dir"]
    good = rig_folder(tmp_path / "good", arch="reenact.rig:Rig")
    (good / MANIFEST).unlink()
    done = subprocess.run([*tool, str(good), "--upgrade"], capture_output=True, text=True)
    assert done.returncode == 0 and "rig_arkit52: contract" in done.stdout, done.stderr
    assert isinstance(load_model("rig_arkit52", directory=good), Rig)
    bad = rig_folder(tmp_path / "bad", arch="os:system", kwargs={"command": f"touch {tmp_path / 'pwned'}"})
    done = subprocess.run([*tool, str(bad)], capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.startswith("error:") and "Traceback" not in done.stderr
    assert not (tmp_path / "pwned").exists()
