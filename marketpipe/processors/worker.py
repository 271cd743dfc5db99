"""Entry point for Faust's own command line: ``faust -A marketpipe.processors.worker worker``.

The app is built from the environment's settings when this module is imported; nothing else
imports it (``marketpipe process`` builds its app from the settings it was given).
"""

from marketpipe import settings
from marketpipe.processors.app import build_app

app = build_app(settings.load())
