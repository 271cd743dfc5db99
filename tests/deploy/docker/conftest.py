"""Everything under tests/deploy/docker/ needs a Docker engine and the images of `make images`: its
tests are marked ``docker`` here, by where they live (the offline deploy-file checks are one folder up)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects on markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # a conftest's hook sees the whole session's items, not only those of its folder
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.docker)
