"""The randomization checks of Zhang et al. (2017) as pytest-free functions returning verdicts.

One registry (:mod:`.registry`) holds one :class:`Check` per check, each in a module of its
own beside it (``true_labels``, ``memorize`` for the four randomizations, ``partial_labels``,
``slowdown``, ``regularizers``, ``capacity``, ``expressivity``, ``memorization``). Every
check runs as ``check(model_factory, data, settings, cache=None) -> CheckResult``. A model
that misses a criterion gives ``passed=False`` with metrics; unusable input raises a
:class:`~rethink_checks.errors.RethinkError`; a randomization that means nothing for the data
raises :class:`~rethink_checks.errors.NotApplicable` (``slowdown`` leaves it out instead).
The criteria are documented in ``docs/checks.md`` and in each result's ``criterion``.
"""
from __future__ import annotations

from ..errors import SettingsError
from ..randomizations import MEMORIZED as RANDOMIZATION_CHECKS
from ..run_cache import RunCache
from ..settings import CAPACITY_BUDGETS, LABEL_MODES, REGULARIZERS, CheckSettings
from .base import Check, Verdict
from .registry import REGISTRY, get, names, register, unregister
from .run import run_check

__all__ = [
    "CHECKS", "Check", "Verdict", "register", "unregister", "get", "names", "CheckSettings",
    "RunCache", "SettingsError", "run_check", "RANDOMIZATION_CHECKS", "REGULARIZERS",
    "LABEL_MODES", "CAPACITY_BUDGETS",
]

#: every check by name (the registry itself: a Check is called like the function it runs)
CHECKS = REGISTRY
