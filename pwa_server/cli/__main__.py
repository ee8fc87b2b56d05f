"""`python -m pwa_server.cli`: the `shomei` command."""

import sys

from pwa_server.cli import main

sys.exit(main())
