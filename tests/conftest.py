"""Shared pytest setup.

Test helpers live beside the tests (`tests/media_utils.py`: synthetic video/audio made with PyAV). They import as
`media_utils` or `tests.media_utils`; the repository root is appended to sys.path so the second form also works
when pytest is started as `pytest` rather than `python -m pytest`.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.append(_ROOT)
