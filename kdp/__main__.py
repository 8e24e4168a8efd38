"""`python -m kdp ...`: the same as the `kdp` entry point."""

import sys

from kdp.cli import main

sys.exit(main())
