"""Build step that pyproject.toml cannot express: copy the broker's pom and the compose file into
the wheel (marketpipe/_resources), so an installed marketpipe needs no checkout."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
RESOURCES = {"kafka-pom.xml": "deploy/kafka/pom.xml", "docker-compose.yml": "docker-compose.yml"}


class BuildWithResources(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "marketpipe" / "_resources"
        target.mkdir(parents=True, exist_ok=True)
        for name, source in RESOURCES.items():
            shutil.copyfile(HERE / source, target / name)


setup(cmdclass={"build_py": BuildWithResources})
