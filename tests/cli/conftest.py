from __future__ import annotations

from tests.conftest import DEMO_NOW  # noqa: F401  (the CLI tests pin the same date)
