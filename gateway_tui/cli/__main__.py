"""`python -m gateway_tui.cli`: the `gateway` command."""

import sys

from . import main

sys.exit(main())
