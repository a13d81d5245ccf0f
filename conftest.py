"""Project-wide test setup: hypothesis profiles and markers for optional hardware/data.

``HYPOTHESIS_PROFILE=thorough`` runs many more examples; the default stays fast for CI.
"""
from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings

settings.register_profile("default", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=500, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

#: The real CIFAR-10 copy shared with the project (absent on most user machines).
SHARED_CIFAR = Path(__file__).resolve().parent.parent / "shared" / "data" / "cifar10-jpg.tar.gz"
