"""Fixtures shared by the tests; helpers live in tests/support (imported as ``support.X``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.data import copy_instance


@pytest.fixture
def real_instances(tmp_path: Path) -> dict[str, Path]:
    return {n: copy_instance(n, tmp_path) for n in ("rest-service-2019", "seqrepo-rs-2023")}
