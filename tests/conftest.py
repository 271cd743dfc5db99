"""Shared fixtures: marketpipe's own tests use the same pytest plugin downstream services get
(``marketpipe.testing``), so it cannot rot. One real Kafka broker per test session
(``KAFKA_BOOTSTRAP_SERVERS`` → Docker → the local launcher; ``MARKETPIPE_TEST_BROKER`` forces one);
each test gets its own topic prefix. Fixtures: kafka_broker, kafka_bootstrap, topic_prefix, mp_env,
mp_settings, mp_simulator, mp_pipeline.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# Also loaded through the ``pytest11`` entry point when marketpipe is installed; the entry point's
# name is the module name, so pytest registers it once either way.
pytest_plugins = ["marketpipe.testing"]

ROOT = Path(__file__).resolve().parents[1]


#: tests marked by the folder they live in: everything under tests/integration/ needs a real Kafka
#: broker, so ``-m "not integration"`` (the fast tier) never starts one; everything under
#: tests/deploy/docker/ needs a Docker engine and the images of ``make images`` (the offline
#: deploy-file checks live one folder up)
FOLDER_MARKERS = {ROOT / "tests" / "integration": "integration", ROOT / "tests" / "deploy" / "docker": "docker"}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects on markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parents = item.path.resolve().parents
        for folder, marker in FOLDER_MARKERS.items():
            if folder in parents:
                item.add_marker(getattr(pytest.mark, marker))
