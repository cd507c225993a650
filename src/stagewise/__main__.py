"""`python -m stagewise` is `stagewise`."""

import sys

from stagewise.cli import main

sys.exit(main())
