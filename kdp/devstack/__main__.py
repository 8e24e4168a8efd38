"""`python -m kdp.devstack up|down|status|logs`: the stack commands without the `kdp` entry point."""

import sys

from kdp.devstack.cli import main

sys.exit(main())
