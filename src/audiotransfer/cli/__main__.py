"""`python -m audiotransfer.cli` (used by torchrun for multi-GPU training)."""

import sys

from audiotransfer.cli import main

sys.exit(main())
