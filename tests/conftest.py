"""Shared pytest setup.

Test helpers live beside the tests (`tests/media_utils.py`: synthetic video/audio made with PyAV). They import as
`media_utils` or `tests.media_utils`; the repository root is appended to sys.path so the second form also works
when pytest is started as `pytest` rather than `python -m pytest`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

from tests.checkout import use_checkout_cli  # noqa: E402

use_checkout_cli()  # this checkout's cli/ as reenact_cli, not that of the checkout the package was installed from


@pytest.fixture(scope="session", autouse=True)
def one_thread():  # noqa: ANN201
    """One torch thread for the whole suite, as the library itself uses on a 2-core machine: two threads on shared
    cores oversubscribe and run small networks up to 20x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
