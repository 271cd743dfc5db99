import sys

from marketpipe.cli import main

sys.exit(main())
