"""rethink_checks: the randomization tests of Zhang et al. (ICLR 2017) as a library."""
from __future__ import annotations

__version__ = "0.1.0"
