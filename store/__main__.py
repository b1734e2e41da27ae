"""`python -m store ...`: the same command as the `imagelog` script."""

import sys

from store.cli import main

sys.exit(main())
