"""Files the commands need beyond Python code: the broker's Maven pom and the compose file.

In a checkout (``pip install -e .``) they are read where they live in the repository; a wheel
carries copies under ``marketpipe/_resources`` (written by setup.py's build step), so a plain
``pip install`` outside the checkout can still start the local broker.
"""

from __future__ import annotations

from pathlib import Path

# this module is marketpipe/runtime/resources.py: the package is one level up, the checkout two
PACKAGED = Path(__file__).resolve().parents[1] / "_resources"
CHECKOUT = Path(__file__).resolve().parents[2]

#: name in the wheel -> path in the repository
FILES: dict[str, str] = {
    "kafka-pom.xml": "deploy/kafka/pom.xml",
    "docker-compose.yml": "docker-compose.yml",
}


def resource(name: str) -> Path:
    """The packaged copy when installed from a wheel, else the checkout's file."""
    for candidate in (PACKAGED / name, CHECKOUT / FILES[name]):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{name} is neither packaged ({PACKAGED}) nor in a checkout ({CHECKOUT / FILES[name]}): "
                            "reinstall marketpipe")
