"""``python -m bot``: the same as the ``data-request-bot`` command."""

import sys

from bot.cli import main

sys.exit(main())
