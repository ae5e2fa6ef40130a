"""`python -m mailpin`."""

import sys

from mailpin.cli import main

sys.exit(main())
