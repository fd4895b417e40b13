"""``python -m mongo_session_backends``: the ``mongo-sessions`` command."""

import sys

from .cli import main

sys.exit(main())
