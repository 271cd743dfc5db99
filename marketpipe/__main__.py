import sys

from marketpipe.cli.main import main

sys.exit(main())
