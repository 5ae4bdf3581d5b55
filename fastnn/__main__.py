"""``python -m fastnn``: the same program as the ``fastnn`` command."""

import sys

from fastnn.cli import main

sys.exit(main())
