"""``python -m rethink_checks.reproduce``: run the reproduction command line (:func:`.cli.main`)."""
import sys

from .cli import main

sys.exit(main())
