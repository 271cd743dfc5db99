"""Everything under tests/integration/ needs a real Kafka broker: its tests are marked ``integration``
here, by where they live, so ``-m "not integration"`` (the fast tier) never starts a broker."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects on markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # a conftest's hook sees the whole session's items, not only those of its folder
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.integration)
