"""Where the tests find the checkout and their data, in one place: a test module's own location
says nothing about the repository's, since tests/ mirrors the package and modules move.

Each folder is checked on import, so a data folder that moves fails every test that reads it
instead of leaving a glob over a missing folder to find nothing and pass.
"""

from __future__ import annotations

from pathlib import Path

#: the checkout (pyproject.toml, README.md, bench/, deploy/, examples/)
ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
#: test data: sample raw frames (frames/) and the providers' conformance corpus (conformance/)
DATA = TESTS / "data"
FRAMES = DATA / "frames"
CONFORMANCE = DATA / "conformance"

for _folder in (ROOT / "marketpipe", FRAMES, CONFORMANCE):
    if not _folder.is_dir():
        raise RuntimeError(f"{_folder} is not a folder of this checkout: update tests/support/paths.py")
