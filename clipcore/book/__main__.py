"""``python -m clipcore.book``: see :mod:`clipcore.book`."""

import sys

from .runner import main

sys.exit(main())
