"""``python -m vidchat.cli``: the ``vidchat`` command without its console script."""

import sys

from vidchat.cli.main import main

sys.exit(main())
