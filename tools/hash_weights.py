"""Rewrite a weights folder's MANIFEST.json: the sha256 of each NAME.json (canonical JSON) and NAME.safetensors.

    python tools/hash_weights.py                      # every weight in weights/ (or $REENACT_WEIGHTS)
    python tools/hash_weights.py rig_arkit52 estimator   # only these; the other entries stay as they are
    python tools/hash_weights.py --dir DIR            # a folder of your own (REENACT_WEIGHTS needs a manifest)
    python tools/hash_weights.py --dir DIR --upgrade  # also turn old "module:Class" arch paths into registry keys

`reenact.weights.save` / `write_contract` / `record_extra` already keep the manifest of the folder they write right,
so this is for files copied in by hand (e.g. a retrained `estimator.*` from a training run's output folder). Every
contract is checked first (a registered arch, typed kwargs, tensors that match its sha256): hashing vouches for the
files, so hash only a folder whose contents you trust. docs/weights.md explains what the manifest protects.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reenact.errors import WeightsError  # noqa: E402
from reenact.weights import read_manifest, update_manifest, weights_dir  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="weights to (re)hash; default: every NAME.json in the folder")
    ap.add_argument("--dir", type=Path, default=None, help="weights folder (default: $REENACT_WEIGHTS or weights/)")
    ap.add_argument("--upgrade", action="store_true",
                    help='rewrite an old "module:Class" arch that names a registered network to its registry key')
    args = ap.parse_args(argv)
    directory = args.dir or weights_dir()
    try:
        path = update_manifest(directory, args.names or None, upgrade=args.upgrade)
    except WeightsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for name, entry in read_manifest(directory).items():
        if not args.names or name in args.names:
            print(f"{name}: contract {entry['contract'][:12]}  safetensors {entry['safetensors'][:12]}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
