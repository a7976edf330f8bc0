"""``python -m polylin`` runs the command line."""

import sys

from polylin.cli import main

sys.exit(main())
