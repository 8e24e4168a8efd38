"""`python -m localstack up|down|status|logs`: the stack commands without the `kdp` entry point."""

import sys

from localstack.cli import main

sys.exit(main())
