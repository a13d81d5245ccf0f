"""rethink_checks: the randomization tests of Zhang et al. (ICLR 2017) as a library."""
from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str):
    """Lazy exports so importing the package stays cheap: ``fit`` loads torch, ``FitConfig`` does not."""
    if name == "FitConfig":
        from .settings import FitConfig

        return FitConfig
    if name == "fit":
        from .training import fit

        return fit
    raise AttributeError(f"module 'rethink_checks' has no attribute {name!r}")
