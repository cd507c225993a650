"""`python -m daemon` is `stagewise`."""

import sys

from daemon.cli import main

sys.exit(main())
