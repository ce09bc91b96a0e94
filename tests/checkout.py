"""Import this checkout's `cli/` as `reenact_cli`, whatever checkout the package was installed (editable) from.

pyproject.toml installs the folder `cli/` under the name `reenact_cli`; an editable install made in another checkout
or worktree would otherwise give the tests that checkout's CLI beside this checkout's library. conftest.py calls
`use_checkout_cli()` for the in-process tests; tests that start `reenact` as a real process run `CLI_MAIN`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# `python -c CLI_MAIN ARGS...` with the repository root on PYTHONPATH: `reenact ARGS...` from this checkout.
CLI_MAIN = "import sys; from tests.checkout import use_checkout_cli; use_checkout_cli(); sys.argv[0] = 'reenact'; " \
           "from reenact_cli.app import main; main()"


def use_checkout_cli() -> None:
    loaded = sys.modules.get("reenact_cli")
    if loaded is not None and Path(loaded.__file__ or "").resolve().parent == ROOT / "cli":
        return
    for name in [n for n in sys.modules if n == "reenact_cli" or n.startswith("reenact_cli.")]:
        del sys.modules[name]
    spec = importlib.util.spec_from_file_location("reenact_cli", ROOT / "cli" / "__init__.py",
                                                  submodule_search_locations=[str(ROOT / "cli")])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["reenact_cli"] = module
    spec.loader.exec_module(module)
