"""`python -m coopt` runs the `coopt` command."""

import sys

from coopt.cli import main

sys.exit(main())
