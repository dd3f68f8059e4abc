"""`python3 -m pyclone_docker ...` and the zipapp's entry point."""

import sys

from .cli import main

sys.exit(main())
