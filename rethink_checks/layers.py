"""Settings layered once: one function builds the settings a fit or a check runs with.

The layers, lowest first (:data:`LAYERS`): the package's defaults, the data's own defaults
(``Dataset.check_defaults`` then ``fit_defaults``, calibrated per source), the ini file, the
command line, the ``pytest.mark.rethink`` marker, the ``rethink_config`` fixture. A later layer
wins key by key. Every layer is validated by the same code (:func:`validate_layer`): unknown
keys, bad values and unknown check names in ``checks`` / ``expect`` are a
:class:`~rethink_checks.errors.SettingsError` naming the layer, the key and what is allowed.
:func:`layered` serves the plugin, the checks and the panel; :func:`rethink_checks.fit` layers
the package's and the data's fit defaults under its keyword overrides with
:func:`rethink_checks.settings.fit_config` (the same validation, the fit's layers only).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import SettingsError
from .settings import CheckSettings, parse_expect

__all__ = ["LAYERS", "Layered", "layered", "validate_layer"]

#: the layers, lowest first
LAYERS = ("package", "data", "ini", "command line", "marker", "rethink_config")


@dataclass(frozen=True)
class Layered:
    """The effective settings, the check selection of the highest layer that made one, and the
    layers as given (for the report)."""

    settings: CheckSettings
    checks: tuple[str, ...] | None = None
    checks_from: str | None = None
    layers: dict[str, dict[str, Any]] = field(default_factory=dict)


def _check_names(value: Any, where: str) -> tuple[str, ...]:
    from .checks.registry import validate_names

    return validate_names(value, where)


def validate_layer(source: str, mapping: Mapping[str, Any] | None) -> tuple[dict[str, Any], tuple[str, ...] | None]:
    """One layer checked: (its settings keys, its check selection or None).

    ``checks`` (a list or comma-separated names) must name registered checks; ``expect``'s
    check names too; every other key must be a CheckSettings / FitConfig key with a valid value.
    """
    if mapping is None:
        return {}, None
    if not isinstance(mapping, Mapping):
        what = "the rethink_config fixture returned" if source == "rethink_config" else f"{source}:"
        raise SettingsError(f"{what} {type(mapping).__name__}; expected a dict of settings "
                            "(e.g. {'lr': 0.01, 'max_epochs': 20})")
    values = {str(k).replace("-", "_"): v for k, v in mapping.items()}
    checks = values.pop("checks", None)
    try:
        selection = None if checks is None else _check_names(checks, "checks")
        if "expect" in values:
            from .checks.registry import names

            values["expect"] = parse_expect(values["expect"], names())
        CheckSettings.from_mapping(values)
    except SettingsError as exc:
        raise SettingsError(f"{source}: {exc}") from None
    return values, selection


def layered(data: Any = None, *, ini: Mapping[str, Any] | None = None,
            cli: Mapping[str, Any] | None = None, marker: Mapping[str, Any] | None = None,
            config: Mapping[str, Any] | None = None) -> Layered:
    """The settings of one item (or one library call): every layer validated, then merged.

    ``data`` is the Dataset (its ``defaults`` are the data layer) or None.
    """
    given = {"data": dict(getattr(data, "defaults", None) or {}), "ini": ini, "command line": cli,
             "marker": marker, "rethink_config": config}
    merged: dict[str, Any] = {}
    layers: dict[str, dict[str, Any]] = {}
    checks, checks_from = None, None
    for source, mapping in given.items():
        values, selection = validate_layer(source, mapping)
        layers[source] = values
        merged.update(values)
        if selection is not None:
            checks, checks_from = selection, source
    return Layered(CheckSettings.from_mapping(merged), checks, checks_from, layers)
