"""``python -m lancesql``: the command line (see :mod:`lancesql.cli`)."""

import sys

from lancesql.cli import main

sys.exit(main())
