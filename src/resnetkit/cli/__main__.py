"""``python -m resnetkit.cli``: the ``resnetkit`` command."""

import sys

from resnetkit.cli import main

sys.exit(main())
